"""Regression tests: cases where a tracker must keep recording, or fail clearly."""

from __future__ import annotations

import math
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import traindyn as td
from traindyn.capture import Tracker, TrackerWarning
from traindyn.exceptions import ConfigError
from traindyn.report.figures import heatmap


def run_child(tmp_path: Path, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "r"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


SIGNALLED = """
    import os, signal, sys, torch
    from torch import nn
    from traindyn import Tracker
    graceful = sys.argv[2] == "graceful"
    stop = []
    if graceful:
        signal.signal(signal.SIGTERM, lambda *a: stop.append(True))
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    with Tracker(model, probe=torch.randn(16, 4), run=sys.argv[1], every=3) as tracker:
        for step in range(1000):
            tracker.step(step, loss=float(step))
            if step == 30:
                os.kill(os.getpid(), signal.SIGTERM)
            if stop:
                print("graceful stop at", step)
                break
"""


def test_sigterm_drains_the_tracker_and_exits_143(tmp_path: Path) -> None:
    result = run_child(tmp_path, SIGNALLED, "default")
    assert result.returncode == 128 + signal.SIGTERM, result.stderr
    run = td.open_run(tmp_path / "r")
    assert run.status == "failed"
    assert run.manifest.error == "interrupted by SIGTERM"
    assert run.scalars["step"].max() == 30  # nothing recorded before the signal was lost
    assert run.metrics["step"].max() == 30


def test_a_users_graceful_sigterm_handler_keeps_the_run_open(tmp_path: Path) -> None:
    result = run_child(tmp_path, SIGNALLED, "graceful")
    assert result.returncode == 0, result.stderr
    assert "graceful stop at 30" in result.stdout
    run = td.open_run(tmp_path / "r")
    assert run.is_finished
    assert run.scalars["step"].max() == 30


PAUSED = """
    import sys, time, torch
    from torch import nn
    from traindyn import Tracker
    model = nn.Sequential(nn.Linear(4, 2))
    tracker = Tracker(model, probe=torch.randn(8, 4), run=sys.argv[1], every=100,
                      flush_interval=0.4)
    for step in range(10):
        tracker.step(step, loss=float(step))
    print("paused", flush=True)
    time.sleep(60)  # evaluation, a debugger...: no step() calls
"""


def test_scalars_reach_disk_while_training_pauses(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(textwrap.dedent(PAUSED))
    with subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "r")], stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "paused"
        time.sleep(1.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert td.open_run(tmp_path / "r").scalars["step"].tolist() == list(range(10))


def test_in_place_tensor_scalars_are_recorded_at_their_value_then(tmp_path: Path) -> None:
    lr = torch.tensor(0.1, dtype=torch.float64)
    with Tracker(nn.Linear(2, 2), probe=torch.randn(4, 2), run=tmp_path / "r", every=100) as tr:
        for step in range(4):
            tr.step(step, lr=lr)
            lr.mul_(0.5)  # what a scheduler does to an optimizer's tensor lr
    recorded = td.open_run(tmp_path / "r").scalars.query("name == 'lr'")["value"].tolist()
    assert recorded == [0.1 * 0.5**k for k in range(4)]


class Blowup(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * float("nan")


def test_close_finishes_the_run_even_when_warnings_are_errors(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 3), Blowup())
    tr = Tracker(model, probe=torch.randn(8, 3), run=tmp_path / "r", layers=["1"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(TrackerWarning):
            tr.step(0)
            tr.close()
    assert td.open_run(tmp_path / "r").is_finished


def test_a_bare_linear_model_is_tracked_as_model(tmp_path: Path) -> None:
    with Tracker(nn.Linear(5, 4), probe=torch.randn(10, 5), run=tmp_path / "r") as tr:
        tr.step(0)
    assert set(td.open_run(tmp_path / "r").metrics["layer"]) == {"(model)"}


def test_one_broken_layer_costs_only_its_own_rows(tmp_path: Path) -> None:
    class Scalar(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.sum()

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.total = Scalar()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            self.total(x)
            return self.fc(x)

    model = Net()
    tr = Tracker(
        model,
        probe=torch.randn(12, 4),
        run=tmp_path / "r",
        layers=["fc", "total"],
        probe_batch_size=5,
    )
    with pytest.warns(TrackerWarning, match="total"):
        tr.step(0)
        tr.close()
    m = td.open_run(tmp_path / "r").metrics
    assert m.query("layer == 'fc'")["value"].map(math.isfinite).all()
    assert m.query("layer == 'total'")["value"].isna().all()


def test_nested_tensor_outputs_get_a_reason_not_a_crash(tmp_path: Path) -> None:
    class Padded(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, 2)  # nested tensors enabled
            self.head = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            mask = torch.zeros(x.shape[:2], dtype=torch.bool)
            mask[:, -2:] = True  # padding
            return self.head(self.encoder(x, src_key_padding_mask=mask).mean(1))

    model = Padded()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's own nested-tensor notice
        tr = Tracker(
            model,
            probe=torch.randn(6, 5, 8),
            run=tmp_path / "r",
            layers=["encoder.layers.0", "head"],
        )
        tr.step(0)
        tr.close()
    m = td.open_run(tmp_path / "r").metrics
    assert m.query("layer == 'head'")["value"].map(math.isfinite).all()
    layer0 = m.query("layer == 'encoder.layers.0'")
    assert layer0["value"].isna().all()
    assert layer0["reason"].str.contains("enable_nested_tensor=False").all()


def test_sequence_first_modules_are_not_measured_over_the_wrong_axis(tmp_path: Path) -> None:
    lstm = nn.LSTM(4, 6)  # batch_first=False: outputs (T, N, D)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = lstm

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out, _ = self.lstm(x.transpose(0, 1))
            return out

    tr = Tracker(Net(), probe=torch.randn(20, 5, 4), run=tmp_path / "r", layers="lstm")
    with pytest.warns(TrackerWarning, match="batch_first=True"):
        tr.step(0)
        tr.close()
    assert td.open_run(tmp_path / "r").metrics["value"].isna().all()


def test_resume_from_an_older_checkpoint_replaces_replayed_steps(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 4))
    probe = torch.randn(8, 3)
    first = Tracker(model, probe=probe, run=tmp_path / "r", every=5)
    for step in range(10):
        first.step(step, loss=1.0)
        if step == 5:
            state = first.state_dict()  # saved with the step-5 checkpoint
    first.close(status="failed", error="killed")
    with torch.no_grad():
        model[0].weight.mul_(2.0)  # the replayed trajectory differs
    second = Tracker(model, probe=probe, run=tmp_path / "r", every=5, resume=True)
    second.load_state_dict(state)
    for step in range(6, 16):
        second.step(step, loss=2.0)
    second.close()
    run = td.open_run(tmp_path / "r")
    assert not run.metrics.duplicated(["step", "layer", "metric"]).any()
    loss = run.scalars.query("name == 'loss'").set_index("step")["value"]
    assert loss.index.tolist() == list(range(16))
    assert (loss.loc[6:] == 2.0).all()
    heatmap(run.metrics, "participation_ratio", path=tmp_path / "h.png")
    runs = td.open_runs(tmp_path)
    assert len(runs.metrics) == len(run.metrics)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"phase": "warmup"}, "scalar 'phase' must be a real number"),
        ({"loss": torch.ones(3)}, "one-element tensor"),
        ({"outputs": torch.randn(4, 3), "targets": torch.tensor([0, 1, 5, 2])}, "below 3"),
    ],
)
def test_bad_scalars_fail_at_the_call(tmp_path: Path, kwargs: dict, match: str) -> None:
    with Tracker(nn.Linear(2, 2), probe=torch.randn(4, 2), run=tmp_path / "r", every=100) as tr:
        with pytest.raises(ConfigError, match=match):
            tr.step(0, **kwargs)
        tr.step(1, loss=1.0)  # the tracker still works
    assert td.open_run(tmp_path / "r").is_finished


