"""TensorBoard and W&B mirrors, and replay: what each tool holds equals what the run holds.

One real Tracker run on a tiny MLP feeds both mirrors at once; the TensorBoard event files
(read with TensorBoard's EventAccumulator) and the offline W&B transaction log (read with
W&B's own protobuf schema) are then compared value by value with ``open_run(run)``.
"""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import traindyn as td
from traindyn.exceptions import ConfigError, TrackerWarning
from traindyn.integrations.replay import mirror_tag, mirror_values, replay, split_key
from traindyn.integrations.tensorboard import TensorBoardMirror
from traindyn.integrations.wandb import WandbMirror, wandb_key

pytest.importorskip("tensorboard")
wandb = pytest.importorskip("wandb")
from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)
from torch.utils.tensorboard import SummaryWriter  # noqa: E402
from wandb.proto import wandb_internal_pb2  # noqa: E402

Points = dict[str, list[tuple[int, float]]]


# ---------------------------------------------------------------------------- helpers
def expected_points(run: Path, *, tag: Any = mirror_tag) -> Points:
    """Every non-NaN value of a stored run under its mirror tag, in step order."""
    points: defaultdict[str, list[tuple[int, float]]] = defaultdict(list)
    opened = td.open_run(run)
    for row in opened.metrics.itertuples():
        if not math.isnan(row.value):
            points[tag(f"{row.layer}/{row.metric}")].append((int(row.step), float(row.value)))
    for row in opened.scalars.itertuples():
        if not math.isnan(row.value):
            points[tag(str(row.name))].append((int(row.step), row.value))
    return {key: sorted(p) for key, p in points.items()}


def tensorboard_points(log_dir: Path) -> Points:
    """Every scalar in the event files of ``log_dir``, per tag, in file order."""
    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})  # 0: keep every event
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def as_float32(points: Points) -> Points:
    """TensorBoard stores scalars as float32."""
    return {tag: [(s, float(np.float32(v))) for s, v in p] for tag, p in points.items()}


_WANDB_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)  # ident, magic, version 0
_BLOCK = 32768


def wandb_records(path: Path) -> list[Any]:
    """Records of a W&B transaction log (``run-<id>.wandb``).

    wandb >= 0.20 dropped its Python reader (the Go core writes the file), so this reads
    the documented-by-code layout: a 7-byte header, then LevelDB log blocks of 32 KiB whose
    chunks (crc32, length, type) carry ``wandb_internal_pb2.Record`` protobufs.
    """
    data = path.read_bytes()
    assert data[:7] == _WANDB_HEADER, f"{path} is not a W&B transaction log"
    records, pos, pending = [], 7, b""
    while pos + 7 <= len(data):
        left = _BLOCK - pos % _BLOCK
        crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if left < 7 or (kind == 0 and length == 0):  # block trailer padding
            pos += left
            continue
        chunk = data[pos + 7 : pos + 7 + length]
        assert zlib.crc32(chunk, zlib.crc32(bytes([kind]))) == crc, f"bad chunk at {pos}"
        pending += chunk
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST chunk: a record is complete
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


def wandb_log(run_dir: Path, *, timeout: float = 20.0) -> list[Any]:
    """The records of the offline run in ``run_dir``, once its exit record is on disk."""
    # run.finish() returns before wandb-core has written everything; teardown waits for it
    wandb.teardown()
    (path,) = run_dir.glob("run-*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        records = wandb_records(path)
        if any(r.WhichOneof("record_type") == "exit" for r in records):
            return records
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} has no exit record after {timeout} s")
        time.sleep(0.05)


def _items(items: Any) -> dict[str, Any]:
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in items}


def wandb_history(records: list[Any]) -> list[dict[str, Any]]:
    return [_items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]


