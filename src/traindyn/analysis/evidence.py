"""Evidence that a detected event is real: surrogate nulls, FDR control, shape and replication.

Seed 002's lesson was that a detector always finds something: a z-score rule flagged
2,991 "jumps" that were noise. Every candidate event of :func:`~traindyn.analysis.detect_jumps`
therefore gets four kinds of evidence here, each a column:

1. **Shape** (:func:`event_shapes`): is it a step, a slope change or smooth drift? The
   window around the event is fitted by a quadratic (smooth drift), a continuous hinge
   (slope change) and two lines with a gap (step), by generalised least squares under
   the trajectory's AR(1) noise, and compared by BIC. A non-smooth label needs a BIC
   margin of 10 (Kass & Raftery's "very strong evidence") over the quadratic:
   smoothness is the null. A pure linear drift, which ruptures' methods cut into several steps, gets
   no step.
2. **A p-value against surrogate nulls fitted to the same trajectory**
   (:func:`scan_null`): the event's studentised statistic (its level shift, or its slope
   change, over the exact standard error under the trajectory's AR(1) noise) is compared
   with the *maximum* of the same statistic over every position of surrogate
   trajectories. The maximum, because the detector searched every position: the p-value
   is the chance that noise alone produces an event this large anywhere in the series.
   Two nulls; by default the AR(1) p-value decides and the block null is reported
   beside it (``null="both"`` makes the larger of the two decide):

   * ``ar1``: AR(1) noise with the trajectory's own autocorrelation (fitted robustly,
     :func:`~traindyn.analysis.noise.ar1_noise`). The statistics are invariant to a
     linear trend, so the surrogates need no trend. Their noise model is re-estimated on
     every surrogate, exactly as on the data, so the p-value accounts for the estimate's
     own error.
   * ``block``: the trajectory's own noise, resampled: the AR(1) innovations of its
     residuals about a line on each segment between the candidates, drawn in blocks
     and filtered again (a block-wise AR-sieve bootstrap, Bühlmann 1997). It keeps the
     noise's real distribution (heavy tails, outliers) and short-range dependence,
     which the Gaussian AR(1) null need not get right. It is also blind to which of
     the trajectory's changes are real: a real run's other events feed its pool, so on
     real trajectories it is very conservative (measured with ``traindyn validate`` on
     steps planted into real runs: recall 0.43 instead of 1.0 at 10 noise sd), while
     the AR(1) null alone keeps Student-t (df 3) noise at 0.25 false positives per 1000
     samples. Hence the default; ``p_block`` flags the events that are also robust to
     the noise's own distribution.

   Small p-values come from a generalised Pareto fit to the null's upper tail
   (Knijnenburg et al. 2009), so that a run's many events can be corrected without
   millions of surrogates.
3. **Benjamini-Hochberg** control of the false discovery rate across all candidate events
   of a run (``q_value``; scipy's ``false_discovery_control``).
4. **Replication across seeds** (:func:`replication`): in how many runs of the same
   experiment with other seeds an event of the same layer and metric survives nearby.

An event ``survives`` when it is not smooth drift, clears the noise floor (``snr >=
min_snr``; for a slope change, ``slope_snr``), and has ``q_value <= alpha``. ``traindyn
validate`` scores exactly this rule on fixtures with known answers.
"""

from __future__ import annotations

import functools
import itertools
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from scipy.signal import lfilter
from scipy.stats import false_discovery_control

from traindyn._validation import check_positive
from traindyn.analysis.level_shift import (
    ShiftWeights,
    apply_weights,
    ar1_variance,
    every_position,
    lag_products,
    shift_weights,
)
from traindyn.analysis.noise import (
    AR1,
    MAX_PHI,
    PHI_GRID,
    ar1_noise,
    ar1_noise_rows,
    gridded_phi,
)
from traindyn.analysis.trajectories import Series
from traindyn.exceptions import ConfigError

__all__ = [
    "EVIDENCE_COLUMNS",
    "SHAPES",
    "NullDistribution",
    "Shape",
    "event_evidence",
    "event_shapes",
    "replication",
    "scan_null",
    "tail_pvalue",
]

Shape = Literal["step", "slope_change", "drift"]
SHAPES: tuple[Shape, ...] = ("step", "slope_change", "drift")

EVIDENCE_COLUMNS = [
    "shape",
    "location",
    "bic_step",
    "bic_slope_change",
    "bic_drift",
    "slope_change",
    "slope_snr",
    "statistic",
    "p_ar1",
    "p_block",
    "p_value",
    "q_value",
    "survives",
]

