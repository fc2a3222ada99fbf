"""Critical periods: windows where a representation changes fastest, and who moves together.

Seed 001's definitions: velocity is the first derivative of a metric over training steps
and acceleration the second; a sample is critical when the speed ``|velocity|`` exceeds
the 90th percentile of that trajectory's speeds; coordination is the fraction of layers
critical at a step; loss correlation is the fraction of critical periods during which the
loss falls.

Read the numbers with their construction in mind: a percentile rule marks about 10% of
every trajectory's samples critical whatever happens, so "critical periods exist" is
true by definition; what carries information is *where* they fall and how far
coordination exceeds what independent layers would give
(:func:`~traindyn.analysis.baselines.coordination_null` compares it, and the loss
correlation, with a null that shifts each layer's marks independently).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from traindyn.analysis.trajectories import Series
from traindyn.exceptions import ConfigError

__all__ = [
    "COORDINATION_COLUMNS",
    "PERIOD_COLUMNS",
    "SUMMARY_COLUMNS",
    "CriticalPeriods",
    "critical_periods",
    "interval_loss_velocity",
]

PERIOD_COLUMNS = [
    "layer",
    "metric",
    "start",
    "end",
    "n_samples",
    "peak_speed",
    "mean_velocity",
    "mean_acceleration",
    "loss_velocity",
    "loss_falling",
]
COORDINATION_COLUMNS = ["metric", "step", "n_layers", "n_critical", "coordination"]
SUMMARY_COLUMNS = [
    "metric",
    "n_layers",
    "n_periods",
    "critical_steps",
    "mean_coordination",
    "max_coordination",
    "coordinated",
    "loss_correlation",
]


@dataclass(frozen=True)
class CriticalPeriods:
    """Critical periods of a run.

    Attributes
    ----------
    periods : DataFrame
        Columns :data:`PERIOD_COLUMNS`: maximal runs of consecutive critical samples of
        one series. ``start`` is the sampled step before the first critical change and
        ``end`` the step of the last one, so the period spans the change; speeds and
        velocities are in metric units per training step; ``loss_velocity`` is the mean
        loss velocity over the period (NaN without a loss) and ``loss_falling`` whether
        it is negative.
    coordination : DataFrame
        Columns :data:`COORDINATION_COLUMNS`: per metric and sampled step, how many
        layers had a value there, how many were critical, and their fraction.
    summary : DataFrame
        Columns :data:`SUMMARY_COLUMNS`, one row per metric: ``critical_steps`` (steps
        where any layer is critical), ``mean_coordination`` over those steps,
        ``max_coordination``, ``coordinated`` (max coordination >= the threshold: seed
        001's "> 30% of layers changing together") and ``loss_correlation`` (fraction
        of periods with falling loss; NaN without a loss).
    """

    periods: pd.DataFrame
    coordination: pd.DataFrame
    summary: pd.DataFrame


def interval_loss_velocity(
    loss_steps: NDArray[np.int64], loss: NDArray[np.float64], steps: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Loss velocity at each sampled step, from interval means of a per-step loss.

    The loss is averaged over each interval ``(steps[i-1], steps[i]]`` (a per-batch loss
    is too noisy to difference directly); the velocity at ``steps[i]`` is the change of
    that mean from the previous interval, divided by the step spacing. NaN where an
    interval has no loss value, and at the first two samples.

    Parameters
    ----------
    loss_steps, loss : ndarray of shape (m,)
        The ``loss`` scalar (ascending steps).
    steps : ndarray of shape (n,)
        Ascending sampled steps.

    Returns
    -------
    ndarray of float64, shape (n,)

    Examples
    --------
    A loss falling by 1 per step, sampled every 10 steps:

    >>> t = np.arange(0, 41)
    >>> interval_loss_velocity(t, 100.0 - t, np.array([0, 10, 20, 30, 40])).tolist()
    [nan, nan, -1.0, -1.0, -1.0]
    """
    out = np.full(len(steps), np.nan)
    if len(loss_steps) == 0 or len(steps) < 3:
        return out
    c = np.r_[0.0, np.cumsum(loss)]
    right = np.searchsorted(loss_steps, steps, side="right")
    count = right[1:] - right[:-1]
    total = c[right[1:]] - c[right[:-1]]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(count > 0, total / count, np.nan)  # mean over (steps[i-1], steps[i]]
    out[2:] = np.diff(means) / np.diff(steps[1:])
    return out


