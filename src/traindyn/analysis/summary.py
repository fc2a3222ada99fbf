"""Per-run summaries: final scalars and each metric's first and last value per layer."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from traindyn.store import Run

__all__ = ["RunSummary", "summarize_run"]


@dataclass(frozen=True)
class RunSummary:
    """What a run ended with.

    Attributes
    ----------
    run_id, status : str
    last_step : int
        Largest step with any recorded row (-1 for an empty run).
    final : dict of str to float
        Last recorded value of every scalar (``loss``, ``probe_accuracy``...).
    layers : DataFrame
        Columns ``layer, metric, first, last, change``; ``first``/``last`` are the first
        and last finite values (NaN when a layer never had one).
    """

    run_id: str
    status: str
    last_step: int
    final: dict[str, float]
    layers: pd.DataFrame


def summarize_run(run: Run) -> RunSummary:
    """Summarise one run from its tables (pure reading; nothing is written).

    Examples
    --------
    The summary of a run with ``participation_ratio`` going 3.0 -> 2.0 on layer ``fc``
    has ``first == 3.0``, ``last == 2.0`` and ``change == -1.0``.
    """
    metrics, scalars = run.metrics, run.scalars
    final: dict[str, float] = {}
    if not scalars.empty:
        last = scalars.sort_values("step").groupby("name", sort=True)["value"].last()
        final = {str(k): float(v) for k, v in last.items()}
    finite = metrics[metrics["value"].map(math.isfinite)] if not metrics.empty else metrics
    if finite.empty:
        layers = pd.DataFrame(columns=["layer", "metric", "first", "last", "change"])
    else:
        ordered = finite.sort_values("step", kind="stable")
        grouped = ordered.groupby(["layer", "metric"], sort=False)["value"]
        layers = pd.DataFrame({"first": grouped.first(), "last": grouped.last()}).reset_index()
        layers["change"] = layers["last"] - layers["first"]
    steps = [int(t["step"].max()) for t in (metrics, scalars) if not t.empty]
    return RunSummary(
        run_id=run.id,
        status=run.status,
        last_step=max(steps) if steps else -1,
        final=final,
        layers=layers,
    )
