"""The measurement's own noise floor: how small a change can be and still be told from noise.

Seed 002's hardest lesson: 2,991 "jumps" of about 1e-11 were rounding noise. Every change
an analysis reports is therefore divided by a floor built from three sources:

* the trajectory's own high-frequency noise (:func:`trajectory_noise`, a robust estimate
  from first differences, blind to steps and linear drift);
* the precision of the numbers (:func:`precision_floor`: activations are float32, so no
  metric is known better than a float32 ulp of its value);
* the quantum of integer-valued metrics (:func:`quantum`: ``energy_rank`` or ``betti_1``
  cannot move by less than 1);

and, when the probe set was resampled, the metric's sampling spread across probe halves
(:func:`half_sample_noise` for one metric callable, :func:`half_sample_spread` for several
registered metrics at once; :func:`traindyn.capture.probe_noise` measures it at a run's
checkpoints).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray

from traindyn._validation import Array, as_2d_float, check_min_samples
from traindyn.exceptions import ConfigError, MetricError
from traindyn.metrics import DEFAULT_METRICS, get_metric, measure

__all__ = [
    "AR1",
    "FLOAT32_EPS",
    "PHI_GRID",
    "ar1_noise",
    "ar1_noise_rows",
    "gridded_phi",
    "half_sample_noise",
    "half_sample_spread",
    "precision_floor",
    "quantum",
    "trajectory_noise",
]

FLOAT32_EPS = float(np.finfo(np.float32).eps)
"""Relative precision of float32 (2**-23): activations are captured in float32."""

_MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): MAD of a Gaussian times this is its sd
_MIN_NOISE_SAMPLES = 8  # a median of fewer differences says little about the noise


def trajectory_noise(values: NDArray[np.float64]) -> float:
    """Robust standard deviation of a trajectory's sample-to-sample noise.

    ``sigma = 1.4826 * MAD(diff(v)) / sqrt(2)``: for ``v = signal + white noise`` the
    first differences carry the noise with variance ``2 sigma^2`` and the signal's slope
    as their median, which the MAD removes; a few steps are outliers that the MAD ignores.
    When more than half the differences are equal (the MAD is 0: a noiseless or
    integer-valued trajectory that rarely moves) the noise is 0; the quantum of integer
    metrics is accounted for separately (:func:`quantum`).

    Parameters
    ----------
    values : ndarray of shape (n,)
        Finite values in step order.

    Returns
    -------
    float
        In the metric's units; 0.0 for fewer than 8 values (too short to tell noise from
        signal) or a constant trajectory.

    References
    ----------
    Hampel, F. R. (1974). The influence curve and its role in robust estimation. JASA.
    Killick, R., Fearnhead, P., & Eckley, I. A. (2012). Optimal detection of changepoints
    with a linear computational cost. JASA (the MAD-of-differences noise estimate used
    with the PELT penalty in the ``changepoint`` package).

    Examples
    --------
    A steep line plus Gaussian noise of sd 0.5:

    >>> v = np.arange(1000.0) * 3 + np.random.default_rng(0).normal(0, 0.5, 1000)
    >>> round(trajectory_noise(v), 1)
    0.5
    """
    if len(values) < _MIN_NOISE_SAMPLES:
        return 0.0
    d = np.diff(values)
    mad = float(np.median(np.abs(d - np.median(d))))
    return float(_MAD_TO_SD * mad / np.sqrt(2.0))


@dataclass(frozen=True)
class AR1:
    """A trajectory's noise as a stationary AR(1) process, ``e_t = phi e_{t-1} + u_t``.

    Attributes
    ----------
    phi : float
        Lag-1 autocorrelation of the noise, in [0, :data:`MAX_PHI`] (0: white).
    sd : float
        Marginal standard deviation of ``e_t`` (not of the innovations ``u_t``), in the
        metric's units.
    """

    phi: float
    sd: float


MAX_PHI = 0.98
"""Largest autocorrelation :func:`ar1_noise` reports: beyond it the noise is a random walk,
whose marginal sd is undefined and in which no step is detectable anyway."""


PHI_GRID = 0.05
"""Spacing of the autocorrelations that level-shift weights and surrogate nulls are built
for: series of a run fall on a few grid points, so both are computed once per point."""


def gridded_phi(phi: float) -> float:
    """``phi`` rounded to :data:`PHI_GRID`, at most :data:`MAX_PHI`.

    Examples
    --------
    >>> round(gridded_phi(0.62), 6), gridded_phi(0.999)
    (0.6, 0.98)
    """
    return min(round(phi / PHI_GRID) * PHI_GRID, MAX_PHI)


def ar1_noise(values: NDArray[np.float64]) -> AR1:
    """Robust AR(1) model of a trajectory's noise, from its first differences.

    For ``v = smooth trend + e`` with AR(1) noise ``e`` (autocorrelation ``phi``,
    marginal sd ``s``), the first differences ``d`` carry the noise with variance
    ``2 s^2 (1 - phi)`` and lag-1 autocorrelation ``-(1 - phi) / 2``, plus the trend's
    local slope, which a running median of 21 differences estimates and removes (a fast
    early decay or a kink would otherwise read as strongly autocorrelated noise; a jump
    is one outlying difference, which the median ignores). Both are then estimated
    robustly: the scale as ``S = 1.4826 * MAD(d)``, ``rho`` as the lag-1
    autocorrelation of the differences winsorised at ``3 S`` (Huber's clipping; bounded
    influence of a jump). Then ``phi = 1 + 2 rho``, clipped to [0, MAX_PHI], and
    ``s = S / sqrt(2 (1 - phi))``.

    The estimate errs high, which errs towards fewer events: negative autocorrelation is
    read as white, and removing the local slope adds about +0.1 to phi on white noise
    (measured: 0.10 at phi = 0, 0.69 at 0.6, 0.91 at 0.9; sd about 0.08 at n = 400).
    The surrogate nulls of :mod:`traindyn.analysis.evidence` re-estimate it on every
    surrogate, so their p-values carry the same bias on both sides.

    Parameters
    ----------
    values : ndarray of shape (n,)
        Finite values in step order.

    Returns
    -------
    AR1
        ``AR1(0.0, 0.0)`` for fewer than 8 values or a trajectory whose differences have
        a MAD of 0 (see :func:`trajectory_noise`).

    References
    ----------
    Huber, P. J. (1964). Robust estimation of a location parameter. Ann. Math. Stat. 35.
    Box, G. E. P., & Jenkins, G. M. (1976). Time Series Analysis (the AR(1) model and
    the autocorrelation of its differences).

    Examples
    --------
    White noise has (almost) no autocorrelation; AR(1) noise with phi = 0.8 is recognised:

    >>> rng = np.random.default_rng(0)
    >>> white = ar1_noise(rng.normal(0, 2.0, 4000))
    >>> round(white.sd, 1), bool(white.phi < 0.15)
    (2.0, True)
    >>> e = np.zeros(4000)
    >>> for t in range(1, 4000):
    ...     e[t] = 0.8 * e[t - 1] + rng.normal(0, 0.6)
    >>> noise = ar1_noise(e)
    >>> round(noise.phi, 1), bool(abs(noise.sd - 1.0) < 0.15)  # marginal sd 0.6 / 0.6
    (0.8, True)
    """
    return _ar1_noise_of(np.ascontiguousarray(values, dtype=np.float64).tobytes())


@functools.lru_cache(maxsize=4096)
def _ar1_noise_of(data: bytes) -> AR1:
    """:func:`ar1_noise` of the float64 values in ``data``, memoised: the scan, the event
    measurement and the evidence all ask for the same series' model."""
    phi, sd = ar1_noise_rows(np.frombuffer(data, dtype=np.float64)[None, :])
    return AR1(float(phi[0]), float(sd[0]))


