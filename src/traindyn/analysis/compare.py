"""Run-versus-run comparisons and statistics over seeds.

Every function takes long tables (a run's ``metrics`` or ``scalars`` DataFrame), one per
run, and reduces each run's series of one (layer, metric) or scalar name to a number with a
*per-run statistic*:

==========  ============================================================================
``mean``    mean of the finite values in the window (over time points)
``median``  median of the same values
``first``   first finite value (the initial state when the window starts at 0)
``final``   last finite value
``max``     largest finite value ("best" when higher is better, e.g. accuracy)
``min``     smallest finite value ("best" when lower is better, e.g. loss, seed 003's
            hierarchy score)
==========  ============================================================================

A *side* of a comparison is one table (one run) or several (one per seed). Windows are
half-open step ranges ``[start, end)``, given as a :class:`~traindyn.analysis.phases.Phase`
or a ``(start, end)`` pair.

Effect size
-----------
``cohens_d = (mean_a - mean_b) / s_pooled`` with
``s_pooled = sqrt((SS_a + SS_b) / (n_a + n_b - 2))`` (``SS`` the sums of squared
deviations from each side's mean), and ``hedges_g = cohens_d * (1 - 3 / (4 (n_a + n_b -
2) - 1))``, the small-sample bias correction (Hedges 1981). The observations are:

- **over seeds** (``effect_over == "seeds"``) when either side has two or more runs: one
  per-run statistic per run. This is the inferential comparison; with two or more runs on
  *both* sides it also gets a percentile-bootstrap confidence interval of the difference
  (:func:`bootstrap_ci`) and a Welch t-test p-value.
- **over time points** (``effect_over == "time"``) when each side is a single run: the
  finite values in the window (``statistic="mean"`` only). Successive measurements of one
  run are autocorrelated, so this d describes how far apart the two trajectories sit
  relative to their fluctuations; it is not evidence that a rerun would differ, and no
  confidence interval or p-value is given.

References
----------
Cohen, J. (1988). *Statistical Power Analysis for the Behavioral Sciences*, 2nd ed., §2.2.
Hedges, L. V. (1981). Distribution theory for Glass's estimator of effect size and related
estimators. *Journal of Educational Statistics* 6(2), 107-128.
Efron, B. & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*, ch. 13.
Welch, B. L. (1947). The generalization of "Student's" problem when several different
population variances are involved. *Biometrika* 34, 28-35.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from traindyn._validation import check_in
from traindyn.analysis.phases import Phase, Window, _finite_series, _table_kind
from traindyn.exceptions import ConfigError

__all__ = [
    "COMPARISON_COLUMNS",
    "SEED_BANDS_COLUMNS",
    "SEED_STATISTICS_COLUMNS",
    "STATISTICS",
    "Comparison",
    "Correlation",
    "Statistic",
    "Tables",
    "bootstrap_ci",
    "compare_all",
    "compare_runs",
    "early_best_correlation",
    "seed_bands",
    "seed_statistics",
]

Statistic: TypeAlias = Literal["mean", "median", "first", "final", "max", "min"]
STATISTICS: tuple[Statistic, ...] = ("mean", "median", "first", "final", "max", "min")
"""Names of the per-run statistics (see the module docstring)."""

Tables: TypeAlias = pd.DataFrame | Sequence[pd.DataFrame] | Mapping[str, pd.DataFrame]
"""One run's table, or one table per run (seed); a mapping's keys label the runs."""

RandomState: TypeAlias = int | np.random.Generator | None

COMPARISON_COLUMNS = (
    "n_runs_a",
    "n_runs_b",
    "mean_a",
    "mean_b",
    "difference",
    "relative_difference",
    "effect_over",
    "n_a",
    "n_b",
    "std_a",
    "std_b",
    "cohens_d",
    "hedges_g",
    "ci_low",
    "ci_high",
    "p_value",
    "reason",
)
"""Columns of :func:`compare_all` after the series columns; fields of :class:`Comparison`."""

SEED_STATISTICS_COLUMNS = ("n_seeds", "mean", "std", "min", "max")
"""Columns of :func:`seed_statistics` after the series columns."""

SEED_BANDS_COLUMNS = ("group", "layer", "metric", "step", "n", "mean", "min", "max")
"""Columns of :func:`seed_bands`."""
_SEED_BANDS_INPUT = ("run", "step", "layer", "metric", "value")

_Series: TypeAlias = tuple[NDArray[np.int64], NDArray[np.float64]]
_EMPTY: _Series = (np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64))


@dataclass(frozen=True)
class Comparison:
    """Run(s) A against run(s) B on one series; see the module docstring for the rules.

    Attributes
    ----------
    metric, layer : str or None
        The series of a metrics table (None for scalars).
    name : str or None
        The series of a scalars table (None for metrics).
    window : (int, int) or None
        Step range ``[start, end)`` the statistic was taken over; None for whole runs.
    statistic : str
        The per-run statistic, one of :data:`STATISTICS`.
    n_runs_a, n_runs_b : int
        Runs on each side with a finite statistic.
    mean_a, mean_b : float
        Mean over each side's runs of the per-run statistic (a single run's statistic).
    difference : float
        ``mean_a - mean_b``: B is the reference.
    relative_difference : float
        ``100 * difference / |mean_b|`` in percent; NaN when ``mean_b == 0``.
    effect_over : {"seeds", "time"}
        What the observations behind ``std_*``, ``cohens_d`` and ``hedges_g`` are.
    n_a, n_b : int
        Number of those observations per side.
    std_a, std_b : float
        Their standard deviations (ddof=1; NaN with fewer than 2).
    cohens_d, hedges_g : float
        Standardised difference, ``(mean_a - mean_b) / s_pooled``, and its bias-corrected
        version.
    confidence : float
        Level of the interval.
    ci_low, ci_high : float
        Percentile-bootstrap interval of ``difference`` over seeds; NaN unless both sides
        have two or more runs.
    p_value : float
        Two-sided Welch t-test over seeds; NaN unless both sides have two or more runs.
    reason : str or None
        Why a field is NaN; None when every field is defined.
    """

    metric: str | None
    name: str | None
    layer: str | None
    window: tuple[int, int] | None
    statistic: Statistic
    n_runs_a: int
    n_runs_b: int
    mean_a: float
    mean_b: float
    difference: float
    relative_difference: float
    effect_over: Literal["seeds", "time"]
    n_a: int
    n_b: int
    std_a: float
    std_b: float
    cohens_d: float
    hedges_g: float
    confidence: float
    ci_low: float
    ci_high: float
    p_value: float
    reason: str | None

    def text(self, *, digits: int = 2, percent_digits: int = 1) -> str:
        """``"7.19 vs 4.88 mean (47.3% more)"``: the comparison as reports state it.

        Examples
        --------
        >>> a = pd.DataFrame({"step": [0, 1], "name": "holes", "value": [7.0, 7.38]})
        >>> b = pd.DataFrame({"step": [0, 1], "name": "holes", "value": [5.0, 4.76]})
        >>> compare_runs(a, b, name="holes").text()
        '7.19 vs 4.88 mean (47.3% more)'
        """
        text = f"{self.mean_a:.{digits}f} vs {self.mean_b:.{digits}f} {self.statistic}"
        if not math.isfinite(self.relative_difference):
            return text
        if self.difference == 0:
            return f"{text} (no difference)"
        word = "more" if self.difference > 0 else "less"
        return f"{text} ({abs(self.relative_difference):.{percent_digits}f}% {word})"


@dataclass(frozen=True)
class Correlation:
    """Spearman rank correlation between an early value and the best value across runs.

    Attributes
    ----------
    rho : float
        Spearman's rho; NaN (with ``reason``) when ``n < 3`` or a column is constant.
    p_value : float
        Two-sided p-value of ``scipy.stats.spearmanr`` (t approximation, rough for small
        ``n``); NaN with ``rho``.
    n : int
        Runs with both values finite.
    runs : tuple of str
        Their labels (mapping keys, or positions ``"0", "1", ...``).
    early, best : tuple of float
        The paired values, in the order of ``runs``.
    reason : str or None
        Why ``rho`` is NaN; None otherwise.
    """

    rho: float
    p_value: float
    n: int
    runs: tuple[str, ...]
    early: tuple[float, ...]
    best: tuple[float, ...]
    reason: str | None


def compare_runs(
    a: Tables,
    b: Tables,
    *,
    metric: str | None = None,
    name: str | None = None,
    layer: str | None = None,
    window: Window | None = None,
    statistic: Statistic = "mean",
    confidence: float = 0.95,
    n_boot: int = 10_000,
    rng: RandomState = 0,
) -> Comparison:
    """Compare one series between run(s) A and run(s) B.

    Parameters
    ----------
    a, b : DataFrame, sequence of DataFrame or mapping of str to DataFrame
        One run's metrics (or scalars) table, or one table per seed. All tables are of
        the same kind.
    metric : str, optional
        The metric to compare (metrics tables).
    name : str, optional
        The scalar to compare (scalars tables). Give exactly one of ``metric``/``name``.
    layer : str, optional
        The layer (metrics tables); may be omitted when the metric has a single layer.
    window : Phase or (int, int), optional
        Only steps in ``[start, end)``; default the whole run.
    statistic : {"mean", "median", "first", "final", "max", "min"}
        Per-run statistic (module docstring). Default "mean", over time points.
    confidence : float
        Level of the bootstrap interval, in ``(0, 1)``.
    n_boot : int
        Bootstrap resamples.
    rng : int, numpy Generator or None
        Seed or generator of the bootstrap; the default 0 makes reports reproducible.

    Returns
    -------
    Comparison

    Raises
    ------
    ConfigError
        If the tables are not metrics/scalars tables of one kind, the selection is
        ambiguous or absent from a side (the message lists what exists), or an option is
        out of range.

    Notes
    -----
    With fewer than two runs on a side there is no interval or p-value, and with one run
    per side the effect size is over time points (module docstring); ``reason`` says so.

    Examples
    --------
    Seed 000: "Adversarial higher holes: 7.19 vs 4.88 mean (47% more holes)".

    >>> adv = pd.DataFrame({"step": [0, 500, 1000], "layer": "judge",
    ...                     "metric": "betti_1", "value": [6.4, 8.0, 7.17]})
    >>> ped = pd.DataFrame({"step": [0, 500, 1000], "layer": "judge",
    ...                     "metric": "betti_1", "value": [5.7, 4.6, 4.34]})
    >>> c = compare_runs(adv, ped, metric="betti_1")
    >>> round(c.mean_a, 2), round(c.mean_b, 2), round(c.relative_difference)
    (7.19, 4.88, 47)
    >>> c.effect_over, c.n_a
    ('time', 3)
    """
    runs_a = _as_runs(a, "a")
    runs_b = _as_runs(b, "b")
    kind = _common_kind(runs_a + runs_b)
    key = _resolve(runs_a + runs_b, kind, metric=metric, name=name, layer=layer)
    for side, runs in (("a", runs_a), ("b", runs_b)):
        if not any(_has(t, kind, key) for _, t in runs):
            raise ConfigError(
                f"{_describe(kind, key)} is not in any table of {side}; it has "
                f"{_available(runs, kind)}."
            )
    span = _as_window(window)
    check_in(statistic, STATISTICS, name="statistic")
    _check_bootstrap_options(confidence, n_boot)
    series_a = [_one_series(t, kind, key) for _, t in runs_a]
    series_b = [_one_series(t, kind, key) for _, t in runs_b]
    return _compare(
        series_a,
        series_b,
        kind=kind,
        key=key,
        window=span,
        statistic=statistic,
        confidence=confidence,
        n_boot=n_boot,
        rng=rng,
    )


def compare_all(
    a: Tables,
    b: Tables,
    *,
    window: Window | None = None,
    statistic: Statistic = "mean",
    confidence: float = 0.95,
    n_boot: int = 10_000,
    rng: RandomState = 0,
) -> pd.DataFrame:
    """:func:`compare_runs` for every series present on both sides, one row each.

    Parameters
    ----------
    a, b, window, statistic, confidence, n_boot
        As in :func:`compare_runs`.
    rng : int, numpy Generator or None
        A seed (or None) restarts the bootstrap for every row, so a row equals
        :func:`compare_runs` on its series; a Generator is shared by the rows in order.

    Returns
    -------
    DataFrame
        Columns ``layer, metric`` (metrics tables) or ``name`` (scalars tables), then
        :data:`COMPARISON_COLUMNS` with the meaning of the :class:`Comparison` fields;
        rows sorted by series. Counts are int64, ``effect_over`` and ``reason`` str/None,
        the rest float64. Series present on one side only are left out.

    Raises
    ------
    ConfigError
        As :func:`compare_runs`.

    Examples
    --------
    >>> a = pd.DataFrame({"step": [0, 1, 0, 1], "name": ["loss", "loss", "acc", "acc"],
    ...                   "value": [2.0, 1.0, 0.5, 0.7]})
    >>> b = pd.DataFrame({"step": [0, 1], "name": "loss", "value": [3.0, 2.0]})
    >>> compare_all(a, b)[["name", "mean_a", "mean_b", "difference"]]
       name  mean_a  mean_b  difference
    0  loss     1.5     2.5        -1.0
    """
    runs_a = _as_runs(a, "a")
    runs_b = _as_runs(b, "b")
    kind = _common_kind(runs_a + runs_b)
    span = _as_window(window)
    check_in(statistic, STATISTICS, name="statistic")
    _check_bootstrap_options(confidence, n_boot)
    maps_a = [_series_map(t, kind) for _, t in runs_a]
    maps_b = [_series_map(t, kind) for _, t in runs_b]
    keys_a = set().union(*(m.keys() for m in maps_a))
    keys_b = set().union(*(m.keys() for m in maps_b))
    rows = []
    for key in sorted(keys_a & keys_b, key=lambda k: tuple(map(str, k))):
        c = _compare(
            [m.get(key, _EMPTY) for m in maps_a],
            [m.get(key, _EMPTY) for m in maps_b],
            kind=kind,
            key=key,
            window=span,
            statistic=statistic,
            confidence=confidence,
            n_boot=n_boot,
            rng=rng,
        )
        rows.append([*key, *(getattr(c, column) for column in COMPARISON_COLUMNS)])
    out = pd.DataFrame(rows, columns=[*kind, *COMPARISON_COLUMNS])
    for column in ("n_runs_a", "n_runs_b", "n_a", "n_b"):
        out[column] = out[column].astype("int64")
    floats = [c for c in COMPARISON_COLUMNS if c not in ("effect_over", "reason")]
    floats = [c for c in floats if c not in ("n_runs_a", "n_runs_b", "n_a", "n_b")]
    out[floats] = out[floats].astype("float64")
    out["effect_over"] = out["effect_over"].astype(object)
    out["reason"] = out["reason"].astype(object)
    return out


def seed_statistics(
    tables: Tables,
    *,
    statistic: Statistic = "final",
    window: Window | None = None,
    ddof: int = 1,
) -> pd.DataFrame:
    """Mean, spread and range over runs (seeds) of a per-run statistic, per series.

    Parameters
    ----------
    tables : DataFrame, sequence of DataFrame or mapping of str to DataFrame
        One metrics (or scalars) table per run.
    statistic : {"mean", "median", "first", "final", "max", "min"}
        What each run contributes (module docstring); default its final value. Use
        "max"/"min" for the best value.
    window : Phase or (int, int), optional
        Only steps in ``[start, end)``.
    ddof : int
        Delta degrees of freedom of ``std``. The default 1 is the unbiased sample
        variance; seed 003 reported ddof=0 (numpy's default).

    Returns
    -------
    DataFrame
        One row per series present in any run: ``layer, metric`` or ``name``, then
        ``n_seeds`` (int64, runs with a finite statistic), ``mean``, ``std`` (NaN when
        ``n_seeds <= ddof``), ``min``, ``max`` (float64).

    Raises
    ------
    ConfigError
        If a table is not a metrics/scalars table, the kinds are mixed, or an option is
        invalid.

    Examples
    --------
    Seed 003, three runs at lr=5e-4: "Mean -0.762, Std 0.020, Range [-0.783, -0.735]".

    >>> runs = [pd.DataFrame({"step": [0, 9], "name": "hierarchy", "value": [0.3, v]})
    ...         for v in (-0.783, -0.768, -0.735)]
    >>> seed_statistics(runs, statistic="min", ddof=0).round(3)
            name  n_seeds   mean   std    min    max
    0  hierarchy        3 -0.762  0.02 -0.783 -0.735
    """
    runs = _as_runs(tables, "tables")
    kind = _common_kind(runs)
    span = _as_window(window)
    check_in(statistic, STATISTICS, name="statistic")
    if isinstance(ddof, bool) or not isinstance(ddof, int) or ddof < 0:
        raise ConfigError(f"ddof must be an integer >= 0; got {ddof!r}.")
    maps = [_series_map(t, kind) for _, t in runs]
    keys = sorted(set().union(*(m.keys() for m in maps)), key=lambda k: tuple(map(str, k)))
    rows = []
    for key in keys:
        values = np.array(
            [_statistic(*_windowed(m.get(key, _EMPTY), span), statistic) for m in maps]
        )
        values = values[np.isfinite(values)]
        n = int(values.size)
        rows.append(
            [
                *key,
                n,
                float(values.mean()) if n else math.nan,
                float(values.std(ddof=ddof)) if n > ddof else math.nan,
                float(values.min()) if n else math.nan,
                float(values.max()) if n else math.nan,
            ]
        )
    out = pd.DataFrame(rows, columns=[*kind, *SEED_STATISTICS_COLUMNS])
    out["n_seeds"] = out["n_seeds"].astype("int64")
    floats = list(SEED_STATISTICS_COLUMNS[1:])
    out[floats] = out[floats].astype("float64")
    return out


def seed_bands(metrics: pd.DataFrame, groups: Mapping[str, str]) -> pd.DataFrame:
    """Mean and range over the runs (seeds) of each group, step by step.

    Where :func:`seed_statistics` reduces each run to one number, this keeps the time
    axis: for every group, layer, metric and step, the finite values of the group's runs
    at that step give ``n``, their mean, minimum and maximum (the band drawn by
    :func:`traindyn.report.bands_figure`). It assumes the runs of a group share their
    sampling steps, as seeds of one configuration do; a step sampled by fewer runs simply
    has a smaller ``n``.

    Parameters
    ----------
    metrics : DataFrame
        Long table of many runs with columns ``run, step, layer, metric, value`` (e.g.
        ``run.metrics.assign(run=run.id)`` concatenated over runs); other columns are
        ignored.
    groups : mapping of str to str
        Run id -> group name, e.g. ``{"mlp_s0": "mlp", "mlp_s1": "mlp"}``. Runs of the
        table missing from the mapping are left out.

    Returns
    -------
    DataFrame
        Columns :data:`SEED_BANDS_COLUMNS`: ``group, layer, metric`` (str), ``step`` and
        ``n`` (int64, runs with a finite value at that step), ``mean, min, max``
        (float64, NaN when ``n == 0``). Groups in the order of the mapping, layers and
        metrics in order of first appearance, steps ascending. NaN and ±Inf values are
        ignored. An empty ``metrics`` table gives an empty table with these columns.

    Raises
    ------
    ConfigError
        If ``metrics`` is not a DataFrame with those columns, ``groups`` is not a mapping,
        no run of the table is in ``groups`` (the message lists both), or a run has two
        values for one (step, layer, metric).

    Examples
    --------
    >>> table = pd.DataFrame({"run": ["s0", "s1", "s2", "s0", "s1", "s2"],
    ...                       "step": [0, 0, 0, 10, 10, 10], "layer": "fc",
    ...                       "metric": "effective_rank",
    ...                       "value": [4.0, 6.0, 9.0, 2.0, None, 3.0]})
    >>> seed_bands(table, {"s0": "mlp", "s1": "mlp"})
      group layer          metric  step  n  mean  min  max
    0   mlp    fc  effective_rank     0  2   5.0  4.0  6.0
    1   mlp    fc  effective_rank    10  1   2.0  2.0  2.0
    """
    if not isinstance(metrics, pd.DataFrame):
        raise ConfigError(
            f"metrics must be a pandas DataFrame; got {type(metrics).__name__}. Concatenate "
            "run.metrics.assign(run=run.id) over the runs."
        )
    missing = [c for c in _SEED_BANDS_INPUT if c not in metrics.columns]
    if missing:
        raise ConfigError(
            f"metrics must have columns {', '.join(_SEED_BANDS_INPUT)}; missing "
            f"{', '.join(missing)} (got {', '.join(map(str, metrics.columns))}). Add the run "
            "id with run.metrics.assign(run=run.id)."
        )
    if not isinstance(groups, Mapping):
        raise ConfigError(
            f"groups must be a mapping of run id to group name; got {type(groups).__name__}: "
            f"{groups!r}."
        )
    if metrics.empty:
        return _empty_bands()
    run_ids = metrics["run"].astype(str)
    group = run_ids.map({str(k): str(v) for k, v in groups.items()})
    kept = group.notna().to_numpy()
    if not kept.any():
        raise ConfigError(
            f"groups must map runs of the table; got runs {list(groups)[:10]!r}, but the "
            f"table has {pd.unique(run_ids).tolist()[:10]!r}."
        )
    rows = pd.DataFrame(
        {
            "run": run_ids[kept].to_numpy(),
            "group": group[kept].to_numpy(),
            "layer": metrics["layer"][kept].astype(str).to_numpy(),
            "metric": metrics["metric"][kept].astype(str).to_numpy(),
            "step": metrics["step"][kept].to_numpy(dtype=np.int64),
            "value": metrics["value"][kept].to_numpy(dtype=np.float64, na_value=np.nan),
        }
    )
    keys = ["run", "step", "layer", "metric"]
    duplicated = rows.duplicated(keys)
    if duplicated.any():
        first = [
            v.item() if isinstance(v, np.generic) else v for v in rows.loc[duplicated, keys].iloc[0]
        ]
        raise ConfigError(
            f"metrics must have one value per (run, step, layer, metric); got "
            f"{int(duplicated.sum())} duplicate row(s), first {first!r}. Label each run "
            "with its own id."
        )
    # Inf is not a value to average over; NaN is skipped by the aggregations below.
    rows.loc[~np.isfinite(rows["value"].to_numpy()), "value"] = np.nan
    order = {"group": list(dict.fromkeys(str(v) for v in groups.values()))}
    for column in ("layer", "metric"):
        order[column] = list(pd.unique(rows[column]))
    out = (
        rows.groupby(["group", "layer", "metric", "step"], sort=False)["value"]
        .agg(n="count", mean="mean", min="min", max="max")
        .reset_index()
    )
    rank = [out[c].map({v: i for i, v in enumerate(order[c])}) for c in order]
    out = (
        out.assign(_g=rank[0], _l=rank[1], _m=rank[2])
        .sort_values(["_g", "_l", "_m", "step"], kind="stable")
        .drop(columns=["_g", "_l", "_m"])
        .reset_index(drop=True)
    )
    return _typed_bands(out)


def _typed_bands(out: pd.DataFrame) -> pd.DataFrame:
    out = out[list(SEED_BANDS_COLUMNS)].copy()
    for column in ("group", "layer", "metric"):
        out[column] = out[column].astype(object)
    out[["step", "n"]] = out[["step", "n"]].astype("int64")
    out[["mean", "min", "max"]] = out[["mean", "min", "max"]].astype("float64")
    return out


def _empty_bands() -> pd.DataFrame:
    return _typed_bands(pd.DataFrame({c: [] for c in SEED_BANDS_COLUMNS}))


def early_best_correlation(
    tables: Tables,
    *,
    metric: str | None = None,
    name: str | None = None,
    layer: str | None = None,
    early_step: int | None = None,
    early_window: Window | None = None,
    mode: Literal["max", "min"] = "max",
) -> Correlation:
    """Does the early value predict the best one? Spearman's rho across runs.

    Parameters
    ----------
    tables : sequence of DataFrame or mapping of str to DataFrame
        One metrics (or scalars) table per run (seed).
    metric, name, layer
        The series, as in :func:`compare_runs`.
    early_step : int, optional
        The early value is the last finite value at or before this step (the state after
        ``early_step`` updates).
    early_window : Phase or (int, int), optional
        The early value is the mean of the finite values in ``[start, end)``. Give at most
        one of ``early_step``/``early_window``; with neither, the early value is the
        run's first finite value (its initial state, as seed 003's "Init->Best").
    mode : {"max", "min"}
        Whether the best value is the run's maximum or minimum (seed 003's hierarchy
        score is better when lower: "min").

    Returns
    -------
    Correlation
        NaN ``rho`` with a ``reason`` when fewer than 3 runs have both values or either
        column is constant.

    Raises
    ------
    ConfigError
        As :func:`compare_runs`, or if both ``early_step`` and ``early_window`` are given.

    References
    ----------
    Spearman, C. (1904). The proof and measurement of association between two things.
    *American Journal of Psychology* 15, 72-101.

    Examples
    --------
    >>> runs = {f"s{i}": pd.DataFrame({"step": [0, 5, 10], "name": "acc",
    ...                                "value": [init, init + 0.5, init + 0.2]})
    ...         for i, init in enumerate([0.1, 0.3, 0.2])}
    >>> c = early_best_correlation(runs, name="acc")
    >>> c.rho, c.n, c.runs
    (1.0, 3, ('s0', 's1', 's2'))
    """
    from scipy.stats import spearmanr

    runs = _as_runs(tables, "tables")
    kind = _common_kind(runs)
    key = _resolve(runs, kind, metric=metric, name=name, layer=layer)
    check_in(mode, ("max", "min"), name="mode")
    if early_step is not None and early_window is not None:
        raise ConfigError(
            f"give early_step or early_window, not both; got early_step={early_step!r}, "
            f"early_window={early_window!r}."
        )
    span = _as_window(early_window, name="early_window")
    if early_step is not None and (isinstance(early_step, bool) or not isinstance(early_step, int)):
        raise ConfigError(f"early_step must be an integer step; got {early_step!r}.")
    labels, early, best = [], [], []
    for label, table in runs:
        steps, values = _one_series(table, kind, key)
        if values.size == 0:
            continue
        if early_step is not None:
            i = int(np.searchsorted(steps, early_step, side="right")) - 1
            e = float(values[i]) if i >= 0 else math.nan
        elif span is not None:
            e = _statistic(*_windowed((steps, values), span), "mean")
        else:
            e = float(values[0])
        if math.isfinite(e):
            labels.append(label)
            early.append(e)
            best.append(float(values.max() if mode == "max" else values.min()))
    n = len(labels)
    reason = None
    if n < 3:
        reason = f"Spearman's rho needs at least 3 runs with an early and a best value; got {n}."
    elif len(set(early)) == 1 or len(set(best)) == 1:
        which = "early" if len(set(early)) == 1 else "best"
        reason = f"the {which} values are all equal ({(early if which == 'early' else best)[0]!r})."
    rho = p = math.nan
    if reason is None:
        result = spearmanr(early, best)
        rho, p = float(result.statistic), float(result.pvalue)
    return Correlation(
        rho=rho,
        p_value=p,
        n=n,
        runs=tuple(labels),
        early=tuple(early),
        best=tuple(best),
        reason=reason,
    )


def bootstrap_ci(
    values_a: ArrayLike,
    values_b: ArrayLike,
    *,
    confidence: float = 0.95,
    n_boot: int = 10_000,
    rng: RandomState = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of ``mean(values_a) - mean(values_b)``.

    Each resample draws ``len(values_a)`` values from A and ``len(values_b)`` from B with
    replacement, independently; the interval is the ``(1 - confidence) / 2`` and
    ``(1 + confidence) / 2`` quantiles of the resampled differences.

    Parameters
    ----------
    values_a, values_b : array_like of shape (n_a,) and (n_b,)
        Independent observations per side, e.g. one per seed; finite, at least 2 each.
    confidence : float
        In ``(0, 1)``.
    n_boot : int
        Number of resamples, ``>= 1``.
    rng : int, numpy Generator or None
        Seed or generator; the default 0 makes the interval reproducible.

    Returns
    -------
    (float, float)
        Lower and upper bound.

    Raises
    ------
    ConfigError
        If a side has fewer than 2 values, holds NaN/Inf, or an option is out of range.

    Notes
    -----
    With a handful of seeds the percentile interval is too narrow (it undercovers; Efron
    & Tibshirani 1993, §13.3): read it as a description of the seeds at hand.

    References
    ----------
    Efron, B. & Tibshirani, R. J. (1993). *An Introduction to the Bootstrap*, ch. 13.

    Examples
    --------
    Identical constant groups give the degenerate interval at their difference:

    >>> bootstrap_ci([2.0, 2.0, 2.0], [1.0, 1.0])
    (1.0, 1.0)
    """
    a = _as_sample(values_a, "values_a")
    b = _as_sample(values_b, "values_b")
    _check_bootstrap_options(confidence, n_boot)
    return _bootstrap(a, b, confidence=confidence, n_boot=n_boot, rng=rng)


