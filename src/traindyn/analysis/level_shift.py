"""The level-shift statistic: lines fitted on each side of a change, as linear weights.

Every event traindyn reports is measured the same way, whatever found it: a straight line
is fitted by least squares to the ``window`` samples before the change and another to
the ``window`` samples after it, and both are evaluated midway between the two sampled
steps that bracket the change. Their difference is the level shift ``delta``; the
difference of their slopes is the slope change. A smooth drift, which a
piecewise-constant detector cuts into stairs, has shifts near zero; a linear trend has a
shift of exactly zero.

Both statistics are linear in the values, ``delta = w . y``, so this module computes the
weights ``w`` once per position (:func:`shift_weights`). The weights give the statistic
of many trajectories at once (the surrogate nulls of :mod:`traindyn.analysis.evidence`)
and its exact variance under correlated noise (:func:`ar1_variance`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ShiftWeights",
    "apply_weights",
    "ar1_variance",
    "every_position",
    "lag_products",
    "shift_weights",
]


@dataclass(frozen=True, eq=False)
class ShiftWeights:
    """Weights of the side fits at ``k`` positions, over windows of ``2 * window`` samples.

    Row ``r`` belongs to the change from sample ``idx[r] - 1`` to sample ``idx[r]``; its
    window covers samples ``start[r] .. start[r] + 2 * window - 1`` (positions outside
    the series carry zero weight).

    Attributes
    ----------
    start : ndarray of int64, shape (k,)
        First sample of each window (``idx - window``; may be negative).
    before, after : ndarray of float64, shape (k, 2 * window)
        Weights giving each side's fitted line at the midpoint.
    slope_before, slope_after : ndarray of float64, shape (k, 2 * window)
        Weights giving each side's own slope (per unit of ``x``); zero rows where that
        side has fewer than 3 samples (see ``slopes``).
    slopes : ndarray of bool, shape (k,)
        Whether both sides fit their own line, so that the slope change is defined.
    """

    start: NDArray[np.int64]
    before: NDArray[np.float64]
    after: NDArray[np.float64]
    slope_before: NDArray[np.float64]
    slope_after: NDArray[np.float64]
    slopes: NDArray[np.bool_]

    @property
    def delta(self) -> NDArray[np.float64]:
        """Weights of the level shift ``after - before``, shape (k, 2 * window)."""
        return self.after - self.before

    @property
    def slope_change(self) -> NDArray[np.float64]:
        """Weights of ``slope_after - slope_before``, shape (k, 2 * window)."""
        return self.slope_after - self.slope_before


def shift_weights(
    x: NDArray[np.float64], idx: NDArray[np.int64], window: int, *, phi: float = 0.0
) -> ShiftWeights:
    """Generalised least-squares weights of two lines fitted across the changes at ``idx``.

    The window of change ``r`` is the ``window`` samples before ``idx[r]`` and the
    ``window`` samples from it on (cut at the ends of the series), with
    ``u = x - x0``, ``x0 = (x[idx - 1] + x[idx]) / 2`` and ``H = 1`` from ``idx`` on.
    The fit is ``a + b u + c H + d u H``: a line on each side, ``c`` the gap between
    them at ``x0`` (the level shift; a kink or curvature does not bias it) and ``d`` the
    change of slope. Where a side has fewer than 3 samples (the ends of a series), the
    fit is ``a + b u + c H``: one slope through both sides, so a drift reaching the edge
    does not read as a step. Both are generalised least squares under AR(1) noise with
    autocorrelation ``phi``
    (Prais-Winsten); as ``phi`` nears 1 the gap is read off the differences at the
    change, so slow wander (noise or signal) does not hide a sharp step. Guts of the
    event measurement; no validation.

    Parameters
    ----------
    x : ndarray of shape (n,)
        Positions of the samples (training steps), strictly increasing.
    idx : ndarray of int64, shape (k,)
        Indices in ``1 .. n - 1``.
    window : int
        Samples on each side (>= 1).
    phi : float
        Lag-1 autocorrelation of the noise, in [0, 1).

    Returns
    -------
    ShiftWeights

    References
    ----------
    Prais, S. J., & Winsten, C. B. (1954). Trend estimators and serial correlation.
    Cowles Commission discussion paper 383.

    Examples
    --------
    A step of 2 on a line: the level shift is the step, the slope change zero, whatever
    the noise model.

    >>> x = np.arange(20.0)
    >>> y = 0.5 * x + np.where(x >= 10, 2.0, 0.0)
    >>> for phi in (0.0, 0.9):
    ...     w = shift_weights(x, np.array([10]), 4, phi=phi)
    ...     shift = apply_weights(w.delta, w.start, y)[0]
    ...     kink = apply_weights(w.slope_change, w.start, y)[0]
    ...     print([round(float(v), 6) + 0.0 for v in (shift, kink)])
    [2.0, 0.0]
    [2.0, 0.0]
    """
    n = len(x)
    k = len(idx)
    width = 2 * window
    start = idx.astype(np.int64) - window
    pos = start[:, None] + np.arange(width)[None, :]
    inside = (pos >= 0) & (pos < n)
    x0 = (x[idx - 1] + x[idx]) / 2
    scale = np.maximum(
        x[np.minimum(idx + window - 1, n - 1)] - x[np.maximum(idx - window, 0)], 1e-12
    )
    u = np.where(inside, (x[np.clip(pos, 0, n - 1)] - x0[:, None]) / scale[:, None], 0.0)
    after = inside & (pos >= idx[:, None])
    n_before = (inside & ~after).sum(axis=1)
    n_after = after.sum(axis=1)
    slopes = (n_before >= 3) & (n_after >= 3)
    line = (n_before + n_after) >= 3
    X = np.zeros((k, width, 4))
    X[:, :, 0] = inside
    X[:, :, 1] = np.where(line[:, None], u, 0.0)
    X[:, :, 2] = after
    X[:, :, 3] = np.where(slopes[:, None], u * after, 0.0)
    # Prais-Winsten: row t becomes row_t - phi row_{t-1}; the first row inside the series
    # is scaled by sqrt(1 - phi^2). Rows outside are zero, so they drop out.
    first = np.maximum(0, -start)
    edge = np.zeros((k, width), dtype=bool)
    edge[np.arange(k), first] = True
    diag = np.where(edge, np.sqrt(1.0 - phi * phi), 1.0) * inside
    both_in = inside[:, 1:] & inside[:, :-1]

    def gls(design: NDArray[np.float64]) -> NDArray[np.float64]:
        """Weights on y of each coefficient, (k, p, width): (X'X)^+ X' P."""
        Xw = design * diag[:, :, None]
        Xw[:, 1:] -= phi * design[:, :-1] * both_in[:, :, None]
        M = np.linalg.pinv(np.einsum("kwi,kwj->kij", Xw, Xw)) @ Xw.transpose(0, 2, 1)
        W: NDArray[np.float64] = M * diag[:, None, :]
        W[:, :, :-1] -= phi * M[:, :, 1:] * both_in[:, None, :]
        return W

    # A line on each side; where one side is too short for its own line (the ends of a
    # series), one slope through both sides, so a drift reaching the edge is no step.
    lines = gls(X)
    level = np.where(slopes[:, None, None], lines[:, :3], gls(X[:, :, :3]))
    per_x = (1.0 / scale)[:, None]
    return ShiftWeights(
        start=start,
        before=level[:, 0],
        after=level[:, 0] + level[:, 2],
        slope_before=np.where(slopes[:, None], lines[:, 1] * per_x, 0.0),
        slope_after=np.where(slopes[:, None], (lines[:, 1] + lines[:, 3]) * per_x, 0.0),
        slopes=slopes,
    )


@functools.lru_cache(maxsize=64)
def _every_position(x: tuple[float, ...], window: int, phi: float) -> ShiftWeights:
    arr = np.asarray(x, dtype=np.float64)
    return shift_weights(arr, np.arange(1, len(arr), dtype=np.int64), window, phi=phi)


def every_position(x: NDArray[np.float64], window: int, phi: float) -> ShiftWeights:
    """:func:`shift_weights` at every position ``1 .. n - 1``, cached: the series of a run
    share their steps, and scans and surrogate nulls ask for the same weights again.
    The arrays are shared between callers; do not modify them."""
    return _every_position(tuple(np.asarray(x, dtype=np.float64).tolist()), window, float(phi))


def apply_weights(
    weights: NDArray[np.float64], start: NDArray[np.int64], Y: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The statistic of each row of ``weights`` on one or many trajectories.

    Parameters
    ----------
    weights : ndarray of shape (k, width)
    start : ndarray of int64, shape (k,)
        First sample of each window.
    Y : ndarray of shape (n,) or (m, n)
        One trajectory, or ``m`` trajectories of the same length.

    Returns
    -------
    ndarray of shape (k,) or (m, k)
    """
    values = np.atleast_2d(Y)
    n = values.shape[1]
    width = weights.shape[1]
    left = max(0, -int(start.min())) if len(start) else 0
    right = max(0, int(start.max()) + width - n) if len(start) else 0
    padded = np.pad(values, ((0, 0), (left, right)))  # zeros outside the series
    windows = np.lib.stride_tricks.sliding_window_view(padded, width, axis=1)
    first = start + left
    if len(first) and np.array_equal(first, first[0] + np.arange(len(first))):
        gathered = windows[:, first[0] : first[0] + len(first)]  # a view: no copy
    else:
        gathered = windows[:, first]
    out: NDArray[np.float64] = np.einsum("mkw,kw->mk", gathered, weights)
    return out[0] if np.ndim(Y) == 1 else out


def lag_products(weights: NDArray[np.float64]) -> NDArray[np.float64]:
    """``c[:, l] = sum_j w_j w_{j+l}`` (doubled for l > 0): what :func:`ar1_variance` needs
    of the weights, computed once for many autocorrelations. Shape (k, width)."""
    width = weights.shape[1]
    lags = np.empty((weights.shape[0], width))
    lags[:, 0] = (weights * weights).sum(axis=1)
    for lag in range(1, width):
        lags[:, lag] = 2.0 * (weights[:, lag:] * weights[:, :-lag]).sum(axis=1)
    return lags


def ar1_variance(
    weights: NDArray[np.float64],
    phi: float | NDArray[np.float64],
    *,
    lags: NDArray[np.float64] | None = None,
) -> NDArray[Any]:
    """Variance of ``w . e`` for unit-variance AR(1) noise ``e``: ``sum_jk w_j w_k phi^|j-k|``.

    Parameters
    ----------
    weights : ndarray of shape (k, width)
        Over consecutive samples.
    phi : float or ndarray of shape (m,)
        Lag-1 autocorrelation(s) in [0, 1).
    lags : ndarray of shape (k, width), optional
        :func:`lag_products` of ``weights``, when already computed.

    Returns
    -------
    ndarray of shape (k,) (one phi) or (m, k)
        Multiply by the noise variance for the variance of the statistic.

    Examples
    --------
    The mean of 4 samples of white noise has variance 1/4; of a random-walk-like noise
    (phi near 1) nearly 1:

    >>> w = np.full((1, 4), 0.25)
    >>> float(ar1_variance(w, 0.0)[0]), round(float(ar1_variance(w, 0.999)[0]), 2)
    (0.25, 1.0)
    """
    c = lag_products(weights) if lags is None else lags
    powers = np.atleast_1d(np.asarray(phi, dtype=np.float64))[:, None] ** np.arange(c.shape[1])
    out = powers @ c.T
    return out[0] if np.ndim(phi) == 0 else out
