"""PNG figures beside the HTML report: the main panels, drawn with matplotlib for papers.

A run's figures go to ``RUN/figures/`` (``heatmap-<metric>.png``,
``trajectories-<metric>.png`` with events, critical periods, phases and the loss /
accuracy / confidence panels, ``temporal-<metric>.png``, ``convergence.png``,
``event-types.png``, ``cka-<n>.png``); a suite's own panels to ``DIR/figures/``
(``arch-comparison.png``, ``temporal.png``, ``bands-<metric>.png``). Every figure uses
all samples (no display downsampling).
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from traindyn.report.data import SCALAR_PANELS, analysis_table, directory_table
from traindyn.store import Run

__all__ = ["report_figures", "run_figures", "suite_figures"]

FIGURES_DIR = "figures"


def _safe(name: str) -> str:
    """A file-name-safe version of a metric or layer name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _read(run: Run, name: str) -> pd.DataFrame | None:
    table = analysis_table(run, name)
    return table if table is not None and not table.empty else None


def _panel_scalars(scalars: pd.DataFrame) -> list[str]:
    """One scalar per panel of :data:`SCALAR_PANELS` (the probe's when recorded)."""
    names = [str(n) for n in pd.unique(scalars["name"])] if not scalars.empty else []
    chosen: list[str] = []
    for keys in SCALAR_PANELS.values():
        matching = [n for n in names if any(k in n for k in keys) and n not in chosen]
        probe = [n for n in matching if n.startswith("probe_")]
        exact = [n for n in matching if n in keys]
        pick = exact or probe or matching
        if pick:
            chosen.append(pick[0])
    return chosen


def run_figures(run: Run) -> list[Path]:
    """Write one run's figures to ``RUN/figures/`` and return their paths."""
    from traindyn.report import figures as fig

    out = run.path / FIGURES_DIR
    metrics = run.metrics
    written: list[Path] = []
    if metrics.empty:
        return written
    scalars = run.scalars
    names = _panel_scalars(scalars)
    events, critical, phases = (
        _read(run, "events"),
        _read(run, "critical_periods"),
        _read(run, "phases"),
    )
    temporal = _read(run, "temporal")
    for metric in (str(m) for m in pd.unique(metrics["metric"])):
        stem = _safe(metric)
        written.append(
            fig.heatmap(
                metrics, metric, path=out / f"heatmap-{stem}.png", title=f"{run.id}: {metric}"
            )
        )
        written.append(
            fig.trajectories(
                metrics,
                metric,
                path=out / f"trajectories-{stem}.png",
                scalars=scalars if names else None,
                scalar_names=names or None,
                title=f"{run.id}: {metric} by layer",
                events=events,
                critical=critical,
                phases=phases,
            )
        )
        if temporal is not None and metric in set(temporal["metric"]):
            written.append(
                fig.temporal(temporal, by="layer", metric=metric, path=out / f"temporal-{stem}.png")
            )
    convergence = _read(run, "convergence")
    if convergence is not None:
        written.append(fig.convergence(convergence, path=out / "convergence.png"))
    if events is not None:
        written.append(fig.event_types(events, path=out / "event-types.png"))
    matrices: dict[str, tuple[list[str], object]] = {}
    for table in ("checkpoint_comparison_across_steps", "checkpoint_comparison_across_layers"):
        stored = _read(run, table)
        if stored is not None:
            matrices.update(fig.cka_matrices(stored))
    for i, (title, (labels, matrix)) in enumerate(matrices.items()):
        written.append(
            fig.cka_matrix(
                matrix, labels=labels, title=f"{run.id}: {title}", path=out / f"cka-{i}.png"
            )
        )
    return written


def suite_figures(root: Path, runs: Sequence[Run]) -> list[Path]:
    """Write a suite's own figures (architectures, temporal, seed bands) to ``DIR/figures/``."""
    from traindyn.analysis import seed_bands, seed_group
    from traindyn.report import figures as fig

    out = root / FIGURES_DIR
    written: list[Path] = []
    by_arch = directory_table(root, "by_arch")
    if by_arch is not None and not by_arch.empty:
        written.append(fig.arch_comparison(by_arch, path=out / "arch-comparison.png"))
    temporal = directory_table(root, "temporal")
    if temporal is not None and not temporal.empty:
        written.append(fig.temporal(temporal, path=out / "temporal.png"))
    groups = {r.id: seed_group(r)[0] for r in runs}
    sizes = pd.Series(groups).value_counts()
    multi = {i: g for i, g in groups.items() if sizes[g] >= 2}
    if multi:
        by_id = {r.id: r for r in runs}
        table = pd.concat([by_id[i].metrics.assign(run=i) for i in multi], ignore_index=True)
        bands = seed_bands(table, multi)
        for metric in (str(m) for m in pd.unique(bands["metric"])):
            written.append(fig.bands(bands, metric, path=out / f"bands-{_safe(metric)}.png"))
    return written


def _run_figures_at(path: Path) -> list[Path]:
    """:func:`run_figures` by path (what a pool worker receives)."""
    return run_figures(Run(path))


# Measured (quick suite, 2 cores): ~2.9 s of drawing per run against ~3 s to start a
# spawn worker, so a pool pays from a handful of runs on.
_POOL_FROM_RUNS = 4


def report_figures(
    root: Path,
    runs: Sequence[Run],
    *,
    single: bool,
    each_run: bool = False,
    workers: int | None = None,
) -> list[Path]:
    """The PNG figures of a report: a run's, or a suite's (and each run's if asked).

    Parameters
    ----------
    workers : int or None
        Processes drawing the runs' figures (``each_run``). None: one per core from
        :data:`_POOL_FROM_RUNS` runs on, else 1. The figures do not depend on it.
    """
    if single:
        return run_figures(runs[0])
    written = suite_figures(root, runs)
    if not each_run:
        return written
    n_workers = workers or (
        min(os.cpu_count() or 1, len(runs)) if len(runs) >= _POOL_FROM_RUNS else 1
    )
    if n_workers <= 1:
        for run in runs:
            written += run_figures(run)
        return written
    context = multiprocessing.get_context("spawn")  # no fork of a threaded parent
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=context) as pool:
        for paths in pool.map(_run_figures_at, [r.path for r in runs]):
            written += paths
    return written
