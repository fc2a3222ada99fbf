"""Analysis: tables in, tables and dataclasses out; never trains, never draws.

One function per question the seeds asked, each on a run's long tables:

* :func:`series_of`, :func:`layer_depths`: a metrics table as trajectories;
* :func:`convergence`: when each layer stabilises, and the order across depth;
* :func:`detect_jumps`, :func:`jump_types`: change points judged against the noise floor
  (:mod:`~traindyn.analysis.noise`), typed by k-means;
* :func:`critical_periods`: velocity, coordination, loss correlation, and
  :func:`coordination_null`: what chance alone gives for both;
* :func:`event_evidence`: each event's shape (step, slope change or drift), p-values
  against surrogate nulls, Benjamini-Hochberg q-values and survival;
  :func:`replication` across seeds; :func:`evaluate` scores any detector on fixtures
  with known answers (``traindyn validate``);
* :func:`different_from_chance`: tracked values against null-control bands;
* :func:`temporal_distribution`: the share of change early, mid and late;
* :func:`phase_summary`, :func:`compare_runs`, :func:`seed_statistics`, :func:`seed_bands`,
  :func:`early_best_correlation`: phases, run-vs-run and multi-seed statistics;
* :func:`cka_matrix` and the architecture-specific similarities of checkpoints (pure
  functions of :mod:`traindyn.metrics`, re-exported; measuring checkpoints is
  :func:`traindyn.capture.compare_checkpoints`);
* :func:`milestones`: loss, match rate and confidence on right and wrong answers at
  15, 30, 50 and 100% of training;
* :mod:`~traindyn.analysis.predictions`: pre-registered predictions, locked before a
  run and judged after it;
* :func:`analyze_run` / :func:`analyze`: all of it, written to ``analysis/``.
"""

from traindyn.analysis import predictions
from traindyn.analysis.baselines import chance_coordination, coordination_null
from traindyn.analysis.chance import (
    chance_bands,
    different_from_chance,
    gaussian_surrogate,
    shuffled_bands,
    shuffled_controls,
)
from traindyn.analysis.compare import (
    Comparison,
    Correlation,
    bootstrap_ci,
    compare_all,
    compare_runs,
    early_best_correlation,
    seed_bands,
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
    seed_group,
    write_run_analysis,
)
from traindyn.analysis.evidence import (
    NullDistribution,
    event_evidence,
    event_shapes,
    replication,
    scan_null,
    tail_pvalue,
)
from traindyn.analysis.harness import (
    DEFAULT_DETECTOR,
    Evaluation,
    Fixture,
    FixtureSizes,
    Verdict,
    VerdictRule,
    builtin_detectors,
    builtin_fixtures,
    detector_names,
    evaluate,
    fixtures_from_run,
    get_detector,
    match_events,
    planted_fixtures,
    score_detector,
)
from traindyn.analysis.jumps import (
    JumpTypes,
    detect_jumps,
    jump_types,
    pelt,
    scan_peaks,
    zscore_events,
)
from traindyn.analysis.milestones import MILESTONE_COLUMNS, milestones
from traindyn.analysis.noise import (
    AR1,
    ar1_noise,
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
from traindyn.analysis.transitions import (
    AccuracyJump,
    accuracy_jump,
    accuracy_jump_step,
    first_step_reaching,
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
    "AR1",
    "DEFAULT_DETECTOR",
    "MILESTONE_COLUMNS",
    "AccuracyJump",
    "AnalysisOptions",
    "AttentionSimilarity",
    "Comparison",
    "Convergence",
    "Correlation",
    "CriticalPeriods",
    "DirectoryAnalysis",
    "Evaluation",
    "FilterSimilarity",
    "Fixture",
    "FixtureSizes",
    "HiddenUnitStats",
    "JumpTypes",
    "NullDistribution",
    "Phase",
    "RunAnalysis",
    "RunSummary",
    "Series",
    "SuiteSummary",
    "Verdict",
    "VerdictRule",
    "accuracy_jump",
    "accuracy_jump_step",
    "analyze",
    "analyze_run",
    "ar1_noise",
    "attention_entropy",
    "attention_similarity",
    "bootstrap_ci",
    "builtin_detectors",
    "builtin_fixtures",
    "chance_bands",
    "chance_coordination",
    "cka_matrix",
    "compare_all",
    "compare_runs",
    "convergence",
    "convergence_order",
    "coordination_null",
    "critical_periods",
    "detect_jumps",
    "detector_names",
    "different_from_chance",
    "early_best_correlation",
    "equal_phases",
    "evaluate",
    "event_evidence",
    "event_shapes",
    "filter_similarity",
    "first_step_reaching",
    "fixtures_from_run",
    "format_change",
    "fraction_windows",
    "gaussian_surrogate",
    "get_detector",
    "half_sample_noise",
    "half_sample_spread",
    "hidden_unit_stats",
    "jump_types",
    "layer_depths",
    "match_events",
    "milestones",
    "order_class",
    "pelt",
    "phase_summary",
    "phases_of",
    "planted_fixtures",
    "planted_metrics",
    "pool_temporal",
    "precision_floor",
    "predictions",
    "quantum",
    "replication",
    "scan_null",
    "scan_peaks",
    "score_detector",
    "seed_bands",
    "seed_group",
    "seed_statistics",
    "series_of",
    "shuffled_bands",
    "shuffled_controls",
    "summarize_run",
    "summarize_suite",
    "tail_pvalue",
    "temporal_distribution",
    "total_steps_of",
    "trajectory",
    "trajectory_noise",
    "write_run_analysis",
    "zscore_events",
]
