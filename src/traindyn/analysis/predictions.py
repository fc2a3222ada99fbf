"""Pre-registered predictions: written before training, locked into the run, judged after.

Seed 000 wrote its predictions first and judged each one afterwards; seed 004 wrote
predicted numbers at 30, 50 and 100% of training and left "[TBD]" slots to fill by hand.
Here a prediction is a small YAML record whose verdict a program computes, and the file
is frozen into ``run.json`` (its SHA-256, its text and the time) before the run has data,
so that nobody, including its author, can quietly move the goalposts::

    predictions:
      - id: match-rises
        claim: Match rate rises by at least 20% in the first 30% of training
        target: {scalar: probe_accuracy}
        window: {fraction: [0, 0.3]}
        statistic: relative_change
        expect: {op: ">=", value: 0.2}
        partial: {op: ">", value: 0}
      - id: loss-flat
        claim: while the probe loss stays within 5% of where it started
        target: {scalar: probe_loss}
        window: {fraction: [0, 0.3]}
        statistic: relative_change
        expect: {between: [-0.05, 0.05]}

Conventions
-----------
* **Windows are closed step ranges** ``[lo, hi]``: ``steps: [a, b]``; ``fraction: [a, b]``
  of the run's ``total_steps`` (``round(a * total)`` to ``round(b * total)``; step
  ``total`` is the state after the last update); ``phase: name`` is ``[start, end]`` of a
  recorded training phase (its end is the state after its last update). No window is the
  whole run. Only finite values inside the window count.
* **Statistics** of one series (one run, one layer): ``final`` (the last value),
  ``mean``, ``change`` (last - first), ``relative_change`` ((last - first) / \\|first\\|,
  a fraction: 0.2 is +20%; untestable when first is 0), ``slope`` (least squares, in
  units per step), ``first_event_step`` (the earliest surviving event of
  :func:`traindyn.analysis.analyze_run` in the window; a prediction about an event that
  never happened is NOT SUPPORTED), and ``difference``: the ``of`` statistic (default
  ``mean``) of ``target`` minus that of ``versus`` (fields not given in ``versus`` are
  taken from ``target``), each averaged over the runs and layers it matches.
* **Several runs or layers.** ``target.runs`` and ``target.layer`` are globs (run ids, or
  paths relative to the checked directory). With ``across: mean`` (default) the verdict
  is on the mean of the per-series values (the earliest step for ``first_event_step``);
  with ``across: all`` every series is judged: all pass is SUPPORTED, all pass the
  partial rule or at least one passes is PARTIALLY SUPPORTED.
* **Noise.** A change is reported with its noise: the standard deviation of the
  difference of two samples, ``sqrt(2)`` times the series' trajectory noise
  (:func:`~traindyn.analysis.noise.trajectory_noise`, from the whole series).
  ``beyond_noise: k`` makes a change that is not larger than ``k`` times it unresolved
  (UNTESTABLE for that series), the seeds' lesson that jumps of 1e-11 were noise.
* **Verdicts.** SUPPORTED when the value meets ``expect``; PARTIALLY SUPPORTED when it
  meets ``partial`` instead; NOT SUPPORTED otherwise; UNTESTABLE when the data cannot
  answer (no matching run, layer or scalar, too few samples in the window, an unknown
  phase). A verdict never says more than its numbers: each row carries them.

Lock with :func:`lock` (``traindyn predictions lock FILE --run RUN | --suite DIR``) or
``Tracker(predictions=FILE)``; judge with :func:`check` (``traindyn predictions check``).
A lock is never replaced. Locking a run that already has data is refused unless
``late=True``, and is then shown beside every verdict. A file edited after its lock is
flagged, and the locked text is what gets judged.
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import operator
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from traindyn.analysis.noise import trajectory_noise
from traindyn.analysis.phases import phases_of
from traindyn.analysis.trajectories import total_steps_of
from traindyn.exceptions import ConfigError, StoreError
from traindyn.store import Run, open_run
from traindyn.store.run import (
    MANIFEST_NAME,
    find_run_dirs,
    lock_predictions,
    pending_predictions,
    predictions_conflict,
    write_analysis_file,
    write_pending_predictions,
)
from traindyn.store.schema import PredictionLock, describe_validation_error

__all__ = [
    "VERDICTS",
    "Expectation",
    "LockResult",
    "Prediction",
    "PredictionCheck",
    "PredictionFile",
    "Target",
    "Window",
    "check",
    "evaluate",
    "load",
    "lock",
    "make_lock",
    "parse",
]

Verdict = Literal["SUPPORTED", "PARTIALLY SUPPORTED", "NOT SUPPORTED", "UNTESTABLE"]
VERDICTS: tuple[Verdict, ...] = ("SUPPORTED", "PARTIALLY SUPPORTED", "NOT SUPPORTED", "UNTESTABLE")
Statistic = Literal[
    "relative_change", "change", "mean", "final", "slope", "first_event_step", "difference"
]
SeriesStatistic = Literal["relative_change", "change", "mean", "final", "slope"]

CHECK_COLUMNS = [
    "id",
    "claim",
    "verdict",
    "value",
    "expected",
    "partial",
    "statistic",
    "target",
    "window",
    "n_series",
    "detail",
    "locked",
    "late",
    "edited",
]
"""Columns of :attr:`PredictionCheck.table` (and ``analysis/predictions.parquet``)."""


# --------------------------------------------------------------------------- the file


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Target(_Model):
    """What a prediction is about: runs (glob), and a layer's metric or a scalar.

    ``layer`` is a glob over layer names and is required with ``metric`` (write ``"*"`` for
    every layer); scalars (``loss``, ``probe_accuracy``...) have no layer.
    """

    runs: str = Field(default="*", min_length=1)
    layer: str | None = Field(default=None, min_length=1)
    metric: str | None = Field(default=None, min_length=1)
    scalar: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.metric is None) == (self.scalar is None):
            raise ValueError("give exactly one of metric (with layer) or scalar")
        if self.metric is not None and self.layer is None:
            raise ValueError(
                f"metric {self.metric!r} needs a layer (a name or glob; '*' is every layer)"
            )
        if self.scalar is not None and self.layer is not None:
            raise ValueError("a scalar has no layer; remove layer, or use metric")
        return self

    def describe(self) -> str:
        what = f"{self.layer}/{self.metric}" if self.metric is not None else str(self.scalar)
        return what if self.runs == "*" else f"{what} in {self.runs}"


class TargetOverride(_Model):
    """``versus`` of a difference: the fields that differ from ``target``."""

    runs: str | None = Field(default=None, min_length=1)
    layer: str | None = Field(default=None, min_length=1)
    metric: str | None = Field(default=None, min_length=1)
    scalar: str | None = Field(default=None, min_length=1)

    def merged(self, target: Target) -> Target:
        fields = target.model_dump()
        given = self.model_dump(exclude_unset=True)
        if "metric" in given:
            fields["scalar"] = None
        if "scalar" in given:
            fields["metric"] = fields["layer"] = None
        return Target(**{**fields, **given})


class Window(_Model):
    """A closed step range: ``steps``, a ``fraction`` of training, or a named ``phase``."""

    steps: tuple[int, int] | None = None
    fraction: tuple[float, float] | None = None
    phase: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _at_most_one(self) -> Self:
        given = [n for n in ("steps", "fraction", "phase") if getattr(self, n) is not None]
        if len(given) > 1:
            raise ValueError(f"give one of steps, fraction or phase; got {', '.join(given)}")
        if self.steps is not None and not 0 <= self.steps[0] <= self.steps[1]:
            raise ValueError(
                f"steps must be [first, last] with 0 <= first <= last; got {self.steps}"
            )
        if self.fraction is not None and not 0 <= self.fraction[0] <= self.fraction[1] <= 1:
            raise ValueError(
                f"fraction must be [a, b] with 0 <= a <= b <= 1 (30% is 0.3); got {self.fraction}"
            )
        return self

    def describe(self) -> str:
        if self.steps is not None:
            return f"steps {self.steps[0]}-{self.steps[1]}"
        if self.fraction is not None:
            return f"{self.fraction[0]:.0%}-{self.fraction[1]:.0%} of training"
        if self.phase is not None:
            return f"phase {self.phase}"
        return "whole run"


_OPS: dict[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


class Expectation(_Model):
    """``{op, value}`` (one of ``> >= < <=``) or ``{between: [lo, hi]}`` (inclusive)."""

    op: Literal[">", ">=", "<", "<="] | None = None
    value: float | None = None
    between: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Self:
        if self.between is not None:
            if self.op is not None or self.value is not None:
                raise ValueError("give either between: [lo, hi] or op and value, not both")
            if not self.between[0] <= self.between[1]:
                raise ValueError(f"between must be [lo, hi] with lo <= hi; got {self.between}")
            if not all(math.isfinite(b) for b in self.between):
                raise ValueError("between bounds must be finite numbers")
        elif self.op is None or self.value is None:
            raise ValueError("give op (one of >, >=, <, <=) and value, or between: [lo, hi]")
        elif not math.isfinite(self.value):
            raise ValueError("value must be a finite number")
        return self

    def holds(self, x: float) -> bool:
        """Whether ``x`` meets the expectation (NaN never does)."""
        if not math.isfinite(x):
            return False
        if self.between is not None:
            return self.between[0] <= x <= self.between[1]
        assert self.op is not None
        assert self.value is not None
        return _OPS[self.op](x, self.value)

    def describe(self) -> str:
        if self.between is not None:
            return f"in [{self.between[0]:g}, {self.between[1]:g}]"
        return f"{self.op} {self.value:g}"


class Prediction(_Model):
    """One prediction; see the module docstring for the conventions."""

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    claim: str = Field(min_length=1)
    target: Target
    window: Window = Window()
    statistic: Statistic
    of: SeriesStatistic = "mean"
    versus: TargetOverride | None = None
    across: Literal["mean", "all"] = "mean"
    expect: Expectation
    partial: Expectation | None = None
    beyond_noise: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.statistic == "difference":
            if self.versus is None:
                raise ValueError("statistic difference needs versus: the runs or layer compared")
            if self.across == "all":
                raise ValueError("a difference is one number; across: all does not apply")
            self.versus.merged(self.target)  # raises if the merged target is invalid
        elif self.versus is not None:
            raise ValueError("versus is only used with statistic: difference")
        uses_change = self.statistic in ("change", "relative_change") or (
            self.statistic == "difference" and self.of in ("change", "relative_change")
        )
        if self.beyond_noise is not None and not uses_change:
            raise ValueError("beyond_noise applies to change and relative_change only")
        if self.statistic == "first_event_step" and self.target.metric is None:
            raise ValueError("first_event_step is about a metric's events; give metric and layer")
        return self


class PredictionFile(_Model):
    """A predictions YAML file: ``version: 1`` (optional) and a list of predictions."""

    version: Literal[1] = 1
    predictions: list[Prediction] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        seen: set[str] = set()
        for p in self.predictions:
            if p.id in seen:
                raise ValueError(f"prediction id {p.id!r} is used twice; ids must be unique")
            seen.add(p.id)
        return self


def parse(text: str, *, source: str = "<predictions>") -> PredictionFile:
    """Validate the text of a predictions file.

    Raises
    ------
    ConfigError
        If it is not YAML or a field is invalid; one line per problem, naming ``source``
        and the field (``predictions.1.expect``).
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"predictions file {source} is not valid YAML: {exc}") from None
    if isinstance(data, list):
        data = {"predictions": data}
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"predictions file {source} must hold a mapping with a 'predictions' list; got "
            f"{type(data).__name__}."
        )
    try:
        return PredictionFile.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, f"predictions file {source}")
            + "\nSee traindyn.analysis.predictions for the format."
        ) from None


def load(path: str | os.PathLike[str]) -> PredictionFile:
    """Read and validate a predictions YAML file (see :func:`parse`)."""
    return parse(_read_text(Path(path)), source=str(path))


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"predictions file {path} cannot be read: {exc.strerror}.") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"predictions file {path} is not UTF-8 text: {exc}.") from None


# --------------------------------------------------------------------------- locking


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _held(run_dir: Path) -> tuple[int, int | None]:
    """Rows a run holds and its last step (0, None when it is empty or absent)."""
    if not (run_dir / MANIFEST_NAME).is_file():
        return 0, None
    run = open_run(run_dir)
    tables = [t for t in (run.metrics, run.scalars) if len(t)]
    rows = sum(len(t) for t in tables)
    last = max((int(t["step"].max()) for t in tables), default=None)
    return rows, last


def make_lock(
    file: str | os.PathLike[str], run: str | os.PathLike[str] | None = None
) -> PredictionLock:
    """The lock record of ``file`` (validated first), late if ``run`` already has data.

    Raises
    ------
    ConfigError
        If the file is missing or invalid: typos are caught before training, not after.
    """
    path = Path(file)
    data = path.read_bytes() if path.is_file() else None
    if data is None:
        raise ConfigError(f"predictions file {path} does not exist.")
    text = _read_text(path)
    parse(text, source=str(path))
    fresh = PredictionLock(
        sha256=_sha256(data),
        content=text,
        source=str(path.resolve()),
        locked_at=datetime.now(UTC),
    )
    return fresh if run is None else _with_held(fresh, *_held(Path(run)))


def _with_held(lock: PredictionLock, rows: int, last: int | None) -> PredictionLock:
    """``lock`` for a run that holds ``rows`` rows up to step ``last`` (late if any)."""
    return lock.model_copy(
        update={"late": rows > 0, "rows_at_lock": rows, "last_step_at_lock": last}
    )


def lock_for_tracker(file: str | os.PathLike[str], run: str | os.PathLike[str]) -> PredictionLock:
    """The lock a Tracker creating (or resuming) ``run`` stores; never a late one.

    Raises
    ------
    ConfigError
        If ``run`` already has data and no lock of this same file: lock it explicitly with
        ``traindyn predictions lock FILE --run RUN --late`` (recorded and shown).
    """
    new = make_lock(file, run)
    if not new.late:
        return new
    manifest = open_run(run).manifest
    if manifest.predictions is not None and manifest.predictions.sha256 == new.sha256:
        return manifest.predictions
    raise ConfigError(
        f"{run} already has {new.rows_at_lock} recorded rows (last step "
        f"{new.last_step_at_lock}), so predictions locked now are not pre-registered. Lock "
        f"them explicitly with `traindyn predictions lock {file} --run {run} --late`."
    )


@dataclass(frozen=True)
class LockResult:
    """What :func:`lock` did.

    Attributes
    ----------
    lock : PredictionLock
    pending : Path or None
        The pending-lock file written for a run or suite that does not exist yet (new runs
        created there take the lock).
    runs : tuple of Path
        Existing runs whose ``run.json`` now holds the lock (runs that already held this
        same file are left out: locking twice changes nothing).
    late : tuple of Path
        Those of ``runs`` that already had data (locked with ``late=True``).
    """

    lock: PredictionLock
    pending: Path | None
    runs: tuple[Path, ...]
    late: tuple[Path, ...]


def lock(
    file: str | os.PathLike[str],
    *,
    run: str | os.PathLike[str] | None = None,
    suite: str | os.PathLike[str] | None = None,
    late: bool = False,
) -> LockResult:
    """Lock a predictions file into a run, or into every run of a suite directory.

    ``run`` that does not exist yet gets a pending lock that its ``Run.create`` (the
    Tracker, a suite) moves into ``run.json``. ``suite`` gets a pending lock in the
    directory (every run created directly inside it takes it) and existing runs under it
    are locked too.

    Raises
    ------
    ConfigError
        If both or neither of ``run``/``suite`` are given, the file is invalid, or a run
        already has data and ``late`` is False (nothing is written then).
    StoreError
        If a run already holds a different lock, or is being written right now.
    """
    if (run is None) == (suite is None):
        raise ConfigError("give exactly one of run= (a run directory) or suite= (a directory).")
    target = Path(run if run is not None else suite)  # type: ignore[arg-type]
    if run is not None and (target / MANIFEST_NAME).is_file():
        existing = [target]
    elif run is not None:
        existing = []
    else:
        existing = find_run_dirs(target) if target.is_dir() else []
    fresh = make_lock(file)
    # a run that already holds this very file is left as it is (locking twice is a no-op)
    holding = {d: open_run(d).manifest.predictions for d in existing}
    existing = [d for d in existing if (lk := holding[d]) is None or lk.sha256 != fresh.sha256]
    for d in existing:  # before anything is written, and before the late check
        if (prior := holding[d]) is not None:
            raise predictions_conflict(d, prior, "Record new predictions in a new run.")
    locks = {d: _with_held(fresh, *_held(d)) for d in existing}
    with_data = [d for d, lk in locks.items() if lk.late]
    if with_data and not late:
        held = ", ".join(
            f"{d} ({locks[d].rows_at_lock} rows, last step {locks[d].last_step_at_lock})"
            for d in with_data[:3]
        )
        more = f" and {len(with_data) - 3} more" if len(with_data) > 3 else ""
        raise ConfigError(
            f"cannot pre-register: {held}{more} already hold(s) data. Lock before training, "
            "or pass --late (late=True) to lock anyway; the verdicts will say LATE."
        )
    pending = None
    if run is None or not (target / MANIFEST_NAME).is_file():
        pending = write_pending_predictions(target, fresh)
    for d, lk in locks.items():
        lock_predictions(d, lk)
    return LockResult(fresh, pending, tuple(existing), tuple(with_data))


# --------------------------------------------------------------------------- judging


@dataclass
class _RunData:
    """One run's tables, read once per check."""

    run: Run
    label: str
    _metrics: pd.DataFrame | None = None
    _scalars: pd.DataFrame | None = None
    _events: pd.DataFrame | None = None

    @property
    def metrics(self) -> pd.DataFrame:
        if self._metrics is None:
            self._metrics = self.run.metrics
        return self._metrics

    @property
    def scalars(self) -> pd.DataFrame:
        if self._scalars is None:
            self._scalars = self.run.scalars
        return self._scalars

    def events(self) -> pd.DataFrame:
        """Surviving events: stored by ``traindyn analyze``, else computed now."""
        if self._events is None:
            stored = None
            try:
                stored = self.run.read_analysis("events")
            except (StoreError, FileNotFoundError):
                stored = None
            if not isinstance(stored, pd.DataFrame):
                from traindyn.analysis.engine import analyze_run  # engine imports much

                stored = analyze_run(self.run).events
            self._events = stored[stored["survives"].astype(bool)]
        return self._events


@dataclass(frozen=True)
class _Series:
    data: _RunData
    layer: str  # "" for a scalar
    steps: np.ndarray[Any, np.dtype[np.int64]]
    values: np.ndarray[Any, np.dtype[np.float64]]
    window: tuple[int, int]
    noise: float  # sd of the difference of two samples: sqrt(2) x the trajectory noise

    @property
    def label(self) -> str:
        return f"{self.data.label}/{self.layer}" if self.layer else self.data.label


def _window_bounds(window: Window, data: _RunData, table: pd.DataFrame) -> tuple[int, int] | str:
    if window.steps is not None:
        return window.steps
    if window.fraction is not None:
        total = total_steps_of(data.run, table)
        return round(window.fraction[0] * total), round(window.fraction[1] * total)
    if window.phase is not None:
        phases = phases_of(data.run)
        found = next((p for p in phases if p.name == window.phase), None)
        if found is None:
            names = ", ".join(p.name for p in phases) or "none recorded"
            return f"{data.label} has no phase {window.phase!r} (phases: {names})"
        return found.start, found.end
    return 0, np.iinfo(np.int64).max


def _series(
    target: Target, window: Window, runs: Sequence[_RunData]
) -> tuple[list[_Series], list[str]]:
    """Every (run, layer) series ``target`` names, cut to ``window``; and what is missing."""
    matched = [d for d in runs if _glob(d.label, target.runs) or _glob(d.run.id, target.runs)]
    if not matched:
        return [], [f"no run matches {target.runs!r}"]
    out: list[_Series] = []
    problems: list[str] = []
    for data in matched:
        if target.metric is not None:
            table = data.metrics
            rows = table[table["metric"] == target.metric]
            layers = sorted({str(x) for x in rows["layer"].unique()})
            chosen = [la for la in layers if _glob(la, str(target.layer))]
            if not chosen:
                have = ", ".join(layers[:8]) if layers else f"metric {target.metric!r} not tracked"
                problems.append(f"{data.label}: no layer matches {target.layer!r} ({have})")
                continue
            groups = [(la, rows[rows["layer"] == la]) for la in chosen]
        else:
            table = data.scalars
            rows = table[table["name"] == target.scalar]
            if rows.empty:
                names = sorted({str(x) for x in table["name"].unique()})
                problems.append(
                    f"{data.label}: no scalar {target.scalar!r} (recorded: "
                    f"{', '.join(names[:10]) or 'none'})"
                )
                continue
            groups = [("", rows)]
        bounds = _window_bounds(window, data, table)
        if isinstance(bounds, str):
            problems.append(bounds)
            continue
        lo, hi = bounds
        for layer, g in groups:
            g = g.sort_values("step")
            steps = g["step"].to_numpy(np.int64)
            values = g["value"].to_numpy(np.float64)
            finite = np.isfinite(values)
            keep = (steps >= lo) & (steps <= hi) & finite
            # the noise comes from the whole series: a short window cannot estimate it
            noise = math.sqrt(2) * trajectory_noise(values[finite]) if finite.sum() > 2 else 0.0
            out.append(_Series(data, layer, steps[keep], values[keep], (lo, hi), noise))
    return out, problems


def _glob(name: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern)


_MIN_SAMPLES = {"final": 1, "mean": 1, "change": 2, "relative_change": 2, "slope": 2}


