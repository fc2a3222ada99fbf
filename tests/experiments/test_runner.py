from __future__ import annotations

import math
from pathlib import Path

import pytest

import traindyn as td
from traindyn.analysis import summarize_run, summarize_suite
from traindyn.exceptions import ConfigError
from traindyn.experiments.executors import run_local
from traindyn.experiments.suite import ExperimentSpec, builtin_suite, expand_suite
from traindyn.experiments.trainer import train


def spec(**fields: object) -> ExperimentSpec:
    base: dict[str, object] = {
        "arch": "mlp_medium",
        "dataset": "digits",
        "train": {"steps": 30},
        "tracking": {"every": 10, "probe_per_class": 5},
    }
    return ExperimentSpec.model_validate(base | fields)


def test_train_records_metrics_scalars_and_checkpoints(tmp_path: Path) -> None:
    s = spec(checkpoints={"steps": [0, 20]})
    outcome = train(s, tmp_path / "r")
    run = td.open_run(tmp_path / "r")
    assert run.is_finished
    # every 10, plus the milestones at 15/30/50/100% of 30 steps (and 29, a loop's last)
    assert sorted(run.metrics["step"].unique()) == [0, 4, 9, 10, 15, 20, 29, 30]
    assert run.manifest.config["tracker"]["milestone_steps"] == [4, 9, 15, 29, 30]
    assert run.checkpoints() == [0, 20, 30]  # scheduled + final
    assert run.manifest.config["experiment"]["arch"] == "mlp_medium"
    loss = run.scalars.query("name == 'loss'")
    assert loss["step"].tolist() == list(range(31))
    assert loss["value"].iloc[-5:].mean() < loss["value"].iloc[:5].mean()  # it learns
    assert set(run.scalars["name"]) >= {"lr", "grad_norm", "batch_accuracy", "probe_accuracy"}
    assert outcome.stop_reason == "steps"
    assert run.read_analysis("training")["last_step"] == 30


def test_same_seed_gives_identical_metrics(tmp_path: Path) -> None:
    s = spec(arch="cnn_shallow", train={"steps": 15})
    train(s, tmp_path / "a")
    train(s, tmp_path / "b")
    a, b = td.open_run(tmp_path / "a").metrics, td.open_run(tmp_path / "b").metrics
    assert a["value"].tolist() == b["value"].tolist()


def test_lr_schedule_is_what_the_optimizer_used(tmp_path: Path) -> None:
    s = spec(
        train={
            "steps": 20,
            "lr": 0.01,
            "schedule": {"kind": "step", "step_size": 10, "gamma": 0.5, "warmup_steps": 4},
        }
    )
    train(s, tmp_path / "r")
    lr = td.open_run(tmp_path / "r").scalars.query("name == 'lr'")["value"].tolist()
    assert lr[:4] == pytest.approx([0.0025, 0.005, 0.0075, 0.01])
    assert lr[4] == pytest.approx(0.01) and lr[14] == pytest.approx(0.005)


def test_phases_freeze_change_lr_and_ablation_stops(tmp_path: Path) -> None:
    s = spec(
        train={"steps": 60},
        tracking={"every": 10, "probe_per_class": 5},
        checkpoints={"steps": [0, 20, 21]},
        phases=[
            {"name": "grounding", "start": 0, "end": 20, "lr": 0.01, "freeze": ["layers.0"]},
            {
                "name": "balanced",
                "start": 20,
                "end": 40,
                "lr_scale": 0.1,
                "data": {"classes": [0, 1, 2]},
            },
        ],
        stop_after_phase="balanced",
    )
    outcome = train(s, tmp_path / "r")
    run = td.open_run(tmp_path / "r")
    assert outcome.stop_reason == "stop_after_phase:balanced"
    assert outcome.last_step == 40  # measured, not trained: the state after 40 updates
    lr = run.scalars.query("name == 'lr'").set_index("step")["value"]
    assert lr.loc[5] == 0.01 and lr.loc[25] == pytest.approx(1e-4)
    from safetensors.torch import load_file

    first, at20, at21 = (load_file(run.checkpoint_path(s)) for s in (0, 20, 21))
    frozen = [k for k in first if k.startswith("layers.0.")]
    assert frozen and all((first[k] == at20[k]).all() for k in frozen)  # frozen in [0, 20)
    assert any(not (first[k] == at20[k]).all() for k in first if k.startswith("head"))
    assert any(not (at20[k] == at21[k]).all() for k in frozen)  # trained again from 20


