"""Report: figures (and later HTML) drawn from a run's tables; never computes a metric.

matplotlib is imported only when a figure is drawn.
"""

from __future__ import annotations

from traindyn.report.figures import heatmap, heatmap_figure, trajectories, trajectories_figure

__all__ = ["heatmap", "heatmap_figure", "trajectories", "trajectories_figure"]
