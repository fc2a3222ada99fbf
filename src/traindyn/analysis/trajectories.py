"""Trajectories: a run's long metrics table as one series per (layer, metric).

Every analysis in this package works on :class:`Series`: the finite values of one metric
on one layer, in step order. :func:`series_of` cuts a long table into them in one sort;
:func:`layer_depths` says which layer is deeper; :func:`temporal_distribution` answers
seed 002's question, "what share of the change happens in the first 10% of training?".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from traindyn.analysis.noise import trajectory_noise
from traindyn.exceptions import ConfigError
from traindyn.store.run import Run

__all__ = [
    "TEMPORAL_COLUMNS",
    "Series",
    "layer_depths",
    "pool_temporal",
    "series_of",
    "temporal_distribution",
    "total_steps_of",
]


@dataclass(frozen=True, eq=False)
class Series:
    """One metric on one layer over training.

    Attributes
    ----------
    layer, metric : str
        The ``layer`` and ``metric`` columns of the rows it came from.
    steps : ndarray of int64, shape (n,)
        Strictly increasing training steps.
    values : ndarray of float64, shape (n,)
        Finite values at those steps; rows with NaN/Inf (a failed measurement) are left out.
    """

    layer: str
    metric: str
    steps: NDArray[np.int64]
    values: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.steps)


def series_of(
    metrics: pd.DataFrame,
    *,
    metric: str | Sequence[str] | None = None,
    layer: str | Sequence[str] | None = None,
) -> list[Series]:
    """Cut a long metrics table into one :class:`Series` per (layer, metric).

    Parameters
    ----------
    metrics : DataFrame
        Columns ``step, layer, metric, value`` (a run's ``metrics`` table; extra columns
        are ignored). One value per (step, layer, metric) is expected; if a step repeats,
        the last row wins, as in the store.
    metric, layer : str or list of str, optional
        Keep only these.

    Returns
    -------
    list of Series
        Sorted by metric, then layer (in order of first appearance); series with no
        finite value are dropped.

    Raises
    ------
    ConfigError
        If a required column is missing.

    Examples
    --------
    >>> table = pd.DataFrame({"step": [0, 5, 10], "layer": "fc", "metric": "pr",
    ...                       "value": [3.0, float("nan"), 2.0]})
    >>> s, = series_of(table)
    >>> s.steps.tolist(), s.values.tolist()
    ([0, 10], [3.0, 2.0])
    """
    missing = {"step", "layer", "metric", "value"} - set(metrics.columns)
    if missing:
        raise ConfigError(
            f"metrics table must have columns step, layer, metric, value; {sorted(missing)} "
            f"missing (columns: {list(metrics.columns)}). Pass a run's `metrics` table."
        )
    table = metrics[["step", "layer", "metric", "value"]]
    if metric is not None:
        table = table[table["metric"].isin([metric] if isinstance(metric, str) else metric)]
    if layer is not None:
        table = table[table["layer"].isin([layer] if isinstance(layer, str) else layer)]
    if table.empty:
        return []
    values = table["value"].to_numpy(dtype=np.float64)
    table = table[np.isfinite(values)]
    # Integer codes (layers in order of first appearance, metrics sorted), then one sort
    # by (metric, layer, step): each series is a contiguous slice.
    layer_codes, layer_names = pd.factorize(table["layer"])
    metric_codes, metric_names = pd.factorize(table["metric"], sort=True)
    n_layers = len(layer_names)
    steps = table["step"].to_numpy(dtype=np.int64)
    vals = table["value"].to_numpy(dtype=np.float64)
    order = np.lexsort((np.arange(len(steps)), steps, layer_codes, metric_codes))
    steps, vals = steps[order], vals[order]
    key = (metric_codes.astype(np.int64) * (n_layers + 1) + layer_codes)[order]
    # Drop repeated steps within a group, keeping the last row (the store's rule).
    keep = np.ones(len(steps), dtype=bool)
    keep[:-1] = (key[:-1] != key[1:]) | (steps[:-1] != steps[1:])
    steps, vals, key = steps[keep], vals[keep], key[keep]
    bounds = np.flatnonzero(np.diff(key)) + 1
    out = []
    for start, stop in zip(
        np.concatenate(([0], bounds)), np.concatenate((bounds, [len(key)])), strict=True
    ):
        code = int(key[start])
        out.append(
            Series(
                layer=str(layer_names[code % (n_layers + 1)]),
                metric=str(metric_names[code // (n_layers + 1)]),
                steps=steps[start:stop],
                values=vals[start:stop],
            )
        )
    return out


def layer_depths(metrics: pd.DataFrame, *, order: Sequence[str] | None = None) -> dict[str, int]:
    """Depth index of every layer in ``metrics``: 0 for the one nearest the input.

    Parameters
    ----------
    metrics : DataFrame
        A metrics table (only its ``layer`` column is read).
    order : list of str, optional
        Layers from input to output, e.g. the tracker's ``layers`` recorded in
        ``run.json`` (``run.manifest.config["tracker"]["layers"]``: the order of
        ``named_modules()``, which is the forward order for sequential models). Layers
        not in it follow, in order of first appearance in the table.

    Examples
    --------
    >>> t = pd.DataFrame({"layer": ["fc2", "fc1", "fc2"]})
    >>> layer_depths(t), layer_depths(t, order=["fc1", "fc2"])
    ({'fc2': 0, 'fc1': 1}, {'fc1': 0, 'fc2': 1})
    """
    present = [str(x) for x in pd.unique(metrics["layer"].astype(str))]
    ranked = [name for name in (order or []) if name in set(present)]
    ranked += [name for name in present if name not in set(ranked)]
    return {name: i for i, name in enumerate(ranked)}


def total_steps_of(run: Run, *tables: pd.DataFrame) -> int:
    """Length of training in steps: ``total_steps`` from ``run.json`` when recorded
    (suites record it; so does a Tracker given ``total_steps``), else the largest step in
    ``tables``."""
    config = run.manifest.config
    total = config.get("total_steps") if isinstance(config, Mapping) else None
    tracker = config.get("tracker") if isinstance(config, Mapping) else None
    if total is None and isinstance(tracker, Mapping):
        total = tracker.get("total_steps")
    if isinstance(total, int) and total > 0:
        return total
    steps = [int(t["step"].max()) for t in tables if not t.empty]
    return max(steps, default=0)


TEMPORAL_COLUMNS = [
    "layer",
    "metric",
    "window",
    "start",
    "end",
    "change",
    "noise",
    "signal",
    "share",
]


def temporal_distribution(
    series: Iterable[Series],
    *,
    total_steps: int,
    boundaries: Sequence[float] = (0.1, 0.5),
    names: Sequence[str] = ("early", "mid", "late"),
) -> pd.DataFrame:
    """Share of each series' total absolute change that falls in each window of training.

    The change of a series is ``sum |v[i+1] - v[i]|`` over consecutive samples; the
    change between samples at steps ``s0 < s1`` is attributed to the window holding
    ``s1`` (the step at which it was first observed). Windows are fractions of
    ``total_steps``: with the seed's boundaries (0.1, 0.5) they are early [0, 10%),
    mid [10%, 50%) and late [50%, 100%].

    Measurement noise adds ``E|noise difference| = 2 sigma / sqrt(pi)`` to every
    difference, so on a long, noisy trajectory the raw sum mostly counts noise and the
    late window (most samples) looks busiest. Each window's expected noise
    contribution (``sigma`` from :func:`~traindyn.analysis.noise.trajectory_noise`) is
    therefore subtracted: ``signal = max(change - noise, 0)``, and ``share`` is the
    window's fraction of the summed signal. (The subtraction is conservative:
    ``E|s + n| - E|n| <= |s|``.)

    Parameters
    ----------
    series : iterable of Series
    total_steps : int
        Length of training (see :func:`total_steps_of`).
    boundaries : sequence of float
        Increasing fractions strictly between 0 and 1.
    names : sequence of str
        One more name than boundaries.

    Returns
    -------
    DataFrame
        Columns :data:`TEMPORAL_COLUMNS`: one row per series and window, with
        ``start``/``end`` in steps, the raw ``change``, its expected ``noise`` part,
        ``signal`` and ``share`` in [0, 1] (NaN for a series whose change is all noise).
        :func:`pool_temporal` pools rows over series and runs.

    Raises
    ------
    ConfigError
        If the boundaries are not increasing fractions in (0, 1) or names do not match.

    References
    ----------
    Seed 002 ("83.3% of dimensionality changes occur in first 10% of training").

    Examples
    --------
    A series that moves 3 units by step 5 and 1 unit at step 80 of 100:

    >>> s = Series("fc", "pr", np.array([0, 5, 50, 80]), np.array([0.0, 3.0, 3.0, 4.0]))
    >>> temporal_distribution([s], total_steps=100)["share"].tolist()
    [0.75, 0.0, 0.25]
    """
    bounds = [float(b) for b in boundaries]
    if any(not 0.0 < b < 1.0 for b in bounds) or any(a >= b for a, b in pairwise(bounds)):
        raise ConfigError(
            f"boundaries must be increasing fractions strictly between 0 and 1; got "
            f"{list(boundaries)!r}. The seed's are (0.1, 0.5)."
        )
    if len(names) != len(bounds) + 1:
        raise ConfigError(
            f"names must have one more entry than boundaries ({len(bounds) + 1}); got "
            f"{list(names)!r}."
        )
    if total_steps <= 0:
        raise ConfigError(f"total_steps must be > 0; got {total_steps!r}.")
    edges = np.array([0.0, *bounds, 1.0]) * total_steps
    rows = []
    for s in series:
        change = np.abs(np.diff(s.values))
        # Window of each change: the one holding the later step (right-closed last window).
        window = np.clip(np.searchsorted(edges, s.steps[1:], side="right") - 1, 0, len(names) - 1)
        per_window = np.bincount(window, weights=change, minlength=len(names))
        n_diffs = np.bincount(window, minlength=len(names))
        noise = n_diffs * 2.0 * trajectory_noise(s.values) / np.sqrt(np.pi)
        signal = np.maximum(per_window - noise, 0.0)
        total = signal.sum()
        for i, name in enumerate(names):
            rows.append(
                (
                    s.layer,
                    s.metric,
                    name,
                    float(edges[i]),
                    float(edges[i + 1]),
                    float(per_window[i]),
                    float(noise[i]),
                    float(signal[i]),
                    float(signal[i] / total) if total > 0 else np.nan,
                )
            )
    return pd.DataFrame(rows, columns=TEMPORAL_COLUMNS)


def pool_temporal(temporal: pd.DataFrame, *, by: Sequence[str] = ()) -> pd.DataFrame:
    """Pool :func:`temporal_distribution` rows: each window's share of the summed change.

    Parameters
    ----------
    temporal : DataFrame
        Rows of :func:`temporal_distribution`, possibly from many runs (with a ``run``
        column, say).
    by : sequence of str
        Extra grouping columns (``("run",)`` for per-run shares, ``("metric",)`` per
        metric); none pools everything.

    Returns
    -------
    DataFrame
        Columns ``*by, window, change, signal, share`` (share of the summed signal),
        windows in their original order.

    Examples
    --------
    >>> s = Series("fc", "pr", np.array([0, 5, 80]), np.array([0.0, 3.0, 4.0]))
    >>> pool_temporal(temporal_distribution([s], total_steps=100))["share"].tolist()
    [0.75, 0.0, 0.25]
    """
    keys = [*by, "window"]
    window_order = {w: i for i, w in enumerate(pd.unique(temporal["window"]))}
    pooled = (
        temporal.groupby(keys, sort=False, observed=True)[["change", "signal"]].sum().reset_index()
    )
    if by:
        totals = pooled.groupby(list(by), sort=False)["signal"].transform("sum")
    else:
        totals = pd.Series(pooled["signal"].sum(), index=pooled.index)
    pooled["share"] = (pooled["signal"] / totals).where(totals > 0)
    pooled["_order"] = pooled["window"].map(window_order)
    return (
        pooled.sort_values([*by, "_order"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )
