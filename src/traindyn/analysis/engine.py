"""The analysis engine: every analysis of a run (or a directory of runs) in one call.

:func:`analyze_run` reads a run's tables and returns a :class:`RunAnalysis` (pure
reading); :func:`write_run_analysis` writes its tables to the run's ``analysis/``
directory; :func:`analyze` does both for one run or every run under a directory and adds
the pooled tables (temporal distribution over runs, critical periods by architecture, one
headline row per run) to ``DIR/analysis/``. Output is deterministic, so running it twice
writes the same files: ``traindyn analyze`` is idempotent.

Tables written per run (``analysis/<name>.parquet``; columns documented where each is
computed)::

    convergence        per (layer, metric): stabilisation step, suspicious + reason
    convergence_order  per metric: Spearman rho depth~stabilisation, class
    events             every candidate jump: noise-floor ratio, shape, surrogate p-values,
                       BH q-value, survives, type (and replication over seeds)
    event_types        k-means centres of the events above the floor
    critical_periods   runs of critical samples per series
    coordination       per metric and step: fraction of layers critical
    critical_summary   per metric: coordination, loss correlation
    critical_null      per metric: coordination and loss correlation vs a shift null
    chance             per value and control: different from chance (needs controls)
    temporal           per series and window: change and share
    phases             per training phase (or early/mid/late) and series
    summary.json       options, counts and headline numbers (``probe_noise``: whether
                       the probe-resampling floor was used)

Read when present: ``analysis/null_controls.parquet`` (``traindyn analyze --controls``,
:func:`traindyn.capture.null_controls`: random-init and Gaussian-cloud bands), and
``analysis/probe_noise.parquet`` (``step, layer, metric, noise``,
written by ``traindyn analyze --probe-noise`` from
:func:`traindyn.capture.probe_noise`): each metric's spread across probe sets of the
probe's size at the run's checkpoints. Its median over steps joins each series' noise
floor (:func:`~traindyn.analysis.jumps.detect_jumps`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from traindyn._version import __version__
from traindyn.analysis.baselines import BASELINE_COLUMNS, coordination_null
from traindyn.analysis.chance import (
    CHANCE_COLUMNS,
    chance_bands,
    different_from_chance,
    shuffled_bands,
    shuffled_controls,
)
from traindyn.analysis.compare import seed_statistics
from traindyn.analysis.convergence import Convergence, Criterion, convergence
from traindyn.analysis.critical_periods import CriticalPeriods, critical_periods
from traindyn.analysis.evidence import event_evidence, replication
from traindyn.analysis.jumps import Detector, detect_jumps, jump_types
from traindyn.analysis.milestones import MILESTONE_COLUMNS, milestones
from traindyn.analysis.phases import Phase, fraction_windows, phase_summary, phases_of
from traindyn.analysis.trajectories import (
    layer_depths,
    pool_temporal,
    series_of,
    temporal_distribution,
    total_steps_of,
)
from traindyn.exceptions import ConfigError, RunNotFound
from traindyn.store.run import (
    ANALYSIS_DIR,
    MANIFEST_NAME,
    Run,
    find_run_dirs,
    write_analysis_file,
)

__all__ = [
    "AnalysisOptions",
    "DirectoryAnalysis",
    "RunAnalysis",
    "analyze",
    "analyze_run",
    "seed_group",
    "write_run_analysis",
]

PROBE_NOISE_TABLE = "probe_noise"
"""Name of the probe-resampling noise table in a run's ``analysis/`` directory."""
NULL_CONTROLS_TABLE = "null_controls"
"""Name of the null-control measurements (:func:`traindyn.capture.null_controls`)."""
_PROBE_NOISE_COLUMNS = ("layer", "metric", "noise")