def test_decreasing_steps_are_refused(tmp_path: Path) -> None:
    with Tracker(nn.Linear(2, 2), probe=torch.randn(4, 2), run=tmp_path / "r") as tr:
        tr.step(7)
        with pytest.raises(ConfigError, match="step must not decrease; got 0 after 7"):
            tr.step(0)


def test_binary_logits_and_dict_outputs_give_accuracy(tmp_path: Path) -> None:
    class Binary(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 1)

        def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
            return {"logits": self.fc(x)}

    torch.manual_seed(0)
    model = Binary()
    x, y = torch.randn(32, 3), torch.randint(0, 2, (32,))
    with Tracker(model, probe=(x, y), run=tmp_path / "r", layers="fc") as tr:
        logits = model(x)["logits"]
        tr.step(0, outputs=logits, targets=y)
    scalars = td.open_run(tmp_path / "r").scalars.set_index("name")["value"]
    p = torch.sigmoid(logits.detach().double().squeeze(1))
    expected_acc = ((p > 0.5).long() == y).double().mean().item()
    expected_conf = torch.where(y == 1, p, 1 - p).mean().item()
    for prefix in ("batch", "probe"):
        assert scalars[f"{prefix}_accuracy"] == pytest.approx(expected_acc)
        assert scalars[f"{prefix}_confidence"] == pytest.approx(expected_conf)


def test_bad_layouts_are_refused_at_construction(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"layouts\['0'\] must be one of"):
        Tracker(
            nn.Sequential(nn.Linear(2, 2)),
            probe=torch.randn(4, 2),
            run=tmp_path / "r",
            layouts={"0": "NCHW"},
        )  # type: ignore[dict-item]