# Kass & Raftery (1995): a BIC difference above 10 is "very strong" evidence. Measured on
# pure linear drifts (sd-1 noise, 400 samples): the largest margin by which a step beat
# the quadratic at any PELT candidate was 8.1 in 100 candidates; real steps of 4x the
# noise floor beat it by more than 40.
_BIC_MARGIN = 10.0
_TAIL_FRACTION = 0.1  # GPD fitted to the top 10% of the null (Knijnenburg et al. 2009)
_MIN_EXCEEDANCES = 10  # below this many null values above the statistic, use the GPD tail
_BLOCK_SCALE_LIMIT = 3.0  # blocks noisier than 3x the typical block are a transient
_BLOCK = 8  # innovations resampled in blocks of 8: AR(1) carries the longer dependence
_TRANSIENT = 0.1  # leading fraction of a trajectory left out of the block null's pool
_CHECK_SURROGATES = 199  # block surrogates when they only check survivors (null="ar1")


@dataclass(frozen=True)
class NullDistribution:
    """Null distribution of the maximum of a scan statistic over a trajectory.

    Attributes
    ----------
    maxima : ndarray of float64, shape (n_surrogates,)
        Per surrogate, the largest studentised statistic over every position, sorted.
    """

    maxima: NDArray[np.float64]

    def pvalue(self, statistic: NDArray[np.float64]) -> NDArray[np.float64]:
        """One-sided p-values ``P(max >= statistic)`` (see :func:`tail_pvalue`)."""
        return tail_pvalue(self.maxima, statistic)


def tail_pvalue(null: NDArray[np.float64], statistic: NDArray[np.float64]) -> NDArray[np.float64]:
    """P-values of ``statistic`` under an empirical null, with a fitted tail beyond it.

    ``p = (1 + #{null >= s}) / (1 + B)`` while at least 10 null values reach ``s``;
    beyond that the top 10% of the null is fitted by a generalised Pareto distribution
    (probability-weighted moments, the shape held at >= 0: a bounded tail fitted to a
    finite sample would call large statistics impossible) and
    ``p = 0.1 * GPD survival(s - threshold)``. This gives p-values far below ``1 / B``,
    as Benjamini-Hochberg over many events needs, erring large for light tails.

    Parameters
    ----------
    null : ndarray of shape (B,)
        Null values (finite).
    statistic : ndarray of shape (k,)

    Returns
    -------
    ndarray of float64, shape (k,)
        In (0, 1]; NaN where the statistic is NaN.

    References
    ----------
    Knijnenburg, T. A., Wessels, L. F. A., Reinders, M. J. T., & Shmulevich, I. (2009).
    Fewer permutations, more accurate P-values. Bioinformatics 25(12).
    Hosking, J. R. M., & Wallis, J. R. (1987). Parameter and quantile estimation for the
    generalized Pareto distribution. Technometrics 29(3).

    Examples
    --------
    >>> null = np.random.default_rng(0).standard_normal(10_000)
    >>> p = tail_pvalue(null, np.array([0.0, 1.645, 4.0]))
    >>> [round(float(v), 2) for v in p[:2]], bool(3.2e-5 < p[2] < 1e-3)  # 4 sd: 3.2e-5
    ([0.5, 0.05], True)
    """
    null = np.sort(np.asarray(null, dtype=np.float64))
    s = np.asarray(statistic, dtype=np.float64)
    b = len(null)
    count = b - np.searchsorted(null, s, side="left")
    p = (1.0 + count) / (1.0 + b)
    far = (count < _MIN_EXCEEDANCES) & np.isfinite(s)
    if far.any():
        p[far] = _gpd_tail(null, s[far])
    return np.where(np.isnan(s), np.nan, p)


def _gpd_tail(null: NDArray[np.float64], s: NDArray[np.float64]) -> NDArray[np.float64]:
    """``P(X >= s)`` from a GPD fitted (PWM) to the exceedances of the top 10% of ``null``."""
    b = len(null)
    k = max(round(_TAIL_FRACTION * b), 10)
    threshold = null[b - k - 1] if b > k else null[0]
    y = null[b - k :] - threshold  # ascending exceedances
    a0 = float(y.mean())
    a1 = float(np.dot(y, (k - 1 - np.arange(k)) / (k - 1)) / k)
    frac = k / b
    if a0 <= 0 or a0 - 2 * a1 <= 0:
        return np.full(len(s), 1.0 / (1.0 + b))
    xi = 2.0 - a0 / (a0 - 2 * a1)  # Hosking & Wallis' k is -xi
    scale = 2 * a0 * a1 / (a0 - 2 * a1)
    if xi < 0:
        # A bounded tail fitted to a finite null would call large statistics impossible;
        # the maxima of Gaussian-like statistics have exponential tails (xi = 0), which
        # is never lighter than the truth for them: conservative.
        xi, scale = 0.0, a0
    z = np.maximum(s - threshold, 0.0) / scale
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        surv = np.exp(-z) if xi < 1e-9 else (1.0 + xi * z) ** (-1.0 / xi)
    out: NDArray[np.float64] = np.clip(frac * surv, np.finfo(np.float64).tiny, 1.0)
    return out


# ------------------------------------------------------------------------------ nulls


