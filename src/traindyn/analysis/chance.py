"""Chance bands: is a measured value different from what a null control gives?

Three controls, measured on the run's own probe with the run's own metrics:

* ``"random_init"``: the architecture freshly initialised, never trained (one band for
  every step), and
* ``"gaussian"``: a Gaussian cloud with each representation's own mean, covariance and n
  (a band per step), both from :func:`traindyn.capture.null_controls`;
* ``"shuffled_labels"``: a twin run trained on permuted labels
  (``ExperimentSpec.shuffle_labels``; :func:`shuffled_controls` finds it), whose
  trajectory is the band at each step (:func:`shuffled_bands`).

:func:`chance_bands` and :func:`shuffled_bands` summarise control values as bands,
:func:`different_from_chance` compares a metrics table with them and returns the
decision as a column. :func:`gaussian_surrogate` is the Gaussian control's maths.

Band table (:data:`BAND_COLUMNS`): ``control, step, layer, metric, mean, sd, lo, hi, n``
(``step = -1``: the band holds at every step).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

from traindyn._validation import as_2d_float, check_in, check_min_samples
from traindyn.analysis.noise import trajectory_noise
from traindyn.exceptions import ConfigError
from traindyn.store.run import Run, find_run_dirs

__all__ = [
    "ALL_STEPS",
    "BAND_COLUMNS",
    "CHANCE_COLUMNS",
    "COVARIANCE_MATCHES",
    "DEFAULT_RTOL",
    "SHUFFLED_LABELS",
    "CovarianceMatch",
    "chance_bands",
    "different_from_chance",
    "gaussian_surrogate",
    "shuffled_bands",
    "shuffled_controls",
]

CovarianceMatch = Literal["exact", "expected"]
COVARIANCE_MATCHES: tuple[CovarianceMatch, ...] = ("exact", "expected")
"""How a Gaussian surrogate matches the covariance (see :func:`gaussian_surrogate`)."""

SHUFFLED_LABELS = "shuffled_labels"
"""``control`` of the bands built from label-shuffled runs."""

ALL_STEPS = -1
"""``step`` of a band that holds at every step (the random-initialisation band)."""

DEFAULT_RTOL = 1e-5
"""Relative resolution of a metric value in :func:`different_from_chance`."""

_BAND_SCHEMA = {
    "control": "string",
    "step": "int64",
    "layer": "string",
    "metric": "string",
    "mean": "float64",
    "sd": "float64",
    "lo": "float64",
    "hi": "float64",
    "n": "int64",
}
BAND_COLUMNS: tuple[str, ...] = tuple(_BAND_SCHEMA)
"""Columns of a band table, in order."""

_CHANCE_SCHEMA = {
    "step": "int64",
    "layer": "string",
    "metric": "string",
    "control": "string",
    "value": "float64",
    "mean": "float64",
    "sd": "float64",
    "lo": "float64",
    "hi": "float64",
    "n": "int64",
    "z": "float64",
    "different": "bool",
    "reason": "string",
}
CHANCE_COLUMNS: tuple[str, ...] = tuple(_CHANCE_SCHEMA)
"""Columns of :func:`different_from_chance`'s table, in order."""

_KEYS = ["control", "step", "layer", "metric"]


# --------------------------------------------------------------------- the surrogate