# --------------------------------------------------------------------------- guts


def _as_runs(tables: Tables, name: str) -> list[tuple[str, pd.DataFrame]]:
    """``(label, table)`` per run; labels are mapping keys or positions."""
    if isinstance(tables, pd.DataFrame):
        pairs = [("0", tables)]
    elif isinstance(tables, Mapping):
        pairs = [(str(k), v) for k, v in tables.items()]
    elif isinstance(tables, Sequence) and not isinstance(tables, str | bytes):
        pairs = [(str(i), v) for i, v in enumerate(tables)]
    else:
        raise ConfigError(
            f"{name} must be a DataFrame, a sequence of DataFrames or a mapping of run id "
            f"to DataFrame; got {type(tables).__name__}."
        )
    if not pairs:
        raise ConfigError(
            f"{name} must hold at least one table; got an empty {type(tables).__name__}."
        )
    for label, table in pairs:
        _table_kind(table, name=f"{name}[{label!r}]" if len(pairs) > 1 else name)
    return pairs


def _common_kind(runs: list[tuple[str, pd.DataFrame]]) -> tuple[str, ...]:
    kinds = {_table_kind(t): label for label, t in runs}
    if len(kinds) > 1:
        raise ConfigError(
            "all tables must be of one kind (metrics: layer, metric; or scalars: name); got "
            f"both: {', '.join(f'{label!r} has {list(k)}' for k, label in kinds.items())}."
        )
    return next(iter(kinds))


