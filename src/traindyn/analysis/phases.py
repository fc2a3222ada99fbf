"""Training phases: named step ranges, and how each metric changed within them.

A :class:`Phase` is a half-open step range ``[start, end)``, the convention of the suite's
``PhaseSpec`` and of ``active_phase``. Phases come from a suite run's manifest
(:func:`phases_of`), from an equal split of the step budget (:func:`equal_phases`), or
from fractions of it (:func:`fraction_windows`). :func:`phase_summary` turns a metrics or
scalars long table into one row per (phase, series).

Boundary rule
-------------
Step ``t`` is the state *after* ``t`` updates (the trainer measures step ``N`` before
update ``N``, and measures the final step ``total_steps`` without training it). Let
``x(t)`` be the most recent finite measurement at or before step ``t``. A phase
``[start, end)`` applies updates ``start .. end - 1``, so it takes the model from state
``start`` to state ``end``:

- ``first = x(start)``: the value entering the phase, i.e. the last finite value at or
  before ``start`` (the first finite value in ``[start, end]`` if the series begins later);
- ``last = x(end)``: the value leaving it, the last finite value at or before ``end``;
- ``change = last - first``.

Consecutive phases therefore chain (``last`` of one is ``first`` of the next) and their
changes add up to the total change, as in seed 000: "Phase 1: 16.13 -> 9.61",
"Phase 2 (steps 3334-6666): 9.61 -> 8.09". The window statistics ``n, mean, std, min,
max`` use the measurements with ``start <= step < end`` only, so each measurement counts
in exactly one of a set of contiguous phases (the final measurement at ``total_steps`` is
``last`` of the last phase but belongs to no window).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from traindyn.exceptions import ConfigError

if TYPE_CHECKING:
    from traindyn.store import Run

__all__ = [
    "PHASE_SUMMARY_COLUMNS",
    "Phase",
    "equal_phases",
    "format_change",
    "fraction_windows",
    "phase_summary",
    "phases_of",
]

PHASE_SUMMARY_COLUMNS = (
    "n",
    "first_step",
    "first",
    "last_step",
    "last",
    "change",
    "percent_change",
    "mean",
    "std",
    "min",
    "max",
)
"""Statistic columns of :func:`phase_summary`, after ``phase, start, end`` and the group
columns."""


@dataclass(frozen=True)
class Phase:
    """A named half-open step range ``[start, end)`` of training.

    Parameters
    ----------
    name : str
        Non-empty label (``"heavy_grounding"``, ``"phase_1"``, ``"early"``).
    start, end : int
        First step of the phase and first step after it; ``end > start``. Steps count
        optimiser updates, as in the ``step`` column of a run's tables.

    Raises
    ------
    ConfigError
        If ``name`` is empty, a bound is not an integer, or ``end <= start``.

    Examples
    --------
    >>> p = Phase("early", 0, 100)
    >>> p.length, p.contains(99), p.contains(100)
    (100, True, False)
    """

    name: str
    start: int
    end: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"Phase name must be a non-empty string; got {self.name!r}.")
        start = _as_int(self.start, f"Phase {self.name!r} start")
        end = _as_int(self.end, f"Phase {self.name!r} end")
        if end <= start:
            raise ConfigError(
                f"Phase {self.name!r} end must be > start ({start}); got end={end}. "
                "A phase is the half-open step range [start, end)."
            )
        # frozen: normalise numpy integers to int without a second constructor
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)

    @property
    def length(self) -> int:
        """Number of steps (updates) in the phase, ``end - start``."""
        return self.end - self.start

    def contains(self, step: int) -> bool:
        """True if ``start <= step < end``."""
        return self.start <= step < self.end


Window: TypeAlias = Phase | tuple[int, int]
"""A step range: a :class:`Phase` or a ``(start, end)`` pair, half-open."""


def phases_of(run: Run) -> list[Phase]:
    """The training phases recorded in a suite run's manifest, sorted by start.

    Reads ``run.manifest.config["experiment"]["phases"]`` (a list of ``{name, start,
    end, ...}`` written from the suite's ``PhaseSpec``); other keys are ignored.

    Parameters
    ----------
    run : Run
        An open run (read-only is fine).

    Returns
    -------
    list of Phase
        Empty when the run has no experiment config or no phases (a run tracked by a
        user's own loop).

    Raises
    ------
    ConfigError
        If a recorded phase lacks ``name``/``start``/``end`` or has ``end <= start``; the
        message names the run directory and the phase's index.

    Examples
    --------
    >>> import tempfile
    >>> from traindyn.store import Run
    >>> config = {"experiment": {"phases": [{"name": "warmup", "start": 0, "end": 50}]}}
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     with Run.create(f"{tmp}/r", config=config, handle_signals=False) as run:
    ...         phases_of(run)
    [Phase(name='warmup', start=0, end=50)]
    """
    config = run.manifest.config
    experiment = config.get("experiment") if isinstance(config, dict) else None
    recorded = experiment.get("phases") if isinstance(experiment, dict) else None
    if not recorded:
        return []
    if not isinstance(recorded, list):
        raise ConfigError(
            f"experiment.phases in {run.path}/run.json must be a list of "
            f"{{name, start, end}}; got {type(recorded).__name__}."
        )
    phases = []
    for i, entry in enumerate(recorded):
        where = f"experiment.phases[{i}] in {run.path}/run.json"
        if not isinstance(entry, dict) or not {"name", "start", "end"} <= entry.keys():
            raise ConfigError(f"{where} must be a mapping with name, start, end; got {entry!r}.")
        try:
            phases.append(Phase(str(entry["name"]), entry["start"], entry["end"]))  # type: ignore[arg-type]
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    return sorted(phases, key=lambda p: p.start)


def equal_phases(total_steps: int, n: int, names: Sequence[str] | None = None) -> list[Phase]:
    """Split ``[0, total_steps)`` into ``n`` contiguous phases of (almost) equal length.

    Boundaries are ``ceil(k * total_steps / n)`` for ``k = 0 .. n``, which reproduces seed
    000's split of 10 000 steps: "steps 0-3333", "3334-6666", "6667-10000" (inclusive
    labels of ``[0, 3334)``, ``[3334, 6667)``, ``[6667, 10000)``; the final measurement at
    step 10 000 is ``last`` of the third phase, see the module's boundary rule).

    Parameters
    ----------
    total_steps : int
        The step budget (``manifest.config["total_steps"]`` for suite runs); ``>= n``.
    n : int
        Number of phases, ``>= 1``.
    names : sequence of str, optional
        One name per phase; default ``"phase_1" .. "phase_n"``.

    Returns
    -------
    list of Phase

    Raises
    ------
    ConfigError
        If ``n < 1``, ``total_steps < n``, or ``len(names) != n``.

    Examples
    --------
    >>> [(p.name, p.start, p.end) for p in equal_phases(10_000, 3)]
    [('phase_1', 0, 3334), ('phase_2', 3334, 6667), ('phase_3', 6667, 10000)]
    """
    total = _as_int(total_steps, "total_steps")
    n = _as_int(n, "n")
    if n < 1:
        raise ConfigError(f"n must be an integer >= 1; got {n}.")
    if total < n:
        raise ConfigError(
            f"total_steps must be >= n ({n}) so that every phase holds a step; got {total}."
        )
    labels = _names(names, n, default=[f"phase_{k + 1}" for k in range(n)])
    edges = [-(-k * total // n) for k in range(n + 1)]  # exact integer ceil
    return [Phase(labels[k], edges[k], edges[k + 1]) for k in range(n)]


def fraction_windows(
    total_steps: int,
    boundaries: Sequence[float] = (0.1, 0.5),
    names: Sequence[str] = ("early", "mid", "late"),
) -> list[Phase]:
    """Contiguous windows of ``[0, total_steps)`` cut at fractions of the budget.

    Parameters
    ----------
    total_steps : int
        The step budget, ``>= 1``.
    boundaries : sequence of float
        Strictly increasing fractions in ``(0, 1)``; each cut is ``round(f *
        total_steps)``. The default (first 10 %, up to half, the rest) separates the fast
        early change most runs show from the slow late one.
    names : sequence of str
        ``len(boundaries) + 1`` window names.

    Returns
    -------
    list of Phase

    Raises
    ------
    ConfigError
        If the fractions are not increasing in ``(0, 1)``, ``names`` has the wrong length,
        or ``total_steps`` is too small for every window to hold a step.

    Examples
    --------
    >>> [(p.name, p.start, p.end) for p in fraction_windows(1000)]
    [('early', 0, 100), ('mid', 100, 500), ('late', 500, 1000)]
    """
    total = _as_int(total_steps, "total_steps")
    if total < 1:
        raise ConfigError(f"total_steps must be an integer >= 1; got {total}.")
    fractions = [float(f) for f in boundaries]
    if any(not 0.0 < f < 1.0 for f in fractions) or any(
        b <= a for a, b in itertools.pairwise(fractions)
    ):
        raise ConfigError(
            "boundaries must be strictly increasing fractions in (0, 1); "
            f"got {tuple(boundaries)!r}."
        )
    labels = _names(names, len(fractions) + 1, default=None)
    edges = [0, *(round(f * total) for f in fractions), total]
    if any(b <= a for a, b in itertools.pairwise(edges)):
        raise ConfigError(
            f"total_steps={total} is too small for boundaries {tuple(fractions)!r}: the cuts "
            f"{edges} leave an empty window. Use fewer boundaries or a longer run."
        )
    return [Phase(labels[k], edges[k], edges[k + 1]) for k in range(len(labels))]


def phase_summary(
    table: pd.DataFrame,
    phases: Sequence[Phase],
    *,
    by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """How each series of a long table changed within each phase.

    Parameters
    ----------
    table : DataFrame
        A run's metrics table (``step, layer, metric, value[, reason]``) or scalars table
        (``step, name, value``). NaN and infinite values are ignored.
    phases : sequence of Phase
        The windows to summarise, e.g. :func:`phases_of`, :func:`equal_phases` or
        :func:`fraction_windows`; names must be unique. They may overlap or leave gaps.
    by : sequence of str, optional
        Columns identifying a series. Default: ``("layer", "metric")`` for a metrics
        table, ``("name",)`` for a scalars table.

    Returns
    -------
    DataFrame
        One row per phase and series, phases in the given order and series sorted.
        Columns ``phase`` (str), ``start``, ``end`` (int64), the ``by`` columns, then
        (see the module docstring for the boundary rule):

        - ``n`` (int64): finite measurements with ``start <= step < end``;
        - ``first_step``, ``first``: step and value of ``x(start)``, the value entering
          the phase;
        - ``last_step``, ``last``: step and value of ``x(end)``, the value leaving it;
        - ``change``: ``last - first``;
        - ``percent_change``: ``100 * change / |first|`` (NaN when ``first == 0``);
        - ``mean``, ``std`` (ddof=1, NaN when ``n < 2``), ``min``, ``max`` over the ``n``
          measurements.

        A phase with no finite measurement in ``[start, end]`` has NaN ``first``/``last``
        (``<NA>`` steps). Steps are nullable ``Int64``; statistics are float64.

    Raises
    ------
    ConfigError
        If a column is missing, ``phases`` holds something other than :class:`Phase`, or
        two phases share a name.

    Examples
    --------
    Seed 000's pedagogical dimensionality fell from 16.13 to 9.61 in phase 1:

    >>> t = pd.DataFrame({"step": [0, 1000, 2000, 3000], "layer": "judge",
    ...                   "metric": "mle_dimension", "value": [16.13, 12.0, 10.0, 9.61]})
    >>> out = phase_summary(t, [Phase("phase_1", 0, 3334)])
    >>> out[["phase", "layer", "n", "first", "last"]]
         phase  layer  n  first  last
    0  phase_1  judge  4  16.13  9.61
    >>> out[["change", "percent_change"]].round(2).to_numpy().tolist()
    [[-6.52, -40.42]]
    """
    checked = _check_phases(phases)
    keys = _group_columns(table, by)
    columns = ["phase", "start", "end", *keys, *PHASE_SUMMARY_COLUMNS]
    series = list(_finite_series(table, keys))
    rows: list[list[Any]] = []
    for phase in checked:
        for key, steps, values in series:
            rows.append(
                [phase.name, phase.start, phase.end, *key, *_phase_stats(steps, values, phase)]
            )
    out = pd.DataFrame(rows, columns=columns)
    for column in ("start", "end", "n"):
        out[column] = out[column].astype("int64")
    for column in ("first_step", "last_step"):
        out[column] = out[column].astype("Int64")
    floats = [c for c in PHASE_SUMMARY_COLUMNS if c not in ("n", "first_step", "last_step")]
    out[floats] = out[floats].astype("float64")
    out["phase"] = out["phase"].astype(str)
    return out


def format_change(first: float, last: float, *, digits: int = 2, percent_digits: int = 1) -> str:
    """``"first -> last (p% drop)"``: a change as reports state it.

    Parameters
    ----------
    first, last : float
        Values entering and leaving a phase (``phase_summary``'s ``first`` and ``last``).
    digits : int
        Decimals of the two values.
    percent_digits : int
        Decimals of the percentage, ``100 * |last - first| / |first|``; the word is
        "drop" or "rise". No percentage when ``first`` is 0 or either value is not
        finite; "(no change)" when they are equal.

    Returns
    -------
    str

    Examples
    --------
    Seed 000's phase 1 dimensionality and holes:

    >>> format_change(16.13, 9.61)
    '16.13 -> 9.61 (40.4% drop)'
    >>> format_change(5.7, 5.0, digits=1, percent_digits=0)
    '5.7 -> 5.0 (12% drop)'
    >>> format_change(2.0, 3.0)
    '2.00 -> 3.00 (50.0% rise)'
    """
    text = f"{first:.{digits}f} -> {last:.{digits}f}"
    if not (math.isfinite(first) and math.isfinite(last)) or first == 0:
        return text
    if last == first:
        return f"{text} (no change)"
    percent = 100.0 * abs(last - first) / abs(first)
    word = "drop" if last < first else "rise"
    return f"{text} ({percent:.{percent_digits}f}% {word})"


# --------------------------------------------------------------------------- guts


def _as_int(value: object, name: str) -> int:
    """``value`` as a Python int; bools and floats are refused."""
    if isinstance(value, bool):
        raise ConfigError(f"{name} must be an integer step; got {value!r}.")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ConfigError(f"{name} must be an integer step; got {value!r}.") from None


def _names(names: Sequence[str] | None, n: int, *, default: list[str] | None) -> list[str]:
    if names is None and default is not None:
        return default
    labels = [] if names is None else list(names)
    if len(labels) != n:
        raise ConfigError(f"names must hold {n} names, one per phase; got {names!r}.")
    return labels


def _check_phases(phases: Sequence[Phase]) -> list[Phase]:
    checked = list(phases)
    for i, phase in enumerate(checked):
        if not isinstance(phase, Phase):
            raise ConfigError(
                f"phases[{i}] must be a Phase; got {phase!r}. Build phases with "
                "Phase(name, start, end), equal_phases(), fraction_windows() or phases_of(run)."
            )
    names = [p.name for p in checked]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ConfigError(f"phase names must be unique; got {duplicated} more than once.")
    return checked


def _table_kind(table: pd.DataFrame, *, name: str = "table") -> tuple[str, ...]:
    """The series columns of a long table: ``("layer", "metric")`` or ``("name",)``."""
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(
            f"{name} must be a pandas DataFrame (a run's metrics or scalars table); "
            f"got {type(table).__name__}."
        )
    columns = set(table.columns)
    if {"step", "value", "layer", "metric"} <= columns:
        return ("layer", "metric")
    if {"step", "value", "name"} <= columns:
        return ("name",)
    raise ConfigError(
        f"{name} must be a metrics table (step, layer, metric, value) or a scalars table "
        f"(step, name, value); got columns {list(table.columns)}."
    )


def _group_columns(table: pd.DataFrame, by: Sequence[str] | None) -> tuple[str, ...]:
    if by is None:
        return _table_kind(table)
    if not isinstance(table, pd.DataFrame):
        raise ConfigError(f"table must be a pandas DataFrame; got {type(table).__name__}.")
    keys = (by,) if isinstance(by, str) else tuple(by)
    missing = [c for c in ("step", "value", *keys) if c not in table.columns]
    if missing or not keys:
        raise ConfigError(
            f"by must name columns of table; got by={by!r}, missing {missing or 'a column'} "
            f"(table has {list(table.columns)})."
        )
    return keys


def _finite_series(
    table: pd.DataFrame, keys: tuple[str, ...]
) -> list[tuple[tuple[Any, ...], NDArray[np.int64], NDArray[np.float64]]]:
    """``(key, steps, values)`` per series: finite values sorted by step (stable)."""
    values = table["value"].to_numpy(dtype=np.float64, na_value=np.nan)
    finite = table.loc[np.isfinite(values), ["step", *keys, "value"]]
    ordered = finite.sort_values("step", kind="stable")
    out = []
    for key, group in ordered.groupby(list(keys), sort=True, dropna=False):
        out.append(
            (
                tuple(key),
                group["step"].to_numpy(dtype=np.int64),
                group["value"].to_numpy(dtype=np.float64),
            )
        )
    return out


def _phase_stats(steps: NDArray[np.int64], values: NDArray[np.float64], phase: Window) -> list[Any]:
    """Guts of :func:`phase_summary` for one series and phase; no input validation.

    ``steps`` ascending, ``values`` finite. Returns the values of PHASE_SUMMARY_COLUMNS.
    """
    start, end = (phase.start, phase.end) if isinstance(phase, Phase) else phase
    lo = int(np.searchsorted(steps, start, side="left"))
    hi = int(np.searchsorted(steps, end, side="left"))
    inside = values[lo:hi]
    n = int(inside.size)
    mean = float(inside.mean()) if n else math.nan
    std = float(inside.std(ddof=1)) if n >= 2 else math.nan
    low = float(inside.min()) if n else math.nan
    high = float(inside.max()) if n else math.nan
    observed = lo < steps.size and steps[lo] <= end
    if not observed:
        return [n, pd.NA, math.nan, pd.NA, math.nan, math.nan, math.nan, mean, std, low, high]
    i_first = int(np.searchsorted(steps, start, side="right")) - 1
    if i_first < 0:  # the series begins inside the phase
        i_first = lo
    i_last = int(np.searchsorted(steps, end, side="right")) - 1
    first, last = float(values[i_first]), float(values[i_last])
    change = last - first
    percent = 100.0 * change / abs(first) if first != 0 else math.nan
    return [
        n,
        int(steps[i_first]),
        first,
        int(steps[i_last]),
        last,
        change,
        percent,
        mean,
        std,
        low,
        high,
    ]