def gaussian_surrogate(
    X: Any, *, n_draws: int = 1, seed: int = 0, covariance: CovarianceMatch = "exact"
) -> list[NDArray[np.float64]]:
    """Gaussian clouds with the mean, covariance and number of rows of ``X``.

    With ``X - mean = U Σ Vᵀ`` (thin SVD, rank r <= n - 1) and a standard normal Z of
    shape (n, r) from ``numpy.random.default_rng([seed, d])``, draw ``d`` is

    * ``covariance="exact"`` (default): ``mean + Q Σ Vᵀ`` with Q the orthonormal factor
      of the column-centred Z (signs fixed, so Q is uniform on the Stiefel manifold).
      Its mean and sample covariance *equal* X's: this is a Gaussian sample conditioned
      on its sufficient statistics, the exact null of "nothing beyond second order".
      Every spectral metric of a draw equals X's (up to rounding).
    * ``covariance="expected"``: ``mean + Z Σ Vᵀ / sqrt(n - 1)``, rows i.i.d.
      ``N(mean, S)`` with S the sample covariance of X (λ = σ²/(n − 1)), equal to
      ``mean + Z' (X - mean) / sqrt(n - 1)`` for Z' of shape (n, n). Its covariance is
      S only in expectation: its own sample covariance re-samples S, so spectral
      metrics come out biased (participation ratio lower by a few sd at n/d = 10).

    Both work when d > n (the cloud lies in X's span) and destroy everything beyond
    second order (curvature, clusters, holes), which is what intrinsic-dimension and
    topology metrics are compared against.

    Parameters
    ----------
    X : ndarray or torch.Tensor of shape (n_samples, n_features)
        Finite, n_samples >= 2.
    n_draws : int, default 1
        Number of clouds.
    seed : int, default 0
        With ``d``, the seed of draw ``d``: draws do not depend on ``n_draws``, and two
        matrices of the same shape get the same Z (common random numbers).
    covariance : {"exact", "expected"}, default "exact"
        Whether each draw has X's covariance exactly or in expectation.

    Returns
    -------
    list of ndarray of shape (n_samples, n_features), float64

    Raises
    ------
    MetricError
        If X is not 2-D, has fewer than 2 rows, or holds NaN/Inf.
    ConfigError
        If ``n_draws < 1``, ``seed`` is not a non-negative integer or ``covariance`` is
        unknown.

    Examples
    --------
    >>> X = np.random.default_rng(0).normal(size=(50, 3)) * [3.0, 1.0, 0.1]
    >>> Y = gaussian_surrogate(X, seed=1)[0]
    >>> Y.shape, bool(np.allclose(np.cov(Y, rowvar=False), np.cov(X, rowvar=False)))
    ((50, 3), True)

    The average covariance of many ``"expected"`` draws is X's covariance:

    >>> draws = gaussian_surrogate(X, n_draws=400, seed=1, covariance="expected")
    >>> C = np.mean([np.cov(Y, rowvar=False) for Y in draws], axis=0)
    >>> bool(np.allclose(C, np.cov(X, rowvar=False), atol=0.1))
    True
    """
    if isinstance(n_draws, bool) or not isinstance(n_draws, int) or n_draws < 1:
        raise ConfigError(f"n_draws must be an integer >= 1; got {n_draws!r}.")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer; got {seed!r}.")
    check_in(covariance, COVARIANCE_MATCHES, name="covariance")
    A = as_2d_float(X)
    check_min_samples(A, 2, what="a Gaussian surrogate")
    M = np.asarray(A.detach().cpu() if isinstance(A, torch.Tensor) else A, dtype=np.float64)
    n = M.shape[0]
    mean = M.mean(axis=0)
    _, sigma, vt = np.linalg.svd(M - mean, full_matrices=False)
    r = min(len(sigma), n - 1)  # centred data has rank <= n - 1
    factor = sigma[:r, None] * vt[:r]
    out = []
    for d in range(n_draws):
        Z = np.random.default_rng([seed, d]).standard_normal((n, r))
        if covariance == "expected":
            out.append(mean + Z @ factor / math.sqrt(n - 1))
            continue
        # Centred columns are orthogonal to the ones vector, so Q's are too: the draw's
        # mean is X's mean. Fixing the signs of R's diagonal makes Q Haar-distributed.
        Q, R = np.linalg.qr(Z - Z.mean(axis=0))
        Q = Q * np.where(np.diag(R) < 0, -1.0, 1.0)
        out.append(mean + Q @ factor)
    return out


# --------------------------------------------------------------------------- bands


