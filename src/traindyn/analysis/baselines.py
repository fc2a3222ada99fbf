"""Baselines: what coordination and loss correlation would be if layers moved independently.

:func:`~traindyn.analysis.critical_periods.critical_periods` marks about 10% of every
trajectory critical by construction, so its coordination and loss correlation are never
zero, even for layers that have nothing to do with each other or with the loss.
:func:`coordination_null` says how large they are by chance: it circularly shifts each
layer's sequence of critical marks by its own uniform random offset and recomputes the
statistics. The shift keeps each layer's number of critical samples, their spacing and
their clustering into periods, and destroys only their alignment across layers (for
coordination) and with the loss (for loss correlation): exactly the property the seeds'
claims are about.

How to read the numbers
-----------------------
Compare every statistic with its ``_null`` column (the null mean) and ``_p95`` (what
chance exceeds one time in twenty), never with zero. Mean coordination is averaged over
the steps where *any* layer is critical, so chance alone makes it large when there are
few layers: with ``L`` layers each critical at a fraction ``f`` of the steps
independently it is about ``f / (1 - (1 - f)**L)`` (:func:`chance_coordination`). At
the 90th percentile (``f = 0.1``) that is 0.53 for 2 layers, about 0.37 for 3, 0.24 for
5, 0.18 for 8 and 0.12 for 16 layers, and never below 0.1. Max coordination over a few
hundred steps is inflated by chance too: with 16 independent layers and 400 samples its
null mean is about 0.37 (6 of 16 layers at one step) and practically every shuffle
reaches 0.3, so seed 001's "coordinated" (max >= 0.3) is what chance gives. Loss
correlation's chance level is about the share of sampled intervals over which the
(interval-mean) loss falls, well above 0.5 in a run that learns (about 0.87 in the
smoke suite's runs).
So "mean coordination 6.5%" or "loss correlation 56.8%" means nothing until the
``_excess`` (observed minus null mean) and ``_p`` (one-sided permutation p-value) are
read next to it. (A mean coordination averaged over *all* sampled steps equals the
fraction of critical samples whatever the alignment: about 0.1 at the 90th percentile,
and less when ties in a quantised metric leave fewer samples above the percentile.)
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from traindyn.analysis.critical_periods import (
    _check_options,
    _loss_arrays,
    _marks,
    critical_periods,
    interval_loss_velocity,
)
from traindyn.analysis.trajectories import Series
from traindyn.exceptions import ConfigError, TraindynWarning

__all__ = ["BASELINE_COLUMNS", "chance_coordination", "coordination_null"]

_STATISTICS = ("mean_coordination", "max_coordination", "loss_correlation")
BASELINE_COLUMNS = [
    "metric",
    "n_layers",
    "n_steps",
    "shared_steps",
    "n_shuffles",
    *(
        f"{stat}{suffix}"
        for stat in _STATISTICS[:2]
        for suffix in ("", "_null", "_p95", "_excess", "_p")
    ),
    "coordinated",
    "coordinated_null",
    *(f"loss_correlation{suffix}" for suffix in ("", "_null", "_p95", "_excess", "_p")),
]

# Shuffles are processed in chunks of at most this many (shuffle, layer, step) booleans,
# so memory stays ~16 MB whatever n_shuffles and the run length are.
_CHUNK = 1 << 24
# Observed and null statistics come from different code paths (pandas vs numpy sums), so
# "null >= observed" allows for rounding; distinct values differ by far more than this.
_TIE = 1e-9


def chance_coordination(fraction: float, n_layers: int) -> float:
    """Expected mean coordination of independent layers, over steps where any is critical.

    With ``n_layers`` layers each critical at a step with probability ``fraction``
    independently, the number critical at a step is binomial; given that at least one
    is, its mean is ``fraction * n_layers / (1 - (1 - fraction)**n_layers)``, and
    coordination is that divided by ``n_layers``. It is the large-``T`` value of the
    null mean of :func:`coordination_null` (a ratio of sums over ``T`` steps, so exact
    only as ``T`` grows).

    Parameters
    ----------
    fraction : float
        Fraction of each layer's samples that are critical, in (0, 1] (0.1 at the 90th
        percentile).
    n_layers : int
        At least 1.

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        If ``fraction`` is not in (0, 1] or ``n_layers`` < 1.

    Examples
    --------
    >>> [round(chance_coordination(0.1, n), 3) for n in (1, 3, 16)]
    [1.0, 0.369, 0.123]
    """
    if not 0.0 < fraction <= 1.0:
        raise ConfigError(f"fraction must be in (0, 1]; got {fraction!r}.")
    if n_layers < 1:
        raise ConfigError(f"n_layers must be >= 1; got {n_layers!r}.")
    return float(fraction / (1.0 - (1.0 - fraction) ** n_layers))


def coordination_null(
    series: Sequence[Series],
    *,
    percentile: float = 90.0,
    coordination_threshold: float = 0.3,
    loss: pd.DataFrame | None = None,
    n_shuffles: int = 1000,
    seed: int = 0,
) -> pd.DataFrame:
    """Observed coordination and loss correlation next to a circular-shift null.

    The observed statistics are those of
    :func:`~traindyn.analysis.critical_periods.critical_periods` with the same options
    (its ``summary`` table, unchanged). For the null, each layer's sequence of critical
    marks is circularly shifted by an independent offset drawn uniformly from all
    positions, ``n_shuffles`` times, and the statistics are recomputed with the same
    definitions: coordination per step over the layers sampled there, its mean over the
    steps where any layer is critical, its max; periods as maximal runs of consecutive
    critical samples, and the fraction of them during which the mean loss velocity
    (:func:`~traindyn.analysis.critical_periods.interval_loss_velocity`) is negative.

    Parameters
    ----------
    series : sequence of Series
        Usually every layer of one run (:func:`~traindyn.analysis.trajectories.series_of`);
        each metric is tested separately.
    percentile, coordination_threshold, loss
        As in :func:`~traindyn.analysis.critical_periods.critical_periods`.
    n_shuffles : int
        Number of null draws, at least 1. The smallest p-value is
        ``1 / (1 + n_shuffles)``.
    seed : int
        Seeds the offsets. A metric's draws depend only on ``seed`` and the metric's
        name, so adding or removing other metrics does not change its result.

    Returns
    -------
    DataFrame
        Columns :data:`BASELINE_COLUMNS`, one row per metric in the order of
        ``critical_periods(...).summary``:

        * ``n_layers`` (series of the metric), ``n_steps`` (sampled steps with a mark:
          the union over layers), ``shared_steps`` (every layer has a mark at every one
          of them), ``n_shuffles``;
        * for ``mean_coordination``, ``max_coordination`` and ``loss_correlation``: the
          observed value, ``_null`` (mean over shuffles), ``_p95`` (95th percentile over
          shuffles), ``_excess`` (observed minus null mean) and ``_p``, the one-sided
          permutation p-value ``(1 + #{null >= observed}) / (1 + n_shuffles)``;
        * ``coordinated`` (observed max coordination >= the threshold) and
          ``coordinated_null`` (fraction of shuffles where it is).

        Statistics that are undefined (no critical sample; no loss) are NaN with NaN
        null and p-value.

    Raises
    ------
    ConfigError
        If ``percentile`` is not in [0, 100), the threshold not in (0, 1],
        ``n_shuffles`` < 1 or ``loss`` lacks a ``step`` or ``value`` column.

    Warns
    -----
    TraindynWarning
        If ``n_shuffles`` < 19: no p-value can then fall below 0.05.

    Notes
    -----
    **Steps.** A shift moves marks by sample positions, so it only means "the same
    layer, at another time" when the layers of a metric share their sampled steps (a
    tracker samples every layer at the same steps; a failed measurement, dropped by
    :func:`~traindyn.analysis.trajectories.series_of`, makes a hole). The coordination
    null is therefore taken on the **union** of the metric's sampled steps, which are
    the steps where ``critical_periods`` measures coordination: each layer's marks
    *and* its holes move together along that grid, so a step still counts only the
    layers sampled there, and the observed value is one point of the null's support.
    When steps are shared (``shared_steps``) this is the plain circular shift. The
    loss-correlation null needs no alignment across layers: each layer's marks are
    shifted along its own samples, against its own loss velocities.

    **Periods.** A shift can split a period that wraps around the end of training, or
    join two that meet, so a layer's number of periods in a shuffle can differ from the
    observed one by one; each layer's number of critical samples is unchanged.

    References
    ----------
    Seed 001 (Phase 1, step 1.3) and seed 002 ("weak coordination (mean 6.5%)", "mean
    loss correlation 56.8%"). The circular shift is the "random rotation" (toroidal
    shift) surrogate used to test synchrony between event trains.

    Examples
    --------
    Three layers that jump together at the same 10 of 100 steps: chance would give a
    mean coordination of about ``chance_coordination(0.1, 3) = 0.37``, they give 1.

    >>> steps = np.arange(101)
    >>> at = np.random.default_rng(0).choice(100, 10, replace=False)
    >>> values = np.cumsum(np.r_[0.0, np.isin(np.arange(100), at)])
    >>> layers = [Series(name, "pr", steps, values) for name in ("a", "b", "c")]
    >>> row = coordination_null(layers).iloc[0]
    >>> float(row.mean_coordination), round(float(row.mean_coordination_null), 2)
    (1.0, 0.37)
    >>> float(row.mean_coordination_p) == 1 / 1001
    True
    """
    _check_options(percentile, coordination_threshold)
    if isinstance(n_shuffles, bool) or not isinstance(n_shuffles, int | np.integer):
        raise ConfigError(f"n_shuffles must be an int >= 1; got {n_shuffles!r}.")
    if n_shuffles < 1:
        raise ConfigError(
            f"n_shuffles must be >= 1; got {n_shuffles!r}. Use 1000 for p-values near 0.001."
        )
    if loss is not None and not {"step", "value"} <= set(loss.columns):
        raise ConfigError(
            f"loss must have columns step, value; got {list(loss.columns)}. Pass e.g. "
            f"scalars[scalars['name'] == 'loss'][['step', 'value']]."
        )
    if n_shuffles < 19:
        warnings.warn(
            f"n_shuffles={n_shuffles}: the smallest possible p-value is "
            f"1/(1 + {n_shuffles}) = {1 / (1 + n_shuffles):.3g}, so none can fall below "
            f"0.05. Use n_shuffles >= 19 (1000 is the default).",
            TraindynWarning,
            stacklevel=2,
        )
    n_shuffles = int(n_shuffles)
    observed = critical_periods(
        series, percentile=percentile, coordination_threshold=coordination_threshold, loss=loss
    ).summary
    loss_steps, loss_values = _loss_arrays(loss)
    loss_cache: dict[bytes, NDArray[np.float64]] = {}
    rows = []
    for record in observed.to_dict("records"):
        metric = str(record["metric"])
        members = [s for s in series if s.metric == metric and len(s) >= 2]
        marks = [_marks(s, percentile)[1] for s in members]
        rng = np.random.default_rng([seed, zlib.crc32(metric.encode())])
        u = rng.random((n_shuffles, len(members)))  # one offset per shuffle and layer
        grid = _union_grid([s.steps[1:] for s in members], marks)
        mean_null, max_null = _coordination_null(*grid, u)
        if loss_steps is not None and loss_values is not None:
            velocities = []
            for s in members:
                key = s.steps.tobytes()  # series of a run share their steps
                if key not in loss_cache:
                    loss_cache[key] = interval_loss_velocity(loss_steps, loss_values, s.steps)[1:]
                velocities.append(loss_cache[key])
            loss_null = _loss_correlation_null(marks, velocities, u)
        else:
            loss_null = np.full(n_shuffles, np.nan)
        row: list[object] = [
            metric,
            int(record["n_layers"]),
            grid[0].shape[1],
            bool(grid[1].all()),
            n_shuffles,
        ]
        row += _compare(float(record["mean_coordination"]), mean_null)
        row += _compare(float(record["max_coordination"]), max_null)
        row += [
            bool(record["coordinated"]),
            float(np.mean(max_null >= coordination_threshold)) if len(members) else np.nan,
        ]
        row += _compare(float(record["loss_correlation"]), loss_null)
        rows.append(row)
    return pd.DataFrame(rows, columns=BASELINE_COLUMNS)


def _compare(observed: float, null: NDArray[np.float64]) -> list[object]:
    """Observed, null mean, null p95, excess, one-sided p-value (NaN when undefined)."""
    if not np.isfinite(observed) or not np.isfinite(null).all():
        return [observed, np.nan, np.nan, np.nan, np.nan]
    center = float(null.mean())
    p = (1 + int(np.count_nonzero(null >= observed - _TIE))) / (1 + len(null))
    return [observed, center, float(np.percentile(null, 95)), observed - center, p]


def _union_grid(
    at: Sequence[NDArray[np.int64]], marks: Sequence[NDArray[np.bool_]]
) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
    """Critical and sampled masks of shape (n_layers, n_steps) on the union of ``at``."""
    steps = np.unique(np.concatenate(at)) if at else np.zeros(0, dtype=np.int64)
    critical = np.zeros((len(at), len(steps)), dtype=bool)
    sampled = np.zeros((len(at), len(steps)), dtype=bool)
    for i, (a, m) in enumerate(zip(at, marks, strict=True)):
        where = np.searchsorted(steps, a)
        sampled[i, where] = True
        critical[i, where] = m
    return critical, sampled


def _rotations(masks: NDArray[np.bool_], u: NDArray[np.float64]) -> NDArray[np.bool_]:
    """``masks[l]`` circularly shifted by ``floor(u[s, l] * n)``: shape (S, L, n).

    Guts; no input validation. ``np.roll(x, k)[t] == x[(t - k) % n]``, which is the
    window of ``[x, x]`` starting at ``(n - k) % n``; gathering windows of a strided view
    copies each shifted row once instead of building (S, L, n) indices.
    """
    n = masks.shape[1]
    offsets = np.minimum((u * n).astype(np.int64), n - 1)
    windows = sliding_window_view(np.concatenate([masks, masks], axis=1), n, axis=1)
    shifted: NDArray[np.bool_] = windows[np.arange(masks.shape[0]), (n - offsets) % n]
    return shifted


def _coordination_null(
    critical: NDArray[np.bool_], sampled: NDArray[np.bool_], u: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Mean (over steps with a critical layer) and max coordination of each shuffle.

    Guts of :func:`coordination_null`; no input validation. ``critical`` and ``sampled``
    have shape (n_layers, n_steps), ``u`` shape (n_shuffles, n_layers) in [0, 1).
    """
    n_shuffles = len(u)
    mean = np.full(n_shuffles, np.nan)
    peak = np.full(n_shuffles, np.nan)
    n_layers, n_steps = critical.shape
    if n_layers == 0 or n_steps == 0:
        return mean, peak
    shared = bool(sampled.all())
    chunk = max(1, _CHUNK // (n_layers * n_steps))
    for lo in range(0, n_shuffles, chunk):
        part = u[lo : lo + chunk]
        n_critical = _rotations(critical, part).sum(axis=1, dtype=np.int32)
        if shared:
            n_sampled = np.full_like(n_critical, n_layers)
        else:
            n_sampled = _rotations(sampled, part).sum(axis=1, dtype=np.int32)
        with np.errstate(invalid="ignore", divide="ignore"):
            coordination = n_critical / n_sampled  # NaN where no layer is sampled
        hot = n_critical > 0
        n_hot = hot.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[lo : lo + chunk] = np.where(hot, coordination, 0.0).sum(axis=1) / n_hot
        peak[lo : lo + chunk] = np.where(n_sampled > 0, coordination, -np.inf).max(axis=1)
    return mean, peak


def _loss_correlation_null(
    marks: Sequence[NDArray[np.bool_]],
    velocities: Sequence[NDArray[np.float64]],
    u: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Fraction of critical periods with falling loss in each shuffle.

    Guts of :func:`coordination_null`; no input validation. ``marks[l]`` and
    ``velocities[l]`` are one layer's critical marks and loss velocities at its sampled
    steps ``s.steps[1:]``; ``u`` has shape (n_shuffles, n_layers) in [0, 1).

    Rolling a mark sequence rolls its *circular* runs (a run touching the end joined to
    one touching the start), and each rolled run is one period of the rolled sequence,
    or two when it wraps past the end. So the periods of every shuffle follow from the
    few circular runs, without materialising the (n_shuffles, n_samples) marks.
    """
    n_shuffles = len(u)
    falling = np.zeros(n_shuffles)
    periods = np.zeros(n_shuffles)
    for i, (m, v) in enumerate(zip(marks, velocities, strict=True)):
        if not m.any():
            continue
        n = len(m)
        finite = np.isfinite(v)
        total = np.r_[0.0, np.cumsum(np.where(finite, v, 0.0))]
        count = np.r_[0, np.cumsum(finite)]
        if m.all():  # every roll is the same single period
            periods += 1
            falling += float(count[n] > 0 and total[n] < 0)
            continue
        start, length = _circular_runs(m)
        a = (start[None, :] + np.minimum((u[:, i : i + 1] * n).astype(np.int64), n - 1)) % n
        end = a + length[None, :]
        b = np.minimum(end, n)
        # Same rule as critical_periods: a period without a finite loss velocity counts,
        # and does not count as falling.
        down = ((count[b] - count[a]) > 0) & ((total[b] - total[a]) < 0)
        wrap = end > n
        rest = np.where(wrap, end - n, 0)  # the wrapped part is [0, rest)
        down_rest = wrap & (count[rest] > 0) & (total[rest] < 0)
        periods += len(start) + wrap.sum(axis=1)
        falling += down.sum(axis=1) + down_rest.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(periods > 0, falling / periods, np.nan)


def _circular_runs(m: NDArray[np.bool_]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Starts and lengths of the runs of ``True`` in ``m`` read as a circle.

    Guts; no input validation (``m`` has a True and a False). A run ending at the last
    sample and one starting at the first are one circular run, which starts at the
    former.
    """
    edges = np.diff(np.r_[0, m.astype(np.int8), 0])
    a, b = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    length = b - a
    if m[0] and m[-1]:
        length[-1] += length[0]
        a, length = a[1:], length[1:]
    return a.astype(np.int64), length.astype(np.int64)
