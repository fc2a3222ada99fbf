"""TraindynLightningCallback in a real ``lightning.pytorch.Trainer``: a tiny MLP.

The module records the loss of every update and its scheduler is step-wise, so the run's
scalars are checked against what the module computed and the learning rate each update
used; a fit interrupted by an exception is resumed from its checkpoint into the same run.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch
from torch import nn

import traindyn as td
from traindyn.exceptions import ConfigError

pl = pytest.importorskip("lightning.pytorch")

from traindyn.integrations.lightning import TraindynLightningCallback  # noqa: E402

pytestmark = [
    # lightning 2.6's CombinedLoader calls torch's deprecated pytree LeafSpec check; the
    # warning comes from lightning itself (utilities/_pytree.py), which we cannot change
    pytest.mark.filterwarnings(
        r"ignore:`isinstance\(treespec, LeafSpec\)` is deprecated:FutureWarning"
    ),
]

MAX_STEPS = 30
EVERY = 5
# every 5 updates, plus the milestones round(f * 30) for f = 0.15, 0.30, 0.50, 1.00
# (round(4.5) == 4: Python rounds half to even) and 29, the last step a range() loop sees
EXPECTED_STEPS = [0, 4, 5, 9, 10, 15, 20, 25, 29, 30]
LR = 0.5


def data(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(256, 8, generator=g)
    return x, (x[:, 0] + 0.5 * x[:, 1] > 0).long()


class MLP(pl.LightningModule):  # type: ignore[misc]
    """Records the loss of every update under the step it leads to (updates done after it)."""

    def __init__(self, hidden: int = 16, fail_at: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.fail_at = fail_at
        self.losses: dict[int, float] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> Any:
        if self.global_step == self.fail_at:
            raise RuntimeError(f"boom at step {self.fail_at}")
        x, y = batch
        loss = nn.functional.cross_entropy(self(x), y)
        self.losses[self.global_step + 1] = loss.item()
        return {"loss": loss}

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=LR)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=10, gamma=0.5)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }


def lr_of_update(k: int) -> float:
    """The learning rate update ``k`` (1-based) used: halved after every 10 updates."""
    return LR * 0.5 ** ((k - 1) // 10)


def loader() -> torch.utils.data.DataLoader[Any]:
    x, y = data()
    return torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(x, y),
        batch_size=32,
        shuffle=True,
        generator=torch.Generator().manual_seed(1),
    )


def probe() -> tuple[torch.Tensor, torch.Tensor]:
    x, y = data(seed=5)
    return x[:64], y[:64]


def trainer(callback: Any, **overrides: Any) -> Any:
    options: dict[str, Any] = {
        "max_steps": MAX_STEPS,
        "accelerator": "cpu",
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": [callback],
        **overrides,
    }
    return pl.Trainer(**options)


class SaveAt(pl.Callback):  # type: ignore[misc]
    """Saves a checkpoint after update ``step``, as ``ModelCheckpoint`` does, but holds no
    state of its own (so the resumed fit need not be given it again)."""

    def __init__(self, step: int, path: Path) -> None:
        self.step, self.path = step, path

    def on_train_batch_end(self, trainer: Any, *args: Any) -> None:
        if trainer.global_step == self.step:
            trainer.save_checkpoint(self.path)


def scalar(run: td.store.Run, name: str) -> pd.Series:
    frame = run.scalars
    return frame[frame["name"] == name].set_index("step")["value"]


# ---------------------------------------------------------------------------- one fit
@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("lightning")
    torch.manual_seed(0)
    module = MLP()
    callback = TraindynLightningCallback(probe(), tmp / "run", every=EVERY)
    trainer(callback).fit(module, loader())
    return {"module": module, "callback": callback, "run": td.open_run(tmp / "run")}


def test_the_run_is_finished_and_sampled_on_the_schedule_and_milestones(
    fitted: dict[str, Any],
) -> None:
    run = fitted["run"]
    assert run.manifest.status == "finished"
    assert fitted["callback"].run_path == run.path
    assert sorted(run.metrics["step"].unique()) == EXPECTED_STEPS
    assert sorted(run.metrics["layer"].unique()) == ["net.0", "net.2"]  # not the ReLU
    assert run.metrics["value"].map(math.isfinite).all()
    config = run.manifest.config
    assert config["tracker"]["total_steps"] == MAX_STEPS
    assert config["tracker"]["milestone_steps"] == [4, 9, 15, 29, 30]
    lightning = config["lightning"]
    assert lightning["max_steps"] == MAX_STEPS
    assert lightning["estimated_stepping_batches"] == MAX_STEPS
    assert lightning["hparams"] == {"hidden": 16, "fail_at": None}
    assert lightning["module"].endswith("MLP")


def test_loss_and_lr_are_those_of_each_update(fitted: dict[str, Any]) -> None:
    run, module = fitted["run"], fitted["module"]
    loss, lr = scalar(run, "loss"), scalar(run, "lr")
    assert sorted(module.losses) == list(range(1, MAX_STEPS + 1))
    assert loss.to_dict() == module.losses  # exactly the values training_step returned
    # the lr the update used, read before the scheduler steps (at batch end it is the next)
    assert lr.to_dict() == {k: lr_of_update(k) for k in range(1, MAX_STEPS + 1)}
    assert lr[10] == LR and lr[11] == LR / 2


def test_probe_accuracy_rises_and_equals_the_final_model_on_the_probe(
    fitted: dict[str, Any],
) -> None:
    accuracy = scalar(fitted["run"], "probe_accuracy")
    assert sorted(accuracy.index) == EXPECTED_STEPS
    x, y = probe()
    module = fitted["module"]
    with torch.no_grad():
        expected = (module(x).argmax(-1) == y).double().mean().item()
    assert accuracy[MAX_STEPS] == pytest.approx(expected)
    assert accuracy[0] < 0.8 < accuracy[MAX_STEPS]


# ---------------------------------------------------------------------------- failures
def test_an_exception_in_training_step_ends_the_run_failed(tmp_path: Path) -> None:
    torch.manual_seed(0)
    module = MLP(fail_at=12)
    callback = TraindynLightningCallback(probe(), tmp_path / "run", every=EVERY)
    with pytest.raises(RuntimeError, match="boom at step 12"):
        trainer(callback).fit(module, loader())
    run = td.open_run(tmp_path / "run")
    assert run.manifest.status == "failed"
    assert run.manifest.error == "RuntimeError: boom at step 12"
    assert sorted(run.metrics["step"].unique()) == [0, 4, 5, 9, 10]
    assert scalar(run, "loss").to_dict() == module.losses
    assert sorted(module.losses) == list(range(1, 13))


def test_a_fit_resumed_from_its_checkpoint_continues_the_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a relative run path: its state key must survive creation
    # 8 batches an epoch: step 16 ends epoch 2, a checkpoint Lightning resumes exactly
    ckpt = tmp_path / "step=16.ckpt"
    torch.manual_seed(0)
    first = TraindynLightningCallback(probe(), "run", every=EVERY)
    failed = MLP(fail_at=22)
    with pytest.raises(RuntimeError, match="boom at step 22"):
        trainer(first, callbacks=[first, SaveAt(16, ckpt)]).fit(failed, loader())
    before = td.open_run(tmp_path / "run")
    assert before.manifest.status == "failed"
    key = ["step", "layer", "metric"]
    old = before.metrics.set_index(key)["value"]  # read now: a Run reads its files when asked
    assert sorted(old.index.unique("step")) == [0, 4, 5, 9, 10, 15, 20]
    saved = torch.load(ckpt, weights_only=False)["callbacks"][first.state_key]
    assert saved["last_step"] == 15 and saved["n_samples"] == 6

    torch.manual_seed(123)  # other initial weights: the checkpoint's must be loaded
    module = MLP()
    second = TraindynLightningCallback(probe(), "run", every=EVERY, resume=True)
    trainer(second).fit(module, loader(), ckpt_path=ckpt)
    run = td.open_run(tmp_path / "run")
    assert run.manifest.status == "finished"
    assert sorted(run.metrics["step"].unique()) == EXPECTED_STEPS
    # the state came from the checkpoint: its 6 samples, then 20, 25, 29 and 30
    assert second.tracker.state_dict()["n_samples"] == 10
    assert sorted(module.losses) == list(range(17, MAX_STEPS + 1))
    loss = scalar(run, "loss")
    assert sorted(loss.index) == list(range(1, MAX_STEPS + 1))
    # steps 1-16 are the first fit's; 17-22, replayed on other batches, the second's
    assert {k: loss[k] for k in range(1, 17)} == {k: failed.losses[k] for k in range(1, 17)}
    assert {k: loss[k] for k in range(17, 31)} == module.losses
    assert failed.losses[20] != module.losses[20]
    new = run.metrics.set_index(key)["value"]
    assert new.index.is_unique  # one value per (step, layer, metric): the latest
    assert (new.loc[:15] == old.loc[:15]).all()
    assert not (new.loc[20] == old.loc[20]).all()  # step 20 measured again, replacing it
    accuracy = scalar(run, "probe_accuracy")
    x, y = probe()
    with torch.no_grad():
        expected = (module(x).argmax(-1) == y).double().mean().item()
    assert accuracy[MAX_STEPS] == pytest.approx(expected)


# ---------------------------------------------------------------------------- construction
def test_tracker_options_are_checked_when_the_callback_is_made(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown Tracker option 'evry'; valid options: layers"):
        TraindynLightningCallback(probe(), tmp_path / "run", evry=5)
    with pytest.raises(TypeError, match="does not take model="):
        TraindynLightningCallback(probe(), tmp_path / "run", model=nn.Linear(8, 2))
    with pytest.raises(ConfigError, match=r"config\['lightning'\] is written by"):
        TraindynLightningCallback(probe(), tmp_path / "run", config={"lightning": 1})
    callback = TraindynLightningCallback(probe(), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # the constructor does no work
    assert callback.state_dict() == {}
    with pytest.raises(ConfigError, match=r"callback\.tracker exists once the fit starts"):
        callback.tracker  # noqa: B018