def chance_bands(controls: pd.DataFrame) -> pd.DataFrame:
    """Bands of a controls table: per (control, step, layer, metric) over the draws.

    Parameters
    ----------
    controls : DataFrame
        Columns ``step, layer, control, draw, metric, value`` (more are ignored), as
        returned by :func:`traindyn.capture.null_controls`.

    Returns
    -------
    DataFrame
        :data:`BAND_COLUMNS`: ``mean`` and ``sd`` (ddof=1) of the finite values,
        ``lo``/``hi`` their minimum and maximum, ``n`` their number (NaN draws, with
        their reason in the controls table, are left out; ``sd`` is NaN for ``n < 2``,
        everything but ``n`` for ``n = 0``). Sorted by control, step, layer, metric;
        ``step = -1`` (random init) holds at every step.

    Raises
    ------
    ConfigError
        If a column is missing.

    Examples
    --------
    >>> t = pd.DataFrame({"step": -1, "layer": "fc", "control": "random_init",
    ...                   "draw": [0, 1, 2], "metric": "pr", "value": [1.0, 2.0, 3.0]})
    >>> chance_bands(t)[["mean", "sd", "lo", "hi", "n"]].values.tolist()
    [[2.0, 1.0, 1.0, 3.0, 3.0]]
    """
    _require(controls, ("step", "layer", "control", "draw", "metric", "value"), "controls")
    return _bands(controls[["control", "step", "layer", "metric", "value"]])


def shuffled_bands(
    control_metrics: pd.DataFrame | Sequence[pd.DataFrame], *, control: str = SHUFFLED_LABELS
) -> pd.DataFrame:
    """Bands from label-shuffled control runs: their trajectory is chance at each step.

    With several control runs (seeds), the band at a step is their values at that step:
    mean, ``sd`` (ddof=1), ``lo``/``hi`` = min/max, ``n`` = runs with a finite value.
    With one, ``mean = lo = hi`` is its value and ``sd`` its trajectory's
    sample-to-sample noise (:func:`~traindyn.analysis.noise.trajectory_noise` over the
    (layer, metric) series; 0 for fewer than 8 steps), ``n = 1``.

    Parameters
    ----------
    control_metrics : DataFrame or sequence of DataFrame
        The control runs' metrics tables (``step, layer, metric, value``), e.g.
        ``[r.metrics for r in shuffled_controls(run, directory)]``.
    control : str, default "shuffled_labels"
        The ``control`` column of the bands.

    Returns
    -------
    DataFrame
        :data:`BAND_COLUMNS`, one band per step, layer and metric of the controls.

    Raises
    ------
    ConfigError
        If no table is given, a column is missing, or a table has several rows per
        (step, layer, metric) (e.g. per-class rows: select one class first).

    Examples
    --------
    >>> a = pd.DataFrame({"step": [0, 10], "layer": "fc", "metric": "pr", "value": [1.0, 2.0]})
    >>> b = a.assign(value=[3.0, 2.0])
    >>> shuffled_bands([a, b])[["step", "mean", "sd", "n"]].values.tolist()
    [[0.0, 2.0, 1.4142135623730951, 2.0], [10.0, 2.0, 0.0, 2.0]]
    """
    tables = (
        [control_metrics] if isinstance(control_metrics, pd.DataFrame) else list(control_metrics)
    )
    if not tables:
        raise ConfigError(
            "control_metrics must hold at least one control run's metrics table; got none. "
            "Train the twin with ExperimentSpec.shuffled_control() and pass its run.metrics."
        )
    parts = []
    for i, table in enumerate(tables):
        where = f"control_metrics[{i}]"
        _require(table, ("step", "layer", "metric", "value"), where)
        _unique(table, where)
        parts.append(table[["step", "layer", "metric", "value"]].assign(control=control, run=i))
    values = pd.concat(parts, ignore_index=True)
    bands = _bands(values)
    if len(tables) > 1:
        return bands
    noise = {
        key: trajectory_noise(group.sort_values("step")["value"].dropna().to_numpy(np.float64))
        for key, group in values.groupby(["layer", "metric"], sort=False)
    }
    sd = [
        noise[(layer, metric)] if n == 1 else math.nan
        for layer, metric, n in zip(bands["layer"], bands["metric"], bands["n"], strict=True)
    ]
    return bands.assign(sd=np.asarray(sd, dtype=np.float64))


