"""Report: pages and figures drawn from a run's tables; never computes a metric.

* :func:`report` writes ``report.html`` for a run or a suite (self-contained: scripts
  and data inlined) and PNG figures (:mod:`~traindyn.report.figures`, matplotlib, one
  function per figure taking tables) beside it; :func:`compare` puts two runs side by
  side; :func:`make_server` is the live view of ``traindyn serve``.
* :func:`run_data` / :func:`directory_data` are the JSON payloads the pages draw.

matplotlib and plotly are imported only when a figure or page is made.
"""

from __future__ import annotations

from traindyn.report.build import Report, compare, report
from traindyn.report.data import compare_data, directory_data, run_data
from traindyn.report.figures import (
    arch_comparison,
    arch_comparison_figure,
    bands,
    bands_figure,
    cka_matrices,
    cka_matrix,
    cka_matrix_figure,
    convergence,
    convergence_figure,
    event_types,
    event_types_figure,
    heatmap,
    heatmap_figure,
    temporal,
    temporal_figure,
    trajectories,
    trajectories_figure,
)
from traindyn.report.serve import LiveServer, make_server

__all__ = [
    "LiveServer",
    "Report",
    "arch_comparison",
    "arch_comparison_figure",
    "bands",
    "bands_figure",
    "cka_matrices",
    "cka_matrix",
    "cka_matrix_figure",
    "compare",
    "compare_data",
    "convergence",
    "convergence_figure",
    "directory_data",
    "event_types",
    "event_types_figure",
    "heatmap",
    "heatmap_figure",
    "make_server",
    "report",
    "run_data",
    "temporal",
    "temporal_figure",
    "trajectories",
    "trajectories_figure",
]
