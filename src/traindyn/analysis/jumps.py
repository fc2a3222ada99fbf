"""Jumps: change points in metric trajectories, each judged against the noise floor.

Three detectors find candidate events in a :class:`~traindyn.analysis.trajectories.Series`:

* ``"scan"``: the peaks of the studentised level shift and slope change over every
  position (:func:`scan_peaks`), the statistic the evidence of
  :mod:`traindyn.analysis.evidence` tests: blind to linear trends, so steps against a
  drift are proposed as readily as steps along it (``traindyn analyze``'s default).
* ``"zscore"``, seed 001's detector: first differences whose z-score exceeds 2. On any
  noisy trajectory about 5% of the samples exceed it, which is how seed 002 "found"
  2,991 jumps of 1e-11: kept for comparison, not as a default.
* ``"pelt"``: exact penalised least-squares segmentation (PELT, Killick et al.
  2012, with ruptures' ``"l2"`` cost) with the penalty ``penalty_scale * sigma^2 *
  log(n)`` from the trajectory's robust sample-to-sample noise
  (:func:`~traindyn.analysis.noise.trajectory_noise`).

Whatever found it, every event is measured the same way: the level shift at the event is
the gap between straight lines fitted to the samples on each side, by generalised least
squares under the trajectory's AR(1) noise (so a smooth drift, which PELT cuts into
stairs, has shifts near zero), and that shift is divided by the
noise floor (:mod:`traindyn.analysis.noise`). Events whose ratio is below ``min_snr`` are
flagged ``below_floor`` and left out of :func:`jump_types` by default.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from traindyn._validation import check_in, check_positive
from traindyn.analysis.level_shift import (
    apply_weights,
    ar1_variance,
    every_position,
    shift_weights,
)
from traindyn.analysis.noise import (
    AR1,
    FLOAT32_EPS,
    ar1_noise,
    gridded_phi,
    quantum,
    trajectory_noise,
)
from traindyn.analysis.trajectories import Series
from traindyn.exceptions import ConfigError

__all__ = [
    "DETECTORS",
    "EVENT_COLUMNS",
    "Detector",
    "JumpTypes",
    "detect_jumps",
    "jump_types",
    "pelt",
    "scan_peaks",
    "zscore_events",
]

Detector = Literal["scan", "pelt", "zscore"]
DETECTORS: tuple[Detector, ...] = ("scan", "pelt", "zscore")

EVENT_COLUMNS = [
    "layer",
    "metric",
    "detector",
    "step",
    "prev_step",
    "phase",
    "level_before",
    "level_after",
    "delta",
    "magnitude",
    "speed",
    "noise_sd",
    "noise_phi",
    "shift_se",
    "probe_noise",
    "precision",
    "quantum",
    "noise_floor",
    "snr",
    "precision_ratio",
    "below_floor",
]


def zscore_events(values: NDArray[np.float64], *, threshold: float = 2.0) -> NDArray[np.int64]:
    """Seed 001's detector: samples after a first difference with ``|z| > threshold``.

    ``z = (d - mean(d)) / std(d)`` over the differences ``d = diff(values)``; an event
    at index ``i`` is the change from sample ``i - 1`` to sample ``i``. A constant
    trajectory has no events.

    Parameters
    ----------
    values : ndarray of shape (n,)
    threshold : float
        The seed used 2.0 standard deviations.

    Returns
    -------
    ndarray of int64
        Indices ``i`` in 1..n-1, ascending.

    Examples
    --------
    >>> zscore_events(np.array([0.0, 0.0, 0.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0]))
    array([3])
    """
    if len(values) < 3:
        return np.zeros(0, dtype=np.int64)
    d = np.diff(values)
    sd = float(d.std())
    if sd == 0.0:
        return np.zeros(0, dtype=np.int64)
    z = (d - d.mean()) / sd
    return (np.flatnonzero(np.abs(z) > threshold) + 1).astype(np.int64)


def scan_peaks(series: Series, *, window: int = 8, threshold: float = 3.0) -> NDArray[np.int64]:
    """Where the studentised level shift or slope change peaks above ``threshold``.

    At every position the level shift and the slope change between lines fitted to the
    ``window`` samples on each side are estimated by generalised least squares under the
    trajectory's robust AR(1) noise model (:func:`~traindyn.analysis.level_shift.
    shift_weights`, :func:`~traindyn.analysis.noise.ar1_noise`) and divided by their
    exact standard errors. Candidates are the positions where either ratio exceeds
    ``threshold`` and is the largest within ``window // 2`` samples. Both statistics are
    blind to a linear trend, so, unlike a piecewise-constant segmentation, a step
    against a drift is proposed as readily as one along it.

    Parameters
    ----------
    series : Series
    window : int
        Samples on each side.
    threshold : float
        Smallest studentised statistic proposed (the evidence decides; 3 proposes a few
        candidates per 400 samples of pure noise).

    Returns
    -------
    ndarray of int64
        Indices ``i`` in 1..n-1 (the change from sample ``i - 1`` to ``i``), ascending.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> t = np.arange(200)
    >>> v = -0.05 * t + np.where(t >= 120, 1.0, 0.0) + rng.normal(0, 0.05, 200)
    >>> peaks = scan_peaks(Series("fc", "pr", t, v))  # the step, and its slope echoes
    >>> 120 in peaks.tolist(), len(peaks) <= 3
    (True, True)
    """
    n = len(series)
    if n < 4:
        return np.zeros(0, dtype=np.int64)
    noise = ar1_noise(series.values)
    if noise.sd == 0.0:
        # Noiseless: propose every position whose shift exceeds float32 precision.
        noise = AR1(0.0, max(FLOAT32_EPS * float(np.abs(series.values).max()), 1e-300))
    x = (series.steps - series.steps[0]).astype(np.float64)
    idx = np.arange(1, n, dtype=np.int64)
    # Weights for the autocorrelation on the grid (cached across series; the evidence's
    # nulls use the same grid).
    phi = gridded_phi(noise.phi)
    w = every_position(x / max(float(x[-1]), 1.0), window, phi)
    noise = AR1(phi, noise.sd)
    half = max(window // 2, 1)
    found = []
    # Peaks of each statistic separately: a step makes the slope-change statistic peak a
    # few samples to either side, which must not hide the step's own peak.
    for weights, usable in ((w.delta, np.ones(n - 1, dtype=bool)), (w.slope_change, w.slopes)):
        value = np.abs(apply_weights(weights, w.start, series.values))
        se = noise.sd * np.sqrt(ar1_variance(weights, noise.phi))
        with np.errstate(divide="ignore", invalid="ignore"):
            stat = np.where(usable & (se > 0), value / se, 0.0)
        padded = np.pad(stat, half, constant_values=-np.inf)
        local_max = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1).max(axis=1)
        peaks = np.flatnonzero((stat >= threshold) & (stat >= local_max))
        # Equal neighbours (a plateau of the statistic) keep their first position.
        found.append(peaks[np.r_[True, np.diff(peaks) > half]] if len(peaks) else peaks)
    return idx[np.unique(np.concatenate(found))]


def pelt(values: NDArray[np.float64], *, penalty: float, min_size: int = 2) -> NDArray[np.int64]:
    """Optimal piecewise-constant segmentation under a per-change penalty (PELT).

    Minimises ``sum over segments of sum (v - segment mean)^2 + penalty * n_changes``
    exactly, with every segment at least ``min_size`` samples long: the same optimum as
    ``ruptures.Pelt(model="l2", min_size=min_size, jump=1).fit(v).predict(pen=penalty)``
    (tested against it), computed for many series at once in numpy (see
    ``benchmarks/analysis_scale.py`` for the speed-up).

    Parameters
    ----------
    values : ndarray of shape (n,)
    penalty : float
        Cost of one change, in squared units of ``values`` (> 0).
    min_size : int
        Shortest segment, in samples (>= 1).

    Returns
    -------
    ndarray of int64
        Indices where a new segment starts (ruptures' breakpoints without the final n).

    References
    ----------
    Killick, R., Fearnhead, P., & Eckley, I. A. (2012). Optimal detection of changepoints
    with a linear computational cost. JASA 107(500).
    Truong, C., Oudre, L., & Vayatis, N. (2020). Selective review of offline change point
    detection methods. Signal Processing 167 (ruptures).

    Examples
    --------
    >>> pelt(np.array([0.0, 0.1, 0.0, 0.1, 3.0, 3.1, 3.0, 3.1]), penalty=1.0)
    array([4])
    """
    check_positive(penalty, name="penalty")
    if min_size < 1:
        raise ConfigError(f"min_size must be >= 1; got {min_size!r}.")
    v = np.asarray(values, dtype=np.float64)
    return _pelt_batch(v[None, :], np.array([penalty]), min_size)[0]


def _pelt_batch(
    Y: NDArray[np.float64], penalty: NDArray[np.float64], min_size: int
) -> list[NDArray[np.int64]]:
    """Guts of :func:`pelt` for m series of equal length n (rows of Y); no validation.

    Each series is centred and scaled first (l2 costs scale with the square, so the
    penalty is scaled alike). Candidates are pruned when PELT's rule prunes them in every
    series: keeping a candidate that one series could drop never changes its optimum.
    """
    m, n = Y.shape
    if n < 2 * min_size:
        return [np.zeros(0, dtype=np.int64) for _ in range(m)]
    scale = Y.std(axis=1)
    scale[scale == 0] = 1.0
    # Series in columns: gathering candidate rows of (n + 1, m) arrays is contiguous.
    Z = ((Y - Y.mean(axis=1, keepdims=True)) / scale[:, None]).T
    pen = penalty / scale**2
    S1 = np.zeros((n + 1, m))
    S2 = np.zeros((n + 1, m))
    np.cumsum(Z, axis=0, out=S1[1:])
    np.cumsum(Z * Z, axis=0, out=S2[1:])
    F = np.full((n + 1, m), np.inf)
    F[0] = -pen
    last = np.zeros((n + 1, m), dtype=np.int64)
    cols = np.arange(m)
    candidates = np.zeros(n + 1, dtype=np.int64)
    k = 1  # candidates[:k] are the admissible last-segment starts, ascending
    for t in range(min_size, n + 1):
        if t >= 2 * min_size:
            candidates[k] = t - min_size  # now far enough back to start a last segment
            k += 1
        s = candidates[:k]
        d1 = S1[t] - S1[s]
        total = F[s] + (S2[t] - S2[s]) - d1 * d1 / (t - s)[:, None]
        best = total.argmin(axis=0)
        F[t] = total[best, cols] + pen
        last[t] = s[best]
        # PELT rule (K = 0 for the l2 cost): s can never be optimal again once
        # F[s] + C(s, t) > F[t] holds in every series.
        keep = (total <= F[t]).any(axis=1)
        if not keep.all():
            kept = s[keep]
            k = len(kept)
            candidates[:k] = kept
    out = []
    for r in range(m):
        cuts = []
        t = n
        while t > 0:
            t = int(last[t, r])
            if t > 0:
                cuts.append(t)
        out.append(np.asarray(cuts[::-1], dtype=np.int64))
    return out


@dataclass(frozen=True)
class _Options:
    detector: Detector
    threshold: float
    penalty_scale: float
    min_size: int
    window: int
    min_snr: float
    scan_threshold: float


def detect_jumps(
    series: Sequence[Series],
    *,
    total_steps: int,
    detector: Detector = "pelt",
    threshold: float = 2.0,
    penalty_scale: float = 3.0,
    min_size: int = 2,
    window: int = 8,
    min_snr: float = 4.0,
    probe_noise: Mapping[tuple[str, str], float] | None = None,
    scan_threshold: float = 3.0,
) -> pd.DataFrame:
    """Find jumps in every series and measure each against the noise floor.

    Parameters
    ----------
    series : sequence of Series
        From :func:`~traindyn.analysis.trajectories.series_of`.
    total_steps : int
        Length of training; ``phase = step / total_steps``.
    detector : {"scan", "pelt", "zscore"}
        See the module docstring.
    threshold : float
        ``|z|`` threshold of the z-score detector (seed 001: 2.0).
    penalty_scale : float
        PELT penalty ``penalty_scale * sigma^2 * log(n)``, sigma from
        :func:`~traindyn.analysis.noise.trajectory_noise` (BIC is 2; 3 leaves a margin for
        noise that is not white).
    min_size : int
        Shortest PELT segment in samples.
    window : int
        Samples on each side used to estimate the level shift.
    min_snr : float
        Events with ``magnitude / noise_floor`` below this are ``below_floor``. The
        default, 4, allows for the search: a detector looks at every one of ~n places,
        and on a 400-sample drift with white noise some candidate's shift exceeds 3
        standard errors about half the time, 4 about 1% of the time.
    probe_noise : mapping of (layer, metric) to float, optional
        The metric's spread across resampled probe sets
        (:func:`~traindyn.analysis.noise.half_sample_noise`), which joins the floor.
    scan_threshold : float
        Smallest studentised statistic the ``"scan"`` detector proposes
        (:func:`scan_peaks`).

    Returns
    -------
    DataFrame
        Columns :data:`EVENT_COLUMNS`, one row per event:

        * ``step`` / ``prev_step``: the sampled steps after and before the change;
          ``phase``: ``step / total_steps``;
        * ``level_before``, ``level_after``: the two side fits evaluated midway between
          ``prev_step`` and ``step``; ``delta`` their difference; ``magnitude = |delta|``;
          ``speed = magnitude / (step - prev_step)`` (units per training step);
        * ``noise_sd``, ``noise_phi``: marginal sd and lag-1 autocorrelation of the
          trajectory's robust AR(1) noise model
          (:func:`~traindyn.analysis.noise.ar1_noise`); ``shift_se``: exact standard
          error of ``delta`` under that noise; ``probe_noise`` (NaN if not given);
          ``precision``: float32 ulp of the level; ``quantum``: 1 for integer-valued
          metrics, else 0;
        * ``noise_floor``: the largest of shift_se, probe_noise, precision and quantum;
          ``snr = magnitude / noise_floor``; ``precision_ratio = magnitude / precision``;
          ``below_floor = snr < min_snr``.

    Raises
    ------
    ConfigError
        On an unknown detector or a non-positive option.

    Examples
    --------
    A step of 1.0 on noise of sd 0.01 is the one event above the floor:

    >>> rng = np.random.default_rng(0)
    >>> v = np.r_[np.zeros(50), np.ones(50)] + rng.normal(0, 0.01, 100)
    >>> ev = detect_jumps([Series("fc", "pr", np.arange(100) * 5, v)], total_steps=500)
    >>> real = ev[~ev["below_floor"]]
    >>> real["step"].tolist(), round(float(real["delta"].iloc[0]), 1)
    ([250], 1.0)
    """
    check_in(detector, DETECTORS, name="detector")
    for name, value in (
        ("threshold", threshold),
        ("penalty_scale", penalty_scale),
        ("min_snr", min_snr),
        ("total_steps", total_steps),
    ):
        check_positive(value, name=name)
    for name, count in (("min_size", min_size), ("window", window)):
        if count < 1:
            raise ConfigError(f"{name} must be an integer >= 1; got {count!r}.")
    check_positive(scan_threshold, name="scan_threshold")
    opts = _Options(detector, threshold, penalty_scale, min_size, window, min_snr, scan_threshold)
    noises = [ar1_noise(s.values) for s in series]
    # PELT's penalty uses the sample-to-sample (white) noise: with the AR(1) marginal sd,
    # slow wander would raise it so far that sharp steps in real runs go unproposed.
    # Candidates are cheap; the floor and the evidence judge them.
    found = _candidates(series, [trajectory_noise(s.values) for s in series], opts)
    frames = [
        _measure(s, idx, noise, total_steps, opts, (probe_noise or {}).get((s.layer, s.metric)))
        for s, idx, noise in zip(series, found, noises, strict=True)
        if len(idx)
    ]
    if not frames:
        return _empty_events()
    return pd.DataFrame({c: np.concatenate([f[c] for f in frames]) for c in EVENT_COLUMNS})


def _empty_events() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=_EVENT_DTYPES.get(c, "float64")) for c in EVENT_COLUMNS}
    )


_EVENT_DTYPES = {
    "layer": "object",
    "metric": "object",
    "detector": "object",
    "step": "int64",
    "prev_step": "int64",
    "below_floor": "bool",
}


def _candidates(
    series: Sequence[Series], sigmas: list[float], opts: _Options
) -> list[NDArray[np.int64]]:
    """Event indices per series from the chosen detector."""
    if opts.detector == "scan":
        return [scan_peaks(s, window=opts.window, threshold=opts.scan_threshold) for s in series]
    if opts.detector == "zscore":
        return [zscore_events(s.values, threshold=opts.threshold) for s in series]
    found: list[NDArray[np.int64]] = [np.zeros(0, dtype=np.int64)] * len(series)
    by_length: dict[int, list[int]] = {}
    for i, s in enumerate(series):
        by_length.setdefault(len(s), []).append(i)
    for n, members in by_length.items():
        if n < 2 * opts.min_size:
            continue
        Y = np.stack([series[i].values for i in members])
        sig = np.array([sigmas[i] for i in members])
        # A noiseless series (sigma 0) still needs a positive penalty: one float32 ulp of
        # its scale, or its quantum, so PELT does not cut it at every sample.
        floor = np.array(
            [
                max(
                    FLOAT32_EPS * float(np.abs(series[i].values).max()),
                    quantum(series[i].values) / 2,
                )
                for i in members
            ]
        )
        sig = np.maximum(sig, floor)
        sig[sig == 0] = 1.0  # an all-zero series: any positive penalty gives no cut
        penalty = opts.penalty_scale * sig**2 * np.log(n)
        for i, cuts in zip(members, _pelt_batch(Y, penalty, opts.min_size), strict=True):
            found[i] = cuts
    return found


def _measure(
    s: Series,
    idx: NDArray[np.int64],
    noise: AR1,
    total_steps: int,
    opts: _Options,
    probe_sd: float | None,
) -> dict[str, NDArray[Any]]:
    """Level shift, speed and floors of the events at indices ``idx`` of one series, as
    event columns (one DataFrame is built per call of :func:`detect_jumps`, not per
    series: pandas construction dominated the time otherwise)."""
    y = s.values
    # The side windows do not stop at neighbouring candidates: PELT cuts a drift into
    # stairs a few samples apart, and only lines fitted across the neighbours see that
    # the stairs join up. (Two real steps closer than `window` blur each other.)
    x = (s.steps - s.steps[0]).astype(np.float64)
    w = shift_weights(x, idx, opts.window, phi=noise.phi)
    before = apply_weights(w.before, w.start, y)
    after = apply_weights(w.after, w.start, y)
    delta = after - before
    magnitude = np.abs(delta)
    # Exact standard error of the shift under the trajectory's AR(1) noise: correlated
    # noise makes side means far less certain than white noise of the same sd.
    shift_se = noise.sd * np.sqrt(ar1_variance(w.delta, noise.phi))
    precision = FLOAT32_EPS * np.maximum(np.abs(before), np.abs(after))
    q = quantum(y)
    probe = np.nan if probe_sd is None else float(probe_sd)
    floor = np.maximum.reduce(
        [
            shift_se,
            precision,
            np.full(len(idx), q),
            np.full(len(idx), 0.0 if probe != probe else probe),
        ]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(floor > 0, magnitude / floor, np.where(magnitude > 0, np.inf, 0.0))
        precision_ratio = np.where(precision > 0, magnitude / precision, np.inf)
    step = s.steps[idx]
    prev = s.steps[idx - 1]
    k = len(idx)
    return {
        "layer": np.full(k, s.layer, dtype=object),
        "metric": np.full(k, s.metric, dtype=object),
        "detector": np.full(k, opts.detector, dtype=object),
        "step": step,
        "prev_step": prev,
        "phase": step / total_steps,
        "level_before": before,
        "level_after": after,
        "delta": delta,
        "magnitude": magnitude,
        "speed": magnitude / (step - prev),
        "noise_sd": np.full(k, noise.sd),
        "noise_phi": np.full(k, noise.phi),
        "shift_se": shift_se,
        "probe_noise": np.full(k, probe),
        "precision": precision,
        "quantum": np.full(k, q),
        "noise_floor": floor,
        "snr": snr,
        "precision_ratio": precision_ratio,
        "below_floor": snr < opts.min_snr,
    }


@dataclass(frozen=True)
class JumpTypes:
    """Events grouped into types by k-means on standardised features.

    Attributes
    ----------
    labels : ndarray of int64, shape (n_events,)
        Type of each clustered event (row order of the events passed in); -1 for events
        left out (below the floor).
    centres : DataFrame
        One row per type: ``type, n`` and the centre of each feature in its own units.
    features : tuple of str
        The columns clustered on.
    """

    labels: NDArray[np.int64]
    centres: pd.DataFrame
    features: tuple[str, ...]


def jump_types(
    events: pd.DataFrame,
    *,
    k: int = 5,
    features: Sequence[str] = ("magnitude", "speed", "phase"),
    include_below_floor: bool = False,
    seed: int = 0,
) -> JumpTypes:
    """Group events into ``k`` types with k-means (seed 001: k=5 on magnitude, speed and
    phase, standardised).

    Only surviving events (the ``survives`` column of
    :func:`~traindyn.analysis.evidence.event_evidence`; without it, events above the
    noise floor) are clustered by default: clustering noise exceedances yields "types"
    of noise (seed 002). With fewer distinct events than ``k``, ``k`` is
    reduced to their number.

    Parameters
    ----------
    events : DataFrame
        Rows of :func:`detect_jumps`.
    k : int
        Number of types (>= 1).
    features : sequence of str
        Numeric event columns, each standardised to zero mean and unit sd.
    include_below_floor : bool
    seed : int
        k-means initialisation seed (results are deterministic).

    Returns
    -------
    JumpTypes

    Raises
    ------
    ConfigError
        If ``k < 1`` or a feature is not an event column.

    References
    ----------
    Lloyd, S. (1982). Least squares quantization in PCM. IEEE Trans. Inf. Theory
    (scikit-learn's ``KMeans`` with k-means++ initialisation).

    Examples
    --------
    >>> ev = pd.DataFrame({"magnitude": [1.0, 1.1, 9.0, 9.2], "speed": [0.1, 0.1, 1.0, 1.0],
    ...                    "phase": [0.1, 0.1, 0.5, 0.5], "below_floor": False})
    >>> types = jump_types(ev, k=2)
    >>> types.centres["n"].tolist(), bool(types.labels[0] == types.labels[1] != types.labels[2])
    ([2, 2], True)
    """
    if k < 1:
        raise ConfigError(f"k must be an integer >= 1; got {k!r}.")
    unknown = [f for f in features if f not in events.columns]
    if unknown:
        raise ConfigError(
            f"features {unknown} are not event columns; choose from {list(events.columns)}."
        )
    labels = np.full(len(events), -1, dtype=np.int64)
    columns = ["type", "n", *features]
    use = np.ones(len(events), dtype=bool)
    if not include_below_floor and "survives" in events.columns:
        use = events["survives"].to_numpy(dtype=bool)
    elif not include_below_floor and "below_floor" in events.columns:
        use = ~events["below_floor"].to_numpy(dtype=bool)
    X = events.loc[use, list(features)].to_numpy(dtype=np.float64)
    finite = np.isfinite(X).all(axis=1) if len(X) else np.zeros(0, dtype=bool)
    rows = np.flatnonzero(use)[finite]
    X = X[finite]
    n_distinct = len(np.unique(X, axis=0)) if len(X) else 0
    k_eff = min(k, n_distinct)
    if k_eff == 0:
        return JumpTypes(labels, pd.DataFrame(columns=columns), tuple(features))
    from sklearn.cluster import KMeans

    mean = X.mean(axis=0)
    sd = X.std(axis=0)
    sd[sd == 0] = 1.0
    model = KMeans(n_clusters=k_eff, n_init=10, random_state=seed).fit((X - mean) / sd)
    raw = model.labels_.astype(np.int64)
    # Number types by their centres (first feature first): ids do not depend on k-means' order.
    centres = model.cluster_centers_ * sd + mean
    order = np.lexsort(centres.T[::-1])
    rank = np.empty(k_eff, dtype=np.int64)
    rank[order] = np.arange(k_eff)
    labels[rows] = rank[raw]
    table = pd.DataFrame(centres[order], columns=list(features))
    table.insert(0, "n", np.bincount(rank[raw], minlength=k_eff))
    table.insert(0, "type", np.arange(k_eff))
    return JumpTypes(labels, table, tuple(features))
