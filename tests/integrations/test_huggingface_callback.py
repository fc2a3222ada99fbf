"""TraindynCallback in a real ``transformers.Trainer``: a tiny BERT built from a config.

One training of 30 updates (module fixture) is checked against what the Trainer itself
logged (``trainer.state.log_history``) and against the final model evaluated here on the
probe set; failing trainings check the run's status.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

import traindyn as td
from traindyn.exceptions import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may download
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")  # Trainer needs it

from traindyn.integrations.huggingface import TraindynCallback  # noqa: E402

MAX_STEPS = 30
EVERY = 5
# every 5 updates, plus the milestones round(f * 30) for f = 0.15, 0.30, 0.50, 1.00
# (round(4.5) == 4: Python rounds half to even) and 29, the last step a range() loop sees
EXPECTED_STEPS = [0, 4, 5, 9, 10, 15, 20, 25, 29, 30]
SEQ_LEN = 8


class TokenClasses(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Class 0 sequences use tokens 1-49, class 1 tokens 50-99: learnable in a few steps."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        low = torch.randint(1, 50, (n, SEQ_LEN), generator=g)
        self.input_ids = low + 49 * self.labels[:, None]

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids[i],
            "attention_mask": torch.ones(SEQ_LEN, dtype=torch.long),
            "labels": self.labels[i],
        }


def tiny_bert(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    config = transformers.BertConfig(
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=SEQ_LEN,
    )
    return transformers.BertForSequenceClassification(config)


def probe_set() -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    data = TokenClasses(64, seed=99)
    return {"input_ids": data.input_ids, "attention_mask": torch.ones(64, SEQ_LEN).long()}, (
        data.labels
    )


def training_args(output_dir: Path, **overrides: Any) -> Any:
    options: dict[str, Any] = {
        "output_dir": str(output_dir),
        "max_steps": MAX_STEPS,
        "per_device_train_batch_size": 16,
        "learning_rate": 2e-3,
        "seed": 7,
        "report_to": [],
        "use_cpu": True,
        "logging_steps": 5,
        "save_strategy": "no",
        "disable_tqdm": True,
        **overrides,
    }
    return transformers.TrainingArguments(**options)


class RaiseAt(transformers.TrainerCallback):  # type: ignore[misc]
    """Fails the training after update ``step``, like a NaN check or a dataloader error."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            raise RuntimeError(f"boom at step {self.step}")


# ---------------------------------------------------------------------------- one training
@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("hf")
    model = tiny_bert()
    probe = probe_set()
    callback = TraindynCallback(probe, tmp / "run", every=EVERY)
    args = training_args(tmp / "out", eval_strategy="steps", eval_steps=10)
    trainer = transformers.Trainer(
        model=model,
        args=args,
        train_dataset=TokenClasses(512, seed=1),
        eval_dataset=TokenClasses(64, seed=2),
        callbacks=[callback],
    )
    with callback:
        trainer.train()
    scalars_after_training = td.open_run(tmp / "run").scalars
    trainer.evaluate()  # after train(): the run is closed, these logs are not recorded
    return {
        "callback": callback,
        "trainer": trainer,
        "model": model,
        "probe": probe,
        "run": td.open_run(tmp / "run"),
        "scalars_after_training": scalars_after_training,
    }


def scalar(run: td.store.Run, name: str) -> pd.Series:
    frame = run.scalars
    return frame[frame["name"] == name].set_index("step")["value"]


def test_the_run_is_finished_and_sampled_on_the_schedule_and_milestones(
    trained: dict[str, Any],
) -> None:
    run = trained["run"]
    assert run.manifest.status == "finished"
    assert trained["callback"].run_path == run.path
    assert trained["callback"].tracker.total_steps == MAX_STEPS
    assert sorted(run.metrics["step"].unique()) == EXPECTED_STEPS
    layers = ["bert.encoder.layer.0", "bert.encoder.layer.1", "bert.pooler.dense", "classifier"]
    assert sorted(run.metrics["layer"].unique()) == layers
    assert run.metrics["value"].map(math.isfinite).all()
    assert sorted(scalar(run, "probe_accuracy").index) == EXPECTED_STEPS


