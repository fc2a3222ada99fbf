"""The analysis engine on planted runs, on a real quick-suite run, and on a directory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from traindyn.analysis.engine import AnalysisOptions, analyze, analyze_run
from traindyn.analysis.synthetic import planted_metrics
from traindyn.exceptions import ConfigError, RunNotFound
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
    # Benjamini-Hochberg bounds the false discovery rate (5%), not the chance of any
    # false discovery: at most one noise event (here l0 at step 175, a 5-sd excursion of
    # white noise, p = 4e-4) may survive beside the planted four, far less significant.
    extra = kept[~kept["layer"].isin(["l1", "l2"]) & (kept["step"] >= 100)]
    assert len(extra) <= 1
    assert (extra["q_value"] > 1e3 * planted["q_value"].max()).all()
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
    assert isinstance(summary, dict) and summary["options"]["detector"] == "scan"
    # The planted steps survive in both seeds of the group (replication), and the
    # coordination null is written beside the critical periods.
    planted = events[events["survives"] & (events["step"] == 150)]
    assert len(planted) == 4
    assert (planted["replicated_in"] == 2).all() and (planted["n_seeds"] == 2).all()
    assert (events.loc[~events["survives"], "replicated_in"] == 0).all()
    null = run.read_analysis("critical_null")
    assert isinstance(null, pd.DataFrame)
    assert set(null["metric"]) == {"participation_ratio", "stable_rank"}
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


def _smooth_run_with_a_small_jump(path: Path) -> Run:
    """One series: a slow drift with a 0.05 step at step 1000 and noise of sd 0.001."""
    from traindyn.analysis.synthetic import trajectory

    values = trajectory(201, level=2.0, slope=2e-4, jumps={100: 0.05}, noise=1e-3, seed=4)
    run = Run.create(path, config={"total_steps": 2000})
    run.append_metrics([(10 * i, "fc", "participation_ratio", v) for i, v in enumerate(values)])
    run.finish()
    return run


def test_probe_noise_in_analysis_raises_the_floor_above_a_small_jump(tmp_path: Path) -> None:
    run = _smooth_run_with_a_small_jump(tmp_path / "r")
    plain = analyze_run(run)
    jump = plain.surviving[plain.surviving["step"] == 1000]
    assert len(jump) == 1 and float(jump["delta"].iloc[0]) == pytest.approx(0.05, abs=0.005)
    assert float(jump["snr"].iloc[0]) > 10 and np.isnan(jump["probe_noise"].iloc[0])
    assert plain.headline()["probe_noise"] is False and plain.probe_floor.empty

    # Spread at four checkpoints; the NaN (a failed metric) is skipped: median 0.1, not mean.
    table = pd.DataFrame(
        {
            "step": [0, 700, 1400, 2000],
            "layer": "fc",
            "metric": "participation_ratio",
            "noise": [0.05, np.nan, 0.1, 0.3],
        }
    )
    run.write_analysis("probe_noise", table)
    noisy = analyze_run(run)
    event = noisy.events[noisy.events["step"] == 1000]
    assert float(event["probe_noise"].iloc[0]) == pytest.approx(0.1)
    assert float(event["noise_floor"].iloc[0]) == pytest.approx(0.1)
    assert bool(event["below_floor"].iloc[0]) and noisy.surviving.empty
    assert noisy.headline()["probe_noise"] is True
    assert noisy.probe_floor.to_dict("records") == [
        {"layer": "fc", "metric": "participation_ratio", "noise": 0.1, "n_steps": 3}
    ]
    assert any("probe resampling" in note for note in noisy.notes)
    # analyze() reads the same file, records it in summary.json, and is deterministic.
    analyze(run.path)
    first = (run.path / "analysis" / "events.parquet").read_bytes()
    summary = open_run(run.path).read_analysis("summary")
    assert isinstance(summary, dict) and summary["probe_noise"] is True
    analyze(run.path)
    assert (run.path / "analysis" / "events.parquet").read_bytes() == first

    # A table passed in replaces the file; a table without its columns is refused.
    quiet = analyze_run(run, probe_noise=table.assign(noise=1e-4))  # below shift_se
    assert quiet.surviving["step"].tolist() == plain.surviving["step"].tolist()
    assert 1000 in quiet.surviving["step"].tolist()
    with pytest.raises(ConfigError, match=r"missing \['noise'\]"):
        analyze_run(run, probe_noise=table.drop(columns="noise"))


def test_workers_give_the_same_tables(planted_dir: Path) -> None:
    one = analyze(planted_dir, write=False, workers=1)
    two = analyze(planted_dir, write=False, workers=2)
    pd.testing.assert_frame_equal(one.overview, two.overview)
    pd.testing.assert_frame_equal(one.seeds, two.seeds)
    for a, b in zip(one.runs, two.runs, strict=True):
        pd.testing.assert_frame_equal(a.events, b.events)
    with pytest.raises(ConfigError, match="workers must be an integer >= 1"):
        analyze(planted_dir, workers=0)