def _bands(values: pd.DataFrame) -> pd.DataFrame:
    """Guts of the band builders: ``control, step, layer, metric, value`` rows -> bands."""
    finite = values.assign(value=values["value"].astype("float64"))
    finite = finite[np.isfinite(finite["value"].to_numpy())]
    keys = values[_KEYS].drop_duplicates()
    grouped = finite.groupby(_KEYS, sort=False)["value"]
    stats = grouped.agg(["mean", "std", "min", "max", "count"]).reset_index()
    stats = stats.rename(columns={"std": "sd", "min": "lo", "max": "hi", "count": "n"})
    out = keys.merge(stats, on=_KEYS, how="left")
    out["n"] = out["n"].fillna(0)
    out = out.astype({k: v for k, v in _BAND_SCHEMA.items()})
    return out.sort_values(_KEYS, kind="stable").reset_index(drop=True)[list(BAND_COLUMNS)]


# ------------------------------------------------------------------------ decisions


def different_from_chance(
    metrics: pd.DataFrame,
    bands: pd.DataFrame,
    *,
    z_threshold: float = 3.0,
    rtol: float = DEFAULT_RTOL,
) -> pd.DataFrame:
    """Compare each measured value with every control's band: the "different" column.

    A value is **different from chance** under a control when it lies outside the band's
    envelope ``[lo, hi]`` *and* ``|z| > z_threshold``, where
    ``z = (value - mean) / max(sd, rtol·max(|mean|, |value|))``: a relative difference
    below ``rtol`` is never a difference (activations are float32, and a metric of a
    float32 matrix is not reproducible much better than ~1e-6; the exact-covariance
    Gaussian band of a spectral metric has sd 0). Both conditions: a value beyond every
    draw of a tight band but within its sampling noise is not different, nor is a value
    at 3 sd of a wide one that a draw reached. Consequences:

    * ``sd = 0`` with ``n >= 2`` (every draw equal: an integer metric, or a spectral
      metric of the exact-covariance Gaussian): a value other than theirs by more than
      ``z_threshold · rtol`` relative is different, one within it is not;
    * ``n = 1``: a band from several draws is undecided (``different`` False, with a
      reason); the band of a single shuffled run uses its trajectory noise as ``sd`` and
      is decided when that noise is positive;
    * a NaN value, a band with no finite value, or no band at the step: undecided.

    Parameters
    ----------
    metrics : DataFrame
        ``step, layer, metric, value`` (a run's ``run.metrics``, or
        :func:`~traindyn.capture.measure_checkpoints`), one row per (step, layer,
        metric).
    bands : DataFrame
        :data:`BAND_COLUMNS`, from :func:`chance_bands` and/or :func:`shuffled_bands`
        (concatenate them). Bands with ``step = -1`` apply at every step.
    z_threshold : float, default 3.0
        Smallest |z| called different.
    rtol : float, default 1e-5
        Relative resolution of a value (see above); >= 0.

    Returns
    -------
    DataFrame
        :data:`CHANCE_COLUMNS`: ``step, layer, metric, control, value`` and the band
        ``mean, sd, lo, hi, n`` (the band of ``step = -1`` repeated), ``z`` (float64),
        ``different`` (bool) and ``reason`` (string: ``<NA>`` when decided, else why
        not). One row per metrics row and control that has a band for its (layer,
        metric) at some step; sorted by step, layer, metric, control.

    Raises
    ------
    ConfigError
        If a column is missing, ``metrics`` has several rows per (step, layer, metric),
        ``bands`` several per key, ``z_threshold`` is not positive or ``rtol`` negative.

    Examples
    --------
    >>> bands = pd.DataFrame({"control": "gaussian", "step": 5, "layer": "fc",
    ...     "metric": ["pr", "twonn"], "mean": [4.0, 9.0], "sd": [0.5, 0.4],
    ...     "lo": [3.4, 8.5], "hi": [4.6, 9.6], "n": 5})
    >>> m = pd.DataFrame({"step": 5, "layer": "fc", "metric": ["pr", "twonn"],
    ...     "value": [4.2, 1.1]})
    >>> t = different_from_chance(m, bands)
    >>> t[["metric", "z", "different"]].round(2).values.tolist()
    [['pr', 0.4, False], ['twonn', -19.75, True]]
    """
    if (
        isinstance(z_threshold, bool)
        or not isinstance(z_threshold, int | float)
        or not z_threshold > 0
    ):
        raise ConfigError(f"z_threshold must be a positive number; got {z_threshold!r}.")
    if isinstance(rtol, bool) or not isinstance(rtol, int | float) or not rtol >= 0:
        raise ConfigError(f"rtol must be a number >= 0; got {rtol!r}.")
    _require(metrics, ("step", "layer", "metric", "value"), "metrics")
    _unique(metrics, "metrics")
    _require(bands, BAND_COLUMNS, "bands")
    if bands.duplicated(_KEYS).any():
        raise ConfigError(
            "bands must hold one band per (control, step, layer, metric); got repeated keys. "
            "Build each control's bands once (chance_bands, shuffled_bands) and concatenate."
        )
    observed = metrics[["step", "layer", "metric", "value"]].astype(
        {"step": "int64", "layer": "string", "metric": "string", "value": "float64"}
    )
    b = bands[list(BAND_COLUMNS)].astype(_BAND_SCHEMA)
    pairs = b[["control", "layer", "metric"]].drop_duplicates()
    rows = observed.merge(pairs, on=["layer", "metric"], how="inner")
    every = b[b["step"] == ALL_STEPS].drop(columns="step")
    stepped = b[b["step"] != ALL_STEPS]
    at_step = rows.merge(stepped, on=["control", "step", "layer", "metric"], how="left")
    overall = rows.merge(every, on=["control", "layer", "metric"], how="left")
    stats = ["mean", "sd", "lo", "hi", "n"]
    has_step = at_step["n"].notna().to_numpy()
    for col in stats:
        at_step[col] = at_step[col].where(has_step, overall[col])
    out = at_step
    missing = out["n"].isna().to_numpy()
    out["n"] = out["n"].fillna(0)

    value = out["value"].to_numpy(np.float64)
    mean = out["mean"].to_numpy(np.float64)
    sd = out["sd"].to_numpy(np.float64)
    lo = out["lo"].to_numpy(np.float64)
    hi = out["hi"].to_numpy(np.float64)
    n = out["n"].to_numpy(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.fmax(sd, rtol * np.fmax(np.abs(mean), np.abs(value)))
        diff = value - mean
        z = np.where(diff == 0, 0.0, diff / scale)
        single = n == 1
        z = np.where(single & ~(sd > 0), math.nan, z)
        outside = (value < lo) | (value > hi)
        different = outside & (np.abs(z) > z_threshold)
    different = np.where(np.isfinite(z), different, False)
    reasons = _reasons(value, n, sd, missing)
    out = out.assign(
        z=z,
        different=different.astype(bool),
        reason=pd.Series(reasons, index=out.index, dtype="string"),
    )
    out = out.astype(_CHANCE_SCHEMA)[list(CHANCE_COLUMNS)]
    return out.sort_values(["step", "layer", "metric", "control"], kind="stable").reset_index(
        drop=True
    )


def _reasons(
    value: NDArray[np.float64], n: NDArray[np.int64], sd: NDArray[np.float64], missing: Any
) -> list[str | None]:
    out: list[str | None] = []
    for v, k, s, m in zip(value, n, sd, missing, strict=True):
        if m:
            out.append("no band at this step")
        elif not math.isfinite(v):
            out.append("observed value is NaN")
        elif k == 0:
            out.append("band has no finite control value")
        elif k == 1 and not s > 0:
            out.append("band has 1 control value and no noise estimate; need >= 2")
        else:
            out.append(None)
    return out


# -------------------------------------------------------------------------- pairing


def shuffled_controls(
    run: Run | str | os.PathLike[str],
    candidates: Iterable[Run | str | os.PathLike[str]] | str | os.PathLike[str],
) -> list[Run]:
    """The label-shuffled twins of a suite run among ``candidates``, every seed.

    A candidate is a twin when its recorded experiment (``run.json``,
    ``config["experiment"]``) equals the run's in every field but ``name``, ``seed``
    and ``shuffle_labels``, and it shuffles the labels while the run does not. A
    dataset registered as ``<name>_shuffled`` (``grokking_addition_shuffled``) counts as
    ``<name>`` with shuffled labels, so the built-in grokking suite pairs too.

    Parameters
    ----------
    run : Run or path
        A run trained by a suite.
    candidates : directory, or iterable of Run or path
        Where to look (a directory is searched for run directories).

    Returns
    -------
    list of Run
        The twins, sorted by seed then path; empty when there is none.

    Raises
    ------
    RunNotFound
        If ``run`` or a candidate path has no ``run.json``.
    ConfigError
        If ``run`` was not trained by a suite (no ``config["experiment"]``).
    """
    target = _open(run)
    key = _experiment_key(target)
    if key is None:
        raise ConfigError(
            f"{target.path} was not trained by a suite: its run.json has no "
            "config['experiment'] to pair a shuffled-label control with."
        )
    if key[1]:
        return []
    if isinstance(candidates, str | os.PathLike):
        found = [Run(p) for p in find_run_dirs(Path(candidates))]
    else:
        found = [_open(c) for c in candidates]
    twins = []
    for cand in found:
        cand_key = _experiment_key(cand)
        if cand_key is not None and cand_key[1] and cand_key[0] == key[0]:
            twins.append((cand_key[2], str(cand.path), cand))
    return [c for _, _, c in sorted(twins, key=lambda t: (t[0], t[1]))]


def _open(run: Run | str | os.PathLike[str]) -> Run:
    if isinstance(run, Run):
        return run
    r = Run(run)
    _ = r.manifest  # raises RunNotFound without a run.json
    return r


def _experiment_key(run: Run) -> tuple[dict[str, Any], bool, int] | None:
    """(experiment without name/seed/shuffle flag, shuffles labels, seed) of a suite run."""
    config = run.manifest.config
    experiment = config.get("experiment") if isinstance(config, Mapping) else None
    if not isinstance(experiment, Mapping):
        return None
    rest = {k: v for k, v in experiment.items() if k not in ("name", "seed", "shuffle_labels")}
    shuffled = bool(experiment.get("shuffle_labels", False))
    dataset = rest.get("dataset")
    if isinstance(dataset, str) and dataset.endswith("_shuffled"):
        rest["dataset"], shuffled = dataset.removesuffix("_shuffled"), True
    seed = experiment.get("seed", 0)
    return rest, shuffled, int(seed) if isinstance(seed, int) else 0


# ------------------------------------------------------------------------- checking


def _require(table: Any, columns: Sequence[str], name: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"{name} must be a pandas DataFrame; got {type(table).__name__}.")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ConfigError(
            f"{name} must have columns {list(columns)}; missing {missing} (has "
            f"{list(table.columns)})."
        )


def _unique(table: pd.DataFrame, name: str) -> None:
    if table.duplicated(["step", "layer", "metric"]).any():
        raise ConfigError(
            f"{name} must hold one row per (step, layer, metric); got repeated rows (a "
            "per-class table? select one class, e.g. table[table['class'] == 'mean'])."
        )
