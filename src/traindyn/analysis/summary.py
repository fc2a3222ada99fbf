"""Per-run summaries: final scalars and each metric's first and last value per layer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import pandas as pd

from traindyn.exceptions import TraindynError
from traindyn.store import Run
from traindyn.store.runs import Runs

__all__ = ["RunSummary", "SuiteSummary", "summarize_run", "summarize_suite"]


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
    return _summarize(run, run.metrics, run.scalars)


def _summarize(run: Run, metrics: pd.DataFrame, scalars: pd.DataFrame) -> RunSummary:
    """Guts of :func:`summarize_run` on tables already read."""
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


@dataclass(frozen=True)
class SuiteSummary:
    """A suite's experiments side by side, and statistics over seeds.

    Attributes
    ----------
    runs : tuple of RunSummary
        Each run's own summary (per-layer first/last values), in the order of the rows.
    experiments : DataFrame
        One row per run: ``run, group, seed, status, last_step, final_loss,
        final_probe_accuracy, monitor, initial, best, best_step, stopped_early``. The
        objective (``monitor``) is the early-stopping monitor, or else the probe
        accuracy (``best`` its maximum over the run, ``initial`` its first value).
    groups : DataFrame
        One row per group of runs that differ only in their seed: ``group, n, monitor``
        and ``best_mean, best_std, best_min, best_max`` (same for ``final_loss`` and
        ``final_probe_accuracy``), and ``init_best_spearman``: Spearman's rank
        correlation between the first and the best monitored value across the seeds
        (seed 003 found 0.92: the initial state largely determined the best one); NaN
        with fewer than 3 seeds or a constant column.
    """

    runs: tuple[RunSummary, ...]
    experiments: pd.DataFrame
    groups: pd.DataFrame


def summarize_suite(runs: Runs) -> SuiteSummary:
    """Summarise every run of a suite directory (reads ``analysis/training.json``)."""
    from scipy.stats import spearmanr

    rows = []
    per_run = []
    for run_id in runs.ids:
        run = runs[run_id]
        scalars = run.scalars  # read once: the summary and the objective both need it
        summary = _summarize(run, run.metrics, scalars)
        per_run.append(summary)
        try:
            read = run.read_analysis("training")
        except TraindynError:  # a failed run has none
            read = {}
        outcome = read if isinstance(read, dict) else {}
        config = run.manifest.config
        experiment = config.get("experiment") if isinstance(config, dict) else None
        seed = experiment.get("seed") if isinstance(experiment, dict) else None
        name = str(run_id)
        group = re.sub(rf"_s{seed}$", "", name) if seed is not None else name
        rows.append(
            {
                "run": name,
                "group": group,
                "seed": seed,
                "status": summary.status,
                "last_step": summary.last_step,
                "final_loss": summary.final.get("loss", math.nan),
                "final_probe_accuracy": summary.final.get("probe_accuracy", math.nan),
                **_objective(scalars, outcome),
                "stopped_early": bool(outcome.get("stopped_early", False)),
            }
        )
    experiments = pd.DataFrame(rows, columns=_EXPERIMENT_COLUMNS)
    groups = []
    for group_name, g in experiments.groupby("group", sort=False):
        row: dict[str, object] = {"group": group_name, "n": len(g), "monitor": g["monitor"].iloc[0]}
        for column in ("best", "final_loss", "final_probe_accuracy"):
            values = g[column].astype(float)
            row[f"{column}_mean"] = values.mean()
            row[f"{column}_std"] = values.std(ddof=1) if len(values) > 1 else math.nan
            row[f"{column}_min"] = values.min()
            row[f"{column}_max"] = values.max()
        pairs = g[["initial", "best"]].astype(float).dropna()
        rho = math.nan
        if len(pairs) >= 3 and pairs["initial"].nunique() > 1 and pairs["best"].nunique() > 1:
            rho = float(spearmanr(pairs["initial"], pairs["best"]).statistic)
        row["init_best_spearman"] = rho
        groups.append(row)
    return SuiteSummary(runs=tuple(per_run), experiments=experiments, groups=pd.DataFrame(groups))


_EXPERIMENT_COLUMNS = [
    "run",
    "group",
    "seed",
    "status",
    "last_step",
    "final_loss",
    "final_probe_accuracy",
    "monitor",
    "initial",
    "best",
    "best_step",
    "stopped_early",
]


def _objective(scalars: pd.DataFrame, outcome: dict[str, object]) -> dict[str, object]:
    """The tracked objective: the early-stopping monitor, else the highest probe accuracy."""
    if outcome.get("monitor") is not None:
        return {
            "monitor": outcome["monitor"],
            "initial": _num(outcome.get("initial_value")),
            "best": _num(outcome.get("best_value")),
            "best_step": outcome.get("best_step"),
        }
    acc = scalars[scalars["name"] == "probe_accuracy"]
    if acc.empty:
        return {"monitor": None, "initial": math.nan, "best": math.nan, "best_step": None}
    values = acc["value"].to_numpy()
    at = int(values.argmax())
    return {
        "monitor": "probe_accuracy",
        "initial": float(values[0]),
        "best": float(values[at]),
        "best_step": int(acc["step"].iloc[at]),
    }


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float) else math.nan