def _statistic(
    s: _Series, statistic: SeriesStatistic, beyond_noise: float | None = None
) -> tuple[float, str]:
    """The value of one series and the numbers behind it (or NaN and why)."""
    n = len(s.values)
    span = f"steps {s.steps[0]}-{s.steps[-1]}, n={n}" if n else ""
    if n < _MIN_SAMPLES[statistic]:
        return math.nan, (
            f"{s.label}: {n} finite sample(s) in steps {s.window[0]}-{_hi(s.window[1])}; "
            f"{statistic} needs {_MIN_SAMPLES[statistic]}"
        )
    first, last = float(s.values[0]), float(s.values[-1])
    if statistic == "final":
        return last, f"{s.label}: {last:.4g} at step {s.steps[-1]}"
    if statistic == "mean":
        value = float(np.mean(s.values))
        return value, f"{s.label}: mean {value:.4g} ({span})"
    if statistic in ("change", "relative_change"):
        if statistic == "relative_change" and first == 0:
            return math.nan, f"{s.label}: starts at 0, so a relative change is undefined"
        scale = abs(first) if statistic == "relative_change" else 1.0
        value, noise = (last - first) / scale, s.noise / scale
        shown = f"{value:+.1%}" if statistic == "relative_change" else f"{value:+.4g}"
        note = f"{s.label}: {first:.4g} -> {last:.4g} = {shown} ({span}, noise ±{noise:.2g})"
        if beyond_noise is not None and not abs(value) > beyond_noise * noise:
            return math.nan, f"{note}: within {beyond_noise:g}x the noise, so unresolved"
        return value, note
    if len(np.unique(s.steps)) < 2:
        return math.nan, f"{s.label}: a slope needs two distinct steps"
    slope = float(np.polyfit(s.steps.astype(np.float64), s.values, 1)[0])
    return slope, f"{s.label}: slope {slope:.4g} per step ({span})"


def _hi(hi: int) -> str:
    return "end" if hi == np.iinfo(np.int64).max else str(hi)


def _first_event(s: _Series, metric: str) -> tuple[float, str]:
    events = s.data.events()
    lo, hi = s.window
    hits = events[
        (events["metric"] == metric)
        & (events["layer"] == s.layer)
        & (events["step"] >= lo)
        & (events["step"] <= hi)
    ]
    if hits.empty:
        return math.nan, f"{s.label}: no surviving event in steps {lo}-{_hi(hi)}"
    step = int(hits["step"].min())
    return float(step), f"{s.label}: first surviving event at step {step} (of {len(hits)})"


def _values(
    p: Prediction, target: Target, runs: Sequence[_RunData], statistic: str
) -> tuple[list[float], list[str], list[str]]:
    """Per-series values, the numbers behind them, and why some series are missing."""
    series, problems = _series(target, p.window, runs)
    values: list[float] = []
    notes: list[str] = []
    for s in series:
        if statistic == "first_event_step":
            assert target.metric is not None
            value, note = _first_event(s, target.metric)
        else:
            value, note = _statistic(s, statistic, p.beyond_noise)  # type: ignore[arg-type]
        values.append(value)
        notes.append(note)
    return values, notes, problems


def _judge(p: Prediction, value: float) -> Verdict:
    if p.expect.holds(value):
        return "SUPPORTED"
    if p.partial is not None and p.partial.holds(value):
        return "PARTIALLY SUPPORTED"
    return "NOT SUPPORTED"


def _outcome(verdict: Verdict, value: float, n_series: int, detail: str) -> dict[str, Any]:
    return {"verdict": verdict, "value": value, "n_series": n_series, "detail": detail}