@dataclass(frozen=True)
class AnalysisOptions:
    """Every knob of :func:`analyze_run`; the defaults are the seeds' unless noted."""

    metrics: tuple[str, ...] | None = None  # None: every metric in the run
    # Convergence (seed 001: rolling variance < 10% of the mean over a 10% window).
    stabilization_window: int | float = 0.1
    stabilization_fraction: float = 0.1
    stabilization_criterion: Criterion = "mean"
    # Jumps. The scan is the default: trend-blind, and what the evidence tests; the
    # seed's z-score detector flags ~5% of any noise (traindyn validate).
    detector: Detector = "scan"
    z_threshold: float = 2.0  # seed 001
    penalty_scale: float = 3.0  # PELT penalty = scale * sigma^2 * log n (BIC is 2)
    jump_window: int = 8  # samples each side for the level-shift fit
    # Events below 4x the noise floor are noise (seed 002). 4, not 3: a detector looks
    # at ~n places, and with n = 400 white noise exceeds 3 sd somewhere half the time.
    min_snr: float = 4.0
    n_jump_types: int = 5  # seed 001: k-means with k=5
    # Evidence (traindyn.analysis.evidence): surrogate nulls, BH control, shapes.
    evidence: bool = True  # False: survival is the floor alone (faster, weaker)
    alpha: float = 0.05  # false discovery rate over a run's candidate events
    n_surrogates: int = 999  # per null; small p-values come from a fitted tail
    null: Literal["ar1", "both"] = "ar1"  # which surrogate null decides (see evidence)
    surrogate_seed: int = 0
    # Two events of different seeds are the same when their locations are this close,
    # as a fraction of training.
    replication_tolerance: float = 0.05
    # Coordination null: circular shifts of each layer's critical samples.
    n_shuffles: int = 1000
    # Critical periods (seed 001: 90th percentile of speed; > 30% of layers = coordinated).
    critical_percentile: float = 90.0
    coordination_threshold: float = 0.3
    # Temporal distribution (seed 002: first 10%, 10-50%, last 50%).
    temporal_boundaries: tuple[float, ...] = (0.1, 0.5)
    temporal_names: tuple[str, ...] = ("early", "mid", "late")

    def to_json(self) -> dict[str, Any]:
        """The options as plain JSON (recorded in ``summary.json``)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }


@dataclass(frozen=True)
class RunAnalysis:
    """Everything :func:`analyze_run` found in one run.

    Attributes
    ----------
    run_id : str
    total_steps : int
        Length of training the fractions refer to.
    options : AnalysisOptions
    convergence : Convergence
    events : DataFrame
        :data:`~traindyn.analysis.jumps.EVENT_COLUMNS`, the evidence columns
        (:data:`~traindyn.analysis.evidence.EVIDENCE_COLUMNS`: shape, surrogate p-values,
        BH q-value, ``survives``) and ``type`` (-1 unless it survives). Every candidate is
        kept; :attr:`surviving` is the default view. In a directory analysis, runs that
        differ only in their seed add ``replicated_in`` and ``n_seeds``.
    event_types : DataFrame
        Centres of the k-means types (see :func:`~traindyn.analysis.jumps.jump_types`).
    critical : CriticalPeriods
    critical_null : DataFrame
        :func:`~traindyn.analysis.baselines.coordination_null`: per metric, the observed
        coordination and loss correlation beside what shifting each layer's critical
        samples independently gives (null mean, 95th percentile, p-value).
    chance : DataFrame
        :func:`~traindyn.analysis.chance.different_from_chance` of every tracked value
        against the null-control bands (random init and Gaussian cloud from
        ``analysis/null_controls.parquet``, label-shuffled twin runs in a directory
        analysis); empty without controls.
    temporal : DataFrame
        :func:`~traindyn.analysis.trajectories.temporal_distribution` rows.
    phases : DataFrame
        :func:`~traindyn.analysis.phases.phase_summary` of the metrics and scalars over
        the run's training phases, or over the early/mid/late windows when it has none
        (column ``table``: ``"metrics"`` or ``"scalars"``).
    notes : tuple of str
        Things a reader should know (a suspicious convergence, a run still running,
        whether the probe-resampling floor was used).
    probe_floor : DataFrame
        ``layer, metric, noise, n_steps``: the probe-resampling noise that joined each
        series' floor (the median over ``n_steps`` checkpoints of the ``probe_noise``
        table); empty when the run has none.
    milestones : DataFrame
        :func:`~traindyn.analysis.milestones.milestones`: loss, match rate and confidence
        on right and wrong answers at 15, 30, 50 and 100% of training (or the run's own
        milestones).
    """

    run_id: str
    total_steps: int
    options: AnalysisOptions
    convergence: Convergence
    events: pd.DataFrame
    event_types: pd.DataFrame
    critical: CriticalPeriods
    critical_null: pd.DataFrame
    chance: pd.DataFrame
    temporal: pd.DataFrame
    phases: pd.DataFrame
    notes: tuple[str, ...] = field(default=())
    probe_floor: pd.DataFrame = field(default_factory=lambda: _empty_probe_floor())
    milestones: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(MILESTONE_COLUMNS))
    )

    @property
    def surviving(self) -> pd.DataFrame:
        """Events that survive their evidence (not drift, above the noise floor, BH
        q-value <= alpha): the default view."""
        return self.events[self.events["survives"].astype(bool)]

    def tables(self) -> dict[str, pd.DataFrame]:
        """Name -> table, as written to ``analysis/``."""
        return {
            "convergence": self.convergence.layers,
            "convergence_order": self.convergence.order,
            "events": self.events,
            "event_types": self.event_types,
            "critical_periods": self.critical.periods,
            "coordination": self.critical.coordination,
            "critical_summary": self.critical.summary,
            "critical_null": self.critical_null,
            "chance": self.chance,
            "temporal": self.temporal,
            "phases": self.phases,
            "milestones": self.milestones,
        }

    def headline(self) -> dict[str, Any]:
        """The few numbers worth printing: counts, early share, orders, coordination."""
        shares = pool_temporal(self.temporal) if len(self.temporal) else pd.DataFrame()
        share = {str(r.window): _num(r.share) for r in shares.itertuples()} if len(shares) else {}
        order = {
            str(r.metric): str(r.order) + (" (suspicious)" if r.suspicious else "")
            for r in self.convergence.order.itertuples()
        }
        summary = self.critical.summary
        return {
            "run": self.run_id,
            "total_steps": self.total_steps,
            "n_series": len(self.convergence.layers),
            "events": len(self.events),
            "events_above_floor": int((~self.events["below_floor"].astype(bool)).sum()),
            "events_surviving": len(self.surviving),
            "event_types": len(self.event_types),
            "change_share": share,
            "convergence_order": order,
            "max_coordination": _num(summary["max_coordination"].max()) if len(summary) else None,
            "mean_coordination": _num(summary["mean_coordination"].mean())
            if len(summary)
            else None,
            "loss_correlation": _num(summary["loss_correlation"].mean()) if len(summary) else None,
            **_null_headline(self.critical_null),
            "different_from_chance": _chance_headline(self.chance),
            "probe_noise": bool(len(self.probe_floor)),
            "notes": list(self.notes),
        }


def _null_headline(table: pd.DataFrame) -> dict[str, float | None]:
    """Mean over metrics of the coordination / loss-correlation nulls and p-values."""
    keys = (
        "mean_coordination_null",
        "mean_coordination_p",
        "loss_correlation_null",
        "loss_correlation_p",
    )
    if table.empty:
        return dict.fromkeys(keys)
    return {k: _num(pd.to_numeric(table[k], errors="coerce").mean()) for k in keys}


def _chance_headline(table: pd.DataFrame) -> dict[str, float]:
    """Per control, the share of (step, layer, metric) values different from chance."""
    if table.empty:
        return {}
    share = table.groupby("control", sort=True)["different"].mean()
    return {str(k): float(v) for k, v in share.items()}


def _num(value: Any) -> float | None:
    """A float for JSON; None for NaN."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def analyze_run(
    run: Run | str | Path,
    options: AnalysisOptions | None = None,
    *,
    metrics: pd.DataFrame | None = None,
    scalars: pd.DataFrame | None = None,
    probe_noise: pd.DataFrame | None = None,
    controls: pd.DataFrame | None = None,
) -> RunAnalysis:
    """Run every analysis on one run's tables (nothing is written).

    Parameters
    ----------
    run : Run or path
    options : AnalysisOptions, optional
    metrics, scalars : DataFrame, optional
        The run's tables when already read (they are read from the run otherwise).
    probe_noise : DataFrame, optional
        Columns ``layer, metric, noise`` (and usually ``step``): each metric's spread
        across probe sets (:func:`traindyn.capture.probe_noise`). Default: the run's
        ``analysis/probe_noise.parquet`` when it exists. The median over steps of each
        (layer, metric)'s finite values joins that series' noise floor; without it the
        floor has no probe-resampling term.
    controls : DataFrame, optional
        Extra chance bands (:data:`~traindyn.analysis.chance.BAND_COLUMNS`, e.g.
        :func:`~traindyn.analysis.chance.shuffled_bands` of label-shuffled twins), used
        with the bands of the run's ``analysis/null_controls.parquet`` when it exists.

    Returns
    -------
    RunAnalysis

    Raises
    ------
    RunNotFound
        If ``run`` is a path without a ``run.json``.
    ConfigError
        If an option is invalid, or the probe-noise table lacks a column.

    Examples
    --------
    >>> import tempfile, traindyn as td
    >>> with tempfile.TemporaryDirectory() as d:
    ...     run = td.store.Run.create(d + "/r")
    ...     run.append_metrics([(s, "fc", "pr", 5.0 if s < 50 else 9.0) for s in range(0, 100, 2)])
    ...     run.finish()
    ...     result = analyze_run(run)
    >>> result.surviving[["step", "delta"]].round(6).values.tolist()
    [[50.0, 4.0]]
    """
    opts = options or AnalysisOptions()
    r = run if isinstance(run, Run) else Run(run)
    m = r.metrics if metrics is None else metrics
    s = r.scalars if scalars is None else scalars
    total = max(total_steps_of(r, m, s), 1)
    series = series_of(m, metric=list(opts.metrics) if opts.metrics else None)
    config = r.manifest.config
    tracker = config.get("tracker") if isinstance(config, Mapping) else None
    order = tracker.get("layers") if isinstance(tracker, Mapping) else None
    depths = layer_depths(m, order=[str(x) for x in order] if isinstance(order, list) else None)
    conv = convergence(
        series,
        depths,
        total_steps=total,
        window=opts.stabilization_window,
        fraction=opts.stabilization_fraction,
        criterion=opts.stabilization_criterion,
    )
    table = probe_noise if probe_noise is not None else _read_table(r, PROBE_NOISE_TABLE)
    probe_floor = _probe_floor(table) if table is not None else _empty_probe_floor()
    events = detect_jumps(
        series,
        total_steps=total,
        detector=opts.detector,
        threshold=opts.z_threshold,
        penalty_scale=opts.penalty_scale,
        window=opts.jump_window,
        min_snr=opts.min_snr,
        probe_noise=_floor_by_series(probe_floor),
    )
    if opts.evidence:
        events = event_evidence(
            series,
            events,
            n_surrogates=opts.n_surrogates,
            alpha=opts.alpha,
            min_snr=opts.min_snr,
            window=opts.jump_window,
            seed=opts.surrogate_seed,
            null=opts.null,
        )
    else:
        events = events.assign(survives=~events["below_floor"].astype(bool))
    types = jump_types(events, k=opts.n_jump_types)
    events = events.assign(type=types.labels)
    loss = s[s["name"] == "loss"][["step", "value"]] if len(s) else None
    critical = critical_periods(
        series,
        percentile=opts.critical_percentile,
        coordination_threshold=opts.coordination_threshold,
        loss=loss,
    )
    critical_null = (
        coordination_null(
            series,
            percentile=opts.critical_percentile,
            coordination_threshold=opts.coordination_threshold,
            loss=loss,
            n_shuffles=opts.n_shuffles,
            seed=opts.surrogate_seed,
        )
        if series
        else pd.DataFrame(columns=list(BASELINE_COLUMNS))
    )
    bands = [] if controls is None else [controls]
    stored = _read_table(r, NULL_CONTROLS_TABLE)
    if stored is not None:
        bands.append(chance_bands(stored))
    chance = (
        different_from_chance(m, pd.concat(bands, ignore_index=True))
        if bands and len(m)
        else pd.DataFrame(columns=list(CHANCE_COLUMNS))
    )
    temporal = temporal_distribution(
        series,
        total_steps=total,
        boundaries=opts.temporal_boundaries,
        names=opts.temporal_names,
    )
    windows = phases_of(r) or _fraction_windows(total, opts)
    phase_tables = []
    if len(m):
        metric_rows = m if not opts.metrics else m[m["metric"].isin(opts.metrics)]
        phase_tables.append(phase_summary(metric_rows, windows).assign(table="metrics"))
    if len(s):
        phase_tables.append(
            phase_summary(s, windows).rename(columns={"name": "metric"}).assign(table="scalars")
        )
    phases = pd.concat(phase_tables, ignore_index=True) if phase_tables else pd.DataFrame()
    notes = [
        f"{r.metric}: {r.reason}"
        for r in conv.order.itertuples()
        if r.suspicious and isinstance(r.reason, str)
    ]
    if r.status == "running":
        notes.append(
            f"run still running: analysed up to step {int(m['step'].max()) if len(m) else 0}"
        )
    if not series:
        notes.append("no finite metric values: nothing to analyse")
    if len(probe_floor):
        steps = int(probe_floor["n_steps"].max())
        notes.append(
            f"noise floor includes probe resampling: median half-sample spread of "
            f"{len(probe_floor)} series over {steps} checkpoint(s)"
        )
    elif table is not None:
        notes.append("probe_noise table has no finite value: floor without probe resampling")
    return RunAnalysis(
        run_id=r.id,
        total_steps=total,
        options=opts,
        convergence=conv,
        events=events,
        event_types=types.centres,
        critical=critical,
        critical_null=critical_null,
        chance=chance,
        temporal=temporal,
        phases=phases,
        notes=tuple(notes),
        probe_floor=probe_floor,
        milestones=milestones(r, scalars=s),
    )


