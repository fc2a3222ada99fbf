from __future__ import annotations

import math
from pathlib import Path

import pytest

import traindyn as td
from traindyn.analysis import summarize_run
from traindyn.exceptions import ConfigError
from traindyn.experiments.executors import run_local
from traindyn.experiments.suite import SUITES, builtin_suite
from traindyn.experiments.trainer import TrainConfig, train


def test_train_records_metrics_scalars_and_checkpoints(tmp_path: Path) -> None:
    config = TrainConfig(
        arch="mlp_medium",
        dataset="digits",
        steps=30,
        every=10,
        probe_per_class=5,
        checkpoint_steps=(0, 30),
    )
    run = td.open_run(train(config, tmp_path / config.name))
    assert run.is_finished
    assert sorted(run.metrics["step"].unique()) == [0, 10, 20, 30]
    assert run.checkpoints() == [0, 30]
    assert run.manifest.config["experiment"]["arch"] == "mlp_medium"
    loss = run.scalars.query("name == 'loss'")
    assert loss["step"].tolist() == list(range(31))
    assert loss["value"].iloc[-5:].mean() < loss["value"].iloc[:5].mean()  # it learns


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    config = TrainConfig(arch="cnn_shallow", dataset="digits", steps=15, probe_per_class=3)
    a = td.open_run(train(config, tmp_path / "a")).metrics
    b = td.open_run(train(config, tmp_path / "b")).metrics
    assert a["value"].tolist() == b["value"].tolist()


def test_pool_runs_every_experiment_and_isolates_failures(tmp_path: Path) -> None:
    good = TrainConfig(arch="mlp_medium", dataset="digits", steps=10, probe_per_class=3)
    bad = TrainConfig(arch="mlp_medium", dataset="digits", steps=10, probe_per_class=99, seed=1)
    results = run_local([good, bad], tmp_path, workers=2, show_progress=False)
    assert [r.status for r in results] == ["finished", "failed"]
    assert "per_class" in (results[1].error or "")
    assert td.open_run(tmp_path / good.name).is_finished


def test_in_process_runner_matches_the_pool(tmp_path: Path) -> None:
    config = TrainConfig(arch="transformer_shallow", dataset="digits", steps=10, probe_per_class=3)
    run_local([config], tmp_path / "pool", workers=1, show_progress=False)
    run_local([config], tmp_path / "here", workers=0, show_progress=False)
    a = td.open_run(tmp_path / "pool" / config.name).metrics
    b = td.open_run(tmp_path / "here" / config.name).metrics
    # workers use one intra-op thread; this process may use more, which reorders sums
    assert a["value"].to_numpy() == pytest.approx(b["value"].to_numpy(), rel=1e-6)


def test_summary_first_and_last_values(tmp_path: Path) -> None:
    config = TrainConfig(arch="mlp_medium", dataset="digits", steps=20, every=10, probe_per_class=3)
    run = td.open_run(train(config, tmp_path / "r"))
    summary = summarize_run(run)
    pr = run.metrics.query("metric == 'participation_ratio' and layer == 'layers.0'")
    row = summary.layers.query("metric == 'participation_ratio' and layer == 'layers.0'").iloc[0]
    assert row["first"] == pr.sort_values("step")["value"].iloc[0]
    assert row["last"] == pr.sort_values("step")["value"].iloc[-1]
    assert math.isclose(row["change"], row["last"] - row["first"])
    assert summary.last_step == 20
    assert 0 <= summary.final["probe_accuracy"] <= 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"lr": -1.0}, "lr must be"),
        ({"optimizer": "lbfgs"}, "optimizer must be one of"),
    ],
)
def test_bad_train_configs(kwargs: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        TrainConfig(arch="mlp_medium", dataset="digits", **kwargs)


def test_suites() -> None:
    quick = builtin_suite("quick")
    assert len(quick) == 12
    assert {c.arch.split("_")[0] for c in quick} == {"mlp", "cnn", "transformer"}
    assert {c.seed for c in quick} == {0, 1} and all(c.every == 5 for c in quick)
    assert set(SUITES) >= {"quick", "smoke"}
    with pytest.raises(ConfigError, match="suite must be one of 'quick'"):
        builtin_suite("quik")
    with pytest.raises(ConfigError, match="unique"):
        run_local(quick[:1] * 2, "unused")
