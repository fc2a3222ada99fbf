"""Run: buffered appends, atomic parts, reading back, export, signals."""

from __future__ import annotations

import gc
import json
import math
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from traindyn.exceptions import ConfigError, RunNotFound, StoreError
from traindyn.store import MetricRow, Run, StoreWarning, open_run

LAYERS = ["encoder.layers.0/attn", "decoder/mlp.fc1", "héad.ünïcode", "a'b\"c,d\ne"]


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Run]:
    run = Run.create(tmp_path / "my-run", config={"lr": 0.1}, handle_signals=False)
    yield run
    run.finish()


def parts(run_dir: Path, table: str = "metrics") -> list[Path]:
    return sorted((run_dir / table).glob("part-*.parquet"))


def test_round_trip_of_every_column_type(run: Run) -> None:
    rows = [
        MetricRow(0, LAYERS[0], "effective_rank", 3.25),
        (2**40, LAYERS[1], "participation_ratio", 0.1 + 0.2, None),
        (-1, LAYERS[2], "twonn", -0.0),
        (5, LAYERS[3], "stable_rank", 1e-300, None),
        (5, LAYERS[0], "mle", math.inf),
        (np.int64(6), LAYERS[0], "energy_rank", np.float32(0.5)),
    ]
    run.append_metrics(rows)
    run.append_scalars(3, {"loss": 2.5, "train/acc": 0.75})
    assert run.flush() == len(rows) + 2

    m = run.metrics
    assert m.dtypes.to_dict() == {
        "step": np.dtype("int64"),
        "layer": pd.StringDtype(),
        "metric": pd.StringDtype(),
        "value": np.dtype("float64"),
        "reason": pd.StringDtype(),
    }
    assert m.step.tolist() == [-1, 0, 5, 5, 6, 2**40]  # sorted by step, stable within a step
    by_metric = m.set_index("metric")
    assert by_metric.loc["participation_ratio", "value"] == 0.1 + 0.2  # bit-exact
    assert by_metric.loc["stable_rank", "value"] == 1e-300
    assert math.copysign(1.0, by_metric.value["twonn"]) == -1.0
    assert by_metric.loc["mle", "value"] == math.inf
    assert set(m.layer) == set(LAYERS)
    assert m.reason.isna().all()

    s = run.scalars
    assert s.dtypes.to_dict() == {
        "step": np.dtype("int64"),
        "name": pd.StringDtype(),
        "value": np.dtype("float64"),
    }
    assert s.to_dict("list") == {
        "step": [3, 3],
        "name": ["loss", "train/acc"],
        "value": [2.5, 0.75],
    }