def critical_periods(
    series: Sequence[Series],
    *,
    percentile: float = 90.0,
    coordination_threshold: float = 0.3,
    loss: pd.DataFrame | None = None,
) -> CriticalPeriods:
    """Velocity, acceleration, critical periods, coordination and loss correlation.

    Parameters
    ----------
    series : sequence of Series
    percentile : float
        A sample is critical when its speed exceeds this percentile of the series'
        speeds (seed 001: 90). Strictly: a constant series has no critical sample.
    coordination_threshold : float
        Fraction of layers critical at once that makes a metric ``coordinated``.
    loss : DataFrame, optional
        Columns ``step, value``: the training loss (e.g. ``scalars[scalars.name ==
        "loss"]``), see :func:`interval_loss_velocity`.

    Returns
    -------
    CriticalPeriods

    Raises
    ------
    ConfigError
        If ``percentile`` is not in [0, 100) or the threshold not in (0, 1].

    References
    ----------
    Seed 001 (Phase 1, step 1.3). Achille, A., Rovere, M., & Soatto, S. (2019). Critical
    learning periods in deep networks. ICLR.

    Examples
    --------
    Two layers that both change fast between steps 40 and 60 of a slow drift:

    >>> steps = np.arange(0, 101, 5)
    >>> values = steps * 0.25 + np.where(steps >= 50, 1.0, 0.0)
    >>> cp = critical_periods([Series("a", "pr", steps, values), Series("b", "pr", steps, values)])
    >>> cp.periods[["layer", "start", "end"]].values.tolist()
    [['a', 45, 50], ['b', 45, 50]]
    >>> float(cp.summary["max_coordination"].item())
    1.0
    """
    _check_options(percentile, coordination_threshold)
    loss_steps, loss_values = _loss_arrays(loss)
    columns: dict[str, list[NDArray[Any]]] = {c: [] for c in PERIOD_COLUMNS}
    mark_metric: list[str] = []
    mark_steps: list[NDArray[np.int64]] = []
    mark_critical: list[NDArray[np.bool_]] = []
    loss_cache: dict[bytes, NDArray[np.float64]] = {}  # series of a run share their steps
    for s in series:
        if len(s) < 2:
            continue
        velocity, critical = _marks(s, percentile)
        acceleration = np.r_[np.nan, np.diff(velocity) / np.diff(s.steps[1:])]
        speed = np.abs(velocity)
        at = s.steps[1:]
        mark_metric.append(s.metric)
        mark_steps.append(at)
        mark_critical.append(critical)
        if not critical.any():
            continue
        if loss_steps is not None and loss_values is not None:
            key = s.steps.tobytes()
            if key not in loss_cache:
                loss_cache[key] = interval_loss_velocity(loss_steps, loss_values, s.steps)[1:]
            lv = loss_cache[key]
        else:
            lv = np.full(len(at), np.nan)
        edges = np.diff(np.r_[0, critical.astype(np.int8), 0])
        a, b = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # periods [a, b)
        n = b - a
        # reduceat over [a0, b0, a1, b1, ...] reduces each period at even positions; the
        # pad keeps an index equal to len(speed) valid.
        bounds = np.ravel(np.column_stack([a, b]))
        loss_v = _segment_nanmean(lv, a, b)
        columns["layer"].append(np.full(len(a), s.layer, dtype=object))
        columns["metric"].append(np.full(len(a), s.metric, dtype=object))
        columns["start"].append(s.steps[a])
        columns["end"].append(at[b - 1])
        columns["n_samples"].append(n.astype(np.int64))
        columns["peak_speed"].append(np.maximum.reduceat(np.r_[speed, 0.0], bounds)[::2])
        columns["mean_velocity"].append(_segment_nanmean(velocity, a, b))
        columns["mean_acceleration"].append(_segment_nanmean(acceleration, a, b))
        columns["loss_velocity"].append(loss_v)
        columns["loss_falling"].append(loss_v < 0)
    if columns["layer"]:
        period_table = pd.DataFrame({c: np.concatenate(v) for c, v in columns.items()})
    else:
        period_table = pd.DataFrame(columns=PERIOD_COLUMNS)
    if mark_steps:
        all_marks = pd.DataFrame(
            {
                "metric": np.repeat(
                    np.array(mark_metric, dtype=object), [len(m) for m in mark_steps]
                ),
                "step": np.concatenate(mark_steps),
                "critical": np.concatenate(mark_critical),
            }
        )
        coord = (
            all_marks.groupby(["metric", "step"], sort=True)["critical"]
            .agg(n_layers="size", n_critical="sum")
            .reset_index()
        )
        coord["n_critical"] = coord["n_critical"].astype(np.int64)
        coord["coordination"] = coord["n_critical"] / coord["n_layers"]
    else:
        coord = pd.DataFrame(columns=COORDINATION_COLUMNS)
    summary = _summary(series, period_table, coord, coordination_threshold, loss_steps is not None)
    return CriticalPeriods(period_table, coord[COORDINATION_COLUMNS], summary)