def test_the_manifest_records_total_steps_and_the_training_arguments(
    trained: dict[str, Any],
) -> None:
    config = trained["run"].manifest.config
    assert config["tracker"]["total_steps"] == MAX_STEPS
    assert config["tracker"]["milestone_steps"] == [4, 9, 15, 29, 30]
    hf = config["huggingface"]
    assert hf["learning_rate"] == 2e-3
    assert hf["per_device_train_batch_size"] == 16
    assert hf["max_steps"] == MAX_STEPS
    assert hf["seed"] == 7
    assert hf["lr_scheduler_type"] == "linear"  # an enum in TrainingArguments, its value here
    assert hf["weight_decay"] == 0.0
    assert "output_dir" not in hf


def test_every_number_the_trainer_logged_is_a_scalar_of_its_step(trained: dict[str, Any]) -> None:
    run = trained["run"]
    history = trained["trainer"].state.log_history
    train_logs = [h for h in history if "loss" in h and "eval_loss" not in h]
    assert [h["step"] for h in train_logs] == [5, 10, 15, 20, 25, 30]
    loss, lr, grad_norm = scalar(run, "loss"), scalar(run, "lr"), scalar(run, "grad_norm")
    assert sorted(loss.index) == [5, 10, 15, 20, 25, 30]
    for h in train_logs:
        assert loss[h["step"]] == h["loss"]
        assert lr[h["step"]] == h["learning_rate"]
        assert grad_norm[h["step"]] == h["grad_norm"]
    # the linear schedule decays from 2e-3 to 0 over 30 updates; step 5's update used lr(4)
    assert lr[5] == pytest.approx(2e-3 * (1 - 4 / 30))
    eval_logs = [h for h in history if "eval_loss" in h][:3]  # the 4th is evaluate() after train
    eval_loss = scalar(run, "eval_loss")
    assert sorted(eval_loss.index) == [10, 20, 30]
    for h in eval_logs:
        assert eval_loss[h["step"]] == h["eval_loss"]
    (summary,) = [h for h in history if "train_loss" in h]
    assert scalar(run, "train_loss")[MAX_STEPS] == summary["train_loss"]
    names = set(run.scalars["name"])
    assert not {n for n in names if n.endswith(("_runtime", "_per_second"))}
    assert "total_flos" not in names and "learning_rate" not in names
    # evaluate() after training logged into a closed run: nothing was added
    pd.testing.assert_frame_equal(run.scalars, trained["scalars_after_training"])


def test_probe_accuracy_rises_and_equals_the_final_model_on_the_probe(
    trained: dict[str, Any],
) -> None:
    accuracy = scalar(trained["run"], "probe_accuracy")
    model, (inputs, labels) = trained["model"], trained["probe"]
    model.eval()
    with torch.no_grad():
        logits = model(**inputs).logits
    expected = (logits.argmax(-1) == labels).double().mean().item()
    assert accuracy[MAX_STEPS] == pytest.approx(expected)
    assert accuracy[0] < 0.75 < accuracy[MAX_STEPS]


# ---------------------------------------------------------------------------- failures
def test_a_training_that_raises_inside_with_callback_ends_failed(tmp_path: Path) -> None:
    # a collated batch with "labels" is split into (inputs, labels) by the callback
    inputs, labels = probe_set()
    callback = TraindynCallback({**inputs, "labels": labels}, tmp_path / "run", every=EVERY)
    trainer = transformers.Trainer(
        model=tiny_bert(),
        args=training_args(tmp_path / "out"),
        train_dataset=TokenClasses(512, seed=1),
        callbacks=[callback, RaiseAt(12)],
    )
    with pytest.raises(RuntimeError, match="boom at step 12"), callback:
        trainer.train()
    run = td.open_run(tmp_path / "run")
    assert run.manifest.status == "failed"
    assert run.manifest.error == "RuntimeError: boom at step 12"
    assert sorted(run.metrics["step"].unique()) == [0, 4, 5, 9, 10]
    assert sorted(scalar(run, "probe_accuracy").index) == [0, 4, 5, 9, 10]
    assert sorted(scalar(run, "loss").index) == [5, 10]
    callback.close()  # a no-op: the with block closed the run
    assert td.open_run(tmp_path / "run").manifest.status == "failed"