def test_nan_values_keep_their_reason(run: Run) -> None:
    run.append_metrics(
        [
            (1, "fc", "twonn", math.nan, "MetricError: X must have at least 3 samples"),
            (1, "fc", "effective_rank", 2.0, None),
        ]
    )
    run.flush()
    m = open_run(run.path).metrics.set_index("metric")
    assert math.isnan(m.value["twonn"])
    assert m.loc["twonn", "reason"] == "MetricError: X must have at least 3 samples"
    assert m.loc["effective_rank", "reason"] is pd.NA


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.integers(-(2**63), 2**63 - 1),
            st.text(min_size=1, max_size=30),
            st.text(min_size=1, max_size=10),
            st.floats(allow_nan=True, allow_infinity=True),
            st.none() | st.text(max_size=20),
        ),
        max_size=20,
    )
)
def test_any_rows_round_trip(rows: list[tuple[int, str, str, float, str | None]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        run = Run.create(Path(tmp) / "r", handle_signals=False)
        run.append_metrics(rows)
        run.finish()
        m = open_run(Path(tmp) / "r").metrics
        last = {r[:3]: i for i, r in enumerate(rows)}  # one value per key: the last write
        kept = [r for i, r in enumerate(rows) if last[r[:3]] == i]
        expected = sorted(kept, key=lambda r: r[0])  # the reader sorts stably by step
        got = list(m.itertuples(index=False, name=None))
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert g[:3] == e[:3]
            assert g[3] == e[3] or (math.isnan(g[3]) and math.isnan(e[3]))
            assert (g[4] is pd.NA and e[4] is None) or g[4] == e[4]


def test_empty_run_has_typed_empty_frames(run: Run) -> None:
    m, s = run.metrics, run.scalars
    assert len(m) == 0
    assert list(m.columns) == ["step", "layer", "metric", "value", "reason"]
    assert m.step.dtype == np.dtype("int64")
    assert m.layer.dtype == pd.StringDtype()
    assert len(s) == 0
    assert list(s.columns) == ["step", "name", "value"]
    assert run.checkpoints() == []


def test_flush_writes_new_parts_atomically(run: Run) -> None:
    assert run.flush() == 0
    assert parts(run.path) == []
    assert parts(run.path, "scalars") == []
    updated = run.manifest.updated_at

    run.append_metrics([(0, "fc", "m", 1.0)])
    assert run.flush() == 1
    run.append_metrics([(1, "fc", "m", 2.0)])
    run.append_scalars(1, {"loss": 0.5})
    assert run.flush() == 2

    metric_parts = parts(run.path)
    assert [p.name[:11] for p in metric_parts] == ["part-000000", "part-000001"]
    assert [p.name[:11] for p in parts(run.path, "scalars")] == ["part-000001"]
    assert all(p.stat().st_size > 0 for p in metric_parts)
    leftovers = [p for p in run.path.rglob("*") if p.name.startswith(".")]
    assert leftovers == []
    assert run.manifest.updated_at > updated
    on_disk = json.loads((run.path / "run.json").read_text())
    assert datetime.fromisoformat(on_disk["updated_at"]) == run.manifest.updated_at
    assert open_run(run.path).metrics.value.tolist() == [1.0, 2.0]


def test_rows_are_invisible_until_flushed(run: Run) -> None:
    run.append_metrics([(0, "fc", "m", 1.0)])
    assert len(open_run(run.path).metrics) == 0
    run.finish()
    assert len(open_run(run.path).metrics) == 1


def test_maybe_flush_only_when_due(run: Run) -> None:
    run.append_metrics([(0, "fc", "m", 1.0)])
    assert run.maybe_flush(interval_s=3600) == 0
    assert parts(run.path) == []
    assert run.maybe_flush(interval_s=0) == 1
    assert len(parts(run.path)) == 1


def test_appends_from_two_threads_all_reach_disk(run: Run) -> None:
    n = 2000

    def writer(tag: str) -> None:
        for i in range(n):
            run.append_metrics([(i, tag, "m", float(i))])
            run.append_scalars(i, {tag: float(i)})
            if i % 100 == 0:
                run.maybe_flush(interval_s=0.0)

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in ("t0", "t1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.finish()
    m = open_run(run.path).metrics
    assert len(m) == 2 * n
    for tag in ("t0", "t1"):
        mine = m[m.layer == tag]
        assert sorted(mine.step) == list(range(n))
        assert (mine.value == mine.step.astype(float)).all()
    assert len(open_run(run.path).scalars) == 2 * n


@pytest.mark.parametrize(
    ("row", "match"),
    [
        ((1, "fc", "m"), r"metrics row 1 must be a tuple"),
        ((1.5, "fc", "m", 1.0), r"metrics row 1 step must be an integer; got 1\.5"),
        ((True, "fc", "m", 1.0), r"metrics row 1 step must be an integer"),
        ((1, "", "m", 1.0), r"metrics row 1 layer must be a non-empty string"),
        ((1, "fc", None, 1.0), r"metrics row 1 metric must be a non-empty string"),
        ((1, "fc", "m", "1.0"), r"metrics row 1 value must be a number"),
        ((1, "fc", "m", 1.0, 7), r"metrics row 1 reason must be a string or None"),
    ],
)
def test_bad_rows_are_refused_whole(run: Run, row: tuple[object, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        run.append_metrics([(0, "fc", "m", 1.0), row])
    assert run.flush() == 0


def test_bad_scalars_are_refused(run: Run) -> None:
    with pytest.raises(ConfigError, match=r"scalars at step 1: 'loss' value must be a number"):
        run.append_scalars(1, {"loss": "high"})  # type: ignore[dict-item]
    with pytest.raises(ConfigError, match="step must be an integer"):
        run.append_scalars("one", {"loss": 1.0})  # type: ignore[arg-type]


def test_finish_records_status_and_closes(run: Run) -> None:
    run.append_scalars(0, {"loss": 1.0})
    run.finish()
    reread = open_run(run.path)
    assert reread.status == "finished"
    assert reread.is_finished
    assert reread.manifest.finished_at is not None
    assert len(reread.scalars) == 1
    run.finish("failed", error="ignored: already closed")
    assert open_run(run.path).status == "finished"
    with pytest.raises(StoreError, match=r"closed.*exist_ok=True"):
        run.append_scalars(1, {"loss": 1.0})


def test_finish_validates_its_arguments(run: Run) -> None:
    with pytest.raises(ConfigError, match="status must be one of 'finished', 'failed'"):
        run.finish("done")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="error is only recorded with status='failed'"):
        run.finish("finished", error="x")


def test_context_manager_marks_failure(tmp_path: Path) -> None:
    def train() -> None:
        with Run.create(tmp_path / "r", handle_signals=False) as run:
            run.append_scalars(0, {"loss": math.nan})
            raise ValueError("diverged")

    with pytest.raises(ValueError, match="diverged"):
        train()
    reread = open_run(tmp_path / "r")
    assert reread.status == "failed"
    assert not reread.is_finished
    assert reread.manifest.error == "ValueError: diverged"
    assert len(reread.scalars) == 1


def test_create_refuses_an_existing_run(run: Run) -> None:
    with pytest.raises(StoreError, match=r"already holds a run.*new run name.*exist_ok=True"):
        Run.create(run.path, handle_signals=False)


def test_create_refuses_a_run_that_is_still_being_written(run: Run) -> None:
    with pytest.raises(StoreError, match=f"still being written by pid {os.getpid()}"):
        Run.create(run.path, exist_ok=True, handle_signals=False)


def test_create_refuses_a_directory_that_is_not_a_run(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(StoreError, match=r"not empty and has no run\.json"):
        Run.create(tmp_path, handle_signals=False)
    Run.create(tmp_path / "sub", handle_signals=False).finish()
    with pytest.raises(StoreError, match=r"It holds runs \(sub\)"):
        Run.create(tmp_path, handle_signals=False)


def test_resume_appends_after_existing_parts(run: Run) -> None:
    run.append_metrics([(0, "fc", "m", 1.0)])
    run.finish()
    created = run.manifest.created_at
    resumed = Run.create(run.path, exist_ok=True, probe={"n": 64}, handle_signals=False)
    assert resumed.status == "running"
    assert resumed.manifest.finished_at is None
    assert resumed.manifest.created_at == created
    assert resumed.manifest.config == {"lr": 0.1}  # kept: not passed again
    assert resumed.manifest.probe == {"n": 64}
    resumed.append_metrics([(1, "fc", "m", 2.0)])
    resumed.finish()
    assert [p.name[:11] for p in parts(run.path)] == ["part-000000", "part-000001"]
    assert open_run(run.path).metrics.value.tolist() == [1.0, 2.0]


def test_update_manifest(run: Run) -> None:
    run.update_manifest(probe={"n_samples": 256, "reduction": "mean"}, config={"lr": 0.2})
    manifest = open_run(run.path).manifest
    assert manifest.probe == {"n_samples": 256, "reduction": "mean"}
    assert manifest.config == {"lr": 0.2}
    with pytest.raises(ConfigError, match="update_manifest field must be one of 'config'"):
        run.update_manifest(status="finished")


def test_open_run_is_read_only(run: Run) -> None:
    reader = open_run(run.path / "run.json")
    assert reader.id == "my-run"
    assert reader.path == run.path
    with pytest.raises(StoreError, match=r"read-only.*exist_ok=True"):
        reader.append_scalars(0, {"loss": 1.0})


def test_open_run_missing(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="does not exist"):
        open_run(tmp_path / "nope")
    with pytest.raises(RunNotFound, match=r"run\.json does not exist\. Create a run"):
        open_run(tmp_path)


def test_open_run_on_a_directory_of_runs_hints_open_runs(tmp_path: Path) -> None:
    Run.create(tmp_path / "sweep" / "seed0", handle_signals=False).finish()
    with pytest.raises(
        RunNotFound, match=r"holds run directories \(seed0\); did you mean open_runs"
    ):
        open_run(tmp_path / "sweep")


def test_corrupt_part_is_skipped_with_a_warning(run: Run) -> None:
    run.append_metrics([(0, "fc", "m", 1.0)])
    run.flush()
    good = parts(run.path)[0]
    truncated = run.path / "metrics" / "part-000009-deadbeef.parquet"
    truncated.write_bytes(good.read_bytes()[:40])
    (run.path / "metrics" / ".part-000010-0000.parquet.1234.tmp").write_bytes(b"junk")
    with pytest.warns(StoreWarning, match="skipping .*part-000009-deadbeef.parquet"):
        m = open_run(run.path).metrics
    assert m.value.tolist() == [1.0]


def test_export_csv_and_json_equal_the_tables(run: Run, tmp_path: Path) -> None:
    run.append_metrics(
        [
            (0, LAYERS[0], "m", 0.1 + 0.2, None),
            (1, LAYERS[1], "m", math.nan, "1 sample"),
            (2, LAYERS[2], "m", -1e-12, None),
        ]
    )
    run.append_scalars(0, {"loss": 1 / 3})
    run.finish()
    reader = open_run(run.path)

    csv = reader.export(tmp_path / "csv", format="csv")
    got = pd.read_csv(
        csv.metrics,
        dtype={"layer": "string", "metric": "string", "reason": "string"},
        keep_default_na=False,
        na_values={"value": [""], "reason": [""]},
    )
    pd.testing.assert_frame_equal(got, reader.metrics)
    got_s = pd.read_csv(csv.scalars, dtype={"name": "string"})
    pd.testing.assert_frame_equal(got_s, reader.scalars)

    js = reader.export(tmp_path / "json", format="json")
    records = json.loads(js.metrics.read_text())
    assert records[1] == {
        "step": 1,
        "layer": LAYERS[1],
        "metric": "m",
        "value": None,
        "reason": "1 sample",
    }
    got_j = pd.DataFrame.from_records(records).astype(reader.metrics.dtypes.to_dict())
    pd.testing.assert_frame_equal(got_j, reader.metrics)
    assert json.loads(js.scalars.read_text()) == [{"step": 0, "name": "loss", "value": 1 / 3}]

    with pytest.raises(ConfigError, match="format must be one of 'csv', 'json'; got 'xlsx'"):
        reader.export(tmp_path, format="xlsx")  # type: ignore[arg-type]


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _set_manifest(run_dir: Path, **fields: object) -> None:
    path = run_dir / "run.json"
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data))


def test_is_stale(tmp_path: Path) -> None:
    live = Run.create(tmp_path / "r", handle_signals=False)
    assert not open_run(live.path).is_stale
    live.finish()
    host = socket.gethostname()
    old = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
    fresh = datetime.now(UTC).isoformat()
    cases = [
        ({"status": "running", "pid": _dead_pid(), "hostname": host}, True),
        ({"status": "running", "pid": os.getpid(), "hostname": host, "updated_at": old}, False),
        ({"status": "running", "pid": 1, "hostname": "elsewhere", "updated_at": old}, True),
        ({"status": "running", "pid": 1, "hostname": "elsewhere", "updated_at": fresh}, False),
        ({"status": "finished", "pid": _dead_pid(), "hostname": host}, False),
    ]
    for fields, stale in cases:
        _set_manifest(live.path, **fields)
        reader = open_run(live.path)
        assert reader.is_stale is stale, fields
        assert not reader.is_finished or fields["status"] == "finished"


def test_signal_handlers_installed_while_a_run_is_open(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    a = Run.create(tmp_path / "a")
    b = Run.create(tmp_path / "b")
    assert signal.getsignal(signal.SIGTERM) not in before
    a.finish()
    assert signal.getsignal(signal.SIGTERM) not in before  # b is still open
    b.finish()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_sigint_flushes_fails_and_raises_keyboard_interrupt(tmp_path: Path) -> None:
    run = Run.create(tmp_path / "r")
    run.append_metrics([(0, "fc", "m", 1.0)])

    def interrupted() -> None:
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait(5)  # the handler runs here and raises

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    reread = open_run(run.path)
    assert reread.status == "failed"
    assert reread.manifest.error == "interrupted by SIGINT"
    assert reread.metrics.value.tolist() == [1.0]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_signal_during_a_flush_is_handled_after_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def previous(signum: int, frame: FrameType | None) -> None:
        calls.append(signum)

    original_handler = signal.signal(signal.SIGTERM, previous)
    try:
        run = Run.create(tmp_path / "r")
        run.append_metrics([(0, "fc", "m", 1.0)])
        write_table = pq.write_table

        def write_then_signal(*args: object, **kwargs: object) -> None:
            write_table(*args, **kwargs)
            if not calls:
                os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-flush

        monkeypatch.setattr(pq, "write_table", write_then_signal)
        run.flush()
        assert calls == [signal.SIGTERM]  # chained to the previous handler, once
        reread = open_run(run.path)
        assert reread.status == "failed"
        assert reread.manifest.error == "interrupted by SIGTERM"
        assert reread.metrics.value.tolist() == [1.0]
        assert len(parts(run.path)) == 1
        assert signal.getsignal(signal.SIGTERM) is previous  # restored
    finally:
        signal.signal(signal.SIGTERM, original_handler)


def test_checkpoint_path_lists_available_steps(run: Run) -> None:
    (run.path / "checkpoints").mkdir()
    for step in (10, 2):
        (run.path / "checkpoints" / f"step-{step}.safetensors").write_bytes(b"")
    assert run.checkpoints() == [2, 10]
    assert run.checkpoint_path(2).name == "step-2.safetensors"
    with pytest.raises(StoreError, match=r"no checkpoint for step 3 .*available steps: 2, 10"):
        run.checkpoint_path(3)


def test_a_forked_child_cannot_write_the_parents_run(tmp_path: Path) -> None:
    run = Run.create(tmp_path / "r", handle_signals=False)
    run.append_metrics([(0, "fc", "m", 1.0)])

    def child(run: Run) -> None:
        with pytest.raises(StoreError, match="is a fork of it"):
            run.append_scalars(1, {"loss": 1.0})
        del run
        gc.collect()  # the finaliser must not flush the parent's buffered rows

    proc = multiprocessing.get_context("fork").Process(target=child, args=(run,))
    proc.start()
    proc.join(30)
    assert proc.exitcode == 0
    run.finish()
    assert open_run(run.path).metrics.step.tolist() == [0]
    assert len(parts(run.path)) == 1


def test_append_metrics_accepts_a_dataframe_with_na_reasons(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "step": np.array([0, 5], dtype=np.int64),
            "layer": ["fc", "fc"],
            "metric": ["pr", "pr"],
            "value": [1.5, float("nan")],
            "reason": pd.array([pd.NA, "MetricError: too few samples"], dtype="string"),
        }
    )
    with Run.create(tmp_path / "r") as run:
        run.append_metrics(frame)
        run.append_metrics([(10, "fc", "pr", 2.0, pd.NA)])
    table = open_run(tmp_path / "r").metrics
    assert table["value"].tolist()[0] == 1.5 and table["step"].tolist() == [0, 5, 10]
    assert table["reason"].isna().tolist() == [True, False, True]
    with Run.create(tmp_path / "bad") as run, pytest.raises(ConfigError, match="'value'"):
        run.append_metrics(frame.drop(columns="value"))


def test_delete_analysis_removes_only_that_name(tmp_path: Path) -> None:
    with Run.create(tmp_path / "r") as run:
        run.write_analysis("keep", {"a": 1})
        run.write_analysis("gone", pd.DataFrame({"x": [1.0]}))
        run.delete_analysis("gone")
        run.delete_analysis("never-written")
        assert run.read_analysis("keep") == {"a": 1}
        with pytest.raises(StoreError, match="has no analysis 'gone'"):
            run.read_analysis("gone")
