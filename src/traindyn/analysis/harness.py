"""Detector harness: score any change detector on fixtures whose answer is known.

A detector is any callable ``values -> event indices``: it receives one trajectory
(float64 array of shape (n,)) and returns the sample indices where it sees a change
start (index ``i``: the change happens between samples ``i - 1`` and ``i``). The harness
runs it on a battery of :class:`Fixture` objects and counts, per fixture family:

* **positives** with planted changes (:func:`builtin_fixtures`: single step, multiple
  steps, slope change; :func:`planted_fixtures` / :func:`fixtures_from_run`: steps of a
  known size planted in a real run's trajectory), scored by recall and precision;
* **nulls** without any change (white, AR(1), heavy-tailed noise, smooth drifts), where
  every detection is a false positive.

A detection within ``tolerance`` samples of a truth index is a hit (:func:`match_events`:
one-to-one, greedy by distance). :func:`evaluate` scores several detectors and gives
each a PASS/FAIL :class:`Verdict` under a stated :class:`VerdictRule` (by default issue
5's: recall >= 0.9 on every step family and at most 1 false positive per 1000 samples on
every null). A detector that raises is reported, never fatal.

Seed 002 is why this exists: its z-score detector flagged 2,991 "jumps" that were noise.
Scored here, it flags about 5% of the samples of white noise (:func:`evaluate` with
:func:`builtin_detectors`; ``traindyn validate`` prints the table).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from traindyn.analysis.evidence import event_evidence
from traindyn.analysis.jumps import Detector, detect_jumps
from traindyn.analysis.noise import quantum, trajectory_noise
from traindyn.analysis.trajectories import Series, series_of
from traindyn.exceptions import ConfigError
from traindyn.store.run import Run

__all__ = [
    "DEFAULT_DETECTOR",
    "DETAIL_COLUMNS",
    "FIXTURE_KINDS",
    "NOISE_SCALES",
    "SCORE_COLUMNS",
    "DetectorFn",
    "Evaluation",
    "Fixture",
    "FixtureKind",
    "FixtureSizes",
    "NoiseScale",
    "Verdict",
    "VerdictRule",
    "builtin_detectors",
    "builtin_fixtures",
    "detector_names",
    "evaluate",
    "fixtures_from_run",
    "get_detector",
    "match_events",
    "planted_fixtures",
    "score_detector",
]

DetectorFn = Callable[[NDArray[np.float64]], ArrayLike]
"""A change detector: trajectory of shape (n,) -> integer sample indices in 0..n-1."""

FixtureKind = Literal["positive", "null"]
FIXTURE_KINDS: tuple[FixtureKind, ...] = ("positive", "null")

NoiseScale = Literal["max", "global", "local"]
NOISE_SCALES: tuple[NoiseScale, ...] = ("max", "global", "local")

SCORE_COLUMNS = (
    "detector",
    "family",
    "kind",
    "n_fixtures",
    "n_samples",
    "n_true",
    "n_detected",
    "hits",
    "baseline_hits",
    "recall",
    "precision",
    "false_positives",
    "false_positives_per_1000",
    "n_excused",
    "n_errors",
    "error",
)
"""Columns of :func:`score_detector`'s table, one row per (detector, fixture family)."""

DETAIL_COLUMNS = (
    "detector",
    "family",
    "fixture",
    "n_samples",
    "n_true",
    "n_detected",
    "hits",
    "baseline_hits",
    "false_positives",
    "n_excused",
    "error",
)
"""Columns of :attr:`Evaluation.details`, one row per (detector, fixture)."""


# --------------------------------------------------------------------------- fixtures


@dataclass(frozen=True, eq=False)
class Fixture:
    """One trajectory with a known answer.

    Attributes
    ----------
    name : str
        Unique within a battery, e.g. ``"single step #3"``.
    family : str
        Fixtures of one family are scored together (one row of the score table).
    kind : {"positive", "null"}
        A positive has changes at ``truth``; a null has none, so every detection on it
        is a false positive.
    values : ndarray of float64, shape (n,)
        The trajectory (array-likes are accepted and converted where it is scored).
    truth : ndarray of int64, shape (k,)
        Sample index where each change starts, ascending; empty for a null.
    sizes : tuple of float
        Signed size of each change in units of the noise sd: the level shift of a step,
        the change of slope per sample of a kink. Informative only.
    description : str
        How the fixture was made, in words.
    baseline : ndarray of float64, shape (n,), optional
        The unplanted original of a planted real trajectory. Detections on it are the
        real trajectory's own changes: a detection on ``values`` within ``tolerance`` of
        one of them is excused (counted in ``n_excused``), not a false positive.
    """

    name: str
    family: str
    kind: FixtureKind
    values: NDArray[np.float64]
    truth: NDArray[np.int64]
    sizes: tuple[float, ...] = ()
    description: str = ""
    baseline: NDArray[np.float64] | None = None

    def __len__(self) -> int:
        return len(self.values)


@dataclass(frozen=True)
class FixtureSizes:
    """Sizes of :func:`builtin_fixtures`, every amplitude in units of the noise sd.

    Positives are meant to be clearly real and nulls to hold nothing a reasonable
    detector should report.
    """

    # Issue 5: planted steps >= ~6 sd. A level shift measured from 8 samples each side
    # has a standard error of ~1 sd, so 6 sd stands ~6 standard errors above the noise.
    step: tuple[float, float] = (6.0, 10.0)  # |size| uniform in this range, random sign
    n_steps: tuple[int, int] = (3, 4)  # "multiple steps": this many, inclusive
    min_gap: int = 30  # samples between steps: far more than the 8-sample side windows
    margin: float = 0.1  # steps and kinks lie in the middle 1 - 2 * margin of the series
    # A kink: 0 -> +-0.2 sd per sample, i.e. 20 sd away from the old line 100 samples on.
    kink: float = 0.2
    linear_rise: float = 20.0  # linear drift: total rise over the series
    decay: float = 20.0  # exponential decay amplitude ...
    decay_tau: float = 0.25  # ... with time constant tau = n / 4
    sigmoid: float = 10.0  # sigmoid drift amplitude ...
    sigmoid_width: float = 0.2  # ... rising from 12% to 88% over n / 5 samples
    ar_phi: tuple[float, ...] = (0.6, 0.9)  # AR(1) nulls, one family per coefficient
    t_df: float = 3.0  # heavy-tailed null: Student t with this many degrees of freedom