def _fraction_windows(total: int, opts: AnalysisOptions) -> list[Phase]:
    """The early/mid/late windows, or one window for a run too short to cut in three
    (a run killed after its first samples still gets its per-phase summary)."""
    try:
        return fraction_windows(
            total, boundaries=opts.temporal_boundaries, names=opts.temporal_names
        )
    except ConfigError:
        return [Phase("all", 0, total + 1)]


def _read_table(run: Run, name: str) -> pd.DataFrame | None:
    """The run's ``analysis/<name>.parquet``, or None when it has none."""
    if not (run.path / ANALYSIS_DIR / f"{name}.parquet").is_file():
        return None
    table = run.read_analysis(name)
    return table if isinstance(table, pd.DataFrame) else None


def _empty_probe_floor() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "layer": pd.Series(dtype="object"),
            "metric": pd.Series(dtype="object"),
            "noise": pd.Series(dtype="float64"),
            "n_steps": pd.Series(dtype="int64"),
        }
    )


def _probe_floor(table: pd.DataFrame) -> pd.DataFrame:
    """One probe-resampling noise per (layer, metric): the median of its finite values
    over steps (a robust typical value: the spread changes as training goes on)."""
    missing = [c for c in _PROBE_NOISE_COLUMNS if c not in table.columns]
    if missing:
        raise ConfigError(
            f"probe_noise must have columns {list(_PROBE_NOISE_COLUMNS)}; got "
            f"{list(table.columns)} (missing {missing}). Build it with "
            "traindyn.capture.probe_noise."
        )
    noise = pd.to_numeric(table["noise"], errors="coerce").astype("float64")
    finite = table.assign(
        layer=table["layer"].astype(str), metric=table["metric"].astype(str), noise=noise
    )
    finite = finite[np.isfinite(finite["noise"].to_numpy())]
    if finite.empty:
        return _empty_probe_floor()
    grouped = finite.groupby(["layer", "metric"], sort=True)["noise"]
    out: pd.DataFrame = grouped.agg(noise="median", n_steps="count").reset_index()
    return out.astype({"layer": "object", "metric": "object", "n_steps": "int64"})


