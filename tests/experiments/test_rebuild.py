"""rebuild() gives back the model and the exact probe a suite run was trained and tracked on."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from traindyn.capture import measure_checkpoints
from traindyn.exceptions import ConfigError
from traindyn.experiments import load_dataset, probe_split, rebuild
from traindyn.experiments.suite import ExperimentSpec
from traindyn.experiments.trainer import train
from traindyn.store import Run, open_run
from traindyn.store.checkpoints import load_checkpoint

# Non-default seeds, so that mixing up seed and data_seed shows.
SPEC = ExperimentSpec.model_validate(
    {
        "name": "cnn",
        "arch": "cnn_shallow",
        "dataset": "digits",
        "seed": 4,
        "data_seed": 1,
        "train": {"steps": 6},
        "tracking": {"every": 3, "probe_per_class": 6},
        "checkpoints": {"steps": [0]},
    }
)


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("rebuild") / "cnn"
    train(SPEC, run_dir)
    return run_dir


def test_rebuilt_model_is_the_runs_initialisation(cnn_run: Path) -> None:
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    rebuilt = rebuild(cnn_run)
    assert torch.equal(torch.get_rng_state(), rng)  # the caller's RNG is untouched
    assert rebuilt.spec == SPEC
    assert open_run(cnn_run).checkpoints() == [0, 6]
    # The step-0 checkpoint holds the weights the trainer initialised: same seed, same draw.
    initial = copy.deepcopy(rebuilt.model)
    load_checkpoint(initial, open_run(cnn_run).checkpoint_path(0))
    state = rebuilt.model.state_dict()
    assert all(torch.equal(state[k], v) for k, v in initial.state_dict().items())
    trained = copy.deepcopy(rebuilt.model)
    load_checkpoint(trained, open_run(cnn_run).checkpoint_path(6))
    assert not torch.equal(trained.state_dict()["head.weight"], state["head.weight"])


def test_rebuilt_probe_reproduces_the_recorded_metrics(cnn_run: Path) -> None:
    run = open_run(cnn_run)
    rebuilt = rebuild(run)
    x, y = rebuilt.probe
    recorded = run.manifest.probe
    assert isinstance(recorded, dict)
    assert list(x.shape) == recorded["shape"] and recorded["n"] == 60
    counts = {str(c): int((y == c).sum()) for c in torch.unique(y).tolist()}
    assert counts == recorded["class_counts"]

    tracking = rebuilt.spec.tracking
    options = {"layers": tracking.layers, "metrics": tracking.metrics, "reduce": tracking.reduce}
    again = measure_checkpoints(run, rebuilt.model, rebuilt.probe, **options)
    keys = ["step", "layer", "metric"]
    merged = again.merge(run.metrics, on=keys, suffixes=("_again", "_run"))
    layers = run.manifest.config["tracker"]["layers"]
    assert layers == ["blocks.0", "blocks.1"]
    assert len(merged) == len(again) == 2 * len(layers) * len(tracking.metrics)  # steps 0, 6
    rel = np.abs(merged["value_again"] - merged["value_run"]) / np.abs(merged["value_run"])
    assert float(rel.max()) < 1e-6

    # A probe drawn with another seed is measurably different: the check has teeth.
    data = load_dataset("digits", seed=1)
    other = probe_split(data, per_class=6, seed=0)
    wrong = measure_checkpoints(run, rebuilt.model, other, steps=[6], **options)
    merged = wrong.merge(run.metrics, on=keys, suffixes=("_again", "_run"))
    rel = np.abs(merged["value_again"] - merged["value_run"]) / np.abs(merged["value_run"])
    assert float(rel.max()) > 1e-3


def test_a_run_not_trained_by_a_suite_is_refused_with_its_path(tmp_path: Path) -> None:
    Run.create(tmp_path / "mine", config={"lr": 0.1}, handle_signals=False).finish()
    with pytest.raises(ConfigError, match=r"mine was not trained by a suite.*probe_noise"):
        rebuild(tmp_path / "mine")
    bad = {"experiment": {"arch": "mlp", "dataset": "synthetic"}}
    Run.create(tmp_path / "old", config=bad, handle_signals=False).finish()
    with pytest.raises(ConfigError, match=r"old: config\['experiment'\].*experiment.arch"):
        rebuild(tmp_path / "old")


def test_a_probe_that_differs_from_the_recorded_one_is_refused(tmp_path: Path) -> None:
    recorded = {"dataset": "digits", "dataset_seed": 1, "per_class": 6, "seed": 1, "n": 70}
    config = {"experiment": SPEC.model_dump(mode="json"), "probe": recorded}
    Run.create(tmp_path / "moved", config=config, handle_signals=False).finish()
    with pytest.raises(ConfigError, match="n: recorded 70, rebuilt 60"):
        rebuild(tmp_path / "moved")