def test_early_stopping_keeps_the_best_checkpoint(tmp_path: Path) -> None:
    s = spec(
        train={"steps": 400, "lr": 0.05, "optimizer": "sgd"},
        tracking={"every": 5, "probe_per_class": 5},
        early_stopping={"monitor": "probe_loss", "mode": "min", "patience": 3},
    )
    outcome = train(s, tmp_path / "r")
    run = td.open_run(tmp_path / "r")
    probe_loss = run.scalars.query("name == 'probe_loss'").set_index("step")["value"]
    assert outcome.best_value == pytest.approx(probe_loss.min())
    assert outcome.best_step == probe_loss.idxmin()
    assert outcome.best_step in run.checkpoints()
    if outcome.stopped_early:
        assert outcome.last_step == outcome.best_step + 3 * 5
    assert outcome.initial_value == pytest.approx(probe_loss.iloc[0])


def test_pool_runs_every_experiment_and_isolates_failures(tmp_path: Path) -> None:
    good = spec(train={"steps": 10})
    bad = spec(seed=1, tracking={"probe_per_class": 99})
    results = run_local([good, bad], tmp_path, workers=2, show_progress=False)
    assert [r.status for r in results] == ["finished", "failed"]
    assert "per_class" in (results[1].error or "")
    assert td.open_run(tmp_path / good.run_name).is_finished


def test_summaries_per_run_and_per_seed_group(tmp_path: Path) -> None:
    suite = builtin_suite("smoke").model_copy(
        update={
            "grid": {"arch": ["mlp_medium"], "dataset": ["digits"], "seed": [0, 1, 2]},
            "defaults": {
                "train": {"steps": 20},
                "tracking": {"probe_per_class": 3},
                "early_stopping": {"monitor": "probe_accuracy", "mode": "max"},
            },
        }
    )
    specs = expand_suite(suite)
    assert [s.run_name for s in specs] == [f"mlp_medium_digits_s{i}" for i in range(3)]
    run_local(specs, tmp_path, workers=0, show_progress=False)
    summary = summarize_suite(td.open_runs(tmp_path))
    assert len(summary.experiments) == 3
    (group,) = summary.groups.to_dict("records")
    assert group["group"] == "mlp_medium_digits" and group["n"] == 3
    best = summary.experiments["best"]
    assert group["best_mean"] == pytest.approx(best.mean())
    assert group["best_min"] == best.min()
    run = td.open_run(tmp_path / "mlp_medium_digits_s0")
    layer = summarize_run(run).layers.query("metric == 'participation_ratio'").iloc[0]
    pr = run.metrics.query(f"metric == 'participation_ratio' and layer == '{layer['layer']}'")
    assert layer["first"] == pr["value"].iloc[0] and layer["last"] == pr["value"].iloc[-1]
    assert math.isclose(layer["change"], layer["last"] - layer["first"])


def test_builtin_suites() -> None:
    quick = expand_suite(builtin_suite("quick"))
    assert len(quick) == 12
    assert {s.arch.split("_")[0] for s in quick} == {"mlp", "cnn", "transformer"}
    assert {s.seed for s in quick} == {0, 1}
    assert all(s.tracking.every == 5 for s in quick)
    with pytest.raises(ConfigError, match="suite must be one of 'quick'"):
        builtin_suite("quik")
    with pytest.raises(ConfigError, match="unique"):
        run_local(quick[:1] * 2, "unused")