def _evaluate_one(p: Prediction, runs: Sequence[_RunData]) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": p.id,
        "claim": p.claim,
        "statistic": p.statistic if p.statistic != "difference" else f"difference of {p.of}",
        "target": p.target.describe(),
        "window": p.window.describe(),
        "expected": p.expect.describe(),
        "partial": p.partial.describe() if p.partial is not None else None,
    }
    if p.statistic == "difference":
        assert p.versus is not None
        other = p.versus.merged(p.target)
        row["target"] = f"{p.target.describe()} minus {other.describe()}"
        a, a_notes, a_missing = _values(p, p.target, runs, p.of)
        b, b_notes, b_missing = _values(p, other, runs, p.of)
        fa, fb = [v for v in a if math.isfinite(v)], [v for v in b if math.isfinite(v)]
        notes = [*a_notes, *a_missing, *(f"versus {n}" for n in [*b_notes, *b_missing])]
        if not fa or not fb:
            return {**row, **_outcome("UNTESTABLE", math.nan, 0, "; ".join(notes))}
        ma, mb = float(np.mean(fa)), float(np.mean(fb))
        value = ma - mb
        detail = f"{ma:.4g} - {mb:.4g} = {value:+.4g}; " + "; ".join(notes)
        return {**row, **_outcome(_judge(p, value), value, len(fa) + len(fb), detail)}
    values, notes, missing = _values(p, p.target, runs, p.statistic)
    finite = [v for v in values if math.isfinite(v)]
    n = len(finite)
    event_absent = p.statistic == "first_event_step" and values and not finite
    if event_absent:  # the event did not happen: the prediction failed, it is testable
        detail = "; ".join([*notes, *missing])
        return {**row, **_outcome("NOT SUPPORTED", math.nan, len(values), detail)}
    if not finite:
        return {
            **row,
            **_outcome("UNTESTABLE", math.nan, 0, "; ".join([*notes, *missing]) or "no data"),
        }
    if p.statistic == "first_event_step":  # a series without an event is an answer, not a gap
        gaps = len(missing)
        notes.insert(0, f"{n} of {len(values)} series have a surviving event")
    else:
        gaps = len(values) - n + len(missing)
    # across all: a series without the predicted event counts against the prediction
    pool = values if p.statistic == "first_event_step" else finite
    if p.across == "mean" or len(pool) == 1:
        value = min(finite) if p.statistic == "first_event_step" else float(np.mean(finite))
        verdict = _judge(p, value)
        how = "earliest" if p.statistic == "first_event_step" else "mean"
        lead = f"{how} of {n} series = {value:.4g}; " if n > 1 else ""
        if gaps and p.across == "all" and verdict == "SUPPORTED":
            verdict = "PARTIALLY SUPPORTED"
    else:
        judged = [_judge(p, v) for v in pool]
        n_pass = judged.count("SUPPORTED")
        n_partial = judged.count("PARTIALLY SUPPORTED")
        value = float(np.mean(finite))
        if n_pass == len(pool) and not gaps:
            verdict = "SUPPORTED"
        elif n_pass > 0 or (p.partial is not None and n_pass + n_partial == len(pool)):
            verdict = "PARTIALLY SUPPORTED"
        else:
            verdict = "NOT SUPPORTED"
        lead = f"{n_pass} of {len(pool)} series meet the expectation"
        lead += f", {n_partial} the partial rule" if p.partial is not None else ""
        lead += f"; mean {value:.4g}; "
    if gaps:
        lead += f"{gaps} series untestable; "
    detail = lead + "; ".join([*notes, *missing])
    return {**row, **_outcome(verdict, value, n, detail)}


def evaluate(predictions: PredictionFile, runs: Sequence[Run] | Mapping[str, Run]) -> pd.DataFrame:
    """Judge every prediction on ``runs``; one row per prediction (no lock columns).

    ``runs`` is a list of runs (matched by id) or a mapping label -> run (labels such as
    paths relative to a suite directory, matched by ``target.runs`` as well as the id).
    Columns: :data:`CHECK_COLUMNS` without ``locked``, ``late``, ``edited``.
    """
    items = runs.items() if isinstance(runs, Mapping) else ((r.id, r) for r in runs)
    data = [_RunData(run, str(label)) for label, run in items]
    rows = [_evaluate_one(p, data) for p in predictions.predictions]
    columns = [c for c in CHECK_COLUMNS if c not in ("locked", "late", "edited")]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class PredictionCheck:
    """The verdicts of a checked run or directory, with the state of its lock.

    Attributes
    ----------
    table : DataFrame
        :data:`CHECK_COLUMNS`, one row per prediction.
    lock : PredictionLock or None
        The lock that was judged; None when an unlocked file was evaluated.
    late : bool
        The lock was made after the run (or a run of the suite) had data, or a run of the
        suite holds no lock.
    edited : bool
        The file on disk differs from the locked text (the locked text was judged).
    changes : tuple of str
        What differs, per prediction id ("P2 changed", "P4 added", "P1 removed").
    path : Path
        The run or directory checked.
    """

    table: pd.DataFrame
    lock: PredictionLock | None
    late: bool
    edited: bool
    changes: tuple[str, ...]
    path: Path
    notes: tuple[str, ...] = field(default=())

    @property
    def counts(self) -> dict[str, int]:
        """Verdict -> number of predictions, in :data:`VERDICTS` order."""
        got = self.table["verdict"].value_counts()
        return {v: int(got.get(v, 0)) for v in VERDICTS}

    def write(self) -> Path:
        """Write :attr:`table` to ``analysis/predictions.parquet`` of the run or directory."""
        return write_analysis_file(self.path / "analysis", "predictions", self.table)


def _runs_of(path: Path) -> tuple[dict[str, Run], bool]:
    if (path / MANIFEST_NAME).is_file():
        run = open_run(path)
        return {run.id: run}, True
    if not path.is_dir():
        raise ConfigError(f"{path} is neither a run nor a directory of runs.")
    dirs = find_run_dirs(path)
    if not dirs:
        raise ConfigError(f"{path} holds no runs (no run.json under it).")
    return {d.relative_to(path).as_posix(): open_run(d) for d in dirs}, False