def _resolve(
    runs: list[tuple[str, pd.DataFrame]],
    kind: tuple[str, ...],
    *,
    metric: str | None,
    name: str | None,
    layer: str | None,
) -> tuple[str, ...]:
    """The series key selected by ``metric``/``name``/``layer``, checked against ``runs``."""
    tables = [t for _, t in runs]
    if kind == ("name",):
        if metric is not None or layer is not None:
            raise ConfigError(
                f"these are scalars tables (step, name, value): select with name=; got "
                f"metric={metric!r}, layer={layer!r}."
            )
        if name is None:
            raise ConfigError(
                f"name is required for scalars tables; available: {_values(tables, 'name')}."
            )
        if name not in _values(tables, "name"):
            raise ConfigError(
                f"name must be a scalar in the tables; got {name!r}. "
                f"Available: {_values(tables, 'name')}."
            )
        return (name,)
    if name is not None:
        raise ConfigError(
            f"these are metrics tables (step, layer, metric, value): select with metric= and "
            f"layer=; got name={name!r}."
        )
    if metric is None:
        raise ConfigError(
            f"metric is required for metrics tables; available: {_values(tables, 'metric')}."
        )
    if metric not in _values(tables, "metric"):
        raise ConfigError(
            f"metric must be a metric in the tables; got {metric!r}. "
            f"Available: {_values(tables, 'metric')}."
        )
    with_metric = [t[(t["metric"] == metric).to_numpy(dtype=bool, na_value=False)] for t in tables]
    layers = _values(with_metric, "layer")
    if layer is None:
        if len(layers) != 1:
            raise ConfigError(
                f"layer is required: metric {metric!r} has several layers; pass one of {layers}."
            )
        layer = layers[0]
    elif layer not in layers:
        raise ConfigError(
            f"layer must be a layer with metric {metric!r}; got {layer!r}. Available: {layers}."
        )
    return (layer, metric)


