from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import traindyn as td
from traindyn.capture import LogSpaced, Tracker, TrackerWarning
from traindyn.exceptions import ConfigError, ProbeError
from traindyn.metrics import participation_ratio


def make_mlp(seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(10, 32),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Linear(32, 16),
        nn.BatchNorm1d(16),
        nn.ReLU(),
        nn.Linear(16, 3),
    )


@pytest.fixture(scope="module")
def data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 10, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    return x, y


def train(
    model: nn.Module, data: tuple[torch.Tensor, torch.Tensor], steps: int, tracker: Tracker | None
) -> None:
    x, y = data
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(123)  # dropout masks come from the global RNG
    for step in range(steps):
        idx = torch.randint(0, x.shape[0], (32,))
        logits = model(x[idx])
        loss = nn.functional.cross_entropy(logits, y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if tracker is not None:
            tracker.step(step, loss=loss, outputs=logits, targets=y[idx], lr=0.1)


def test_probe_tracking_is_bit_identical_to_untracked_training(
    tmp_path: Path, data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    plain, tracked = make_mlp(), make_mlp()
    train(plain, data, 30, None)
    with Tracker(tracked, probe=(data[0][:64], data[1][:64]), run=tmp_path / "r", every=1) as tr:
        train(tracked, data, 30, tr)
    for (name, a), b in zip(plain.state_dict().items(), tracked.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    assert tracked.training  # mode restored after every probe pass


def test_rows_for_every_layer_metric_and_sample(
    tmp_path: Path, data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    model = make_mlp()
    with Tracker(model, probe=(data[0][:64], data[1][:64]), run=tmp_path / "r", every=5) as tr:
        train(model, data, 21, tr)
    run = td.open_run(tmp_path / "r")
    assert run.is_finished
    m = run.metrics
    assert sorted(m["step"].unique()) == [0, 5, 10, 15, 20]
    assert list(dict.fromkeys(m["layer"])) == ["0", "3", "6"]
    assert set(m["metric"]) == set(td.metrics.DEFAULT_METRICS)
    assert len(m) == 5 * 3 * 5 and m["value"].map(math.isfinite).all()
    names = set(run.scalars["name"])
    assert {
        "loss",
        "lr",
        "batch_accuracy",
        "batch_confidence",
        "probe_accuracy",
        "probe_confidence",
        "probe_loss",
    } <= names
    assert run.scalars[run.scalars["name"] == "loss"]["step"].tolist() == list(range(21))
    assert run.manifest.config["tracker"]["layers"] == ["0", "3", "6"]


def test_recorded_values_equal_direct_computation(
    tmp_path: Path, data: tuple[torch.Tensor, torch.Tensor]
) -> None:
    model = make_mlp().eval()
    x, y = data[0][:50], data[1][:50]
    with Tracker(model, probe=(x, y), run=tmp_path / "r", every=1) as tr:
        tr.step(0)
    run = td.open_run(tmp_path / "r")
    hidden = model[0](x).detach()
    got = run.metrics.query("layer == '0' and metric == 'participation_ratio'")["value"].item()
    assert got == pytest.approx(participation_ratio(hidden.numpy()), rel=1e-9)
    logits = model(x).detach()
    acc = (logits.argmax(1) == y).double().mean().item()
    conf = torch.softmax(logits.double(), 1)[torch.arange(50), y].mean().item()
    scalars = run.scalars.set_index("name")["value"]
    assert scalars["probe_accuracy"] == pytest.approx(acc, abs=1e-12)
    assert scalars["probe_confidence"] == pytest.approx(conf, rel=1e-9)


def test_batch_mode_measures_the_training_batch(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 2))
    batches = [torch.randn(40, 6) for _ in range(4)]
    with Tracker(model, run=tmp_path / "r", mode="batch", every=2, layers="0") as tr:
        for step, xb in enumerate(batches):
            with tr.watch(step):
                model(xb)
            tr.step(step)
    m = td.open_run(tmp_path / "r").metrics.query("metric == 'participation_ratio'")
    assert m["step"].tolist() == [0, 2]
    expected = participation_ratio(model[0](batches[2]).detach().numpy())
    assert m["value"].iloc[1] == pytest.approx(expected, rel=1e-9)


def test_batch_mode_without_watch_warns_once(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 3))
    with Tracker(model, run=tmp_path / "r", mode="batch", every=1) as tr:
        with pytest.warns(TrackerWarning, match="tracker.watch"):
            tr.step(0)
        tr.step(1)  # no second warning (filterwarnings=error would fail here)


def test_failing_layer_records_nan_with_reason_and_warns_once(tmp_path: Path) -> None:
    class Blowup(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * float("nan")

    model = nn.Sequential(nn.Linear(4, 4), Blowup(), nn.Linear(4, 2))
    probe = torch.randn(16, 4)
    tr = Tracker(model, probe=probe, run=tmp_path / "r", every=1, layers=["0", "1"])
    with pytest.warns(TrackerWarning) as record:
        for step in range(5):
            tr.step(step)
            time.sleep(0.01)
        tr.close()
    m = td.open_run(tmp_path / "r").metrics
    bad = m[m["layer"] == "1"]
    assert bad["value"].isna().all() and bad["reason"].str.contains("finite").all()
    assert m[m["layer"] == "0"]["value"].notna().all()
    about_layer = [str(w.message) for w in record if "of layer '1'" in str(w.message)]
    assert len(about_layer) == 1  # one warning per cause, not per step or per metric
    assert all(m in about_layer[0] for m in td.metrics.DEFAULT_METRICS)


def test_exception_inside_selector_never_reaches_the_forward_pass(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))

    def broken(output: object) -> torch.Tensor:
        raise RuntimeError("selector bug")

    with (
        Tracker(
            model, probe=torch.randn(8, 4), run=tmp_path / "r", output_selector={"0": broken}
        ) as tr,
        pytest.warns(TrackerWarning, match="selector bug"),
    ):
        tr.step(0)
        tr.close()
    m = td.open_run(tmp_path / "r").metrics
    assert m[m["layer"] == "0"]["reason"].str.contains("selector bug").all()


class Block(nn.Module):
    """A Hugging Face style block: returns (hidden, attention weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out, w = self.attn(x, x, x)
        return x + out, w


class TupleModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self.lstm(x)
        for block in self.blocks:
            x, _ = block(x)
        return self.head(x.mean(1))


def test_tuple_outputs_lstm_attention_and_blocks(tmp_path: Path) -> None:
    model = TupleModel()
    with Tracker(
        model,
        probe=torch.randn(20, 5, 8),
        run=tmp_path / "r",
        layers=["lstm", "blocks.0", "blocks.1.attn", "head"],
    ) as tr:
        tr.step(0)
    m = td.open_run(tmp_path / "r").metrics
    assert m["value"].map(math.isfinite).all()
    assert set(m["layer"]) == {"lstm", "blocks.0", "blocks.1.attn", "head"}


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_model_is_measured(tmp_path: Path, dtype: torch.dtype) -> None:
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3)).to(dtype)
    probe = torch.randn(32, 6).to(dtype)
    with Tracker(model, probe=probe, run=tmp_path / "r") as tr:
        tr.step(0)
    m = td.open_run(tmp_path / "r").metrics
    assert m["value"].map(math.isfinite).all()
    hidden = model[0](probe).detach().float().numpy()  # what the hook upcasts to
    got = m.query("layer == '0' and metric == 'participation_ratio'")["value"].item()
    assert got == pytest.approx(participation_ratio(hidden), rel=1e-6)


def test_conv1d_is_measured_over_channels(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Conv1d(2, 6, 5), nn.ReLU(), nn.Flatten(), nn.Linear(6 * 36, 2))
    probe = torch.randn(30, 2, 40)
    with Tracker(model, probe=probe, run=tmp_path / "r", layers="0") as tr:
        tr.step(0)
    got = (
        td.open_run(tmp_path / "r").metrics.query("metric == 'participation_ratio'")["value"].item()
    )
    channels = model[0](probe).detach().mean(dim=2)  # (N, C): mean over length
    assert got == pytest.approx(participation_ratio(channels.numpy()), rel=1e-9)
    assert (
        td.open_run(tmp_path / "r").manifest.config["tracker"]["layouts"]["0"] == "channels_first"
    )


def test_every_transformer_layer_yields_a_row_at_every_sample(tmp_path: Path) -> None:
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.1, batch_first=True)
    model = nn.TransformerEncoder(layer, num_layers=4, enable_nested_tensor=False)
    probe = torch.randn(24, 6, 16)
    with Tracker(
        model, probe=probe, run=tmp_path / "r", every=1, metrics=["participation_ratio"]
    ) as tr:
        for step in range(6):
            tr.step(step)
    m = td.open_run(tmp_path / "r").metrics
    counts = m.groupby("layer")["step"].nunique()
    assert counts.to_dict() == {f"layers.{i}": 6 for i in range(4)}
    assert m["value"].map(math.isfinite).all()


def test_frozen_model_gives_a_constant_series(tmp_path: Path) -> None:
    model = make_mlp()
    probe = torch.randn(64, 10)
    with Tracker(model, probe=probe, run=tmp_path / "r", every=5) as tr:
        for step in range(2000):
            tr.step(step, loss=1.0)
    m = td.open_run(tmp_path / "r").metrics
    assert m["step"].nunique() == 400
    spread = m.groupby(["layer", "metric"])["value"].agg(lambda v: v.max() - v.min())
    assert (spread == 0).all()


def test_layer_names_with_slash_and_dot_round_trip(tmp_path: Path) -> None:
    inner = nn.Module()
    inner.add_module("proj/in", nn.Linear(3, 5))
    model = nn.Sequential()
    model.add_module("enc", inner)
    model.add_module("out", nn.Linear(5, 2))
    model.forward = lambda x: model.out(getattr(inner, "proj/in")(x))  # type: ignore[method-assign]
    with Tracker(model, probe=torch.randn(10, 3), run=tmp_path / "r", layers=["enc.proj/in"]) as tr:
        tr.step(0)
    assert set(td.open_run(tmp_path / "r").metrics["layer"]) == {"enc.proj/in"}


def test_backpressure_blocks_instead_of_dropping(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import traindyn.capture.tracker as tracker_module

    real = tracker_module.measure

    def slow(*args: object, **kwargs: object) -> object:
        time.sleep(0.05)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(tracker_module, "measure", slow)
    model = nn.Sequential(nn.Linear(3, 4))
    start = time.perf_counter()
    with Tracker(model, probe=torch.randn(8, 3), run=tmp_path / "r", every=1, queue_size=1) as tr:
        for step in range(10):
            tr.step(step)
        submitted = time.perf_counter() - start
    assert submitted > 0.3  # the training thread waited for the worker
    assert td.open_run(tmp_path / "r").metrics["step"].nunique() == 10


def test_state_dict_resume_continues_without_duplicates(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 4))
    probe = torch.randn(8, 3)
    tr = Tracker(model, probe=probe, run=tmp_path / "r", every=2)
    for step in range(7):
        tr.step(step)
    state = tr.state_dict()
    tr.close()
    resumed = Tracker(model, probe=probe, run=tmp_path / "r", every=2, resume=True)
    resumed.load_state_dict(state)
    for step in range(5, 11):  # replays steps 5 and 6
        resumed.step(step)
    resumed.close()
    steps = td.open_run(tmp_path / "r").metrics.groupby("step").size()
    assert steps.index.tolist() == [0, 2, 4, 6, 8, 10]
    assert (steps == 5).all()


def test_log_spaced_schedule_and_checkpoints(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 4))
    with Tracker(
        model,
        probe=torch.randn(8, 3),
        run=tmp_path / "r",
        every=LogSpaced(per_decade=2),
        checkpoint_every=[0, 50],
    ) as tr:
        for step in range(60):
            tr.step(step)
    run = td.open_run(tmp_path / "r")
    assert sorted(run.metrics["step"].unique()) == [0, 1, 3, 10, 32]
    assert (tmp_path / "r" / "checkpoints" / "step-50.safetensors").exists()


def test_failed_training_marks_the_run_failed(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(3, 4))
    with (
        pytest.raises(RuntimeError, match="diverged"),
        Tracker(model, probe=torch.randn(8, 3), run=tmp_path / "r") as tr,
    ):
        tr.step(0)
        raise RuntimeError("diverged")
    run = td.open_run(tmp_path / "r")
    assert run.status == "failed" and "diverged" in (run.manifest.error or "")
    assert run.metrics["step"].tolist()  # rows recorded before the failure are kept


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "online"}, ConfigError, "mode must be one of"),
        ({"reduce": "max"}, ConfigError, "reduce must be one of"),
        ({"metrics": ["participation_ration"]}, ConfigError, "participation_ratio"),
        ({"every": 0}, ConfigError, "every must be >= 1"),
        ({"probe": None}, ConfigError, "probe must be given"),
        ({"flush_interval": -1}, ConfigError, "flush_interval"),
    ],
)
def test_bad_arguments_are_named(tmp_path: Path, kwargs: dict, error: type, match: str) -> None:
    args = {"probe": torch.randn(4, 3), "run": tmp_path / "r"} | kwargs
    with pytest.raises(error, match=match):
        Tracker(nn.Linear(3, 3), **args)


@pytest.mark.parametrize(
    ("probe", "match"),
    [
        (torch.randn(1, 3), "at least 2 samples"),
        (torch.full((4, 3), float("nan")), "finite"),
        ((torch.randn(4, 3), torch.zeros(5, dtype=torch.long)), "one target per sample"),
        ((torch.randn(4, 3), torch.zeros(4)), "integer class indices"),
        ([1, 2, 3], "tensor or a mapping"),
    ],
)
def test_bad_probes_are_rejected(tmp_path: Path, probe: object, match: str) -> None:
    tracker = Tracker(nn.Linear(3, 3), probe=probe, run=tmp_path / "r")
    with pytest.raises(ProbeError, match=match):
        tracker.step(0)


def test_import_traindyn_loads_no_plotting_library() -> None:
    code = (
        "import sys, traindyn; print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in {'matplotlib', 'plotly', 'seaborn'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


CHILD = textwrap.dedent(
    """
    import sys, time, torch
    from torch import nn
    from traindyn import Tracker
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    tracker = Tracker(model, probe=torch.randn(32, 8), run=sys.argv[1], every=1, flush_interval=0.5)
    step = 0
    while True:
        tracker.step(step, loss=float(step))
        print(step, time.time(), flush=True)
        step += 1
        time.sleep(0.01)
    """
)


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
def test_sigkill_keeps_every_row_older_than_the_flush_interval(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "r")], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    lines = []
    deadline = time.time() + 60
    while time.time() < deadline:
        line = proc.stdout.readline()
        lines.append(line.split())
        if len(lines) > 5 and float(lines[-1][1]) - float(lines[0][1]) > 2.5:
            break
    proc.send_signal(signal.SIGKILL)
    killed_at = time.time()
    proc.wait()
    proc.stdout.close()
    reported = {int(s): float(t) for s, t in lines}
    old = [s for s, t in reported.items() if t < killed_at - 0.5 - 0.25]  # interval + margin
    assert len(old) > 20
    run = td.open_run(tmp_path / "r")
    assert not run.is_finished
    assert set(old) <= set(run.scalars.query("name == 'loss'")["step"])
    assert set(old) <= set(run.metrics["step"])
    assert np.isfinite(run.metrics["value"]).all()