def ar1_noise_rows(
    Y: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """:func:`ar1_noise` of every row of ``Y`` (m, n) at once: ``(phi, sd)``, each (m,).

    The same estimator, vectorised (surrogate nulls re-estimate the noise of thousands of
    trajectories). Guts; no validation.
    """
    m, n = Y.shape
    if n < _MIN_NOISE_SAMPLES:
        return np.zeros(m), np.zeros(m)
    d = np.diff(Y, axis=1)
    # The local slope of the trend, a running median of the differences, comes off
    # first: a trend whose slope changes (a fast early decay, a kink) would otherwise
    # read as strongly autocorrelated noise.
    d = d - _running_median(d, _SLOPE_HALF_WIDTH)
    d = d - np.median(d, axis=1, keepdims=True)
    scale = _MAD_TO_SD * np.median(np.abs(d), axis=1)
    ok = scale > 0
    safe = np.where(ok, scale, 1.0)[:, None]
    a = np.clip(d / safe, -_CLIP, _CLIP)
    a = a - a.mean(axis=1, keepdims=True)
    num = (a[:, 1:] * a[:, :-1]).sum(axis=1)
    den = (a * a).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    phi = np.clip(1.0 + 2.0 * rho, 0.0, MAX_PHI)
    sd = scale / np.sqrt(2.0 * (1.0 - phi))
    return np.where(ok, phi, 0.0), np.where(ok, sd, 0.0)


_CLIP = 3.0  # winsorise differences at 3 robust sd: a jump cannot dominate the autocorrelation


def _running_median(d: NDArray[np.float64], half: int) -> NDArray[np.float64]:
    """Median of each row over ``2 half + 1`` samples, edges repeated (the same as
    ``scipy.ndimage.median_filter(mode="nearest")``, by one partition: ~2x faster)."""
    padded = np.pad(d, ((0, 0), (half, half)), mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=1)
    out: NDArray[np.float64] = np.partition(windows, half, axis=-1)[..., half]
    return out


_SLOPE_HALF_WIDTH = 10  # samples each side of the running median that tracks the local slope


def precision_floor(level: NDArray[np.float64] | float) -> NDArray[np.float64] | float:
    """Smallest resolvable change of a metric whose value is ``level``: one float32 ulp
    (``2**-23 * |level|``); activations are float32, so nothing below it is a signal.

    Examples
    --------
    >>> bool(precision_floor(8.0) == 8.0 * 2.0**-23)
    True
    """
    return np.abs(level) * FLOAT32_EPS


def quantum(values: NDArray[np.float64]) -> float:
    """1.0 when every value is an integer (``energy_rank``, Betti numbers), else 0.0.

    Examples
    --------
    >>> quantum(np.array([3.0, 4.0, 4.0])), quantum(np.array([3.0, 4.5]))
    (1.0, 0.0)
    """
    return 1.0 if len(values) and bool(np.all(values == np.round(values))) else 0.0


def half_sample_noise(
    X: Array,
    metric: Callable[[NDArray[np.float64]], float],
    *,
    n_resamples: int = 20,
    seed: int = 0,
) -> float:
    """Sampling spread of ``metric(X)`` across probe sets, from random halves of X.

    The metric is computed on ``n_resamples`` random halves (without replacement) and
    the standard deviation of those values is returned. For a smooth statistic the
    variance over half-samples of a fixed set of n equals the sampling variance of the
    statistic at size n (the delete-n/2 jackknife), so this is the noise a different
    probe set of the same size would show, without duplicated rows that would break
    nearest-neighbour estimators.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The probe set's representation (n_samples >= 4).
    metric : callable
        ``metric(X) -> float``, e.g. ``traindyn.metrics.participation_ratio``.
    n_resamples : int
        Number of halves (>= 2).
    seed : int
        Seed of the private generator that draws the halves.

    Returns
    -------
    float
        Standard deviation (ddof=1) of the metric over the halves, in its units.

    Raises
    ------
    MetricError
        If X has fewer than 4 rows or the metric fails on a half.

    References
    ----------
    Shao, J., & Wu, C. F. J. (1989). A general theory for jackknife variance estimation.
    Annals of Statistics 17(3) (delete-d jackknife, d = n/2).

    Examples
    --------
    A metric that is constant over every subset has no sampling noise:

    >>> half_sample_noise(np.eye(8), lambda x: float(x.shape[1]))
    0.0
    """
    x = as_2d_float(X, name="X")
    if n_resamples < 2:
        raise ConfigError(f"n_resamples must be >= 2 to estimate a spread; got {n_resamples!r}.")
    check_min_samples(x, 4, name="X", what="splitting in halves")
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, np.float64)
    n = arr.shape[0]
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        rows = np.sort(rng.choice(n, size=n // 2, replace=False))
        try:
            values.append(float(metric(arr[rows])))
        except ValueError as exc:
            raise MetricError(f"metric failed on a half of X ({n // 2} rows): {exc}") from exc
    return float(np.std(values, ddof=1))


def half_sample_spread(
    X: Array,
    names: Iterable[str] | str = DEFAULT_METRICS,
    *,
    n_resamples: int = 20,
    seed: int = 0,
) -> dict[str, float]:
    """Sampling spread of several registered metrics across probe sets, from random halves.

    The halves are drawn exactly as in :func:`half_sample_noise` (same seed, same rows),
    and each half is measured once with :func:`~traindyn.metrics.measure`, so the
    spectral metrics share one eigendecomposition per half. A metric that cannot be
    computed on a half (too few rows for ``mle_dimension``, a collapsed half) is left out
    of that metric's spread only; it never raises.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The probe set's representation (n_samples >= 4), one row per probe input.
    names : iterable of str or str, default DEFAULT_METRICS
        Registered metric names (the ``metric`` column of a run's tables).
    n_resamples : int
        Number of halves (>= 2).
    seed : int
        Seed of the private generator that draws the halves.

    Returns
    -------
    dict of str to float
        Metric name -> standard deviation (ddof=1) of its value over the halves on which
        it is finite, in the metric's units; NaN when fewer than 2 halves gave a value.
        Keys in the order of ``names``, without repeats.

    Raises
    ------
    MetricError
        If X is not a finite 2-D array with at least 4 rows.
    ConfigError
        If a name is not registered (the message lists the registered ones), ``names`` is
        empty or ``n_resamples < 2``.

    See Also
    --------
    half_sample_noise : the same estimate for one metric callable.

    References
    ----------
    Shao, J., & Wu, C. F. J. (1989). A general theory for jackknife variance estimation.
    Annals of Statistics 17(3) (delete-d jackknife, d = n/2).

    Examples
    --------
    Every half of the 8 x 8 identity is the same 4 points up to a permutation of the
    features, so no rank-like metric moves:

    >>> spread = half_sample_spread(np.eye(8), ["participation_ratio", "energy_rank"])
    >>> {name: round(value, 10) for name, value in spread.items()}
    {'participation_ratio': 0.0, 'energy_rank': 0.0}
    """
    wanted = list(dict.fromkeys([names] if isinstance(names, str) else names))
    if not wanted:
        raise ConfigError("names must list at least one registered metric; got none.")
    for name in wanted:
        get_metric(name)  # an unknown name fails here, listing the registered ones
    if isinstance(n_resamples, bool) or not isinstance(n_resamples, int) or n_resamples < 2:
        raise ConfigError(
            f"n_resamples must be an integer >= 2 to estimate a spread; got {n_resamples!r}."
        )
    x = as_2d_float(X, name="X")
    check_min_samples(x, 4, name="X", what="splitting in halves")
    arr = np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, np.float64)
    n = arr.shape[0]
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {name: [] for name in wanted}
    for _ in range(n_resamples):
        rows = np.sort(rng.choice(n, size=n // 2, replace=False))
        for m in measure(arr[rows], wanted):
            if math.isfinite(m.value):
                values[m.metric].append(m.value)
    return {
        name: float(np.std(v, ddof=1)) if len(v) >= 2 else math.nan for name, v in values.items()
    }