def _values(tables: Sequence[pd.DataFrame], column: str) -> list[str]:
    found: set[str] = set()
    for t in tables:
        found.update(str(v) for v in t[column].dropna().unique())
    return sorted(found)


def _has(table: pd.DataFrame, kind: tuple[str, ...], key: tuple[str, ...]) -> bool:
    mask = np.ones(len(table), dtype=bool)
    for column, value in zip(kind, key, strict=True):
        mask &= (table[column] == value).to_numpy(dtype=bool, na_value=False)
    return bool(mask.any())


def _describe(kind: tuple[str, ...], key: tuple[str, ...]) -> str:
    return " ".join(f"{c}={v!r}" for c, v in zip(kind, key, strict=True))


def _available(runs: list[tuple[str, pd.DataFrame]], kind: tuple[str, ...]) -> str:
    keys = sorted({k for _, t in runs for k in _series_map(t, kind)})
    shown = ", ".join("/".join(k) for k in keys[:20]) + (" ..." if len(keys) > 20 else "")
    return shown or "no finite values"


def _series_map(table: pd.DataFrame, kind: tuple[str, ...]) -> dict[tuple[str, ...], _Series]:
    return {tuple(str(v) for v in key): (s, v) for key, s, v in _finite_series(table, kind)}


def _one_series(table: pd.DataFrame, kind: tuple[str, ...], key: tuple[str, ...]) -> _Series:
    mask = np.ones(len(table), dtype=bool)
    for column, value in zip(kind, key, strict=True):
        mask &= (table[column] == value).to_numpy(dtype=bool, na_value=False)
    found = _series_map(table.loc[mask], kind)
    return found.get(key, _EMPTY)