def _floor_by_series(probe_floor: pd.DataFrame) -> dict[tuple[str, str], float]:
    """(layer, metric) -> noise, the mapping :func:`detect_jumps` takes."""
    keys = zip(probe_floor["layer"].astype(str), probe_floor["metric"].astype(str), strict=True)
    values = probe_floor["noise"].to_numpy(np.float64).tolist()
    return dict(zip(keys, values, strict=True))


def write_run_analysis(
    run: Run | str | Path, analysis: RunAnalysis, *, headline: Mapping[str, Any] | None = None
) -> list[Path]:
    """Write every table of ``analysis`` to the run's ``analysis/`` (parquet) and
    ``analysis/summary.json`` (options and headline, computed unless given); returns the
    paths written."""
    r = run if isinstance(run, Run) else Run(run)
    paths = [r.write_analysis(name, table) for name, table in analysis.tables().items()]
    summary = {
        "traindyn_version": __version__,
        "options": analysis.options.to_json(),
        **(headline if headline is not None else analysis.headline()),
    }
    paths.append(r.write_analysis("summary", summary))
    return paths


@dataclass(frozen=True)
class DirectoryAnalysis:
    """:func:`analyze` over a directory: each run's analysis and the pooled tables.

    Attributes
    ----------
    root : Path
    runs : tuple of RunAnalysis
    overview : DataFrame
        One row per run: ``run, arch, dataset, seed, status, events, events_above_floor``,
        the share of change in each temporal window, ``max_coordination``,
        ``mean_coordination``, ``loss_correlation``.
    temporal : DataFrame
        Windows' shares of the change pooled over every run, per metric and overall
        (``metric == "*"``).
    by_arch : DataFrame
        Per architecture: ``n_runs`` and the means of the overview's numeric columns
        (seed 001's "Critical periods by architecture" table).
    seeds : DataFrame
        For every group of two or more runs that differ only in their seed (run ids
        ending in ``_s<seed>``): the final value of every series and scalar over the
        seeds, :func:`~traindyn.analysis.compare.seed_statistics` columns plus ``group``
        and ``table`` (``"metrics"`` or ``"scalars"``; scalars' ``name`` is in
        ``metric``). Seed 003's "Mean, Std, Range" table.
    failed : dict of str to str
        Runs that could not be analysed, with the reason.
    """

    root: Path
    runs: tuple[RunAnalysis, ...]
    overview: pd.DataFrame
    temporal: pd.DataFrame
    by_arch: pd.DataFrame
    seeds: pd.DataFrame
    failed: Mapping[str, str]


