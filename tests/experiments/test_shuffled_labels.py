"""A label-shuffled twin memorises its training set but stays at chance on the probe."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import traindyn as td
from traindyn.analysis.chance import shuffled_controls
from traindyn.exceptions import ConfigError
from traindyn.experiments import load_dataset, rebuild
from traindyn.experiments.suite import ExperimentSpec, SuiteSpec, expand_suite
from traindyn.experiments.trainer import setup_experiment, train

SPEC = ExperimentSpec(
    arch="mlp_medium",
    dataset="digits",
    train={"steps": 300, "lr": 3e-3, "batch_size": 128},
    tracking={"every": 50, "probe_per_class": 10},
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("shuffled")
    train(SPEC, root / SPEC.run_name)
    twin = SPEC.shuffled_control()
    train(twin, root / twin.run_name)
    return root / SPEC.run_name, root / twin.run_name


def test_the_twin_memorises_but_its_probe_accuracy_stays_at_chance(
    runs: tuple[Path, Path],
) -> None:
    real, control = (td.open_run(p).scalars for p in runs)

    def series(table: object, name: str) -> list[float]:
        return table.query(f"name == '{name}'")["value"].tolist()  # type: ignore[attr-defined]

    batch = series(control, "batch_accuracy")
    assert sum(batch[:20]) / 20 < 0.2  # chance is 0.1
    assert sum(batch[-20:]) / 20 > 0.5  # memorising the permuted labels
    assert max(series(control, "probe_accuracy")[1:]) < 0.25  # true labels: chance
    assert series(real, "probe_accuracy")[-1] > 0.85  # the real run learns


def test_the_option_is_recorded_and_the_twin_pairs_with_its_run(runs: tuple[Path, Path]) -> None:
    real, control = runs
    experiment = td.open_run(control).manifest.config["experiment"]
    assert experiment["shuffle_labels"] is True and experiment["name"].endswith("_shuffled")
    assert [r.path for r in shuffled_controls(real, real.parent)] == [control]
    # rebuild gives the same probe, with the true labels, for both
    a, b = rebuild(real).probe, rebuild(control).probe
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_only_the_training_labels_move_and_the_initial_weights_do_not() -> None:
    data, model, probe = setup_experiment(SPEC)
    sdata, smodel, sprobe = setup_experiment(SPEC.shuffled_control())
    assert torch.equal(data.x_train, sdata.x_train) and torch.equal(data.y_test, sdata.y_test)
    assert not torch.equal(data.y_train, sdata.y_train)
    assert torch.equal(torch.bincount(data.y_train), torch.bincount(sdata.y_train))
    assert all(
        torch.equal(p, q) for p, q in zip(model.parameters(), smodel.parameters(), strict=True)
    )
    assert torch.equal(probe[1], sprobe[1])
    # one permutation per data seed: reproducible, and another seed gives another one
    again, _, _ = setup_experiment(SPEC.shuffled_control())
    other, _, _ = setup_experiment(SPEC.shuffled_control().model_copy(update={"data_seed": 1}))
    assert torch.equal(again.y_train, sdata.y_train)
    assert not torch.equal(other.y_train, load_dataset("digits", seed=1).y_train)


def test_a_grid_axis_makes_twins_and_a_control_has_no_twin() -> None:
    suite = SuiteSpec(
        defaults={"arch": "mlp_medium", "dataset": "digits"}, grid={"shuffle_labels": [False, True]}
    )
    names = [s.run_name for s in expand_suite(suite)]
    assert names == [
        "mlp_medium_digits_shuffle_labels=False_s0",
        "mlp_medium_digits_shuffle_labels=True_s0",
    ]
    with pytest.raises(ConfigError, match="already has shuffle_labels=True"):
        SPEC.shuffled_control().shuffled_control()
