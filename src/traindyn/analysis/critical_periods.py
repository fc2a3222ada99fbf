"""Critical periods: windows where a representation changes fastest, and who moves together.

Seed 001's definitions: velocity is the first derivative of a metric over training steps
and acceleration the second; a sample is critical when the speed ``|velocity|`` exceeds
the 90th percentile of that trajectory's speeds; coordination is the fraction of layers
critical at a step; loss correlation is the fraction of critical periods during which the
loss falls.

Read the numbers with their construction in mind: a percentile rule marks about 10% of
every trajectory's samples critical whatever happens, so "critical periods exist" is
true by definition; what carries information is *where* they fall and how far
coordination exceeds what independent layers would give (the validity analysis compares
it with a shuffled null).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
    if not 0.0 <= percentile < 100.0:
        raise ConfigError(f"percentile must be in [0, 100); got {percentile!r}. Seed default: 90.")
    if not 0.0 < coordination_threshold <= 1.0:
        raise ConfigError(
            f"coordination_threshold must be in (0, 1]; got {coordination_threshold!r}."
        )
    loss_steps = loss_values = None
    if loss is not None and not loss.empty:
        ordered = loss.sort_values("step", kind="stable")
        finite = np.isfinite(ordered["value"].to_numpy(dtype=np.float64))
        loss_steps = ordered["step"].to_numpy(dtype=np.int64)[finite]
        loss_values = ordered["value"].to_numpy(dtype=np.float64)[finite]
    periods = []
    marks = []
    for s in series:
        if len(s) < 2:
            continue
        dt = np.diff(s.steps).astype(np.float64)
        velocity = np.diff(s.values) / dt
        acceleration = np.r_[np.nan, np.diff(velocity) / dt[1:]]
        speed = np.abs(velocity)
        critical = speed > np.percentile(speed, percentile)
        at = s.steps[1:]
        marks.append(pd.DataFrame({"metric": s.metric, "step": at, "critical": critical}))
        if not critical.any():
            continue
        lv = (
            interval_loss_velocity(loss_steps, loss_values, s.steps)[1:]
            if loss_steps is not None and loss_values is not None
            else np.full(len(at), np.nan)
        )
        edges = np.diff(np.r_[0, critical.astype(np.int8), 0])
        for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
            with np.errstate(invalid="ignore"):
                loss_v = float(np.nanmean(lv[a:b])) if np.isfinite(lv[a:b]).any() else np.nan
            periods.append(
                (
                    s.layer,
                    s.metric,
                    int(s.steps[a]),
                    int(at[b - 1]),
                    int(b - a),
                    float(speed[a:b].max()),
                    float(velocity[a:b].mean()),
                    float(np.nanmean(acceleration[a:b]))
                    if np.isfinite(acceleration[a:b]).any()
                    else np.nan,
                    loss_v,
                    bool(loss_v < 0) if loss_v == loss_v else False,
                )
            )
    period_table = pd.DataFrame(periods, columns=PERIOD_COLUMNS)
    if marks:
        all_marks = pd.concat(marks, ignore_index=True)
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