def analyze(
    path: str | Path,
    options: AnalysisOptions | None = None,
    *,
    write: bool = True,
    on_run: Callable[[str], None] | None = None,
    workers: int | None = 1,
) -> DirectoryAnalysis:
    """Analyse one run or every run under a directory, and write the tables.

    Parameters
    ----------
    path : str or Path
        A run directory (with ``run.json``) or a directory holding runs at any depth.
    options : AnalysisOptions, optional
    write : bool
        Write each run's tables (:func:`write_run_analysis`) and, for a directory, the
        pooled ``overview``, ``temporal``, ``by_arch`` tables and ``summary.json`` to
        ``path/analysis/``.
    on_run : callable, optional
        Called with each run id after it is analysed (progress bars).
    workers : int or None
        Processes analysing runs in parallel (a spawn pool: each worker imports traindyn,
        about 3.7 s on 2 cores, against ~1.6 s per run with the surrogate evidence and
        ~0.17 s without). None: one per core from 8 runs on (200 with
        ``evidence=False``), else 1. Results do not depend on it.

    Returns
    -------
    DirectoryAnalysis
        For a single run, ``runs`` has one element and the pooled tables cover it.

    Raises
    ------
    RunNotFound
        If ``path`` does not exist or holds no run.
    """
    root = Path(path)
    if not root.exists():
        raise RunNotFound(f"{root} does not exist; pass a run directory or a directory of runs.")
    single = (root / MANIFEST_NAME).is_file()
    dirs = [root] if single else find_run_dirs(root)
    if not dirs:
        raise RunNotFound(
            f"{root} holds no run (no run.json at any depth); run `traindyn ls {root}` to check."
        )
    opts = options or AnalysisOptions()
    n_workers = _n_workers(workers, len(dirs), evidence=(options or AnalysisOptions()).evidence)
    results: list[RunAnalysis] = []
    rows: list[dict[str, Any]] = []
    failed: dict[str, str] = {}
    groups: dict[str, dict[str, tuple[pd.DataFrame, pd.DataFrame]]] = {}
    groups_of: dict[str, tuple[str, Path]] = {}
    for outcome in _map_runs(dirs, opts, write, n_workers, on_run):
        if outcome.error is not None or outcome.result is None:
            failed[outcome.name] = outcome.error or "no result"
            continue
        results.append(outcome.result)
        rows.append(outcome.row)
        groups.setdefault(outcome.group, {})[str(outcome.seed)] = outcome.finals
        groups_of[outcome.result.run_id] = (outcome.group, outcome.path)
    results = _replicate(results, groups_of, opts, write)
    overview = pd.DataFrame(rows)
    temporal = _pooled_temporal(results)
    by_arch = _by_arch(overview)
    seeds = _seed_table(groups)
    out = DirectoryAnalysis(root, tuple(results), overview, temporal, by_arch, seeds, failed)
    if write and not single:
        _write_directory(out, opts)
    return out


