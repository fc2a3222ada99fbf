"""Analysis: tables in, tables and dataclasses out; never trains, never draws.

One function per question the seeds asked, each on a run's long tables:

* :func:`series_of`, :func:`layer_depths`: a metrics table as trajectories;
* :func:`convergence`: when each layer stabilises, and the order across depth;
* :func:`detect_jumps`, :func:`jump_types`: change points judged against the noise floor
  (:mod:`~traindyn.analysis.noise`), typed by k-means;
* :func:`critical_periods`: velocity, coordination, loss correlation;
* :func:`temporal_distribution`: the share of change early, mid and late;
* :func:`phase_summary`, :func:`compare_runs`, :func:`seed_statistics`,
  :func:`early_best_correlation`: phases, run-vs-run and multi-seed statistics;
* :func:`cka_matrix` and the architecture-specific similarities of checkpoints (pure
  functions of :mod:`traindyn.metrics`, re-exported; measuring checkpoints is
  :func:`traindyn.capture.compare_checkpoints`);
* :func:`analyze_run` / :func:`analyze`: all of it, written to ``analysis/``.
"""

from traindyn.analysis.compare import (
    Comparison,
    Correlation,
    bootstrap_ci,
    compare_all,
    compare_runs,
    early_best_correlation,
    seed_statistics,
)
from traindyn.analysis.convergence import Convergence, convergence, convergence_order, order_class
from traindyn.analysis.critical_periods import CriticalPeriods, critical_periods
from traindyn.analysis.engine import (
    AnalysisOptions,
    DirectoryAnalysis,
    RunAnalysis,
    analyze,
    analyze_run,
    write_run_analysis,
)
from traindyn.analysis.jumps import JumpTypes, detect_jumps, jump_types, pelt, zscore_events
from traindyn.analysis.noise import (
    half_sample_noise,
    half_sample_spread,
    precision_floor,
    quantum,
    trajectory_noise,
)
from traindyn.analysis.phases import (
    Phase,
    equal_phases,
    format_change,
    fraction_windows,
    phase_summary,
    phases_of,
)
from traindyn.analysis.summary import RunSummary, SuiteSummary, summarize_run, summarize_suite
from traindyn.analysis.synthetic import planted_metrics, trajectory
from traindyn.analysis.trajectories import (
    Series,
    layer_depths,
    pool_temporal,
    series_of,
    temporal_distribution,
    total_steps_of,
)
from traindyn.metrics import (
    AttentionSimilarity,
    FilterSimilarity,
    HiddenUnitStats,
    attention_entropy,
    attention_similarity,
    cka_matrix,
    filter_similarity,
    hidden_unit_stats,
)

__all__ = [
    "AnalysisOptions",
    "AttentionSimilarity",
    "Comparison",
    "Convergence",
    "Correlation",
    "CriticalPeriods",
    "DirectoryAnalysis",
    "FilterSimilarity",
    "HiddenUnitStats",
    "JumpTypes",
    "Phase",
    "RunAnalysis",
    "RunSummary",
    "Series",
    "SuiteSummary",
    "analyze",
    "analyze_run",
    "attention_entropy",
    "attention_similarity",
    "bootstrap_ci",
    "cka_matrix",
    "compare_all",
    "compare_runs",
    "convergence",
    "convergence_order",
    "critical_periods",
    "detect_jumps",
    "early_best_correlation",
    "equal_phases",
    "filter_similarity",
    "format_change",
    "fraction_windows",
    "half_sample_noise",
    "half_sample_spread",
    "hidden_unit_stats",
    "jump_types",
    "layer_depths",
    "order_class",
    "pelt",
    "phase_summary",
    "phases_of",
    "planted_metrics",
    "pool_temporal",
    "precision_floor",
    "quantum",
    "seed_statistics",
    "series_of",
    "summarize_run",
    "summarize_suite",
    "temporal_distribution",
    "total_steps_of",
    "trajectory",
    "trajectory_noise",
    "write_run_analysis",
    "zscore_events",
]