def _as_window(window: Window | None, *, name: str = "window") -> tuple[int, int] | None:
    if window is None:
        return None
    if isinstance(window, Phase):
        return (window.start, window.end)
    if isinstance(window, tuple | list) and len(window) == 2:
        phase = Phase(name, window[0], window[1])
        return (phase.start, phase.end)
    raise ConfigError(f"{name} must be a Phase or a (start, end) pair of steps; got {window!r}.")


def _windowed(series: _Series, span: tuple[int, int] | None) -> _Series:
    steps, values = series
    if span is None:
        return steps, values
    lo = int(np.searchsorted(steps, span[0], side="left"))
    hi = int(np.searchsorted(steps, span[1], side="left"))
    return steps[lo:hi], values[lo:hi]


def _statistic(steps: NDArray[np.int64], values: NDArray[np.float64], statistic: str) -> float:
    """Guts of the per-run statistic; ``values`` finite and ordered by step."""
    if values.size == 0:
        return math.nan
    if statistic == "mean":
        return float(values.mean())
    if statistic == "median":
        return float(np.median(values))
    if statistic == "first":
        return float(values[0])
    if statistic == "final":
        return float(values[-1])
    if statistic == "max":
        return float(values.max())
    return float(values.min())


def _check_bootstrap_options(confidence: float, n_boot: int) -> None:
    if not isinstance(confidence, float | int) or not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be a number in (0, 1), e.g. 0.95; got {confidence!r}.")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ConfigError(f"n_boot must be an integer >= 1, e.g. 10000; got {n_boot!r}.")