def builtin_fixtures(
    *,
    n: int = 400,
    n_repeats: int = 20,
    seed: int = 0,
    noise: float = 1.0,
    sizes: FixtureSizes | None = None,
) -> list[Fixture]:
    """The built-in battery: ``n_repeats`` random realisations of each family.

    Every amplitude is in units of sigma, the noise sd (``noise``); with the default
    :class:`FixtureSizes`, for ``n`` samples:

    Positives (Gaussian white noise of sd sigma added):

    * ``"single step"``: one step of +-U(6, 10) sigma at a uniform position in the middle
      80% of the series;
    * ``"multiple steps"``: 3 or 4 steps, each +-U(6, 10) sigma (signs independent), in
      the middle 80%, at least 30 samples apart;
    * ``"slope change"``: a kink in the middle 80%: flat, then a slope of +-0.2 sigma
      per sample (truth: the last sample of the flat part).

    Nulls (no change):

    * ``"white noise"``: Gaussian, sd sigma;
    * ``"AR(1) phi=0.6"``, ``"AR(1) phi=0.9"``: ``x_t = phi x_(t-1) + e_t``, started from
      the stationary law, with stationary sd sigma (innovations of sd
      ``sigma * sqrt(1 - phi^2)``); its first differences are smaller than white noise
      of the same sd, so a difference-based noise estimate underrates it;
    * ``"linear drift"``: a line rising (or falling) 20 sigma over the series, plus white
      noise;
    * ``"exponential decay"``: ``+-20 sigma * exp(-i / tau)``, tau = n/4, plus white noise
      (an initial slope of 0.2 sigma per sample for n = 400);
    * ``"sigmoid drift"``: a logistic rise of +-10 sigma centred uniformly in the middle
      half, rising from 12% to 88% over n/5 samples (max slope 0.125 sigma per sample for
      n = 400), plus white noise;
    * ``"Student t (df=3)"``: t noise with 3 degrees of freedom scaled to sd sigma.

    Parameters
    ----------
    n : int
        Samples per fixture (>= 50).
    n_repeats : int
        Realisations per family (>= 1).
    seed : int
        Realisation ``r`` of family ``f`` is drawn from ``default_rng([seed, f, r])``, so it
        does not depend on ``n_repeats``.
    noise : float
        sigma, the noise sd (> 0); every value scales with it.
    sizes : FixtureSizes, optional
        Other amplitudes (still in sigma units).

    Returns
    -------
    list of Fixture
        Families in the order above, ``n_repeats`` fixtures each.

    Raises
    ------
    ConfigError
        If an option is out of range, or ``n`` is too short for the multiple steps'
        spacing.

    Examples
    --------
    >>> battery = builtin_fixtures(n=200, n_repeats=2)
    >>> len(battery), battery[0].name, battery[0].kind, len(battery[0].truth)
    (20, 'single step #0', 'positive', 1)
    >>> sorted({f.kind for f in battery if f.family.startswith("AR(1)")})
    ['null']
    """
    s = sizes if sizes is not None else FixtureSizes()
    _check_int(n, "n", 50)
    _check_int(n_repeats, "n_repeats", 1)
    if not (math.isfinite(noise) and noise > 0):
        raise ConfigError(f"noise must be a finite sd > 0; got {noise!r}.")
    _check_sizes(s, n)
    makers: list[tuple[str, FixtureKind, Callable[[np.random.Generator], _Made]]] = [
        ("single step", "positive", lambda g: _steps(g, n, s, 1, 1)),
        ("multiple steps", "positive", lambda g: _steps(g, n, s, *s.n_steps)),
        ("slope change", "positive", lambda g: _kink(g, n, s)),
        ("white noise", "null", lambda g: _Made(np.zeros(n), "Gaussian white noise")),
    ]
    for phi in s.ar_phi:
        makers.append(
            (f"AR(1) phi={phi:g}", "null", lambda g, phi=phi: _ar1(g, n, phi))  # type: ignore[misc]
        )
    makers += [
        ("linear drift", "null", lambda g: _linear(g, n, s)),
        ("exponential decay", "null", lambda g: _decay(g, n, s)),
        ("sigmoid drift", "null", lambda g: _sigmoid(g, n, s)),
        (f"Student t (df={s.t_df:g})", "null", lambda g: _student(g, n, s.t_df)),
    ]
    fixtures = []
    for f, (family, kind, make) in enumerate(makers):
        for r in range(n_repeats):
            rng = np.random.default_rng([seed, f, r])
            made = make(rng)
            values = made.signal
            if not made.noisy:
                values = values + rng.normal(0.0, 1.0, n)
            fixtures.append(
                Fixture(
                    name=f"{family} #{r}",
                    family=family,
                    kind=kind,
                    values=noise * values,
                    truth=made.truth,
                    sizes=made.sizes,
                    description=made.description,
                )
            )
    return fixtures


@dataclass(frozen=True)
class _Made:
    """A fixture's signal in sigma units; ``noisy``: it already holds its noise."""

    signal: NDArray[np.float64]
    description: str
    truth: NDArray[np.int64] = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sizes: tuple[float, ...] = ()
    noisy: bool = False


def _middle(n: int, margin: float) -> tuple[int, int]:
    """First and last admissible change index of the middle ``1 - 2 margin``."""
    return max(1, math.ceil(margin * n)), min(n - 1, math.floor((1 - margin) * n))


def _steps(rng: np.random.Generator, n: int, s: FixtureSizes, k_min: int, k_max: int) -> _Made:
    k = int(rng.integers(k_min, k_max + 1))
    lo, hi = _middle(n, s.margin)
    gap = s.min_gap if k > 1 else 0
    # Uniform positions with gaps >= min_gap: k sorted offsets in the slack, then spread.
    slack = hi - lo - (k - 1) * gap
    offsets = np.sort(rng.integers(0, slack + 1, k))
    truth = (lo + offsets + np.arange(k) * gap).astype(np.int64)
    size = rng.uniform(*s.step, k) * rng.choice([-1.0, 1.0], k)
    signal = np.zeros(n)
    for at, delta in zip(truth, size, strict=True):
        signal[at:] += delta
    shown = ", ".join(f"{d:+.1f} sd at {i}" for i, d in zip(truth, size, strict=True))
    return _Made(signal, f"{k} step(s) on white noise: {shown}", truth, tuple(size.tolist()))