def _changes(locked: str, current: str) -> tuple[str, ...]:
    try:
        old = {p.id: p for p in parse(locked).predictions}
    except ConfigError:
        return ("the locked text no longer parses",)
    try:
        new = {p.id: p for p in parse(current).predictions}
    except ConfigError as exc:
        return (f"the file on disk is invalid now: {str(exc).splitlines()[0]}",)
    out = [f"{i} changed" for i in old if i in new and old[i] != new[i]]
    out += [f"{i} added" for i in new if i not in old]
    out += [f"{i} removed" for i in old if i not in new]
    return tuple(out) or ("formatting or comments only",)


def check(
    path: str | os.PathLike[str],
    *,
    file: str | os.PathLike[str] | None = None,
    write: bool = True,
) -> PredictionCheck:
    """Judge the predictions locked into a run (or a directory of runs).

    Parameters
    ----------
    path : str or Path
        A run directory, or a suite directory (every run under it).
    file : str or Path, optional
        The predictions file as it is now. Compared with the lock: an edit after the lock
        is flagged (and the locked text is judged). Without a lock, this file is judged
        and every row says ``locked=False``. Default: the path recorded in the lock.
    write : bool
        Also write ``analysis/predictions.parquet`` (the report shows it).

    Raises
    ------
    ConfigError
        If nothing is locked and no file is given, or the runs of a directory hold
        different locks.
    """
    root = Path(path)
    runs, single = _runs_of(root)
    locks = {label: r.manifest.predictions for label, r in runs.items()}
    held = {lk.sha256: lk for lk in locks.values() if lk is not None}
    suite_lock = None if single else pending_predictions(root)
    if suite_lock is not None:
        held.setdefault(suite_lock.sha256, suite_lock)
    if len(held) > 1:
        by = {sha[:12]: [lb for lb, lk in locks.items() if lk and lk.sha256 == sha] for sha in held}
        raise ConfigError(
            f"the runs under {root} hold {len(held)} different prediction locks ({by}); "
            "check each run on its own."
        )
    notes: list[str] = []
    lock_record = suite_lock or next(iter(held.values()), None)
    current: str | None = None
    current_path = Path(file) if file is not None else None
    if current_path is None and lock_record is not None and Path(lock_record.source).is_file():
        current_path = Path(lock_record.source)
    if current_path is not None:
        current = _read_text(current_path)
    if lock_record is None:
        if current is None:
            raise ConfigError(
                f"no predictions are locked in {root}; lock them before training with "
                "`traindyn predictions lock FILE --run RUN`, or judge an unlocked file with "
                "--file FILE (shown as not locked)."
            )
        predictions = parse(current, source=str(current_path))
        notes.append("NOT LOCKED: these predictions were never locked, so not pre-registered")
        late, edited = False, False
        changes: tuple[str, ...] = ()
    else:
        predictions = parse(lock_record.content, source=f"the lock in {root}")
        unlocked = [lb for lb, lk in locks.items() if lk is None]
        late_runs = [lb for lb, lk in locks.items() if lk is not None and lk.late]
        late = lock_record.late or bool(unlocked) or bool(late_runs)
        if lock_record.late or late_runs:
            first = lock_record if lock_record.late else locks[late_runs[0]]
            assert first is not None
            notes.append(
                f"LATE: locked at {first.locked_at.isoformat(timespec='seconds')} after "
                f"{first.rows_at_lock} rows (last step {first.last_step_at_lock}) were recorded"
            )
        if unlocked:
            notes.append(f"{len(unlocked)} run(s) hold no lock: {', '.join(unlocked[:5])}")
        edited = current is not None and _sha256(current.encode("utf-8")) != lock_record.sha256
        changes = _changes(lock_record.content, current) if edited and current else ()
        if edited:
            notes.append(
                f"EDITED AFTER LOCK: {current_path} differs from the text locked at "
                f"{lock_record.locked_at.isoformat(timespec='seconds')} ({', '.join(changes)}); "
                "the locked text was judged"
            )
    table = evaluate(predictions, runs)
    table["locked"] = lock_record is not None
    table["late"] = late
    table["edited"] = edited
    result = PredictionCheck(
        table[CHECK_COLUMNS], lock_record, late, edited, changes, root, tuple(notes)
    )
    if write:
        result.write()
    return result