def _studentised(
    w: ShiftWeights,
    weights: NDArray[np.float64],
    lags: NDArray[np.float64],
    Y: NDArray[np.float64],
    mask: NDArray[np.bool_],
) -> NDArray[np.float64]:
    """Max over positions of ``|w . y| / se`` for each row of Y, with Y's own AR(1) fit."""
    phi, sd = ar1_noise_rows(Y)
    values = np.abs(apply_weights(weights, w.start, Y))  # (m, k)
    var = ar1_variance(weights, phi, lags=lags) * (sd * sd)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(mask[None, :] & (var > 0), values / np.sqrt(var), 0.0)
    maxima: NDArray[np.float64] = stat.max(axis=1)
    return maxima


def _scan(
    x: NDArray[np.float64],
    surrogates: NDArray[np.float64],
    window: int,
    phi: float,
    chunk: int = 256,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Maxima of the level-shift and slope-change statistics of each surrogate row (the
    weights use ``phi``, as the data's statistic does)."""
    n = surrogates.shape[1]
    w = every_position(x, window, phi)
    delta, kink = w.delta, w.slope_change
    delta_lags, kink_lags = lag_products(delta), lag_products(kink)
    everywhere = np.ones(n - 1, dtype=bool)
    level, slope = [], []
    for lo in range(0, len(surrogates), chunk):
        part = surrogates[lo : lo + chunk]
        level.append(_studentised(w, delta, delta_lags, part, everywhere))
        slope.append(_studentised(w, kink, kink_lags, part, w.slopes))
    return np.sort(np.concatenate(level)), np.sort(np.concatenate(slope))


@functools.lru_cache(maxsize=256)
def _ar1_null(
    x: tuple[float, ...], phi_bin: int, window: int, n_surrogates: int, seed: int
) -> tuple[NullDistribution, NullDistribution]:
    """AR(1) surrogate maxima for positions ``x`` and ``phi = phi_bin * 0.05`` (cached:
    series of a run share their steps, and their autocorrelations fall on few bins)."""
    n = len(x)
    phi = _binned(phi_bin)
    rng = np.random.default_rng([seed, n, phi_bin, window])
    u = rng.standard_normal((n_surrogates, n)) * np.sqrt(1.0 - phi * phi)
    e0 = rng.standard_normal((n_surrogates, 1))
    e = lfilter([1.0], [1.0, -phi], u, axis=1, zi=phi * e0)[0]
    level, slope = _scan(np.asarray(x), e, window, phi)
    return NullDistribution(level), NullDistribution(slope)


def _block_surrogates(
    values: NDArray[np.float64],
    x: NDArray[np.float64],
    cuts: NDArray[np.int64],
    phi: float,
    block: int,
    n_surrogates: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """Noise rebuilt from the trajectory's own innovations, resampled in blocks.

    The residuals about a line fitted to each segment between the candidates ``cuts`` (a
    mean on segments under 3 samples) are the noise, outliers included; their AR(1)
    innovations ``r_t - phi r_{t-1}`` are cut into blocks of ``block`` samples, blocks
    drawn with replacement, and the AR(1) recursion run on them again (a block-wise
    AR-sieve bootstrap). Shuffling the residuals themselves would put a jump at every
    block edge of autocorrelated noise; resampling innovations keeps the noise's own
    distribution (heavy tails) and what dependence AR(1) leaves, with no seams. The
    first 10% of the samples (training's early transient) stay out of the pool, and so
    do blocks
    whose robust scale (median absolute difference) exceeds 3 times the typical block's:
    a transient the segments did not follow, not noise (one outlier does not move a
    block's median). No trend is added back: the
    statistics are blind to a linear trend.
    """
    n = len(values)
    residual = np.empty(n)
    edges = np.r_[0, np.unique(cuts[(cuts > 0) & (cuts < n)]), n]
    for a, b in itertools.pairwise(edges):
        seg = values[a:b]
        if b - a >= 3:
            slope, intercept = np.polyfit(x[a:b], seg, 1)
            residual[a:b] = seg - (intercept + slope * x[a:b])
        else:
            residual[a:b] = seg - seg.mean()
    innovation = residual[1:] - phi * residual[:-1]
    # The first tenth of training is a transient in almost every run (seed 002: most of
    # the change happens there); its innovations are not a sample of the noise.
    innovation = innovation[int(_TRANSIENT * len(innovation)) :]
    n_blocks = max(len(innovation) // block, 1)
    blocks = innovation[: n_blocks * block].reshape(n_blocks, -1)
    scale = np.median(np.abs(np.diff(blocks, axis=1)), axis=1) if blocks.shape[1] > 1 else None
    pool = blocks if scale is None else blocks[scale <= _BLOCK_SCALE_LIMIT * np.median(scale)]
    if len(pool) < 2:
        pool = blocks
    order = rng.integers(0, len(pool), size=(n_surrogates, -(-n // pool.shape[1])))
    u = pool[order].reshape(n_surrogates, -1)[:, :n]
    start = rng.choice(residual, size=(n_surrogates, 1))
    out: NDArray[np.float64] = lfilter([1.0], [1.0, -phi], u, axis=1, zi=phi * start)[0]
    return out


def scan_null(
    series: Series,
    *,
    null: Literal["ar1", "block"] = "ar1",
    cuts: Sequence[int] | NDArray[np.int64] = (),
    window: int = 8,
    n_surrogates: int = 999,
    seed: int = 0,
) -> tuple[NullDistribution, NullDistribution]:
    """Null distributions of the largest level shift and slope change of a trajectory.

    Parameters
    ----------
    series : Series
    null : {"ar1", "block"}
        See the module docstring.
    cuts : sequence of int
        Candidate change points (indices where a segment starts): the block null
        shuffles the residuals about a line fitted to each segment between them.
    window : int
        Samples on each side of the level-shift fit (as in ``detect_jumps``).
    n_surrogates : int
    seed : int

    Returns
    -------
    (NullDistribution, NullDistribution)
        Maxima of the studentised level shift and of the studentised slope change.

    Examples
    --------
    The largest studentised shift over 400 samples of white noise is typically below 3
    standard errors (the noise model errs high, see
    :func:`~traindyn.analysis.noise.ar1_noise`, so the studentised values run small):

    >>> rng = np.random.default_rng(0)
    >>> s = Series("fc", "pr", np.arange(400), rng.normal(0, 1, 400))
    >>> level, _ = scan_null(s, n_surrogates=199)
    >>> 2.5 < float(np.median(level.maxima)) < 3.5
    True
    """
    check_positive(n_surrogates, name="n_surrogates")
    x = (series.steps - series.steps[0]).astype(np.float64)
    x = x / max(float(x[-1]), 1.0)
    noise = ar1_noise(series.values)
    phi_bin = round(noise.phi / PHI_GRID)
    if null == "ar1":
        return _ar1_null(tuple(x.tolist()), phi_bin, window, n_surrogates, seed)
    if null != "block":
        raise ConfigError(f"null must be 'ar1' or 'block'; got {null!r}.")
    key = zlib.crc32(f"{series.layer}\x00{series.metric}".encode())
    rng = np.random.default_rng([seed, key])
    surrogates = _block_surrogates(
        series.values,
        x,
        np.asarray(cuts, dtype=np.int64),
        _binned(phi_bin),
        _BLOCK,
        n_surrogates,
        rng,
    )
    level, slope = _scan(x, surrogates, window, _binned(phi_bin))
    return NullDistribution(level), NullDistribution(slope)


def _binned(phi_bin: int) -> float:
    """The autocorrelation a null (and the statistic it is compared with) is built for."""
    return min(phi_bin * PHI_GRID, MAX_PHI)


# ----------------------------------------------------------------------------- shapes


def _prewhiten(A: NDArray[np.float64], phi: float) -> NDArray[np.float64]:
    """Prais-Winsten transform along axis -2: rows become ``a_t - phi a_{t-1}``."""
    out = A.copy()
    out[..., 1:, :] -= phi * A[..., :-1, :]
    out[..., :1, :] *= np.sqrt(1.0 - phi * phi)
    return out


def _rss(X: NDArray[np.float64], y: NDArray[np.float64]) -> NDArray[np.float64]:
    """Residual sum of squares of least squares of y (n,) on each X[p] (n, k)."""
    beta = np.linalg.pinv(X) @ y  # (P, k)
    resid = y[None, :] - np.einsum("pnk,pk->pn", X, beta)
    rss: NDArray[np.float64] = (resid * resid).sum(axis=1)
    return rss


@dataclass(frozen=True)
class _ShapeFit:
    shape: Shape
    location: int  # sample index where the change starts
    bic: tuple[float, float, float]  # step, slope change, drift


def _shape_of(
    x: NDArray[np.float64], y: NDArray[np.float64], i: int, noise: AR1, window: int
) -> _ShapeFit:
    n = len(y)
    lo, hi = max(0, i - 2 * window), min(n, i + 2 * window)
    xs = x[lo:hi]
    if hi - lo < 8:
        return _ShapeFit("drift", i, (np.nan, np.nan, np.nan))
    span = max(float(xs[-1] - xs[0]), 1e-12)
    u = 2.0 * (xs - xs[0]) / span - 1.0  # positions in [-1, 1]
    ys = y[lo:hi]
    m = len(ys)
    ones = np.ones(m)
    # Drift: a quadratic.
    smooth = np.stack([ones, u, u * u], axis=1)[None]
    # Slope change: a continuous hinge at a sample near the event.
    knots = np.arange(max(lo + 3, i - window // 2), min(hi - 3, i + window // 2 + 1))
    hinge = (
        np.stack([np.stack([ones, u, np.maximum(u - u[k - lo], 0.0)], axis=1) for k in knots])
        if len(knots)
        else np.zeros((0, m, 3))
    )
    # Step: two lines with a gap at a sample next to the event (the detector's index can
    # be off by one or two on a ramp).
    places = np.arange(max(lo + 2, i - 2), min(hi - 1, i + 3))
    step3 = np.stack([np.stack([ones, u, (u >= u[k - lo]) * 1.0], axis=1) for k in places])
    step4 = np.stack(
        [
            np.stack([ones, u, (u >= u[k - lo]) * 1.0, np.maximum(u - u[k - lo], 0.0)], axis=1)
            for k in places
        ]
    )
    yw = _prewhiten(ys[:, None], noise.phi)[:, 0]
    floor = m * (np.finfo(np.float64).eps * max(float(np.abs(ys).max()), 1.0)) ** 2
    logm = np.log(m)

    def bic(rss: NDArray[np.float64], k: int) -> NDArray[np.float64]:
        return np.asarray(m * np.log(np.maximum(rss, floor) / m) + k * logm, dtype=np.float64)

    b_smooth = float(bic(_rss(_prewhiten(smooth, noise.phi), yw), 3)[0])
    b_hinge = bic(_rss(_prewhiten(hinge, noise.phi), yw), 4) if len(knots) else np.array([np.inf])
    b_step3 = bic(_rss(_prewhiten(step3, noise.phi), yw), 4)
    b_step4 = bic(_rss(_prewhiten(step4, noise.phi), yw), 5)
    b_step = np.minimum(b_step3, b_step4)
    best_step, best_hinge = int(np.argmin(b_step)), int(np.argmin(b_hinge))
    bics = (float(b_step[best_step]), float(b_hinge[best_hinge]), b_smooth)
    if bics[0] <= bics[1] and bics[0] < b_smooth - _BIC_MARGIN:
        return _ShapeFit("step", int(places[best_step]), bics)
    if bics[1] < bics[0] and bics[1] < b_smooth - _BIC_MARGIN:
        return _ShapeFit("slope_change", int(knots[best_hinge]), bics)
    return _ShapeFit("drift", i, bics)


def event_shapes(
    series: Series, idx: Sequence[int] | NDArray[np.int64], *, window: int = 8
) -> pd.DataFrame:
    """Label the events of one series a step, a slope change or smooth drift.

    The ``4 * window`` samples around each event are fitted three ways, by generalised
    least squares under the trajectory's AR(1) noise (Prais-Winsten prewhitening):

    * ``drift``: a quadratic (3 parameters);
    * ``slope_change``: a continuous hinge ``a + b x + c (x - x_k)_+`` with the knot
      ``x_k`` at the best sample within ``window / 2`` of the event (4);
    * ``step``: a line plus a gap at the best sample within 2 of the event, with or
      without a change of slope there (4 or 5).

    The label is the model with the lowest BIC, but a step or slope change must beat
    the quadratic by more than 10 (smoothness is the null).

    Parameters
    ----------
    series : Series
    idx : sequence of int
        Event indices (the sample where the change starts), in 1..n-1.
    window : int
        Half-width, in samples, of the level-shift fit; the shape window is twice that
        on each side.

    Returns
    -------
    DataFrame
        One row per event: ``shape``, ``location`` (the step of the sample where the
        fitted change starts), ``bic_step``, ``bic_slope_change``, ``bic_drift``.

    References
    ----------
    Schwarz, G. (1978). Estimating the dimension of a model. Annals of Statistics 6(2).
    Kass, R. E., & Raftery, A. E. (1995). Bayes factors. JASA 90(430).
    Prais, S. J., & Winsten, C. B. (1954). Trend estimators and serial correlation.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(200.0)
    >>> step = Series("fc", "pr", np.arange(200), np.where(t >= 100, 1.0, 0.0)
    ...               + rng.normal(0, 0.05, 200))
    >>> kink = Series("fc", "pr", np.arange(200), np.maximum(t - 100, 0) * 0.1
    ...               + rng.normal(0, 0.05, 200))
    >>> line = Series("fc", "pr", np.arange(200), t * 0.01 + rng.normal(0, 0.05, 200))
    >>> [event_shapes(s, [100])["shape"].item() for s in (step, kink, line)]
    ['step', 'slope_change', 'drift']
    """
    x = (series.steps - series.steps[0]).astype(np.float64)
    noise = ar1_noise(series.values)
    fits = [_shape_of(x, series.values, int(i), noise, window) for i in idx]
    return pd.DataFrame(
        {
            "shape": pd.Series([f.shape for f in fits], dtype="object"),
            "location": np.array([series.steps[f.location] for f in fits], dtype=np.int64),
            "bic_step": np.array([f.bic[0] for f in fits], dtype=np.float64),
            "bic_slope_change": np.array([f.bic[1] for f in fits], dtype=np.float64),
            "bic_drift": np.array([f.bic[2] for f in fits], dtype=np.float64),
        }
    )


# --------------------------------------------------------------------------- evidence


def event_evidence(
    series: Sequence[Series],
    events: pd.DataFrame,
    *,
    n_surrogates: int = 999,
    alpha: float = 0.05,
    min_snr: float = 4.0,
    window: int = 8,
    seed: int = 0,
    null: Literal["ar1", "both"] = "ar1",
) -> pd.DataFrame:
    """Shape, surrogate p-values, BH q-values and survival of a run's candidate events.

    Parameters
    ----------
    series : sequence of Series
        The trajectories the events were detected on.
    events : DataFrame
        Rows of :func:`~traindyn.analysis.detect_jumps` on those series (at least
        ``layer, metric, step, snr``).
    n_surrogates : int
        Surrogates per null (AR(1) nulls are shared by series with the same steps and a
        similar autocorrelation; block nulls are drawn per series with a candidate).
    alpha : float
        False discovery rate of the Benjamini-Hochberg procedure over all the events.
    min_snr : float
        Noise-floor ratio an event must reach (``snr``; ``slope_snr`` for a slope change).
    window : int
        Samples on each side of the level-shift fit (as in ``detect_jumps``).
    seed : int
        Seed of the surrogates (the result is deterministic).
    null : {"ar1", "both"}
        Which p-value decides: the AR(1) null's, or the larger of the AR(1) and block
        nulls' (see the module docstring).

    Returns
    -------
    DataFrame
        ``events`` with the columns :data:`EVIDENCE_COLUMNS` added:

        * ``shape``, ``location``, ``bic_*``: :func:`event_shapes`;
        * ``slope_change``: slope after minus slope before (metric units per training
          step), ``slope_snr``: its size over its standard error under the AR(1) noise;
        * ``statistic``: the studentised statistic tested (the level shift's ``|delta| /
          se``, or the slope change's for a slope change);
        * ``p_ar1``, ``p_block``: p-values of the maximum-statistic scan under each
          null; ``p_value``: the deciding one (``p_ar1``, or the larger with
          ``null="both"``); ``q_value``: Benjamini-Hochberg adjusted. The block null
          is drawn per series, only where it can matter: with ``null="ar1"`` for the
          events that survive on the AR(1) null (a robustness check: ``p_block <=
          alpha`` says the event is also extreme for the noise's own distribution),
          with ``null="both"`` for every event with ``p_ar1 <= alpha`` (the others are
          above alpha either way); elsewhere ``p_block`` is NaN;
        * ``survives``: not drift, above the floor and ``q_value <= alpha``; of
          surviving events of one series within ``window // 2`` samples of each other
          (a step and the slope-change peaks beside it) only the strongest.

    Raises
    ------
    ConfigError
        If a column is missing, an event's series is not given, or an option is out of
        range.

    Examples
    --------
    A step of 1 on AR(1)-free noise survives; the candidates PELT finds on a pure drift
    do not:

    >>> from traindyn.analysis.jumps import detect_jumps
    >>> rng = np.random.default_rng(1)
    >>> t = np.arange(300)
    >>> step = Series("a", "pr", t * 5, np.where(t >= 150, 1.0, 0.0) + rng.normal(0, 0.1, 300))
    >>> drift = Series("b", "pr", t * 5, t * 0.01 + rng.normal(0, 0.1, 300))
    >>> ev = detect_jumps([step, drift], total_steps=1500)
    >>> out = event_evidence([step, drift], ev, n_surrogates=199)
    >>> out[out["survives"]][["layer", "step", "shape"]].values.tolist()
    [['a', 750, 'step']]
    """
    missing = {"layer", "metric", "step", "snr"} - set(events.columns)
    if missing:
        raise ConfigError(
            f"events must have columns layer, metric, step, snr; {sorted(missing)} missing. "
            "Pass the output of detect_jumps."
        )
    check_positive(n_surrogates, name="n_surrogates")
    check_positive(min_snr, name="min_snr")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha must be in (0, 1); got {alpha!r}.")
    if null not in ("ar1", "both"):
        raise ConfigError(f"null must be 'ar1' or 'both'; got {null!r}.")
    out = events.reset_index(drop=True).copy()
    k = len(out)
    cols: dict[str, NDArray[np.float64] | NDArray[np.object_] | NDArray[np.int64]] = {
        "shape": np.full(k, "drift", dtype=object),
        "location": out["step"].to_numpy(dtype=np.int64).copy(),
        # The numeric evidence, filled per series (p_value, q_value, survives come last).
        **{c: np.full(k, np.nan) for c in EVIDENCE_COLUMNS[2:-3]},
    }
    by_key = {(s.layer, s.metric): s for s in series}
    groups = out.groupby(["layer", "metric"], sort=False).indices
    for key, rows in groups.items():
        layer, metric = (str(k) for k in key) if isinstance(key, tuple) else (str(key), "")
        s = by_key.get((layer, metric))
        if s is None:
            raise ConfigError(
                f"events name layer {layer!r}, metric {metric!r}, but no such series was "
                "given; pass the series the events were detected on."
            )
        _series_evidence(s, out, np.asarray(rows), cols, n_surrogates, window, seed)
    shape = np.asarray(cols["shape"])
    snr_ok = np.where(
        shape == "slope_change",
        np.asarray(cols["slope_snr"], dtype=np.float64) >= min_snr,
        out["snr"].to_numpy() >= min_snr,
    )
    p_ar1 = np.asarray(cols["p_ar1"], dtype=np.float64)
    q_ar1 = _bh(p_ar1)
    # The block null is drawn per series, and only where it can matter. With null="both"
    # it decides: an event whose AR(1) p-value exceeds alpha cannot reach q <= alpha
    # whatever p_block is (p_value is the larger), and no other decision depends on it.
    # With null="ar1" it is a robustness check of the events that survive.
    candidate = p_ar1 <= alpha if null == "both" else (shape != "drift") & snr_ok & (q_ar1 <= alpha)
    for key, rows in groups.items():
        rows = np.asarray(rows)
        layer, metric = (str(k) for k in key) if isinstance(key, tuple) else (str(key), "")
        _block_evidence(
            by_key[(layer, metric)],
            out,
            rows,
            candidate[rows],
            cols,
            n_surrogates if null == "both" else min(n_surrogates, _CHECK_SURROGATES),
            window,
            seed,
        )
    for c, v in cols.items():
        out[c] = v
    p = p_ar1
    if null == "both":
        p = np.fmax(p, out["p_block"].to_numpy())  # fmax: a NaN p_block leaves p_ar1
    out["p_value"] = p
    q = _bh(p)
    out["q_value"] = q
    floor_ok = snr_ok
    survives = (shape != "drift") & floor_ok & (np.nan_to_num(q, nan=1.0) <= alpha)
    out["survives"] = _one_per_change(out, survives, by_key, window)
    return out


def _one_per_change(
    events: pd.DataFrame,
    survives: NDArray[np.bool_],
    series: Mapping[tuple[str, str], Series],
    window: int,
) -> NDArray[np.bool_]:
    """Keep, of surviving events of one series whose fitted changes lie within
    ``window // 2`` samples of each other (a step and the slope-change peaks it echoes),
    only the one with the largest statistic."""
    keep = survives.copy()
    rows = np.flatnonzero(survives)
    if not len(rows):
        return keep
    alive = events.iloc[rows]
    for key, group in alive.groupby(["layer", "metric"], sort=False).indices.items():
        at = rows[group]
        layer, metric = (str(k) for k in key) if isinstance(key, tuple) else (str(key), "")
        steps = series[(layer, metric)].steps
        position = np.searchsorted(steps, events["location"].to_numpy()[at])
        order = np.argsort(-events["statistic"].to_numpy()[at], kind="stable")
        taken: list[int] = []
        for i in order:
            if any(abs(int(position[i]) - t) <= window // 2 for t in taken):
                keep[at[i]] = False
            else:
                taken.append(int(position[i]))
    return keep


def _bh(p: NDArray[np.float64]) -> NDArray[np.float64]:
    """Benjamini-Hochberg adjusted p-values of the finite entries (NaN elsewhere)."""
    q = np.full(len(p), np.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = false_discovery_control(p[finite], method="bh")
    return q


def _series_evidence(
    s: Series,
    events: pd.DataFrame,
    rows: NDArray[np.int64],
    cols: Mapping[str, NDArray[np.float64] | NDArray[np.object_] | NDArray[np.int64]],
    n_surrogates: int,
    window: int,
    seed: int,
) -> None:
    """Fill ``cols`` at ``rows`` for the events of one series (in place)."""
    steps = events["step"].to_numpy(dtype=np.int64)[rows]
    idx = np.searchsorted(s.steps, steps)
    ok = (idx >= 1) & (idx < len(s)) & (s.steps[np.minimum(idx, len(s) - 1)] == steps)
    if not ok.all():
        bad = steps[~ok][:5].tolist()
        raise ConfigError(
            f"events at steps {bad} of {s.layer}/{s.metric} are not sampled steps of the "
            "series (or are its first sample); detect them on the same series."
        )
    shapes = event_shapes(s, idx, window=window)
    for c in ("shape", "location", "bic_step", "bic_slope_change", "bic_drift"):
        cols[c][rows] = shapes[c].to_numpy()
    noise = ar1_noise(s.values)
    x = (s.steps - s.steps[0]).astype(np.float64)
    # The statistic uses the same binned autocorrelation as its null.
    w = shift_weights(x, idx, window, phi=gridded_phi(noise.phi))
    delta = np.abs(apply_weights(w.delta, w.start, s.values))
    slope = apply_weights(w.slope_change, w.start, s.values)
    with np.errstate(divide="ignore", invalid="ignore"):
        se_level = noise.sd * np.sqrt(ar1_variance(w.delta, noise.phi))
        se_slope = noise.sd * np.sqrt(ar1_variance(w.slope_change, noise.phi))
        level_stat = np.where(se_level > 0, delta / se_level, np.where(delta > 0, np.inf, 0.0))
        slope_stat = np.where(
            w.slopes & (se_slope > 0), np.abs(slope) / se_slope, np.where(w.slopes, 0.0, np.nan)
        )
    cols["slope_change"][rows] = np.where(w.slopes, slope, np.nan)
    cols["slope_snr"][rows] = slope_stat
    is_slope = shapes["shape"].to_numpy() == "slope_change"
    stat = np.where(is_slope, slope_stat, level_stat)
    cols["statistic"][rows] = stat
    if len(s) < 2 * window or noise.sd == 0.0:
        # Too short for a null, or noiseless: any change is exact (floors decide).
        cols["p_ar1"][rows] = np.where(stat > 0, 0.0, 1.0)
        cols["p_block"][rows] = np.where(stat > 0, 0.0, 1.0)
        return
    level_null, slope_null = scan_null(
        s, null="ar1", window=window, n_surrogates=n_surrogates, seed=seed
    )
    p_ar1 = np.where(is_slope, slope_null.pvalue(stat), level_null.pvalue(stat))
    cols["p_ar1"][rows] = p_ar1


def _block_evidence(
    s: Series,
    events: pd.DataFrame,
    rows: NDArray[np.int64],
    wanted: NDArray[np.bool_],
    cols: Mapping[str, NDArray[np.float64] | NDArray[np.object_] | NDArray[np.int64]],
    n_surrogates: int,
    window: int,
    seed: int,
) -> None:
    """Fill ``p_block`` at ``rows[wanted]`` for the events of one series (in place)."""
    if not wanted.any() or len(s) < 2 * window or ar1_noise(s.values).sd == 0.0:
        return
    idx = np.searchsorted(s.steps, events["step"].to_numpy(dtype=np.int64)[rows])
    level_null, slope_null = scan_null(
        s, null="block", cuts=idx, window=window, n_surrogates=n_surrogates, seed=seed
    )
    stat = np.asarray(cols["statistic"][rows], dtype=np.float64)  # the GPD tail extends it
    is_slope = np.asarray(cols["shape"][rows]) == "slope_change"
    p_block = np.where(is_slope, slope_null.pvalue(stat), level_null.pvalue(stat))
    cols["p_block"][rows[wanted]] = p_block[wanted]


# ------------------------------------------------------------------------ replication


def replication(
    events: Mapping[str, pd.DataFrame],
    *,
    tolerance: int,
) -> dict[str, pd.DataFrame]:
    """In how many seeds each surviving event appears: same layer and metric, nearby step.

    Parameters
    ----------
    events : mapping of run id to DataFrame
        The evidence tables (:func:`event_evidence`) of runs that differ only in their
        seed.
    tolerance : int
        Largest distance, in training steps, between the ``location`` of two events that
        count as the same.

    Returns
    -------
    dict of run id to DataFrame
        Each table with ``replicated_in`` (number of runs, itself included, with a
        surviving event of the same layer, metric and shape within ``tolerance``; 0 for
        events that do not survive) and ``n_seeds`` (the number of runs).

    Examples
    --------
    >>> a = pd.DataFrame({"layer": ["fc"], "metric": ["pr"], "shape": ["step"],
    ...                   "location": [100], "survives": [True]})
    >>> b = a.assign(location=[104])
    >>> c = a.assign(location=[300])
    >>> out = replication({"s0": a, "s1": b, "s2": c}, tolerance=10)
    >>> [int(out[k]["replicated_in"].item()) for k in ("s0", "s1", "s2")]
    [2, 2, 1]
    """
    if tolerance < 0:
        raise ConfigError(f"tolerance must be >= 0 training steps; got {tolerance!r}.")
    surviving = {
        run: t[t["survives"].astype(bool)][["layer", "metric", "shape", "location"]]
        for run, t in events.items()
    }
    out: dict[str, pd.DataFrame] = {}
    for run, table in events.items():
        count = np.zeros(len(table), dtype=np.int64)
        alive = table["survives"].to_numpy(dtype=bool)
        for other in surviving.values():
            if other.empty:
                continue
            grouped = other.groupby(["layer", "metric", "shape"]).indices
            for r in (int(i) for i in np.flatnonzero(alive)):
                key = (table["layer"].iat[r], table["metric"].iat[r], table["shape"].iat[r])
                hits = grouped.get(key)
                if hits is None:
                    continue
                locations = other["location"].to_numpy()[hits]
                if np.any(np.abs(locations - table["location"].iat[r]) <= tolerance):
                    count[r] += 1
        out[run] = table.assign(replicated_in=count, n_seeds=len(events))
    return out
