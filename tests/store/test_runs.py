"""open_runs: discovery and DuckDB queries over many runs, checked against pandas."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traindyn.exceptions import ConfigError, RunNotFound
from traindyn.store import Run, Runs, StoreWarning, open_run, open_runs

RUN_IDS = ["a", "b", "sweep/c"]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    rng = np.random.default_rng(0)
    for k, run_id in enumerate(RUN_IDS):
        run = Run.create(root / run_id, config={"seed": k}, handle_signals=False)
        for flush in range(2):
            for step in range(flush * 5, flush * 5 + 5 + k):
                run.append_metrics(
                    (step, layer, metric, float(rng.normal()), None)
                    for layer in ("enc.0/attn", "head")
                    for metric in ("effective_rank", "twonn")
                )
                run.append_scalars(step, {"loss": 1.0 / (step + 1)})
            run.flush()
        run.append_metrics([(99, "head", "twonn", math.nan, "too few samples")])
        if run_id == "b":
            run.flush()  # b stays "running"
        else:
            run.finish()
    (root / "sweep" / "notes").mkdir()  # a directory that is not a run
    return root


@pytest.fixture(scope="module")
def runs(root: Path) -> Runs:
    return open_runs(root)


def expected(root: Path, table: str) -> pd.DataFrame:
    frames = []
    for run_id in RUN_IDS:
        frame = getattr(open_run(root / run_id), table)
        frames.append(frame.assign(run=pd.array([run_id] * len(frame), dtype="string")))
    out = pd.concat(frames, ignore_index=True)
    ordered: pd.DataFrame = out[["run", *(c for c in out.columns if c != "run")]]
    return ordered


def test_discovers_nested_runs(runs: Runs, root: Path) -> None:
    assert runs.ids == RUN_IDS
    assert len(runs) == 3
    assert "sweep/c" in runs
    assert runs["sweep/c"].manifest.config == {"seed": 2}
    assert [r.path for r in runs] == [root / i for i in RUN_IDS]
    with pytest.raises(RunNotFound, match=r"no run 'zzz' .*'a', 'b', 'sweep/c'"):
        runs["zzz"]


@pytest.mark.parametrize("table", ["metrics", "scalars"])
def test_tables_equal_the_per_run_tables(runs: Runs, root: Path, table: str) -> None:
    pd.testing.assert_frame_equal(getattr(runs, table), expected(root, table))


def test_query_aggregates_like_pandas(runs: Runs, root: Path) -> None:
    got = runs.query(
        "SELECT run, layer, metric, avg(value) AS mean, count(*) AS n FROM metrics "
        "WHERE NOT isnan(value) GROUP BY ALL ORDER BY run, layer, metric"
    )
    m = expected(root, "metrics")
    want = (
        m[~m.value.isna()]
        .groupby(["run", "layer", "metric"])
        .value.agg(mean="mean", n="count")
        .reset_index()
    )
    assert got[["run", "layer", "metric"]].astype(str).values.tolist() == (
        want[["run", "layer", "metric"]].astype(str).values.tolist()
    )
    np.testing.assert_allclose(got["mean"], want["mean"], rtol=1e-12)
    assert got["n"].tolist() == want["n"].tolist()


def test_query_joins_the_runs_view(runs: Runs) -> None:
    got = runs.query(
        "SELECT r.id, r.status, count(*) AS nan_rows FROM metrics m JOIN runs r ON m.run = r.id "
        "WHERE m.reason IS NOT NULL GROUP BY ALL ORDER BY r.id"
    )
    assert got.values.tolist() == [
        ["a", "finished", 1],
        ["b", "running", 1],
        ["sweep/c", "finished", 1],
    ]


def test_manifests(runs: Runs, root: Path) -> None:
    m = runs.manifests
    assert m.id.tolist() == RUN_IDS
    assert m.status.tolist() == ["finished", "running", "finished"]
    assert m.is_stale.tolist() == [False, False, False]  # b is held by this live process
    # steps 0..(9 + k) plus step 99
    assert m.n_steps.tolist() == [11, 12, 13]
    assert (m.size_bytes > 0).all()
    assert m.size_bytes.tolist()[0] == sum(
        p.stat().st_size for p in (root / "a").rglob("*") if p.is_file()
    )
    assert m.path.tolist() == [str(root / i) for i in RUN_IDS]
    assert str(m.created_at.dtype) == "datetime64[us, UTC]"


def test_empty_root_gives_empty_frames(tmp_path: Path) -> None:
    runs = open_runs(tmp_path)
    assert runs.ids == []
    assert len(runs.manifests) == 0
    assert list(runs.metrics.columns) == ["run", "step", "layer", "metric", "value", "reason"]
    assert list(runs.scalars.columns) == ["run", "step", "name", "value"]
    assert runs.query("SELECT count(*) AS n FROM metrics").n.tolist() == [0]


def test_runs_without_rows_give_empty_frames(tmp_path: Path) -> None:
    Run.create(tmp_path / "empty", handle_signals=False).finish()
    runs = open_runs(tmp_path)
    assert runs.ids == ["empty"]
    assert len(runs.metrics) == 0
    assert runs.manifests.n_steps.tolist() == [0]


def test_root_that_is_a_run(root: Path) -> None:
    runs = open_runs(root / "a")
    assert runs.ids == ["a"]
    assert len(runs.metrics) > 0


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="does not exist"):
        open_runs(tmp_path / "nope")


def test_bad_sql_lists_the_views(runs: Runs) -> None:
    with pytest.raises(ConfigError, match=r"(?s)query failed.*Views: metrics\(run, step"):
        runs.query("SELECT nope FROM metrics")


def test_corrupt_part_is_skipped(tmp_path: Path) -> None:
    for name in ("x", "y"):
        run = Run.create(tmp_path / name, handle_signals=False)
        run.append_metrics([(0, "fc", "m", 1.0)])
        run.finish()
    bad = tmp_path / "y" / "metrics" / "part-000007-0badf00d.parquet"
    bad.write_bytes(b"PAR1 truncated")
    with pytest.warns(StoreWarning, match="skipping .*part-000007-0badf00d.parquet"):
        m = open_runs(tmp_path).metrics
    assert m.run.tolist() == ["x", "y"]


def test_invalid_run_json_is_skipped(tmp_path: Path) -> None:
    Run.create(tmp_path / "ok", handle_signals=False).finish()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "run.json").write_text("{")
    with pytest.warns(StoreWarning, match=r"skipping run .*broken.*not valid JSON"):
        runs = open_runs(tmp_path)
    assert runs.ids == ["ok"]
