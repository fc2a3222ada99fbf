"""The analysis engine on planted runs, on a real quick-suite run, and on a directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traindyn.analysis.engine import AnalysisOptions, analyze, analyze_run
from traindyn.analysis.synthetic import planted_metrics
from traindyn.exceptions import RunNotFound
from traindyn.experiments.suite import builtin_suite, expand_suite
from traindyn.experiments.trainer import train
from traindyn.store import Run, open_run

LAYERS = ["l0", "l1", "l2", "l3"]


def _planted_run(path: Path, *, seed: int, arch: str, jump_at: int = 30) -> Run:
    run = Run.create(
        path,
        config={
            "total_steps": 2000,
            "experiment": {"arch": arch, "dataset": "synthetic", "seed": seed, "phases": []},
            "tracker": {"layers": LAYERS},
        },
    )
    table = planted_metrics(
        n_samples=400,
        layers=LAYERS,
        metrics=["participation_ratio", "stable_rank"],
        jumps={"l1": {jump_at: -2.0}, "l2": {jump_at: -2.0}},
        decay=(1.0, 15.0),
        noise=0.01,
        seed=seed,
    )
    run.append_metrics(table[["step", "layer", "metric", "value"]].itertuples(index=False))
    for step in range(0, 2001, 10):
        run.append_scalars(step, {"loss": 2.0 * np.exp(-step / 300) + 0.1})
    run.finish()
    return run


@pytest.fixture(scope="module")
def planted_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    for seed in range(2):
        for arch in ("mlp", "cnn"):
            _planted_run(root / f"{arch}_s{seed}", seed=seed, arch=arch)
    return root


def test_planted_run_events_temporal_and_convergence(planted_dir: Path) -> None:
    result = analyze_run(planted_dir / "mlp_s0")
    kept = result.surviving
    # The planted steps (samples 30 -> step 150) on l1 and l2, both metrics.
    planted = kept[kept["step"] == 150]
    assert sorted(planted["layer"].unique()) == ["l1", "l2"]
    assert planted["delta"].to_numpy() == pytest.approx(-2.0, abs=0.1)
    assert (kept["layer"].isin(["l1", "l2"]) | (kept["step"] < 100)).all()
    # Most change is early: a decay with tau 15 samples and the jumps at 7.5%.
    shares = result.headline()["change_share"]
    assert shares["early"] > 0.8
    assert set(result.tables()) >= {"convergence", "events", "critical_periods", "phases"}
    assert result.convergence.layers["depth"].tolist()[:4] == [0, 1, 2, 3]
    types = result.event_types
    assert types["n"].sum() == len(kept)


def test_directory_analysis_writes_idempotent_tables(planted_dir: Path) -> None:
    first = analyze(planted_dir)
    files = sorted(p.relative_to(planted_dir) for p in planted_dir.rglob("analysis/*"))
    snapshot = {p: (planted_dir / p).read_bytes() for p in files}
    again = analyze(planted_dir)
    assert sorted(p.relative_to(planted_dir) for p in planted_dir.rglob("analysis/*")) == files
    changed = [p for p in files if (planted_dir / p).read_bytes() != snapshot[p]]
    assert changed == []
    assert len(first.runs) == len(again.runs) == 4 and not first.failed
    assert first.by_arch["arch"].tolist() == ["cnn", "mlp"]
    assert first.by_arch["n_runs"].tolist() == [2, 2]
    pooled = first.temporal[first.temporal["metric"] == "*"]
    assert pooled["share"].sum() == pytest.approx(1.0)
    run = open_run(planted_dir / "mlp_s1")
    events = run.read_analysis("events")
    assert isinstance(events, pd.DataFrame) and "snr" in events.columns
    summary = run.read_analysis("summary")
    assert isinstance(summary, dict) and summary["options"]["detector"] == "pelt"
    assert (planted_dir / "analysis" / "overview.parquet").is_file()


def test_zscore_finds_more_candidates_but_the_floor_removes_them(planted_dir: Path) -> None:
    pelt = analyze_run(planted_dir / "cnn_s0")
    zscore = analyze_run(planted_dir / "cnn_s0", AnalysisOptions(detector="zscore"))
    assert len(zscore.events) > 3 * len(pelt.surviving)
    assert zscore.events["below_floor"].mean() > 0.5
    assert set(zscore.surviving.query("step > 200")["layer"]) <= {"l1", "l2"}


def test_missing_paths_are_named(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="does not exist"):
        analyze(tmp_path / "nope")
    with pytest.raises(RunNotFound, match="holds no run"):
        analyze(tmp_path)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = next(e for e in expand_suite(builtin_suite("quick")) if e.name == "mlp_medium_digits_s0")
    run_dir = tmp_path_factory.mktemp("quick") / spec.name  # type: ignore[operator]
    train(spec, run_dir)
    return run_dir


def test_real_quick_suite_run(quick_run: Path) -> None:
    result = analyze_run(quick_run)
    run = open_run(quick_run)
    layers = run.manifest.config["tracker"]["layers"]
    conv = result.convergence.layers
    assert set(conv["layer"]) == set(layers) and len(conv) == 5 * len(layers)
    assert conv.set_index("layer")["depth"].groupby(level=0).first().to_dict() == {
        name: i for i, name in enumerate(layers)
    }
    assert len(result.convergence.order) == 5
    # A real run changes most in its first half, and every event carries its floor.
    shares = result.headline()["change_share"]
    assert shares["early"] + shares["mid"] > 0.5
    assert (result.events["noise_floor"] > 0).all()
    assert (result.surviving["snr"] >= 4).all()
    assert result.critical.summary["loss_correlation"].between(0, 1).all()
    # No phases in the quick suite: early/mid/late windows instead, for metrics and loss.
    assert set(result.phases["phase"]) == {"early", "mid", "late"}
    loss = result.phases[
        (result.phases["table"] == "scalars") & (result.phases["metric"] == "loss")
    ]
    assert loss.set_index("phase").loc["early", "change"] < 0