@dataclass(frozen=True)
class _Outcome:
    """What a worker sends back for one run directory."""

    name: str
    result: RunAnalysis | None = None
    path: Path = Path()
    row: dict[str, Any] = field(default_factory=dict)
    group: str = ""
    seed: object = None
    finals: tuple[pd.DataFrame, pd.DataFrame] = (pd.DataFrame(), pd.DataFrame())
    error: str | None = None


def _analyze_dir(
    directory: Path, opts: AnalysisOptions, write: bool, others: tuple[Path, ...] = ()
) -> _Outcome:
    """Analyse (and write) one run, with its label-shuffled twins among ``others`` as
    chance bands; any failure is returned, not raised, except a bad option
    (ConfigError), which would fail every run alike."""
    run = Run(directory)
    try:
        metrics, scalars = run.metrics, run.scalars
        bands = _twin_bands(run, directory, others)
        result = analyze_run(run, opts, metrics=metrics, scalars=scalars, controls=bands)
        head = result.headline()
        if write:
            write_run_analysis(run, result, headline=head)
    except ConfigError:
        raise
    except Exception as exc:  # one unreadable run must not stop a suite's analysis
        return _Outcome(directory.name, error=f"{type(exc).__name__}: {exc}")
    group, seed = seed_group(run)
    # Seed statistics use each series' final value: send back only those rows.
    finals = (_last_finite(metrics, ["layer", "metric"]), _last_finite(scalars, ["name"]))
    return _Outcome(
        result.run_id, result, directory, _overview_row(run, result, head), group, seed, finals
    )


def _twin_bands(run: Run, directory: Path, others: tuple[Path, ...]) -> pd.DataFrame | None:
    """Chance bands from the run's label-shuffled twins among ``others`` (suite runs)."""
    config = run.manifest.config
    if not others or not isinstance(config, Mapping) or "experiment" not in config:
        return None
    twins = shuffled_controls(run, [d for d in others if d != directory])
    return shuffled_bands([t.metrics for t in twins]) if twins else None


def _replicate(
    results: list[RunAnalysis],
    groups_of: Mapping[str, tuple[str, Path]],
    opts: AnalysisOptions,
    write: bool,
) -> list[RunAnalysis]:
    """Add ``replicated_in`` / ``n_seeds`` to the events of runs that differ only in their
    seed (and rewrite their ``events`` table)."""
    members: dict[str, list[int]] = {}
    for i, r in enumerate(results):
        members.setdefault(groups_of[r.run_id][0], []).append(i)
    out = list(results)
    for indices in members.values():
        if len(indices) < 2:
            continue
        total = max(results[i].total_steps for i in indices)
        tolerance = round(opts.replication_tolerance * total)
        replicated = replication(
            {results[i].run_id: results[i].events for i in indices}, tolerance=tolerance
        )
        for i in indices:
            r = results[i]
            out[i] = dataclasses.replace(r, events=replicated[r.run_id])
            if write:
                Run(groups_of[r.run_id][1]).write_analysis("events", out[i].events)
    return out