def _as_sample(values: ArrayLike, name: str) -> NDArray[np.float64]:
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{name} must be a 1-D array of numbers; got {values!r}: {exc}") from None
    if x.ndim != 1 or x.size < 2:
        raise ConfigError(
            f"{name} must be a 1-D array of at least 2 values (one per seed); got shape {x.shape}."
        )
    if not np.isfinite(x).all():
        raise ConfigError(f"{name} must be finite; got {x.tolist()!r}. Drop failed runs first.")
    return x


def _bootstrap(
    a: NDArray[np.float64],
    b: NDArray[np.float64],
    *,
    confidence: float,
    n_boot: int,
    rng: RandomState,
) -> tuple[float, float]:
    """Guts of :func:`bootstrap_ci`; no input validation."""
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    ia = gen.integers(0, a.size, size=(n_boot, a.size))
    ib = gen.integers(0, b.size, size=(n_boot, b.size))
    diffs = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(diffs, [alpha, 1.0 - alpha])
    return float(low), float(high)


def _welch_p(a: NDArray[np.float64], b: NDArray[np.float64]) -> float:
    """Two-sided Welch t-test p-value; NaN when both sides are constant."""
    from scipy.stats import t as student_t

    va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se2 = va + vb
    if se2 == 0:
        return math.nan
    t = (a.mean() - b.mean()) / math.sqrt(se2)
    df = se2**2 / (va**2 / (a.size - 1) + vb**2 / (b.size - 1))
    return float(2.0 * student_t.sf(abs(t), df))