def _check_options(percentile: float, coordination_threshold: float) -> None:
    """Raise :class:`ConfigError` unless the percentile and threshold are in range."""
    if not 0.0 <= percentile < 100.0:
        raise ConfigError(f"percentile must be in [0, 100); got {percentile!r}. Seed default: 90.")
    if not 0.0 < coordination_threshold <= 1.0:
        raise ConfigError(
            f"coordination_threshold must be in (0, 1]; got {coordination_threshold!r}."
        )


def _loss_arrays(
    loss: pd.DataFrame | None,
) -> tuple[NDArray[np.int64], NDArray[np.float64]] | tuple[None, None]:
    """The finite ``step, value`` pairs of a loss table in step order (None, None if empty)."""
    if loss is None or loss.empty:
        return None, None
    ordered = loss.sort_values("step", kind="stable")
    finite = np.isfinite(ordered["value"].to_numpy(dtype=np.float64))
    return (
        ordered["step"].to_numpy(dtype=np.int64)[finite],
        ordered["value"].to_numpy(dtype=np.float64)[finite],
    )


def _marks(s: Series, percentile: float) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Velocity at ``s.steps[1:]`` and seed 001's critical marks: speed > its percentile.

    Guts of :func:`critical_periods`, shared with the baselines; no input validation
    (``len(s) >= 2``, percentile in [0, 100)).
    """
    velocity = np.diff(s.values) / np.diff(s.steps).astype(np.float64)
    speed = np.abs(velocity)
    return velocity, speed > np.percentile(speed, percentile)


def _segment_nanmean(
    values: NDArray[np.float64], a: NDArray[np.int64], b: NDArray[np.int64]
) -> NDArray[np.float64]:
    """Mean of the finite values of ``values[a[i]:b[i]]`` for each i (NaN if none)."""
    finite = np.isfinite(values)
    total = np.r_[0.0, np.cumsum(np.where(finite, values, 0.0))]
    count = np.r_[0, np.cumsum(finite)]
    n = count[b] - count[a]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (total[b] - total[a]) / n, np.nan)


def _summary(
    series: Sequence[Series],
    periods: pd.DataFrame,
    coord: pd.DataFrame,
    threshold: float,
    has_loss: bool,
) -> pd.DataFrame:
    rows = []
    for metric in dict.fromkeys(s.metric for s in series):
        c = coord[coord["metric"] == metric]
        hot = c[c["n_critical"] > 0]
        p = periods[periods["metric"] == metric]
        rows.append(
            (
                metric,
                sum(1 for s in series if s.metric == metric),
                len(p),
                len(hot),
                float(hot["coordination"].mean()) if len(hot) else np.nan,
                float(c["coordination"].max()) if len(c) else np.nan,
                bool(len(c) and c["coordination"].max() >= threshold),
                float(p["loss_falling"].mean()) if has_loss and len(p) else np.nan,
            )
        )
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
