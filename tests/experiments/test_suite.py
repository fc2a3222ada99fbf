from __future__ import annotations

from pathlib import Path

import pytest

from traindyn.exceptions import ConfigError
from traindyn.experiments.schedules import active_phase, batch_indices, lr_at
from traindyn.experiments.suite import (
    LRScheduleSpec,
    PhaseSpec,
    SuiteSpec,
    builtin_suite,
    expand_suite,
    load_suite,
)

GOOD = {"arch": "mlp_medium", "dataset": "digits"}

# Every invalid field gets its own message naming its path in the file.
INVALID = [
    (
        {"experiments": [GOOD, GOOD, GOOD, {**GOOD, "train": {"lr": -1}}]},
        "experiments[3].train.lr: must be > 0, got -1",
    ),
    ({"defaults": {"train": {"steps": 0}}}, "defaults.train.steps: must be > 0, got 0"),
    ({"defaults": {"train": {"batch_size": "half"}}}, "defaults.train.batch_size"),
    (
        {"defaults": {"train": {"optimizer": "lbfgs"}}},
        "defaults.train.optimizer: must be 'adam', 'adamw' or 'sgd', got 'lbfgs'",
    ),
    ({"defaults": {"train": {"steps": 10, "epochs": 2}}}, "give steps or epochs, not both"),
    ({"defaults": {"train": {"schedule": {"kind": "linear"}}}}, "defaults.train.schedule.kind"),
    (
        {"defaults": {"train": {"schedule": {"gamma": 2}}}},
        "defaults.train.schedule.gamma: must be <= 1, got 2",
    ),
    ({"defaults": {"train": {"loss_weights": {"mse": 1.0}}}}, "unknown loss term(s) ['mse']"),
    ({"defaults": {"train": {"lrr": 0.1}}}, "defaults.train.lrr: is not a known field"),
    ({"defaults": {"tracking": {"every": -5}}}, "defaults.tracking.every"),
    (
        {"defaults": {"tracking": {"metrics": ["participation"]}}},
        "unknown metric(s) ['participation']",
    ),
    ({"defaults": {"tracking": {"mode": "online"}}}, "defaults.tracking.mode: must be"),
    ({"defaults": {"checkpoints": {"every": 0}}}, "defaults.checkpoints.every: must be > 0"),
    (
        {"defaults": {"early_stopping": {"monitor": "accuracy"}}},
        "defaults.early_stopping.monitor: must be a scalar",
    ),
    ({"defaults": {"early_stopping": {"mode": "up"}}}, "defaults.early_stopping.mode"),
    ({"defaults": {"early_stopping": {"patience": 0}}}, "early_stopping.patience: must be > 0"),
    ({"experiments": [{**GOOD, "arch": "resnet"}]}, "experiments[0].arch: must be one of"),
    ({"experiments": [{**GOOD, "dataset": "imagenet"}]}, "experiments[0].dataset: must be one of"),
    ({"experiments": [{**GOOD, "name": "a b"}]}, "experiments[0].name: must use letters"),
    (
        {"experiments": [{**GOOD, "phases": [{"name": "p", "start": 5, "end": 2}]}]},
        "end (2) must be > start (5)",
    ),
    (
        {
            "experiments": [
                {
                    **GOOD,
                    "phases": [
                        {"name": "a", "start": 0, "end": 10},
                        {"name": "b", "start": 5, "end": 20},
                    ],
                }
            ]
        },
        "phases 'a' and 'b' overlap",
    ),
    (
        {
            "experiments": [
                {**GOOD, "phases": [{"name": "a", "start": 0, "end": 10}], "stop_after_phase": "b"}
            ]
        },
        "stop_after_phase 'b' is not a phase",
    ),
    (
        {
            "experiments": [
                {
                    **GOOD,
                    "phases": [{"name": "a", "start": 0, "end": 9, "data": {"label_noise": 1.5}}],
                }
            ]
        },
        "experiments[0].phases[0].data.label_noise: must be < 1, got 1.5",
    ),
    ({"grid": {"train.lr": [0.1, -0.2]}}, "grid['train.lr'][1]: must be > 0, got -0.2"),
    ({"grid": {"seed": []}}, "grid axis 'seed' has no values"),
    ({"grid": {"seed": [0]}, "experiments": [{"dataset": "digits"}]}, "arch: is required"),
    ({"experiments": [GOOD, GOOD]}, "experiment names must be unique"),
]