CHILD = """
    import sys, torch
    sys.path.insert(0, {tests!r})
    from test_huggingface_callback import RaiseAt, TokenClasses, probe_set, tiny_bert, training_args
    import transformers
    from traindyn.integrations.huggingface import TraindynCallback
    callback = TraindynCallback(probe_set(), sys.argv[1] + "/run", every=5)
    trainer = transformers.Trainer(model=tiny_bert(), args=training_args(sys.argv[1] + "/out"),
                                   train_dataset=TokenClasses(512, seed=1),
                                   callbacks=[callback, RaiseAt(12)])
    trainer.train()  # no `with callback:`: the process dies of the exception
"""


def test_a_failing_training_without_with_is_failed_when_the_process_exits(
    tmp_path: Path,
) -> None:
    code = textwrap.dedent(CHILD.format(tests=str(Path(__file__).parent)))
    result = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert result.returncode == 1 and "boom at step 12" in result.stderr
    run = td.open_run(tmp_path / "run")
    assert run.manifest.status == "failed"
    assert run.manifest.error == "the process exited before Tracker.close()"
    assert sorted(run.metrics["step"].unique()) == [0, 4, 5, 9, 10]


def test_a_still_open_run_refuses_a_second_training(tmp_path: Path) -> None:
    callback = TraindynCallback(probe_set(), tmp_path / "run", every=EVERY)
    trainer = transformers.Trainer(
        model=tiny_bert(),
        args=training_args(tmp_path / "out"),
        train_dataset=TokenClasses(512, seed=1),
        callbacks=[callback, RaiseAt(3)],
    )
    with pytest.raises(RuntimeError, match="boom at step 3"):
        trainer.train()  # not inside `with callback:`: the run stays open
    assert td.open_run(tmp_path / "run").manifest.status == "running"
    with pytest.raises(ConfigError, match=r"still open from an earlier trainer.train\(\)"):
        trainer.train()
    callback.close(status="failed", error="abandoned")
    run = td.open_run(tmp_path / "run")
    assert (run.manifest.status, run.manifest.error) == ("failed", "abandoned")
    assert sorted(run.metrics["step"].unique()) == [0]


def test_a_probe_the_model_rejects_fails_the_run_at_train_begin(tmp_path: Path) -> None:
    inputs, labels = probe_set()
    bad = ({**inputs, "input_ids": inputs["input_ids"] + 1000}, labels)  # beyond the vocabulary
    callback = TraindynCallback(bad, tmp_path / "run", every=EVERY)
    trainer = transformers.Trainer(
        model=tiny_bert(),
        args=training_args(tmp_path / "out"),
        train_dataset=TokenClasses(512, seed=1),
        callbacks=[callback],
    )
    with pytest.raises(IndexError, match="index out of range"):
        trainer.train()
    run = td.open_run(tmp_path / "run")
    assert run.manifest.status == "failed"
    assert run.manifest.error.startswith("IndexError: index out of range")
    assert run.metrics.empty


# ---------------------------------------------------------------------------- construction
def test_tracker_options_are_checked_when_the_callback_is_made(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="unknown Tracker option 'evry'; valid options: layers"):
        TraindynCallback(probe_set(), tmp_path / "run", evry=5)
    with pytest.raises(TypeError, match=r"does not take model= .* passes the model"):
        TraindynCallback(probe_set(), tmp_path / "run", model=tiny_bert())
    with pytest.raises(ConfigError, match=r"config\['huggingface'\] is written by"):
        TraindynCallback(probe_set(), tmp_path / "run", config={"huggingface": 1})
    callback = TraindynCallback(probe_set(), tmp_path / "run", layers="classifier")
    assert not (tmp_path / "run").exists()  # the constructor does no work
    with pytest.raises(ConfigError, match=r"callback\.tracker exists once training begins"):
        callback.tracker  # noqa: B018