def _effect(a: NDArray[np.float64], b: NDArray[np.float64]) -> tuple[float, float, str | None]:
    """Cohen's d and Hedges' g of ``a - b`` with the pooled std; a reason when undefined."""
    df = a.size + b.size - 2
    if df < 1:
        return math.nan, math.nan, "the effect size needs at least 3 observations in all"
    ss = float(((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum())
    if ss == 0:
        return math.nan, math.nan, "the effect size is undefined: the pooled std is 0"
    d = float(a.mean() - b.mean()) / math.sqrt(ss / df)
    return d, d * (1.0 - 3.0 / (4.0 * df - 1.0)), None


def _std(x: NDArray[np.float64]) -> float:
    return float(x.std(ddof=1)) if x.size >= 2 else math.nan


def _compare(
    series_a: list[_Series],
    series_b: list[_Series],
    *,
    kind: tuple[str, ...],
    key: tuple[str, ...],
    window: tuple[int, int] | None,
    statistic: Statistic,
    confidence: float,
    n_boot: int,
    rng: RandomState,
) -> Comparison:
    """Guts of :func:`compare_runs` on checked series (finite values, ordered by step)."""
    windowed_a = [_windowed(s, window) for s in series_a]
    windowed_b = [_windowed(s, window) for s in series_b]
    stats_a = np.array([_statistic(*s, statistic) for s in windowed_a], dtype=np.float64)
    stats_b = np.array([_statistic(*s, statistic) for s in windowed_b], dtype=np.float64)
    used_a = [s for s, v in zip(windowed_a, stats_a, strict=True) if math.isfinite(v)]
    used_b = [s for s, v in zip(windowed_b, stats_b, strict=True) if math.isfinite(v)]
    stats_a, stats_b = stats_a[np.isfinite(stats_a)], stats_b[np.isfinite(stats_b)]
    reasons: list[str] = []
    mean_a = float(stats_a.mean()) if stats_a.size else math.nan
    mean_b = float(stats_b.mean()) if stats_b.size else math.nan
    difference = mean_a - mean_b
    relative = 100.0 * difference / abs(mean_b) if mean_b != 0 else math.nan
    if not (stats_a.size and stats_b.size):
        empty = "a" if not stats_a.size else "b"
        reasons.append(f"no finite values of the series in {empty} (within the window)")
    elif mean_b == 0:
        reasons.append("relative_difference is undefined: mean_b is 0")
    over: Literal["seeds", "time"] = "seeds"
    obs_a, obs_b = stats_a, stats_b
    if stats_a.size == 1 and stats_b.size == 1:
        over = "time"
        obs_a, obs_b = used_a[0][1], used_b[0][1]
    d = g = math.nan
    if over == "time" and statistic != "mean":
        reasons.append(
            f"with one run per side the effect size is over time points and needs "
            f"statistic='mean'; got {statistic!r}. Compare several seeds per side"
        )
    elif stats_a.size and stats_b.size:
        d, g, why = _effect(obs_a, obs_b)
        if why:
            reasons.append(why)
    low = high = p = math.nan
    if stats_a.size >= 2 and stats_b.size >= 2:
        low, high = _bootstrap(stats_a, stats_b, confidence=confidence, n_boot=n_boot, rng=rng)
        p = _welch_p(stats_a, stats_b)
        if math.isnan(p):
            reasons.append(
                "the Welch test is undefined: every run on both sides has the same value"
            )
    elif stats_a.size and stats_b.size:
        reasons.append(
            "the confidence interval and p-value need >= 2 runs (seeds) per side; got "
            f"{stats_a.size} and {stats_b.size}"
        )
    metrics_table = kind == ("layer", "metric")
    return Comparison(
        metric=key[1] if metrics_table else None,
        name=None if metrics_table else key[0],
        layer=key[0] if metrics_table else None,
        window=window,
        statistic=statistic,
        n_runs_a=int(stats_a.size),
        n_runs_b=int(stats_b.size),
        mean_a=mean_a,
        mean_b=mean_b,
        difference=difference,
        relative_difference=relative,
        effect_over=over,
        n_a=int(obs_a.size),
        n_b=int(obs_b.size),
        std_a=_std(obs_a),
        std_b=_std(obs_b),
        cohens_d=d,
        hedges_g=g,
        confidence=float(confidence),
        ci_low=low,
        ci_high=high,
        p_value=p,
        reason="; ".join(reasons) + "." if reasons else None,
    )
