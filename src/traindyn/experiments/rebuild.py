"""Rebuild a suite run's model and probe set from its manifest, for post-hoc measurement.

A run trained by :func:`~traindyn.experiments.trainer.train` records its full
:class:`~traindyn.experiments.suite.ExperimentSpec` in ``run.json``
(``config["experiment"]``). :func:`rebuild` replays the trainer's set-up from it (seed,
dataset, model, probe split) so that checkpoints can be measured again on exactly the
probe the run was tracked on: :func:`~traindyn.capture.probe_noise`,
:func:`~traindyn.capture.compare_checkpoints` and
:func:`~traindyn.capture.measure_checkpoints` take the rebuilt model and probe.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import ValidationError

from traindyn.exceptions import ConfigError
from traindyn.experiments.datasets import probe_description
from traindyn.experiments.models import ZooModel
from traindyn.experiments.suite import ExperimentSpec, _describe
from traindyn.experiments.trainer import setup_experiment
from traindyn.store import Run, open_run

__all__ = ["Rebuilt", "rebuild"]


@dataclass(frozen=True, eq=False)
class Rebuilt:
    """A suite run's experiment, model architecture and probe set, rebuilt.

    Attributes
    ----------
    spec : ExperimentSpec
        The run's experiment, as recorded in ``run.json``. ``spec.tracking`` holds the
        layers, metrics and reduction rule the run was measured with.
    model : MLP, CNN, Transformer or ViT
        The architecture with the weights the run was *initialised* with (drawn as the
        trainer draws them); load a checkpoint for trained weights (the post-hoc
        functions do, strictly).
    probe : tuple of (Tensor, Tensor)
        ``x`` of shape (n, *input_shape) and class labels ``y`` of shape (n,): the
        probe set every tracked metric of the run was computed on.
    """

    spec: ExperimentSpec
    model: ZooModel
    probe: tuple[torch.Tensor, torch.Tensor]

    def initial_model(self, seed: int) -> ZooModel:
        """The architecture freshly initialised as a run of this experiment with ``seed``
        would start (the trainer's set-up with ``spec.seed`` replaced), under a forked RNG.

        ``initial_model(spec.seed)`` holds exactly the run's initial weights, and other
        seeds give the random-initialisation band of
        :func:`traindyn.capture.null_controls` (pass ``init=rebuilt.initial_model``).

        Raises
        ------
        ConfigError
            If ``seed`` is not a non-negative integer.
        """
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ConfigError(f"seed must be a non-negative integer; got {seed!r}.")
        with torch.random.fork_rng(devices=[]):
            _, model, _ = setup_experiment(self.spec.model_copy(update={"seed": seed}))
        return model


def rebuild(run: Run | str | os.PathLike[str]) -> Rebuilt:
    """Rebuild a suite run's model and probe exactly as :func:`train` built them.

    The trainer seeds torch with ``spec.seed``, loads ``spec.dataset`` with
    ``spec.data_seed``, builds ``spec.arch`` for the data's shape and classes, and draws
    ``spec.tracking.probe_per_class`` probe samples per class with ``spec.data_seed``;
    this function does the same, under a forked RNG (the caller's torch random state is
    left unchanged). The rebuilt probe is checked against the one the run recorded.

    Parameters
    ----------
    run : Run, str or os.PathLike
        A run directory written by a suite (``traindyn run``).

    Returns
    -------
    Rebuilt

    Raises
    ------
    RunNotFound
        If ``run`` is a path without a ``run.json``.
    ConfigError
        If the run has no ``config["experiment"]`` (it was not trained by a suite), the
        recorded experiment is not valid in this version of traindyn, or the rebuilt
        probe differs from the recorded probe description (another dataset version).

    Examples
    --------
    >>> import tempfile
    >>> from traindyn.experiments.suite import ExperimentSpec
    >>> from traindyn.experiments.trainer import train
    >>> spec = ExperimentSpec(arch="mlp_medium", dataset="digits", train={"steps": 2},
    ...                       tracking={"every": 1, "probe_per_class": 3})
    >>> run_dir = tempfile.mkdtemp() + "/mlp"
    >>> _ = train(spec, run_dir)
    >>> rebuilt = rebuild(run_dir)
    >>> rebuilt.spec == spec, tuple(rebuilt.probe[0].shape), rebuilt.probe[1][:4].tolist()
    (True, (30, 1, 8, 8), [0, 0, 0, 1])
    """
    r = run if isinstance(run, Run) else open_run(run)
    config = r.manifest.config
    experiment = config.get("experiment") if isinstance(config, Mapping) else None
    if not isinstance(experiment, Mapping):
        raise ConfigError(
            f"{r.path} was not trained by a suite: its run.json has no config['experiment'] "
            "to rebuild the model and probe from; build the model and probe yourself and "
            "call traindyn.capture.probe_noise."
        )
    try:
        spec = ExperimentSpec.model_validate(experiment)
    except ValidationError as exc:
        lines = "; ".join(_describe("experiment", exc))
        raise ConfigError(
            f"{r.path}: config['experiment'] in run.json is not a valid experiment for this "
            f"version of traindyn ({lines}); build the model and probe yourself."
        ) from exc
    with torch.random.fork_rng(devices=[]):
        data, model, probe = setup_experiment(spec)
    per_class = spec.tracking.probe_per_class
    recorded = config.get("probe") if isinstance(config, Mapping) else None
    if isinstance(recorded, Mapping):
        _check_probe(r, recorded, probe_description(data, per_class=per_class, seed=spec.data_seed))
    return Rebuilt(spec=spec, model=model, probe=probe)


def _check_probe(run: Run, recorded: Mapping[str, Any], rebuilt: Mapping[str, Any]) -> None:
    """Refuse a probe whose description differs from the run's (every difference listed)."""
    differ = [
        f"{key}: recorded {recorded.get(key)!r}, rebuilt {value!r}"
        for key, value in rebuilt.items()
        if key in recorded and recorded[key] != value
    ]
    if differ:
        raise ConfigError(
            f"the probe rebuilt for {run.path} differs from the one it was tracked on "
            f"({'; '.join(differ)}); the dataset has changed since the run was trained."
        )