def wandb_summary(records: list[Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for r in records:
        if r.WhichOneof("record_type") == "summary":
            summary.update(_items(r.summary.update))
    return summary


def wandb_points(history: list[dict[str, Any]], *, step_key: str = "traindyn/step") -> Points:
    points: defaultdict[str, list[tuple[int, float]]] = defaultdict(list)
    for row in history:
        for key, value in row.items():
            if key != step_key and not key.startswith("_"):
                points[key].append((row[step_key], value))
    return {tag: sorted(p) for tag, p in points.items()}


def wandb_x_axes(records: list[Any]) -> dict[str, str]:
    """``define_metric`` calls: metric name -> its step metric ("" for none)."""
    metrics = [r.metric for r in records if r.WhichOneof("record_type") == "metric"]
    assert not any(m.glob_name for m in metrics)
    return {m.name: m.step_metric for m in metrics}


def wandb_settings() -> Any:
    # no console capture (pytest owns stdout) and no system-metrics process: quicker
    return wandb.Settings(console="off", x_disable_stats=True, silent=True)


class Recorder:
    """A Mirror that remembers every call."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[tuple[int, dict[str, float]]] = []
        self.closed = 0
        self.fail_at = fail_at

    def log(self, step: int, values: Mapping[str, float]) -> None:
        if step == self.fail_at:
            raise RuntimeError("disk full")
        self.calls.append((step, dict(values)))

    def close(self) -> None:
        self.closed += 1


class FakeWriter:
    """Stands in for a user's SummaryWriter, to see which of flush/close is called."""

    log_dir = "fake"

    def __init__(self) -> None:
        self.scalars: list[tuple[str, float, int]] = []
        self.flushed = self.closed = 0

    def add_scalar(self, tag: str, value: float, global_step: int) -> None:
        self.scalars.append((tag, value, global_step))

    def flush(self) -> None:
        self.flushed += 1

    def close(self) -> None:
        self.closed += 1


# ---------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def wandb_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Offline, silent W&B whose own logs, cache and config stay in a temporary folder."""
    home = tmp_path_factory.mktemp("wandb-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        for var in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
            mp.setenv(var, str(home / var.lower()))
        yield home
        wandb.teardown()


@dataclass
class Tracked:
    run: Path
    tb_dir: Path
    wandb: WandbMirror
    wandb_dir: Path


@pytest.fixture(scope="module")
def tracked(tmp_path_factory: pytest.TempPathFactory, wandb_env: Path) -> Tracked:
    """A tiny MLP trained 25 steps, tracked with both mirrors attached."""
    root = tmp_path_factory.mktemp("mirrors")
    torch.manual_seed(0)
    x = torch.randn(256, 8)
    y = (x[:, 0] + x[:, 1] > 0).long()
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    tb = TensorBoardMirror(root / "tb")
    wb = WandbMirror(project="traindyn-tests", dir=root / "wb", settings=wandb_settings())
    # mle_dimension needs > 20 probe samples: with 16 it is NaN (with a reason) every time,
    # which the mirrors must skip
    metrics = ("participation_ratio", "effective_rank", "mle_dimension")
    tracker = td.Tracker(
        model, probe=(x[:16], y[:16]), run=root / "run", every=4, metrics=metrics, mirrors=[tb, wb]
    )
    with pytest.warns(TrackerWarning, match="mle_dimension"), tracker:
        for step in range(25):
            idx = torch.randint(0, 256, (32,))
            logits = model(x[idx])
            loss = nn.functional.cross_entropy(logits, y[idx])
            optimizer.zero_grad()
            loss.backward()
            tracker.step(step, loss=loss, lr=0.1, outputs=logits, targets=y[idx])
            optimizer.step()
    assert wb.run_ is not None
    return Tracked(root / "run", root / "tb", wb, Path(wb.run_.settings.sync_dir))


# ---------------------------------------------------------------------------- keys
def test_split_key_uses_the_metric_registry() -> None:
    assert split_key("encoder.0/attn/effective_rank") == ("encoder.0/attn", "effective_rank")
    assert split_key("(model)/stable_rank") == ("(model)", "stable_rank")
    assert split_key("train/loss") is None  # a user's scalar with a slash stays a scalar
    assert split_key("effective_rank") is None  # a scalar that happens to be a metric name
    assert split_key("/effective_rank") is None


@pytest.mark.parametrize(
    ("key", "prefix", "tag"),
    [
        ("fc1/participation_ratio", "traindyn", "traindyn/participation_ratio/fc1"),
        ("enc/0/twonn_dimension", "td/seed1", "td/seed1/twonn_dimension/enc/0"),
        ("probe_accuracy", "traindyn", "traindyn/scalars/probe_accuracy"),
        ("train/loss", "traindyn", "traindyn/scalars/train/loss"),
        ("fc1/energy_rank", "", "energy_rank/fc1"),
        ("lr", "", "scalars/lr"),
    ],
)
def test_mirror_tag(key: str, prefix: str, tag: str) -> None:
    assert mirror_tag(key, prefix=prefix) == tag


# ---------------------------------------------------------------------------- TensorBoard
def test_tensorboard_holds_every_recorded_value(tracked: Tracked) -> None:
    expected = expected_points(tracked.run)
    got = tensorboard_points(tracked.tb_dir)
    assert set(got) == set(expected)
    assert got == as_float32(expected)  # steps in order within each tag, values as float32
    # the run recorded NaN for mle_dimension; TensorBoard has no such tag at all
    metrics = td.open_run(tracked.run).metrics
    assert metrics.query("metric == 'mle_dimension'")["value"].isna().all()
    assert "traindyn/mle_dimension/0" not in got
    assert {"traindyn/participation_ratio/0", "traindyn/scalars/loss"} <= set(got)
    assert len(got["traindyn/participation_ratio/2"]) == 7  # steps 0, 4, ..., 24


def test_tensorboard_keeps_out_of_order_steps_across_tags(tmp_path: Path) -> None:
    mirror = TensorBoardMirror(tmp_path)
    mirror.log(10, {"loss": 1.0})  # training scalars run ahead of the worker...
    mirror.log(11, {"loss": 0.5})
    mirror.log(8, {"fc/effective_rank": 3.0, "probe_accuracy": 0.25})  # ...then a sample
    mirror.log(12, {"loss": 0.25, "fc/stable_rank": math.nan, "fc/energy_rank": math.inf})
    mirror.close()
    assert tensorboard_points(tmp_path) == {
        "traindyn/scalars/loss": [(10, 1.0), (11, 0.5), (12, 0.25)],
        "traindyn/effective_rank/fc": [(8, 3.0)],
        "traindyn/scalars/probe_accuracy": [(8, 0.25)],
        "traindyn/energy_rank/fc": [(12, math.inf)],  # infinities are written, NaN is not
    }
    assert mirror.tags_ == sorted(tensorboard_points(tmp_path))
    with pytest.raises(ConfigError, match="closed"):
        mirror.log(13, {"loss": 0.1})
    mirror.close()  # a second close is a no-op


def test_tensorboard_users_writer_is_flushed_not_closed(tmp_path: Path) -> None:
    writer = SummaryWriter(str(tmp_path), flush_secs=3600)
    mirror = TensorBoardMirror(writer=writer, prefix="")
    mirror.log(3, {"fc/effective_rank": 2.0})
    mirror.close()
    assert tensorboard_points(tmp_path) == {"effective_rank/fc": [(3, 2.0)]}  # flushed
    writer.add_scalar("mine", 1.0, 4)  # still open: the user goes on writing
    writer.close()
    assert tensorboard_points(tmp_path) == {"effective_rank/fc": [(3, 2.0)], "mine": [(4, 1.0)]}

    fake = FakeWriter()
    mirror = TensorBoardMirror(writer=fake)  # type: ignore[arg-type]
    mirror.log(1, {"loss": 0.5})
    mirror.close()
    assert (fake.scalars, fake.flushed, fake.closed) == ([("traindyn/scalars/loss", 0.5, 1)], 1, 0)


def test_tensorboard_own_writer_is_created_lazily_and_closed(tmp_path: Path) -> None:
    unused = TensorBoardMirror(tmp_path / "unused")
    unused.close()
    assert not (tmp_path / "unused").exists()  # no empty event file for a silent mirror
    mirror = TensorBoardMirror(tmp_path / "tb")
    writer = mirror.start()
    assert mirror.start() is writer and Path(writer.log_dir) == tmp_path / "tb"
    mirror.close()
    assert writer.all_writers is None  # SummaryWriter.close() drops its file writers


def test_tensorboard_concurrent_logs_are_all_written(tmp_path: Path) -> None:
    mirror = TensorBoardMirror(tmp_path)

    def work(name: str) -> None:
        for step in range(50):
            mirror.log(step, {name: float(step)})

    threads = [threading.Thread(target=work, args=(f"s{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    mirror.close()
    got = tensorboard_points(tmp_path)
    assert got == {f"traindyn/scalars/s{i}": [(s, float(s)) for s in range(50)] for i in range(4)}


def test_tensorboard_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not both"):
        TensorBoardMirror(tmp_path, writer=FakeWriter())  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="prefix must be a string"):
        TensorBoardMirror(tmp_path, prefix="traindyn/")


def test_tensorboard_missing_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import -> ImportError
    with pytest.raises(ImportError, match=r"pip install traindyn\[tensorboard\]"):
        TensorBoardMirror(tmp_path)


# ---------------------------------------------------------------------------- W&B
def test_wandb_history_holds_every_recorded_value(tracked: Tracked) -> None:
    records = wandb_log(tracked.wandb_dir)
    history = wandb_history(records)
    assert all("traindyn/step" in row for row in history)
    assert [row["_step"] for row in history] == list(range(len(history)))  # W&B's own counter
    expected = expected_points(tracked.run, tag=wandb_key)
    assert wandb_points(history) == expected  # float64 values round-trip exactly
    assert not any("mle_dimension" in key for row in history for key in row)  # NaN not sent
    # the summary holds each key's value at its last step
    summary = wandb_summary(records)
    for tag, points in expected.items():
        assert summary[tag] == points[-1][1], tag
    # every key is charted against the traindyn step, by its own definition
    assert wandb_x_axes(records) == dict.fromkeys(expected, "traindyn/step") | {"traindyn/step": ""}
    assert tracked.wandb.owns_run_


def test_wandb_logs_out_of_order_steps(wandb_env: Path, tmp_path: Path) -> None:
    mirror = WandbMirror(project="traindyn-tests", dir=tmp_path, settings=wandb_settings())
    mirror.log(10, {"loss": 1.0})
    mirror.log(8, {"enc.0/effective_rank": 3.0, "fc/stable_rank": math.nan})
    mirror.log(9, {"fc/stable_rank": math.nan})  # nothing left to send: no row
    mirror.log(11, {"loss": 0.5})
    assert mirror.run_ is not None
    run_dir = Path(mirror.run_.settings.sync_dir)
    mirror.close()
    records = wandb_log(run_dir)
    rows = [
        {k: v for k, v in row.items() if not k.startswith("_") or k == "_step"}
        for row in wandb_history(records)
    ]
    assert rows == [
        {"traindyn/step": 10, "traindyn/scalars/loss": 1.0, "_step": 0},
        {"traindyn/step": 8, "traindyn/effective_rank/enc/0": 3.0, "_step": 1},  # no dots
        {"traindyn/step": 11, "traindyn/scalars/loss": 0.5, "_step": 2},
    ]
    summary = wandb_summary(records)
    assert summary["traindyn/scalars/loss"] == 0.5
    assert "traindyn/stable_rank/fc" not in summary
    assert wandb_x_axes(records) == {
        "traindyn/step": "",
        "traindyn/scalars/loss": "traindyn/step",
        "traindyn/effective_rank/enc/0": "traindyn/step",
    }


@pytest.mark.parametrize("how", ["run=", "active wandb.run", "wandb.init returns it"])
def test_wandb_users_run_is_left_open(wandb_env: Path, tmp_path: Path, how: str) -> None:
    run = wandb.init(project="mine", dir=tmp_path, settings=wandb_settings())
    try:
        if how == "run=":
            mirror = WandbMirror(run)
        elif how == "active wandb.run":
            mirror = WandbMirror()
        else:  # options for a new run: wandb.init, whose reinit="return_previous" default
            mirror = WandbMirror(project="other", dir=tmp_path, settings=wandb_settings())
        mirror.log(2, {"loss": 0.75})
        mirror.close()
        assert mirror.run_ is run and not mirror.owns_run_
        assert wandb.run is run  # not finished: the user keeps logging
        run.log({"mine": 1.0})
    finally:
        run.finish()
    rows = wandb_history(wandb_log(Path(run.settings.sync_dir)))
    assert [row.get("traindyn/scalars/loss") for row in rows] == [0.75, None]
    assert rows[1]["mine"] == 1.0


def test_wandb_unused_mirror_starts_no_run(wandb_env: Path, tmp_path: Path) -> None:
    mirror = WandbMirror(dir=tmp_path / "wb")
    mirror.close()
    assert mirror.run_ is None and not (tmp_path / "wb").exists()
    with pytest.raises(ConfigError, match="closed"):
        mirror.log(0, {"loss": 1.0})


def test_wandb_bad_arguments() -> None:
    run: Any = object()
    with pytest.raises(ConfigError, match=r"run= and options for a new run \(name, project\)"):
        WandbMirror(run, project="p", name="x")
    with pytest.raises(ConfigError, match="mode must be one of 'offline', 'online'"):
        WandbMirror(mode="dryrun")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"run= and options for a new run \(mode\)"):
        WandbMirror(run, mode="online")
    with pytest.raises(ConfigError, match="non-empty"):
        WandbMirror(prefix="")
    with pytest.raises(ConfigError, match=r"must not contain '\.'"):
        WandbMirror(prefix="traindyn.v2")


def test_wandb_missing_package_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "wandb", None)
    with pytest.raises(ImportError, match=r"pip install traindyn\[wandb\]"):
        WandbMirror()


# ---------------------------------------------------------------------------- replay
@pytest.mark.parametrize("as_run", [False, True], ids=["path", "Run"])
def test_replay_sends_every_step_in_order(tracked: Tracked, as_run: bool) -> None:
    recorder = Recorder()
    source = td.open_run(tracked.run) if as_run else tracked.run
    n = replay(source, recorder)
    steps = [step for step, _ in recorder.calls]
    assert n == len(steps) == 25 and steps == sorted(set(steps))  # one call per step
    assert recorder.closed == 1
    opened = td.open_run(tracked.run)
    sent = {(step, key): v for step, values in recorder.calls for key, v in values.items()}
    stored = {(r.step, f"{r.layer}/{r.metric}"): r.value for r in opened.metrics.itertuples()}
    stored |= {(r.step, r.name): r.value for r in opened.scalars.itertuples()}
    assert sent.keys() == stored.keys()
    for key, value in stored.items():  # NaN is sent as NaN: the mirror decides
        assert value == sent[key] or (math.isnan(value) and math.isnan(sent[key])), key
    assert [s for s, _ in mirror_values(tracked.run)] == steps


def test_replay_into_tensorboard_matches_the_live_mirror(tracked: Tracked, tmp_path: Path) -> None:
    replay(tracked.run, TensorBoardMirror(tmp_path))
    assert tensorboard_points(tmp_path) == tensorboard_points(tracked.tb_dir)


def test_replay_closes_the_mirror_when_log_fails(tracked: Tracked) -> None:
    recorder = Recorder(fail_at=8)
    with pytest.raises(RuntimeError, match="disk full"):
        replay(tracked.run, recorder)
    assert [step for step, _ in recorder.calls] == list(range(8))  # steps before the failure
    assert recorder.closed == 1


# ---------------------------------------------------------------------------- imports
def test_importing_the_mirrors_imports_neither_framework() -> None:
    code = (
        "import sys, traindyn, traindyn.integrations as ti\n"
        "import traindyn.integrations.replay, traindyn.integrations.tensorboard as tb\n"
        "import traindyn.integrations.wandb as wb\n"
        "assert ti.TensorBoardMirror is tb.TensorBoardMirror\n"
        "assert ti.WandbMirror is wb.WandbMirror\n"
        "loaded = {'tensorboard', 'torch.utils.tensorboard', 'wandb'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
