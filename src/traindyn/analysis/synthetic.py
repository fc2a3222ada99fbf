"""Synthetic trajectories with planted answers, for tests, benchmarks and detector checks.

Like ruptures' ``pw_constant``: generators whose truth is known, shipped in the package
so that users can check an analysis (or their own detector) on them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from traindyn.exceptions import ConfigError

__all__ = ["planted_metrics", "trajectory"]


def trajectory(
    n: int,
    *,
    level: float = 10.0,
    jumps: Mapping[int, float] | None = None,
    slope: float = 0.0,
    decay: tuple[float, float] | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> NDArray[np.float64]:
    """A trajectory of ``n`` samples: level + steps + linear drift + decay + white noise.

    Parameters
    ----------
    n : int
        Number of samples.
    level : float
        Starting value.
    jumps : mapping of int to float, optional
        ``{index: size}``: the value rises by ``size`` from sample ``index`` on.
    slope : float
        Drift per sample.
    decay : (amplitude, tau), optional
        Adds ``amplitude * exp(-i / tau)`` (a fast early change, as in real training).
    noise : float
        Standard deviation of Gaussian white noise.
    seed : int

    Examples
    --------
    >>> trajectory(6, level=1.0, jumps={3: 2.0}).tolist()
    [1.0, 1.0, 1.0, 3.0, 3.0, 3.0]
    """
    if n < 1:
        raise ConfigError(f"n must be >= 1; got {n!r}.")
    i = np.arange(n, dtype=np.float64)
    v = level + slope * i
    for index, size in (jumps or {}).items():
        if not 0 < index < n:
            raise ConfigError(f"jump index must be in 1..{n - 1}; got {index!r}.")
        v[index:] += size
    if decay is not None:
        amplitude, tau = decay
        v += amplitude * np.exp(-i / tau)
    if noise > 0:
        v += np.random.default_rng(seed).normal(0.0, noise, n)
    return v


def planted_metrics(
    *,
    n_samples: int = 400,
    every: int = 5,
    layers: Sequence[str] = ("layer0", "layer1", "layer2"),
    metrics: Sequence[str] = ("participation_ratio",),
    jumps: Mapping[str, Mapping[int, float]] | None = None,
    noise: float = 0.01,
    slope: float = 0.0,
    decay: tuple[float, float] | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """A run's long metrics table with planted jumps per layer.

    Parameters
    ----------
    n_samples : int
        Samples per series; the steps are ``0, every, 2 * every, ...``.
    every : int
    layers, metrics : sequence of str
    jumps : mapping of layer to {sample index: size}, optional
        Planted steps (the same for every metric of the layer).
    noise, slope, decay : see :func:`trajectory`
    seed : int
        Each series gets its own stream derived from it.

    Returns
    -------
    DataFrame
        Columns ``step, layer, metric, value, reason`` (reason null), sorted by step.

    Examples
    --------
    >>> t = planted_metrics(n_samples=4, layers=["a"], jumps={"a": {2: 1.0}}, noise=0.0)
    >>> t["value"].tolist()
    [10.0, 10.0, 11.0, 11.0]
    """
    rng = np.random.default_rng(seed)
    steps = np.arange(n_samples, dtype=np.int64) * every
    frames = []
    for layer in layers:
        for metric in metrics:
            values = trajectory(
                n_samples,
                jumps=(jumps or {}).get(layer),
                slope=slope,
                decay=decay,
                noise=noise,
                seed=int(rng.integers(2**31)),
            )
            frames.append(
                pd.DataFrame({"step": steps, "layer": layer, "metric": metric, "value": values})
            )
    table = pd.concat(frames, ignore_index=True).sort_values("step", kind="stable")
    table["reason"] = pd.Series([None] * len(table), dtype="string", index=table.index)
    return table.reset_index(drop=True)