@pytest.mark.parametrize(("suite", "message"), INVALID, ids=[m[:40] for _, m in INVALID])
def test_every_invalid_field_gets_its_own_message(
    tmp_path: Path, suite: dict, message: str
) -> None:
    import yaml

    path = tmp_path / "suite.yaml"
    path.write_text(yaml.safe_dump(suite))
    with pytest.raises(ConfigError) as info:
        expand_suite(load_suite(path), source=str(path))
    assert message in str(info.value), str(info.value)


def test_all_errors_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("defaults:\n  train: {lr: -1, steps: 0}\n  tracking: {mode: x}\n")
    with pytest.raises(ConfigError, match="3 invalid field") as info:
        expand_suite(load_suite(path), source=str(path))
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "match"),
    [("[1, 2]", "must hold a mapping"), ("a: [", "not valid YAML"), ("nmae: x", "nmae")],
)
def test_bad_files(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_suite(path)
    with pytest.raises(ConfigError, match="cannot be read"):
        load_suite(tmp_path / "missing.yaml")


def test_grid_expansion_and_names() -> None:
    suite = SuiteSpec(
        defaults={"train": {"steps": 50}},
        grid={"arch": ["mlp_medium", "cnn_shallow"], "seed": [0, 1], "train.lr": [0.1, 0.01]},
        experiments=[{"dataset": "digits"}],
    )
    specs = expand_suite(suite)
    assert len(specs) == 8
    names = [s.run_name for s in specs]
    assert names[0] == "mlp_medium_digits_lr=0.1_s0"
    assert len(set(names)) == 8
    assert {s.train.lr for s in specs} == {0.1, 0.01}
    assert all(s.train.steps == 50 for s in specs)


def test_lr_schedules() -> None:
    constant = LRScheduleSpec()
    assert lr_at(123, 0.1, constant, 1000) == 0.1
    step = LRScheduleSpec(kind="step", step_size=100, gamma=0.5)
    assert [lr_at(s, 1.0, step, 1000) for s in (0, 99, 100, 250)] == [1.0, 1.0, 0.5, 0.25]
    cosine = LRScheduleSpec(kind="cosine", min_lr=0.1)
    assert lr_at(0, 1.0, cosine, 100) == 1.0
    assert lr_at(100, 1.0, cosine, 100) == pytest.approx(0.1)
    assert lr_at(50, 1.0, cosine, 100) == pytest.approx(0.55)
    warm = LRScheduleSpec(kind="cosine", warmup_steps=4)
    assert [lr_at(s, 1.0, warm, 100) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]


def test_phases_and_batches_are_pure_functions_of_the_step() -> None:
    phases = [PhaseSpec(name="a", start=0, end=10), PhaseSpec(name="b", start=10, end=20)]
    assert [getattr(active_phase(s, phases), "name", None) for s in (0, 9, 10, 25)] == [
        "a",
        "a",
        "b",
        None,
    ]
    epoch = [batch_indices(s, 10, 5, seed=3) for s in range(2)]
    assert sorted(int(i) for b in epoch for i in b) == list(range(10))  # a permutation
    assert not (batch_indices(2, 10, 5, seed=3) == epoch[0]).all()  # new epoch, new order
    assert (batch_indices(1, 10, 5, seed=3) == epoch[1]).all()


def test_builtin_suites_expand() -> None:
    assert len(expand_suite(builtin_suite("smoke"))) == 3


def test_grokking_fast_pairs_every_seed_with_its_control() -> None:
    specs = expand_suite(builtin_suite("grokking-fast"))
    pairs = sorted((s.dataset, s.seed) for s in specs)
    assert pairs == sorted(
        (d, seed)
        for d in ("grokking_addition_p31", "grokking_addition_p31_shuffled")
        for seed in (0, 1, 2)
    )
    assert {(s.train.steps, s.tracking.every, s.train.lr) for s in specs} == {(800, 10, 5e-3)}
    # the original suite is unchanged
    assert [s.dataset for s in expand_suite(builtin_suite("grokking"))] == [
        "grokking_addition",
        "grokking_addition_shuffled",
    ]
