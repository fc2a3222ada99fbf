"""Convergence: when each layer's metric stops moving, and in which order across depth.

Seed 001's definition: a trajectory has stabilised from the first sample after which
every rolling window's variance stays below a fraction of the window's mean; the order of
convergence is the sign of Spearman's rho between layer depth and stabilisation step.
The seed's own result ("all layers stabilize at step 0") was an artefact of that
criterion: a dimensionality of ~10 moving by ~1 has variance far below 10% of its mean
from the start. Such results are flagged ``suspicious`` with the reason, and
``criterion="range"`` (rolling sd below a fraction of the trajectory's total range,
invariant to offset and scale) is offered beside the seed's ``"mean"``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from traindyn._validation import check_in
from traindyn.analysis.trajectories import Series
from traindyn.exceptions import ConfigError

__all__ = [
    "CONVERGENCE_COLUMNS",
    "CRITERIA",
    "ORDER_COLUMNS",
    "Convergence",
    "Criterion",
    "convergence",
    "convergence_order",
    "order_class",
    "stabilization",
]

Criterion = Literal["mean", "range"]
CRITERIA: tuple[Criterion, ...] = ("mean", "range")

CONVERGENCE_COLUMNS = [
    "layer",
    "metric",
    "depth",
    "stabilized",
    "stabilization_step",
    "stabilization_phase",
    "threshold",
    "change_after",
    "suspicious",
    "reason",
]
ORDER_COLUMNS = ["metric", "n_layers", "rho", "p_value", "order", "suspicious", "reason"]


def stabilization(
    values: NDArray[np.float64],
    *,
    window: int,
    fraction: float = 0.1,
    criterion: Criterion = "mean",
) -> tuple[int, float]:
    """Index of the first sample from which every rolling window is stable.

    A window of ``window`` consecutive samples is stable when its variance (ddof=0) is
    below ``fraction * |window mean|`` (``criterion="mean"``, seed 001), or when its
    standard deviation is below ``fraction * (max - min)`` of the whole trajectory
    (``"range"``).

    Parameters
    ----------
    values : ndarray of shape (n,)
    window : int
        Samples per window (>= 2).
    fraction : float
        The seed's 10%.
    criterion : {"mean", "range"}

    Returns
    -------
    (int, float)
        The index (-1 when the last window is not stable, or ``n < window``) and the
        threshold in effect (for ``"mean"``, the one of the first stable window).

    Examples
    --------
    A fall from 105 to 101 over the first 10 samples, then noise of sd 0.01:

    >>> v = 100 + np.r_[np.linspace(5, 1, 10), np.ones(40) + np.tile([0.01, -0.01], 20)]
    >>> stabilization(v, window=5, criterion="range")[0]
    7
    >>> stabilization(v, window=5, criterion="mean")[0]  # var < 10% of ~100 from the start
    0
    """
    n = len(values)
    if window < 2:
        raise ConfigError(f"window must be >= 2 samples; got {window!r}.")
    check_in(criterion, CRITERIA, name="criterion")
    if n < window:
        return -1, np.nan
    c1 = np.r_[0.0, np.cumsum(values)]
    c2 = np.r_[0.0, np.cumsum(values * values)]
    mean = (c1[window:] - c1[:-window]) / window
    var = np.maximum((c2[window:] - c2[:-window]) / window - mean * mean, 0.0)
    if criterion == "mean":
        threshold = fraction * np.abs(mean)
        ok = var < threshold
    else:
        span = float(values.max() - values.min())
        threshold = np.full(len(var), fraction * span)
        # A constant trajectory is stable from the start.
        ok = np.sqrt(var) <= threshold if span == 0 else np.sqrt(var) < threshold
    failing = np.flatnonzero(~ok)
    start = 0 if len(failing) == 0 else int(failing[-1]) + 1
    if start >= len(ok):
        return -1, float(threshold[-1])
    return start, float(threshold[start])


@dataclass(frozen=True)
class Convergence:
    """Per-layer stabilisation and the order of convergence across depth.

    Attributes
    ----------
    layers : DataFrame
        Columns :data:`CONVERGENCE_COLUMNS`: for each (layer, metric), its ``depth``
        (0 = nearest the input), whether and when it stabilised (step and fraction of
        training), the threshold, ``change_after`` (max - min of the values from the
        stabilisation step on, over the total range: 1.0 means "stable" spans all the
        movement) and a ``suspicious`` flag with its ``reason``.
    order : DataFrame
        Columns :data:`ORDER_COLUMNS`, one row per metric: Spearman's rho between depth
        and stabilisation step over the layers that stabilised, its p-value, the class
        (:func:`order_class`), and ``suspicious``/``reason`` when most layers' results
        are suspicious.
    """

    layers: pd.DataFrame
    order: pd.DataFrame


def convergence(
    series: Sequence[Series],
    depths: Mapping[str, int],
    *,
    total_steps: int,
    window: int | float = 0.1,
    fraction: float = 0.1,
    criterion: Criterion = "mean",
) -> Convergence:
    """Stabilisation step of every series and the convergence order of each metric.

    Parameters
    ----------
    series : sequence of Series
    depths : mapping of layer to int
        From :func:`~traindyn.analysis.trajectories.layer_depths`.
    total_steps : int
        Length of training (for ``stabilization_phase``).
    window : int or float
        Rolling window in samples, or (a float < 1) as a fraction of each series' length
        (at least 3 samples). Seed default: 10%.
    fraction : float
        Stability threshold (seed: 10%); see :func:`stabilization`.
    criterion : {"mean", "range"}

    Returns
    -------
    Convergence

    Notes
    -----
    A layer is ``suspicious`` when it is "stable" from its first sample although it
    later moves by more than ``fraction`` of its range. With the seed's criterion this
    is the usual case; ``change_after`` shows how much movement the "stable" tail
    holds. The order of a metric is suspicious when more than half its layers are.

    References
    ----------
    Seed 001 (Phase 1, step 1.1: "Rolling window variance < 10% of mean"; Spearman
    thresholds 0.6 / 0.3). Raghu, M., Gilmer, J., Yosinski, J., & Sohl-Dickstein, J.
    (2017). SVCCA. NeurIPS (lower layers converge first: "bottom-up").

    Examples
    --------
    Three layers that stop oscillating after steps 16, 36 and 56 converge bottom-up:

    >>> steps = np.arange(0, 100, 2)
    >>> def settle(at):
    ...     moving = (steps < at) & (steps % 4 == 0)
    ...     return Series(f"l{at}", "pr", steps, 10.0 + 3.0 * moving)
    >>> conv = convergence([settle(20), settle(40), settle(60)], {"l20": 0, "l40": 1, "l60": 2},
    ...                    total_steps=100, window=5, criterion="range")
    >>> conv.layers["stabilization_step"].tolist(), conv.order["order"].item()
    ([18, 38, 58], 'bottom-up')
    """
    if isinstance(window, float) and not 0 < window < 1:
        raise ConfigError(
            f"window must be an int (samples) or a float in (0, 1) (fraction of the series); "
            f"got {window!r}."
        )
    rows = []
    for s in series:
        n = len(s)
        w = max(3, round(window * n)) if isinstance(window, float) else int(window)
        index, threshold = stabilization(s.values, window=w, fraction=fraction, criterion=criterion)
        span = float(s.values.max() - s.values.min()) if n else 0.0
        stabilized = index >= 0
        step = int(s.steps[index]) if stabilized else None
        tail = s.values[index:] if stabilized else s.values[:0]
        change_after = float(np.ptp(tail) / span) if stabilized and span > 0 else 0.0
        suspicious = stabilized and index == 0 and change_after > fraction
        reason = None
        if suspicious:
            reason = (
                f"stable from the first sample although it later moves by "
                f"{change_after:.0%} of its range: the criterion ({criterion}, fraction "
                f"{fraction}) is looser than the trajectory's own change"
                + ("; try criterion='range'" if criterion == "mean" else "")
            )
        elif not stabilized:
            reason = "never stable: the last window still moves" if n >= w else "too few samples"
        rows.append(
            (
                s.layer,
                s.metric,
                depths.get(s.layer, -1),
                stabilized,
                step,
                step / total_steps if step is not None and total_steps > 0 else np.nan,
                threshold,
                change_after,
                suspicious,
                reason,
            )
        )
    layers = pd.DataFrame(rows, columns=CONVERGENCE_COLUMNS)
    layers["stabilization_step"] = layers["stabilization_step"].astype("Int64")
    return Convergence(layers=layers, order=convergence_order(layers))


def convergence_order(layers: pd.DataFrame) -> pd.DataFrame:
    """Spearman's rho between depth and stabilisation step, per metric.

    Parameters
    ----------
    layers : DataFrame
        :attr:`Convergence.layers`.

    Returns
    -------
    DataFrame
        Columns :data:`ORDER_COLUMNS`. With fewer than 3 stabilised layers the order is
        ``"unclear"`` with that reason; when every stabilised layer settles at the same
        step rho is undefined and the order is ``"simultaneous"``.
    """
    from scipy.stats import spearmanr

    rows = []
    for metric, g in layers.groupby("metric", sort=False):
        done = g[g["stabilized"].astype(bool)]
        n_susp = int(g["suspicious"].sum())
        suspicious = n_susp * 2 > len(g)
        reasons = []
        if suspicious:
            reasons.append(
                f"{n_susp} of {len(g)} layers are 'stable' from the first sample while still "
                "moving: a finding of the criterion, not of training"
            )
        rho = p = np.nan
        if len(done) < 3:
            order = "unclear"
            reasons.append(f"{len(done)} layer(s) stabilised; an order needs at least 3")
        elif done["stabilization_step"].nunique() == 1:
            order = "simultaneous"
            reasons.append("every stabilised layer settles at the same step")
        else:
            result = spearmanr(done["depth"], done["stabilization_step"].astype(float))
            rho, p = float(result.statistic), float(result.pvalue)
            order = order_class(rho)
        rows.append((metric, len(done), rho, p, order, suspicious, "; ".join(reasons) or None))
    return pd.DataFrame(rows, columns=ORDER_COLUMNS)


def order_class(rho: float) -> str:
    """Seed 001's classes: ``"bottom-up"`` (rho > 0.6), ``"top-down"`` (rho < -0.6),
    ``"simultaneous"`` (|rho| < 0.3), else ``"unclear"``.

    Examples
    --------
    >>> [order_class(r) for r in (0.9, -0.7, 0.1, 0.45)]
    ['bottom-up', 'top-down', 'simultaneous', 'unclear']
    """
    if rho > 0.6:
        return "bottom-up"
    if rho < -0.6:
        return "top-down"
    if abs(rho) < 0.3:
        return "simultaneous"
    return "unclear"