def _kink(rng: np.random.Generator, n: int, s: FixtureSizes) -> _Made:
    lo, hi = _middle(n, s.margin)
    at = int(rng.integers(lo, hi + 1))
    slope = s.kink * float(rng.choice([-1.0, 1.0]))
    signal = slope * np.maximum(0.0, np.arange(n, dtype=np.float64) - at)
    return _Made(
        signal,
        f"flat, then {slope:+g} sd per sample from sample {at}, on white noise",
        np.array([at], dtype=np.int64),
        (slope,),
    )


def _ar1(rng: np.random.Generator, n: int, phi: float) -> _Made:
    innovations = rng.normal(0.0, math.sqrt(1.0 - phi * phi), n)
    x = np.empty(n)
    x[0] = rng.normal()  # the stationary law, sd 1
    for t in range(1, n):
        x[t] = phi * x[t - 1] + innovations[t]
    return _Made(x, f"AR(1) noise, phi {phi:g}, stationary sd 1", noisy=True)


def _linear(rng: np.random.Generator, n: int, s: FixtureSizes) -> _Made:
    rise = s.linear_rise * float(rng.choice([-1.0, 1.0]))
    signal = rise * np.arange(n, dtype=np.float64) / (n - 1)
    return _Made(signal, f"linear drift of {rise:+g} sd over the series, white noise")


def _decay(rng: np.random.Generator, n: int, s: FixtureSizes) -> _Made:
    amplitude = s.decay * float(rng.choice([-1.0, 1.0]))
    tau = s.decay_tau * n
    signal = amplitude * np.exp(-np.arange(n, dtype=np.float64) / tau)
    return _Made(signal, f"{amplitude:+g} sd * exp(-i / {tau:g}), white noise")


def _sigmoid(rng: np.random.Generator, n: int, s: FixtureSizes) -> _Made:
    amplitude = s.sigmoid * float(rng.choice([-1.0, 1.0]))
    centre = float(rng.uniform(0.25 * n, 0.75 * n))
    scale = s.sigmoid_width * n / 4  # logistic(+-2) = 12% .. 88%: 4 scales wide
    i = np.arange(n, dtype=np.float64)
    signal = amplitude / (1.0 + np.exp(-(i - centre) / scale))
    return _Made(signal, f"sigmoid of {amplitude:+g} sd centred at {centre:.0f}, scale {scale:g}")


def _student(rng: np.random.Generator, n: int, df: float) -> _Made:
    x = rng.standard_t(df, n) * math.sqrt((df - 2.0) / df)  # unit sd
    return _Made(x, f"Student t noise, df {df:g}, sd 1", noisy=True)


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}.")


def _check_sizes(s: FixtureSizes, n: int) -> None:
    lo_step, hi_step = s.step
    if not 0 < lo_step <= hi_step:
        raise ConfigError(f"sizes.step must be (low, high) with 0 < low <= high; got {s.step}.")
    k_min, k_max = s.n_steps
    if not 1 <= k_min <= k_max:
        raise ConfigError(
            f"sizes.n_steps must be (min, max) with 1 <= min <= max; got {s.n_steps}."
        )
    if not 0 <= s.margin < 0.5:
        raise ConfigError(f"sizes.margin must be in [0, 0.5); got {s.margin!r}.")
    if s.t_df <= 2:
        raise ConfigError(
            f"sizes.t_df must be > 2 (the t law has no finite sd below); got {s.t_df!r}."
        )
    if any(not -1 < phi < 1 for phi in s.ar_phi):
        raise ConfigError(f"sizes.ar_phi must lie in (-1, 1) (stationary); got {s.ar_phi}.")
    if s.decay_tau <= 0 or s.sigmoid_width <= 0:
        raise ConfigError(
            "sizes.decay_tau and sizes.sigmoid_width must be > 0 (fractions of n); got "
            f"{s.decay_tau!r} and {s.sigmoid_width!r}."
        )
    lo, hi = _middle(n, s.margin)
    if hi - lo < (k_max - 1) * s.min_gap:
        raise ConfigError(
            f"n = {n} leaves {hi - lo} samples in the middle for {k_max} steps at least "
            f"{s.min_gap} apart; raise n or lower sizes.min_gap / sizes.n_steps."
        )