def _last_finite(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if table.empty:
        return table
    finite = table[np.isfinite(table["value"].to_numpy(dtype=np.float64))]
    last: pd.DataFrame = finite.sort_values("step", kind="stable").groupby(keys, sort=False).tail(1)
    return last


# Runs from which a pool pays (see benchmarks/analysis_scale.py): a spawn worker needs
# ~3.7 s to import traindyn (torch, scipy) on 2 cores, while a run takes ~0.17 s without
# the surrogate evidence and ~1.6 s with it.
_PARALLEL_FROM = 200
_PARALLEL_FROM_WITH_EVIDENCE = 8


def _n_workers(workers: int | None, n_runs: int, evidence: bool = False) -> int:
    if workers is None:
        start = _PARALLEL_FROM_WITH_EVIDENCE if evidence else _PARALLEL_FROM
        return max(1, min(os.cpu_count() or 1, n_runs)) if n_runs >= start else 1
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be an integer >= 1 or None; got {workers!r}.")
    return min(workers, n_runs)


def _map_runs(
    dirs: list[Path],
    opts: AnalysisOptions,
    write: bool,
    n_workers: int,
    on_run: Callable[[str], None] | None,
) -> list[_Outcome]:
    """:func:`_analyze_dir` over ``dirs``, in order, in this process or a spawn pool."""
    outcomes: list[_Outcome] = []
    if n_workers == 1:
        for d in dirs:
            outcomes.append(_analyze_dir(d, opts, write, tuple(dirs)))
            if on_run is not None:
                on_run(outcomes[-1].name)
        return outcomes
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn, not fork: forking after torch has started threads can deadlock.
    with ProcessPoolExecutor(n_workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {
            pool.submit(_analyze_dir, d, opts, write, tuple(dirs)): i for i, d in enumerate(dirs)
        }
        done: dict[int, _Outcome] = {}
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            if on_run is not None:
                on_run(done[futures[future]].name)
    return [done[i] for i in range(len(dirs))]


def _overview_row(run: Run, result: RunAnalysis, head: Mapping[str, Any]) -> dict[str, Any]:
    config = run.manifest.config
    experiment = config.get("experiment") if isinstance(config, Mapping) else None
    exp = experiment if isinstance(experiment, Mapping) else {}
    row: dict[str, Any] = {
        "run": result.run_id,
        "arch": exp.get("arch"),
        "dataset": exp.get("dataset"),
        "seed": exp.get("seed"),
        "status": run.status,
        "events": head["events"],
        "events_above_floor": head["events_above_floor"],
        "events_surviving": head["events_surviving"],
    }
    for window in result.options.temporal_names:
        row[f"share_{window}"] = head["change_share"].get(window)
    for key in ("max_coordination", "mean_coordination", "loss_correlation"):
        row[key] = head[key]
    return row


def seed_group(run: Run) -> tuple[str, object]:
    """Group name (the run id without its ``_s<seed>`` suffix) and seed of a suite run.

    Runs that differ only in their seed share a group; a run with no seed in its
    experiment config is its own group, with seed None.
    """
    config = run.manifest.config
    experiment = config.get("experiment") if isinstance(config, Mapping) else None
    seed = experiment.get("seed") if isinstance(experiment, Mapping) else None
    if seed is None:
        return run.id, None
    return re.sub(rf"_s{seed}$", "", run.id), seed


def _seed_table(
    groups: Mapping[str, Mapping[str, tuple[pd.DataFrame, pd.DataFrame]]],
) -> pd.DataFrame:
    frames = []
    for group, members in groups.items():
        if len(members) < 2:
            continue
        metric_tables = {k: m for k, (m, _) in members.items() if len(m)}
        scalar_tables = {k: s for k, (_, s) in members.items() if len(s)}
        if len(metric_tables) >= 2:
            frames.append(seed_statistics(metric_tables).assign(group=group, table="metrics"))
        if len(scalar_tables) >= 2:
            table = seed_statistics(scalar_tables).rename(columns={"name": "metric"})
            frames.append(table.assign(group=group, table="scalars"))
    if not frames:
        return pd.DataFrame(
            columns=["group", "table", "layer", "metric", "n_seeds", "mean", "std", "min", "max"]
        )
    table = pd.concat(frames, ignore_index=True)
    first = ["group", "table", "layer", "metric"]
    return table[first + [c for c in table.columns if c not in first]]


def _pooled_temporal(results: list[RunAnalysis]) -> pd.DataFrame:
    frames = [r.temporal.assign(run=r.run_id) for r in results if len(r.temporal)]
    if not frames:
        return pd.DataFrame(columns=["metric", "window", "change", "signal", "share"])
    every = pd.concat(frames, ignore_index=True)
    per_metric = pool_temporal(every, by=("metric",))
    overall = pool_temporal(every).assign(metric="*")
    return pd.concat([overall, per_metric], ignore_index=True)[
        ["metric", "window", "change", "signal", "share"]
    ]


def _by_arch(overview: pd.DataFrame) -> pd.DataFrame:
    if overview.empty or overview["arch"].isna().all():
        return pd.DataFrame(columns=["arch", "n_runs"])
    numeric = [
        c
        for c in overview.columns
        if c not in ("run", "arch", "dataset", "seed", "status")
        and pd.api.types.is_numeric_dtype(overview[c])
    ]
    grouped = overview.groupby("arch", sort=True)
    table = grouped[numeric].mean()
    table.insert(0, "n_runs", grouped.size())
    return table.reset_index()


def _write_directory(result: DirectoryAnalysis, opts: AnalysisOptions) -> None:
    """Write the pooled tables with the store's atomic writer, under ``root/analysis``."""
    directory = result.root / "analysis"
    for name, table in (
        ("overview", result.overview),
        ("temporal", result.temporal),
        ("by_arch", result.by_arch),
        ("seeds", result.seeds),
    ):
        write_analysis_file(directory, name, table)
    pooled = {
        row.window: _num(row.share)
        for row in result.temporal[result.temporal["metric"] == "*"].itertuples()
    }
    write_analysis_file(
        directory,
        "summary",
        {
            "traindyn_version": __version__,
            "options": opts.to_json(),
            "runs": len(result.runs),
            "failed": dict(result.failed),
            "change_share": pooled,
            "events": int(sum(len(r.events) for r in result.runs)),
            "events_above_floor": int(sum(len(r.surviving) for r in result.runs)),
        },
    )
