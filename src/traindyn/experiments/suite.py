"""Built-in suites: named lists of experiments that ``traindyn run NAME`` executes."""

from __future__ import annotations

import itertools
from collections.abc import Callable

from traindyn.exceptions import ConfigError
from traindyn.experiments.trainer import TrainConfig

__all__ = ["SUITES", "builtin_suite"]


def _quick() -> list[TrainConfig]:
    # One MLP, one CNN and one small Transformer on both bundled datasets, two seeds:
    # 12 runs of 300 steps, each measured every 5 steps on a fixed 200-sample probe.
    archs = ("mlp_medium", "cnn_shallow", "transformer_shallow")
    datasets = ("digits", "mnist1d")
    seeds = (0, 1)
    return [
        TrainConfig(arch=a, dataset=d, seed=s)
        for a, d, s in itertools.product(archs, datasets, seeds)
    ]


def _smoke() -> list[TrainConfig]:
    # Every architecture once, 40 steps: checks an installation in seconds.
    return [
        TrainConfig(arch=a, dataset="digits", steps=40, probe_per_class=10)
        for a in ("mlp_medium", "cnn_shallow", "transformer_shallow")
    ]


SUITES: dict[str, tuple[str, Callable[[], list[TrainConfig]]]] = {
    "quick": (
        "MLP, CNN and Transformer on digits and mnist1d, 2 seeds, every 5 steps (~1 min)",
        _quick,
    ),
    "smoke": ("MLP, CNN and Transformer on digits, 40 steps: an installation check", _smoke),
}


def builtin_suite(name: str) -> list[TrainConfig]:
    """The experiments of a built-in suite.

    Raises
    ------
    ConfigError
        If ``name`` is not a built-in suite; the message lists them.
    """
    if name not in SUITES:
        raise ConfigError(
            f"suite must be one of {', '.join(repr(s) for s in SUITES)}; got {name!r}."
        )
    return SUITES[name][1]()