def planted_fixtures(
    values: ArrayLike,
    *,
    sizes: Sequence[float] = (6.0, 8.0, 10.0),
    n_repeats: int = 20,
    seed: int = 0,
    name: str = "trajectory",
    margin: float = 0.1,
    scale: NoiseScale = "max",
    window: int = 50,
) -> list[Fixture]:
    """Positives made from a real trajectory: one step of a known size planted in it.

    Each size ``s`` gives ``n_repeats`` fixtures ``values + sign * s * sigma * [i >= k]``
    with a random sign and ``k`` uniform in the middle ``1 - 2 * margin`` of the series:
    by default the first 10% is avoided, where real runs change fast, and the last 10%
    for symmetry with :func:`builtin_fixtures`. sigma is the noise sd from
    :func:`~traindyn.analysis.noise.trajectory_noise`, chosen by ``scale``:

    * ``"global"``: of the whole trajectory (what a detector's own noise estimate sees);
    * ``"local"``: of the ``window`` unplanted samples centred on ``k``;
    * ``"max"`` (default): the larger of the two. Real trajectories are heteroscedastic:
      measured on a 400-sample MLP run, the local noise at 10-40% of training was 2-8
      times the global estimate (which the quiet late half dominates), so a "6 sd" step
      in global units could be 1 local sd there: not clearly real. ``"max"`` makes every
      planted step at least ``s`` sd of both.

    The unplanted trajectory rides along as each fixture's ``baseline``: the real run has
    changes of its own, and a detection on a planted fixture within the tolerance of a
    detection on the baseline is excused, not a false positive (see :func:`score_detector`).

    Parameters
    ----------
    values : array-like of shape (n,)
        A real trajectory (finite, n >= 50, not constant).
    sizes : sequence of float
        Planted step sizes in units of sigma (each > 0); one family per size, named
        ``"planted <size> sd"``, so fixtures from several trajectories pool by size.
    n_repeats : int
        Fixtures per size (>= 1).
    seed : int
        Fixture ``r`` of size number ``j`` is drawn from ``default_rng([seed, j, r])``.
    name : str
        Names the trajectory in the fixtures' names and descriptions.
    margin : float
        Fraction of the series kept free of planted steps at each end, in [0, 0.5).
    scale : {"max", "global", "local"}
        Which noise sd the sizes are in, see above.
    window : int
        Samples of the local noise estimate (>= 10).

    Returns
    -------
    list of Fixture
        Positives, ``len(sizes) * n_repeats`` of them, sharing one read-only baseline;
        each description gives sigma and the planted size in the trajectory's units.

    Raises
    ------
    ConfigError
        If ``values`` is not a finite 1-D series of >= 50 samples, its noise sd is 0
        (constant, or integer-valued: nothing to scale a size by), or an option is out of
        range.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> real = 5 * np.exp(-np.arange(300) / 30) + rng.normal(0, 0.1, 300)
    >>> f = planted_fixtures(real, sizes=(8.0,), n_repeats=1, scale="global")[0]
    >>> jump = (f.values - f.baseline)[f.truth[0]]
    >>> bool(np.isclose(abs(jump), 8 * trajectory_noise(real))), f.family
    (True, 'planted 8 sd')
    """
    v = _as_series(values, name="values")
    if len(v) < 50:
        raise ConfigError(f"values must have at least 50 samples to plant in; got {len(v)}.")
    _check_int(n_repeats, "n_repeats", 1)
    _check_int(window, "window", 10)
    if scale not in NOISE_SCALES:
        raise ConfigError(
            f"scale must be one of {', '.join(map(repr, NOISE_SCALES))}; got {scale!r}."
        )
    if not 0 <= margin < 0.5:
        raise ConfigError(f"margin must be in [0, 0.5); got {margin!r}.")
    bad = [s for s in sizes if not (math.isfinite(s) and s > 0)]
    if not sizes or bad:
        raise ConfigError(f"sizes must be step sizes > 0 in noise sd units; got {tuple(sizes)!r}.")
    overall = trajectory_noise(v)
    if overall == 0:
        raise ConfigError(
            f"{name} has noise sd 0 (constant, or integer-valued and rarely moving), so a "
            "size in sd units means nothing; choose a noisy, real-valued trajectory."
        )
    baseline = v.copy()
    baseline.setflags(write=False)
    lo, hi = _middle(len(v), margin)
    i = np.arange(len(v))
    fixtures = []
    for j, size in enumerate(sizes):
        for r in range(n_repeats):
            rng = np.random.default_rng([seed, j, r])
            at = int(rng.integers(lo, hi + 1))
            signed = float(size) * float(rng.choice([-1.0, 1.0]))
            start = min(max(0, at - window // 2), len(v) - window)
            local = trajectory_noise(v[max(0, start) : max(0, start) + window])
            sigma = {"global": overall, "local": local, "max": max(overall, local)}[scale]
            if sigma == 0:
                raise ConfigError(
                    f"{name} has local noise sd 0 around sample {at}; use scale='global' "
                    "or a larger window."
                )
            fixtures.append(
                Fixture(
                    name=f"{name} {signed:+g} sd #{r}",
                    family=f"planted {size:g} sd",
                    kind="positive",
                    values=baseline + signed * sigma * (i >= at),
                    truth=np.array([at], dtype=np.int64),
                    sizes=(signed,),
                    description=(
                        f"{name} with a step of {signed:+g} sd = {signed * sigma:+.3g} planted "
                        f"at sample {at} (sd: {scale} of global {overall:.3g} and local "
                        f"{local:.3g})"
                    ),
                    baseline=baseline,
                )
            )
    return fixtures


def fixtures_from_run(
    source: Run | pd.DataFrame | str | os.PathLike[str],
    *,
    n_series: int = 3,
    min_length: int = 100,
    metric: str | Sequence[str] | None = None,
    sizes: Sequence[float] = (6.0, 8.0, 10.0),
    n_repeats: int = 20,
    seed: int = 0,
    scale: NoiseScale = "max",
) -> list[Fixture]:
    """Planted fixtures (:func:`planted_fixtures`) from a few long series of a real run.

    Series qualify when they have at least ``min_length`` samples, are not integer
    valued and have a noise sd above 0. The longest qualify first; among equally long
    ones, metrics take turns (one series of each metric, then a second of each, ...), in
    the order of :func:`~traindyn.analysis.trajectories.series_of`, so the choice is
    deterministic and spans the metrics.

    Parameters
    ----------
    source : Run, DataFrame or path
        A run (or its directory), or a long metrics table ``step, layer, metric, value``.
    n_series : int
        How many series to plant in (>= 1); fewer if fewer qualify.
    min_length : int
        Shortest series used, in samples (>= 50).
    metric : str or list of str, optional
        Only these metrics.
    sizes, n_repeats, seed, scale
        As in :func:`planted_fixtures`; series number ``k`` uses ``seed + k``.

    Returns
    -------
    list of Fixture
        Named ``"<layer>/<metric> <size> sd #r"``.

    Raises
    ------
    ConfigError
        If no series qualifies (the message says how many were too short or noiseless).
    RunNotFound
        If a path holds no run.

    Examples
    --------
    >>> from traindyn.analysis.synthetic import planted_metrics
    >>> table = planted_metrics(n_samples=120, layers=["a", "b"], noise=0.01)
    >>> battery = fixtures_from_run(table, n_series=1, sizes=(6.0,), n_repeats=2)
    >>> [f.name for f in battery]
    ['a/participation_ratio +6 sd #0', 'a/participation_ratio -6 sd #1']
    """
    _check_int(n_series, "n_series", 1)
    _check_int(min_length, "min_length", 50)
    if isinstance(source, pd.DataFrame):
        table = source
    else:
        from traindyn.store.run import open_run

        table = (source if isinstance(source, Run) else open_run(source)).metrics
    every = series_of(table, metric=metric)
    long_enough = [s for s in every if len(s) >= min_length]
    usable = [s for s in long_enough if quantum(s.values) == 0 and trajectory_noise(s.values) > 0]
    if not usable:
        raise ConfigError(
            f"no series to plant in: {len(every)} series, {len(every) - len(long_enough)} "
            f"shorter than min_length={min_length}, "
            f"{len(long_enough) - len(usable)} integer-valued or noiseless. Lower "
            "min_length or pick a run with longer trajectories."
        )
    chosen = _spread(usable, n_series)
    fixtures: list[Fixture] = []
    for k, s in enumerate(chosen):
        fixtures += planted_fixtures(
            s.values,
            sizes=sizes,
            n_repeats=n_repeats,
            seed=seed + k,
            name=f"{s.layer}/{s.metric}",
            scale=scale,
        )
    return fixtures


def _spread(series: list[Series], k: int) -> list[Series]:
    """The ``k`` longest series, metrics taking turns among equally long ones."""
    turn: dict[str, int] = {}
    ranked = []
    for position, s in enumerate(series):
        rank = turn.get(s.metric, 0)
        turn[s.metric] = rank + 1
        ranked.append((-len(s), rank, position, s))
    ranked.sort(key=lambda item: item[:3])
    return [item[3] for item in ranked[:k]]


# --------------------------------------------------------------------------- detectors


def _as_jump_series(values: NDArray[np.float64]) -> Series:
    n = len(values)
    return Series("fixture", "values", np.arange(n, dtype=np.int64), values)


def _indices(
    values: NDArray[np.float64], detector: Detector, *, above_floor: bool
) -> NDArray[np.int64]:
    """Event indices of :func:`~traindyn.analysis.jumps.detect_jumps` on ``values``."""
    v = np.ascontiguousarray(values, dtype=np.float64)
    every, above = _events(v.tobytes(), detector)
    return (above if above_floor else every).copy()


# The "-raw" and "-floor" variants of a detector share one detect_jumps call per
# fixture; this memo halves the harness's time (keys: the values' bytes).
@functools.lru_cache(maxsize=1024)
def _events(data: bytes, detector: Detector) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """All candidates and those at or above the floor, of the float64 series ``data``."""
    v = np.frombuffer(data, dtype=np.float64)
    events = detect_jumps([_as_jump_series(v)], total_steps=max(len(v), 1), detector=detector)
    steps = events["step"].to_numpy(dtype=np.int64)
    return steps, steps[~events["below_floor"].to_numpy(dtype=bool)]


@functools.lru_cache(maxsize=1024)
def _surviving(data: bytes) -> NDArray[np.int64]:
    """Where the events that survive their evidence start (``location``), of ``data``."""
    v = np.frombuffer(data, dtype=np.float64)
    series = _as_jump_series(v)
    events = detect_jumps([series], total_steps=max(len(v), 1), detector="scan")
    if events.empty:
        return np.zeros(0, dtype=np.int64)
    out = event_evidence([series], events)
    return np.unique(out.loc[out["survives"], "location"].to_numpy(dtype=np.int64))


def _evidence(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Scan candidates that survive their evidence: not smooth drift, above the noise
    floor, and Benjamini-Hochberg q <= 0.05 against AR(1) and block-shuffled surrogate
    nulls (:func:`~traindyn.analysis.evidence.event_evidence`): ``traindyn analyze``'s
    default view."""
    return _surviving(np.ascontiguousarray(values, dtype=np.float64).tobytes()).copy()


def _pelt_floor(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """PELT candidates at or above the noise floor (detect_jumps' default view)."""
    return _indices(values, "pelt", above_floor=True)


def _pelt_raw(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Every PELT candidate, floor ignored."""
    return _indices(values, "pelt", above_floor=False)


def _zscore_raw(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Seed 001's detector: every first difference with |z| > 2."""
    return _indices(values, "zscore", above_floor=False)


def _zscore_floor(values: NDArray[np.float64]) -> NDArray[np.int64]:
    """Seed 001's z-score candidates at or above the noise floor."""
    return _indices(values, "zscore", above_floor=True)


# The built-in detectors, in display order. A new detector is one more entry; point
# DEFAULT_DETECTOR at it once it is the best built-in.
_BUILTIN_DETECTORS: dict[str, DetectorFn] = {
    "evidence": _evidence,
    "pelt": _pelt_floor,
    "pelt-raw": _pelt_raw,
    "zscore": _zscore_raw,
    "zscore-floor": _zscore_floor,
}

DEFAULT_DETECTOR = "evidence"
"""The built-in detector the name ``"default"`` stands for: the best current one."""


def builtin_detectors() -> dict[str, DetectorFn]:
    """Name -> callable of every built-in detector (without the ``"default"`` alias).

    Each wraps :func:`~traindyn.analysis.jumps.detect_jumps` on one series whose steps
    are the sample indices, with its default options; the first line of each callable's
    docstring describes it.

    Examples
    --------
    >>> list(builtin_detectors())
    ['evidence', 'pelt', 'pelt-raw', 'zscore', 'zscore-floor']
    >>> v = np.r_[np.zeros(50), np.full(50, 10.0)] + np.random.default_rng(0).normal(0, 1, 100)
    >>> builtin_detectors()["pelt"](v).tolist()
    [50]
    """
    return dict(_BUILTIN_DETECTORS)


def detector_names() -> tuple[str, ...]:
    """Every name :func:`get_detector` accepts: the built-ins, then ``"default"``.

    Examples
    --------
    >>> detector_names()[-1]
    'default'
    """
    return (*_BUILTIN_DETECTORS, "default")


def get_detector(name: str) -> DetectorFn:
    """A built-in detector by name; ``"default"`` is :data:`DEFAULT_DETECTOR`.

    Raises
    ------
    ConfigError
        If ``name`` is unknown; the message lists the names.

    Examples
    --------
    >>> get_detector("default") is get_detector(DEFAULT_DETECTOR)
    True
    """
    key = DEFAULT_DETECTOR if name == "default" else name
    if key not in _BUILTIN_DETECTORS:
        names = ", ".join(repr(k) for k in detector_names())
        raise ConfigError(f"detector must be one of {names}; got {name!r}.")
    return _BUILTIN_DETECTORS[key]


# --------------------------------------------------------------------------- scoring


def match_events(truth: ArrayLike, detected: ArrayLike, *, tolerance: int = 3) -> NDArray[np.int64]:
    """Pair detections with true changes, one-to-one, within ``tolerance`` samples.

    Greedy by distance: every (truth, detection) pair at most ``tolerance`` apart is
    considered, closest first (ties: earlier truth, then earlier detection), and a pair
    is kept when neither member is taken yet. Each truth is matched at most once and
    each detection at most once, so two detections of one change count as one hit and
    one false positive.

    Parameters
    ----------
    truth, detected : array-like of int, shape (k,) and (m,)
        Sample indices.
    tolerance : int
        Largest ``|detection - truth|`` that counts as a hit, in samples (>= 0).

    Returns
    -------
    ndarray of int64, shape (hits, 2)
        Matched ``(truth index, detected index)`` pairs, sorted by truth.

    Examples
    --------
    >>> match_events([100, 200], [99, 101, 205, 300], tolerance=3).tolist()
    [[100, 99]]
    """
    _check_int(tolerance, "tolerance", 0)
    t = np.unique(np.asarray(truth, dtype=np.int64))
    d = np.unique(np.asarray(detected, dtype=np.int64))
    if not len(t) or not len(d):
        return np.zeros((0, 2), dtype=np.int64)
    distance = np.abs(t[:, None] - d[None, :])
    ti, di = np.nonzero(distance <= tolerance)
    order = np.lexsort((di, ti, distance[ti, di]))
    used_t = np.zeros(len(t), dtype=bool)
    used_d = np.zeros(len(d), dtype=bool)
    pairs = []
    for a, b in zip(ti[order], di[order], strict=True):
        if not used_t[a] and not used_d[b]:
            used_t[a] = used_d[b] = True
            pairs.append((t[a], d[b]))
    out = np.array(sorted(pairs), dtype=np.int64).reshape(-1, 2)
    return out


def score_detector(
    detector: DetectorFn,
    fixtures: Sequence[Fixture],
    *,
    tolerance: int = 3,
    name: str = "detector",
) -> pd.DataFrame:
    """Score one detector on fixtures: one row per fixture family.

    On each fixture the detections are matched to the truth with :func:`match_events`.
    Unmatched detections are false positives, except on a planted fixture (one with a
    ``baseline``) those within ``tolerance`` of a detection on the baseline, which are
    the real trajectory's own changes and counted as ``n_excused``.

    Parameters
    ----------
    detector : callable
        ``values -> event indices`` (integer sample indices in 0..n-1; duplicates are
        dropped).
    fixtures : sequence of Fixture
    tolerance : int
        Samples between a detection and a truth index that still count as a hit.
    name : str
        The ``detector`` column.

    Returns
    -------
    DataFrame
        Columns :data:`SCORE_COLUMNS`, one row per family in order of first appearance:

        * ``n_fixtures``; ``n_samples``: their total length; ``n_true``: truth indices;
          ``n_detected``: detections; ``hits``: matched pairs;
        * ``recall = hits / n_true`` (NaN on a null); ``precision = hits / (hits +
          false_positives)``, excused detections left out (NaN without detections);
        * ``false_positives``; ``false_positives_per_1000 = 1000 * false_positives /
          n_samples``, i.e. per 1000 samples (not training steps);
        * ``n_excused``: detections matching the baseline's own changes;
          ``baseline_hits``: hits at a truth index the baseline's detections also hit,
          which may be the trajectory's own change rather than the planted step (a
          detector that fires everywhere scores such hits by chance; 0 without baselines);
        * ``n_errors``: fixtures on which the detector raised or returned something that
          is not a list of sample indices, ``error`` the first such message ("" if none).
          The other columns count the fixtures that ran.

    Raises
    ------
    ConfigError
        If a fixture is malformed (the message names it and the field).

    Examples
    --------
    >>> battery = builtin_fixtures(n=200, n_repeats=1)[:4]
    >>> oracle = {f.values.tobytes(): f.truth for f in battery}  # answers by content
    >>> table = score_detector(lambda v: oracle[v.tobytes()], battery)
    >>> table["recall"].tolist()[:3], table["false_positives_per_1000"].tolist()
    ([1.0, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0])
    """
    rows, _ = _score(detector, _checked(fixtures), tolerance=tolerance, name=name)
    return rows


def _score(
    detector: DetectorFn,
    fixtures: Sequence[Fixture],
    *,
    tolerance: int,
    name: str,
    on_fixture: Callable[[Fixture], None] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Guts of :func:`score_detector`, plus the per-fixture rows; fixtures are clean."""
    _check_int(tolerance, "tolerance", 0)
    on_baseline: dict[int, NDArray[np.int64] | str] = {}
    details = []
    for f in fixtures:
        detail = _score_fixture(detector, f, tolerance, on_baseline)
        details.append({"detector": name, "family": f.family, "fixture": f.name, **detail})
        if on_fixture is not None:
            on_fixture(f)
    detail_table = pd.DataFrame(details, columns=list(DETAIL_COLUMNS))
    kinds = {f.family: f.kind for f in fixtures}
    rows = []
    for family, group in detail_table.groupby("family", sort=False):
        ran = group[group["error"] == ""]
        n_true, hits = int(ran["n_true"].sum()), int(ran["hits"].sum())
        fp, n_samples = int(ran["false_positives"].sum()), int(ran["n_samples"].sum())
        errors = group.loc[group["error"] != "", "error"]
        rows.append(
            {
                "detector": name,
                "family": family,
                "kind": kinds[str(family)],
                "n_fixtures": len(group),
                "n_samples": n_samples,
                "n_true": n_true,
                "n_detected": int(ran["n_detected"].sum()),
                "hits": hits,
                "baseline_hits": int(ran["baseline_hits"].sum()),
                "recall": hits / n_true if n_true else math.nan,
                "precision": hits / (hits + fp) if hits + fp else math.nan,
                "false_positives": fp,
                "false_positives_per_1000": 1000.0 * fp / n_samples if n_samples else math.nan,
                "n_excused": int(ran["n_excused"].sum()),
                "n_errors": len(errors),
                "error": str(errors.iloc[0]) if len(errors) else "",
            }
        )
    return pd.DataFrame(rows, columns=list(SCORE_COLUMNS)), detail_table


def _score_fixture(
    detector: DetectorFn,
    f: Fixture,
    tolerance: int,
    on_baseline: dict[int, NDArray[np.int64] | str],
) -> dict[str, Any]:
    n = len(f.values)
    failed = {
        "n_samples": n,
        "n_true": len(f.truth),
        "n_detected": 0,
        "hits": 0,
        "baseline_hits": 0,
        "false_positives": 0,
        "n_excused": 0,
    }
    found = _run_detector(detector, f.values)
    if isinstance(found, str):
        return {**failed, "error": found}
    pairs = match_events(f.truth, found, tolerance=tolerance)
    unmatched = np.setdiff1d(found, pairs[:, 1])
    excused = np.zeros(len(unmatched), dtype=bool)
    baseline_hits = 0
    if f.baseline is not None:
        key = id(f.baseline)  # planted fixtures of one trajectory share one baseline
        if key not in on_baseline:
            on_baseline[key] = _run_detector(detector, f.baseline)
        own = on_baseline[key]
        if isinstance(own, str):
            return {**failed, "error": f"baseline: {own}"}
        if len(own):
            excused = _near(unmatched, own, tolerance)
            baseline_hits = int(_near(pairs[:, 0], own, tolerance).sum())
    return {
        **failed,
        "n_detected": len(found),
        "hits": len(pairs),
        "baseline_hits": baseline_hits,
        "false_positives": int((~excused).sum()),
        "n_excused": int(excused.sum()),
        "error": "",
    }


def _near(a: NDArray[np.int64], b: NDArray[np.int64], tolerance: int) -> NDArray[np.bool_]:
    """Whether each of ``a`` lies within ``tolerance`` of some element of non-empty ``b``."""
    if not len(a):
        return np.zeros(0, dtype=bool)
    return np.asarray(np.abs(a[:, None] - b[None, :]).min(axis=1) <= tolerance)


def _run_detector(detector: DetectorFn, values: NDArray[np.float64]) -> NDArray[np.int64] | str:
    """Sorted unique detections, or the reason there are none (a raise, a bad return)."""
    n = len(values)
    try:
        # A copy: a detector that writes into its input must not change the fixture.
        raw = np.asarray(detector(values.copy()))
    except Exception as exc:  # a user's detector may raise anything; it is reported
        return f"{type(exc).__name__}: {exc}"
    if (
        raw.ndim > 1
        or raw.dtype == bool
        or not (
            np.issubdtype(raw.dtype, np.integer)
            or (np.issubdtype(raw.dtype, np.floating) and bool(np.all(raw == np.round(raw))))
            or raw.size == 0
        )
    ):
        return (
            f"returned {raw.dtype} of shape {raw.shape}; a detector must return integer "
            "sample indices (1-D)"
        )
    found = np.unique(raw.astype(np.int64).reshape(-1))
    if len(found) and (found[0] < 0 or found[-1] >= n):
        return f"returned index {int(found[0] if found[0] < 0 else found[-1])} outside 0..{n - 1}"
    return found


def _checked(fixtures: Sequence[Fixture]) -> list[Fixture]:
    """Fixtures with clean arrays; raises on a malformed one, naming it and the field."""
    if isinstance(fixtures, Fixture):
        raise ConfigError("fixtures must be a sequence of Fixture; got one Fixture. Wrap it: [f].")
    clean = []
    names: set[str] = set()
    for f in fixtures:
        if not isinstance(f, Fixture):
            raise ConfigError(
                f"fixtures must hold Fixture objects; got {type(f).__name__}. Build them "
                "with Fixture(...), builtin_fixtures() or planted_fixtures()."
            )
        where = f"fixture {f.name!r}"
        if f.name in names:
            raise ConfigError(f"{where} appears twice; fixture names must be unique.")
        names.add(f.name)
        if f.kind not in FIXTURE_KINDS:
            raise ConfigError(f"{where}: kind must be 'positive' or 'null'; got {f.kind!r}.")
        values = _as_series(f.values, name=f"{where}: values")
        truth = np.asarray(f.truth)
        if truth.size and not np.issubdtype(truth.dtype, np.integer):
            raise ConfigError(f"{where}: truth must hold integer sample indices; got {truth!r}.")
        truth = np.unique(truth.astype(np.int64).reshape(-1))
        if len(truth) and (truth[0] < 0 or truth[-1] >= len(values)):
            raise ConfigError(
                f"{where}: truth must lie in 0..{len(values) - 1}; got {truth.tolist()}."
            )
        if f.kind == "null" and len(truth):
            raise ConfigError(
                f"{where}: a null has no changes, so truth must be empty; got "
                f"{truth.tolist()}. Use kind='positive'."
            )
        if f.kind == "positive" and not len(truth):
            raise ConfigError(
                f"{where}: a positive needs truth indices; got none. Use kind='null'."
            )
        baseline = f.baseline
        if baseline is not None:
            baseline = _as_series(baseline, name=f"{where}: baseline")
            if len(baseline) != len(values):
                raise ConfigError(
                    f"{where}: baseline must have the length of values ({len(values)}); got "
                    f"{len(baseline)}."
                )
        clean.append(dataclasses.replace(f, values=values, truth=truth, baseline=baseline))
    return clean


def _as_series(values: Any, *, name: str) -> NDArray[np.float64]:
    try:
        v = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a 1-D numeric array; could not convert: {exc}") from exc
    if v.ndim != 1 or len(v) < 2:
        raise ConfigError(f"{name} must be 1-D with at least 2 samples; got shape {v.shape}.")
    if not np.isfinite(v).all():
        raise ConfigError(
            f"{name} must be finite; got {int((~np.isfinite(v)).sum())} NaN/Inf value(s). "
            "Drop failed measurements first (series_of does)."
        )
    return v


# --------------------------------------------------------------------------- verdicts


@dataclass(frozen=True)
class VerdictRule:
    """When a detector passes the harness.

    PASS when (a) recall >= ``min_recall`` on every positive family not in ``exempt``,
    (b) false positives per 1000 samples <= ``max_fp_per_1000`` on every null family, and
    (c) the detector raised (or returned garbage) on no fixture. Exempt families are
    scored and reported, but do not count.
    """

    min_recall: float = 0.9  # issue 5: 9 of 10 clearly real (>= 6 sd) steps found
    max_fp_per_1000: float = 1.0  # issue 5: at most 1 false jump per 1000 samples of a null
    # A step detector is not asked to find kinks; pass exempt=() to count them.
    exempt: tuple[str, ...] = ("slope change",)

    @property
    def text(self) -> str:
        """The rule in one sentence, as printed beside the verdicts."""
        exempt = f"; {', '.join(self.exempt)}: reported, not in the verdict" if self.exempt else ""
        return (
            f"PASS when recall >= {self.min_recall:g} on every positive family, false "
            f"positives <= {self.max_fp_per_1000:g} per 1000 samples on every null family, "
            f"and no fixture raised{exempt}. Otherwise FAIL."
        )


@dataclass(frozen=True)
class Verdict:
    """PASS or FAIL of one detector, with every failed condition.

    Attributes
    ----------
    detector : str
    passed : bool
    reasons : tuple of str
        One per failed condition, e.g. ``"white noise: 45.2 false positives per 1000
        samples > 1"``; empty when passed.
    """

    detector: str
    passed: bool
    reasons: tuple[str, ...]

    @property
    def label(self) -> str:
        """``"PASS"`` or ``"FAIL"``."""
        return "PASS" if self.passed else "FAIL"

    def line(self) -> str:
        """One printable line: ``"name: PASS"`` or ``"name: FAIL (reason; reason)"``."""
        return f"{self.detector}: {self.label}" + (
            f" ({'; '.join(self.reasons)})" if self.reasons else ""
        )


@dataclass(frozen=True)
class Evaluation:
    """What :func:`evaluate` found.

    Attributes
    ----------
    scores : DataFrame
        :data:`SCORE_COLUMNS`, one row per (detector, family), detectors in the order
        given.
    details : DataFrame
        :data:`DETAIL_COLUMNS`, one row per (detector, fixture): which fixtures were
        missed or gave false positives.
    verdicts : tuple of Verdict
        One per detector, in the same order.
    rule : VerdictRule
    rule_text : str
        ``rule.text``: the rule that produced the verdicts.
    tolerance : int
        Samples within which a detection is a hit.
    """

    scores: pd.DataFrame
    details: pd.DataFrame
    verdicts: tuple[Verdict, ...]
    rule: VerdictRule
    rule_text: str
    tolerance: int

    def verdict(self, detector: str) -> Verdict:
        """The verdict of one detector.

        Raises
        ------
        ConfigError
            If it was not evaluated; the message lists those that were.
        """
        for v in self.verdicts:
            if v.detector == detector:
                return v
        names = ", ".join(repr(v.detector) for v in self.verdicts)
        raise ConfigError(f"detector must be one of {names}; got {detector!r}.")

    def to_json(self) -> dict[str, Any]:
        """Scores, verdicts and rule as plain JSON (NaN becomes null)."""
        records = [
            {k: None if isinstance(v, float) and math.isnan(v) else _plain(v) for k, v in r.items()}
            for r in self.scores.to_dict("records")
        ]
        return {
            "tolerance": self.tolerance,
            "rule": self.rule_text,
            "rule_parameters": {
                "min_recall": self.rule.min_recall,
                "max_fp_per_1000": self.rule.max_fp_per_1000,
                "exempt": list(self.rule.exempt),
            },
            "verdicts": [
                {"detector": v.detector, "verdict": v.label, "reasons": list(v.reasons)}
                for v in self.verdicts
            ],
            "scores": records,
        }


def _plain(value: Any) -> Any:
    """numpy scalars as Python ones, for JSON."""
    return value.item() if isinstance(value, np.generic) else value


def evaluate(
    detectors: Mapping[str, DetectorFn],
    fixtures: Sequence[Fixture],
    *,
    tolerance: int = 3,
    rule: VerdictRule | None = None,
    on_fixture: Callable[[str, Fixture], None] | None = None,
) -> Evaluation:
    """Score several detectors on the same fixtures and judge each by ``rule``.

    Parameters
    ----------
    detectors : mapping of str to callable
        Name -> ``values -> event indices``, e.g. :func:`builtin_detectors` plus your own.
    fixtures : sequence of Fixture
        E.g. :func:`builtin_fixtures` ``+`` :func:`fixtures_from_run`.
    tolerance : int
        See :func:`match_events`.
    rule : VerdictRule, optional
        Default: ``VerdictRule()`` (issue 5's; slope change reported, not judged).
    on_fixture : callable, optional
        Called as ``on_fixture(detector_name, fixture)`` after each fixture is scored
        (a progress bar: ``len(detectors) * len(fixtures)`` calls in all).

    Returns
    -------
    Evaluation

    Raises
    ------
    ConfigError
        If there is no detector, a fixture is malformed or an option is out of range. A
        detector that raises is not an error: its family rows record it and it FAILs.

    Examples
    --------
    A detector that never fires finds nothing and makes no false positive:

    >>> result = evaluate({"silent": lambda v: []}, builtin_fixtures(n=200, n_repeats=2))
    >>> result.verdict("silent").line()
    'silent: FAIL (single step: recall 0 < 0.9; multiple steps: recall 0 < 0.9)'
    >>> float(result.scores["false_positives"].sum())
    0.0
    """
    if not detectors:
        raise ConfigError("detectors must name at least one detector; got none.")
    _check_int(tolerance, "tolerance", 0)
    the_rule = rule if rule is not None else VerdictRule()
    if not 0 <= the_rule.min_recall <= 1 or the_rule.max_fp_per_1000 < 0:
        raise ConfigError(
            "rule.min_recall must be in [0, 1] and rule.max_fp_per_1000 >= 0; got "
            f"{the_rule.min_recall!r} and {the_rule.max_fp_per_1000!r}."
        )
    clean = _checked(fixtures)
    tables, details, verdicts = [], [], []
    for name, detector in detectors.items():
        callback = None if on_fixture is None else _bind(on_fixture, name)
        scores, detail = _score(
            detector, clean, tolerance=tolerance, name=name, on_fixture=callback
        )
        tables.append(scores)
        details.append(detail)
        verdicts.append(_judge(name, scores, the_rule))
    return Evaluation(
        scores=pd.concat(tables, ignore_index=True),
        details=pd.concat(details, ignore_index=True),
        verdicts=tuple(verdicts),
        rule=the_rule,
        rule_text=the_rule.text,
        tolerance=tolerance,
    )


def _bind(on_fixture: Callable[[str, Fixture], None], name: str) -> Callable[[Fixture], None]:
    return lambda f: on_fixture(name, f)


def _judge(name: str, scores: pd.DataFrame, rule: VerdictRule) -> Verdict:
    """Apply ``rule`` to one detector's family rows."""
    reasons = []
    for r in scores.to_dict("records"):
        family = str(r["family"])
        if r["n_errors"]:
            reasons.append(f"{family}: raised on {r['n_errors']} fixture(s): {r['error']}")
            continue
        if r["kind"] == "positive" and family not in rule.exempt:
            if not r["recall"] >= rule.min_recall:
                reasons.append(f"{family}: recall {r['recall']:.3g} < {rule.min_recall:g}")
        elif r["kind"] == "null" and not r["false_positives_per_1000"] <= rule.max_fp_per_1000:
            reasons.append(
                f"{family}: {r['false_positives_per_1000']:.3g} false positives per 1000 "
                f"samples > {rule.max_fp_per_1000:g}"
            )
    return Verdict(name, not reasons, tuple(reasons))
