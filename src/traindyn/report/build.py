"""``traindyn report`` and ``traindyn compare``: pages of a run, a suite, or two runs.

A page is built from what the store holds. The report draws what analysis wrote to
``analysis/``; :func:`report` runs the analysis first for finished runs that have none
(``analyse=False`` skips that, and the page then says what is missing). Nothing here
computes a metric (DESIGN: report draws).
"""

from __future__ import annotations

import html
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from traindyn.exceptions import RunNotFound
from traindyn.report.data import (
    DEFAULT_MAX_POINTS,
    analysis_json,
    analysis_table,
    compare_data,
    directory_data,
    directory_table,
    run_data,
)
from traindyn.report.html import (
    key_values,
    page,
    plot_html,
    section,
    select_html,
    table_html,
)
from traindyn.store import Run
from traindyn.store.run import MANIFEST_NAME, find_run_dirs

__all__ = ["Report", "compare", "compare_page", "directory_page", "report", "run_page"]

REPORT_NAME = "report.html"
COMPARE_NAME = "compare.html"
_EVENT_COLUMNS = {
    "layer": "layer",
    "metric": "metric",
    "step": "step",
    "shape": "shape",
    "delta": "change",
    "snr": "ratio to floor",
    "p_value": "p",
    "q_value": "q (BH)",
    "p_block": "p (block null)",
    "replicated_in": "seeds with it",
    "n_seeds": "of seeds",
    "type": "jump type",
}


@dataclass(frozen=True)
class Report:
    """A written page and what it cost.

    Attributes
    ----------
    path : Path
        The HTML file.
    size_bytes : int
        Its size.
    seconds : float
        Wall-clock time to read, build and write it (PNG figures included).
    n_runs : int
        Runs on the page.
    figures : tuple of Path
        PNG figures written beside it.
    analysed : tuple of str
        Runs the report analysed first because they had no analysis.
    """

    path: Path
    size_bytes: int
    seconds: float
    n_runs: int
    figures: tuple[Path, ...] = ()
    analysed: tuple[str, ...] = field(default=())


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s" if hours else f"{minutes}m {secs:02d}s"


def _headline(summary: Mapping[str, Any] | None) -> dict[str, Any]:
    if summary is None:
        return {}
    out: dict[str, Any] = {
        "candidate events": summary.get("events"),
        "above the noise floor": summary.get("events_above_floor"),
        "surviving (q ≤ alpha, not drift)": summary.get("events_surviving"),
    }
    for key, label in (
        ("mean_coordination", "mean coordination"),
        ("loss_correlation", "loss correlation"),
    ):
        if summary.get(key) is not None:
            null, p = summary.get(f"{key}_null"), summary.get(f"{key}_p")
            chance = (
                f" (chance {null:.2f}, p = {p:.3f})" if null is not None and p is not None else ""
            )
            out[label] = f"{summary[key]:.2f}{chance}"
    share = summary.get("change_share") or {}
    if share:
        out["change share"] = ", ".join(f"{k} {v:.0%}" for k, v in share.items() if v is not None)
    order = summary.get("convergence_order") or {}
    if order:
        out["convergence order"] = ", ".join(f"{k}: {v}" for k, v in order.items())
    for control, value in (summary.get("different_from_chance") or {}).items():
        out[f"different from {control}"] = f"{value:.0%} of samples"
    options = summary.get("options") or {}
    if options:
        out["detector"] = (
            f"{options.get('detector')}, FDR alpha {options.get('alpha')}, floor ratio "
            f"≥ {options.get('min_snr')}, null {options.get('null')}"
        )
    return out


def _what_was_run(data: Mapping[str, Any], run: Run) -> str:
    from traindyn.report.data import header

    head = header(run)
    times = {
        "status": run.status + (" (writer gone: killed?)" if run.is_stale else ""),
        "started": head["created"],
        "finished": head["finished"] or "not finished",
        "duration": _duration(head["duration_s"]),
        "host": head["host"],
        "samples": data["downsample"]["n_samples"],
    }
    if head["error"]:
        times["error"] = head["error"]
    lock = run.manifest.predictions
    if lock is not None:
        times["predictions locked"] = (
            f"{lock.locked_at.isoformat(timespec='seconds')}, sha256 {lock.sha256[:12]}"
            + (f" LATE (after {lock.rows_at_lock} rows)" if lock.late else ", before any data")
        )
    return (
        '<div class="td-cards">'
        + key_values(head["config"], title="Config")
        + key_values(head["model"], title="Model")
        + key_values(head["probe"], title="Probe")
        + key_values({**times, **head["versions"]}, title="Run and versions")
        + "</div>"
    )


def _run_block(run: Run, data: Mapping[str, Any]) -> str:
    """Every panel of one run (a report's body, or one run of a suite report)."""
    metrics = list(data["metrics"])
    summary = analysis_json(run, "summary")
    events = analysis_table(run, "events")
    parts = [_what_was_run(data, run)]
    if summary is None:
        parts.append(
            '<p class="td-note">This run has no analysis yet: events, critical periods, '
            "convergence and the temporal distribution appear after "
            f"<code>traindyn analyze {html.escape(str(run.path))}</code> (the report runs "
            "it for finished runs unless --no-analyze).</p>"
        )
    else:
        parts.append(key_values(_headline(summary), title="Analysis headline"))
        for note in summary.get("notes") or []:
            parts.append(f'<p class="td-note">{html.escape(str(note))}</p>')
    if not metrics:
        parts.append('<p class="td-note">No metric rows recorded yet.</p>')
    parts.append(
        '<div class="td-controls">'
        + select_html(
            "td-metric", metrics, label="metric", selected=metrics[0] if metrics else None
        )
        + "</div>"
    )
    parts.append("<h3>Layer × step heatmap</h3>" + plot_html("heatmap"))
    parts.append(
        "<h3>Trajectories</h3>"
        + plot_html(
            "trajectories",
            tall=True,
            caption="Dashed lines: surviving events (layer colour). Tinted spans: critical "
            "periods. Grey bands: training phases. Dotted bands: null-control range "
            "(analyze --controls), when measured. Below: loss, accuracy (match rate) and "
            "confidence.",
        )
    )
    if summary is None:
        return "".join(parts)  # a run still training (or never analysed): no more panels
    surviving = None
    if events is not None and not events.empty and "survives" in events.columns:
        surviving = events.loc[events["survives"].fillna(False).astype(bool)]
    n_candidates = 0 if events is None else len(events)
    parts.append(
        "<h3>Events that survive their evidence</h3>"
        + '<div class="td-scroll">'
        + table_html(
            surviving,
            _EVENT_COLUMNS,
            caption=f"{0 if surviving is None else len(surviving)} of {n_candidates} candidate "
            "events survive (not drift, ratio to the noise floor ≥ the threshold, q ≤ alpha). "
            "Every candidate is in analysis/events.parquet.",
            empty="No surviving events (or the run is not analysed).",
        )
        + "</div>"
    )
    types_plot = (
        plot_html("event-types")
        if data["events"]
        else '<p class="td-empty">No surviving events to type.</p>'
    )
    parts.append(
        "<h3>Jump types</h3>"
        + types_plot
        + table_html(
            analysis_table(run, "event_types"),
            {
                "type": "type",
                "n": "events",
                "magnitude": "magnitude",
                "speed": "speed",
                "phase": "phase (fraction of training)",
            },
            caption="k-means clusters of the events (seed 001).",
            empty="No jump types.",
        )
    )
    parts.append(
        "<h3>Convergence</h3>"
        + (plot_html("convergence") if data["convergence"] else "")
        + table_html(
            analysis_table(run, "convergence_order"),
            ("metric", "n_layers", "rho", "p_value", "order"),
            caption="Order across depth: Spearman rho of stabilisation step against depth.",
            empty="No convergence table.",
        )
    )
    if data["temporal"]:
        parts.append("<h3>Temporal distribution of change</h3>" + plot_html("temporal"))
    parts.append(
        "<h3>Critical periods against chance</h3>"
        + table_html(
            analysis_table(run, "critical_null"),
            {
                "metric": "metric",
                "n_layers": "layers",
                "mean_coordination": "mean coordination",
                "mean_coordination_null": "chance",
                "mean_coordination_p": "p",
                "loss_correlation": "loss correlation",
                "loss_correlation_null": "chance",
                "loss_correlation_p": "p",
            },
            caption="Chance: circular shifts of each layer's critical marks.",
            empty="No critical-period table.",
        )
    )
    chance = analysis_table(run, "chance")
    if chance is not None and not chance.empty and "different" in chance.columns:
        share = (
            chance.groupby(["control", "layer", "metric"], sort=True)["different"]
            .mean()
            .reset_index()
            .rename(columns={"different": "share different"})
        )
        parts.append(
            "<h3>Against null controls</h3>"
            + table_html(share, caption="Share of samples outside the control band with |z| > 3.")
        )
    if data["cka"]:
        plots = "".join(plot_html("cka", index=i) for i in range(len(data["cka"])))
        parts.append(f'<h3>Checkpoint CKA</h3><div class="td-grid">{plots}</div>')
    else:
        parts.append(
            '<h3>Checkpoint CKA</h3><p class="td-empty">No checkpoint comparison: '
            f"<code>traindyn analyze {html.escape(str(run.path))} --checkpoints</code> "
            "compares early, mid and late checkpoints of a run with two or more.</p>"
        )
    milestones = analysis_table(run, "milestones")
    if milestones is not None and not milestones.empty:
        parts.append(
            "<h3>Milestones</h3>"
            + '<div class="td-scroll">'
            + table_html(
                milestones.drop(columns=["target_step"], errors="ignore"),
                {
                    "fraction": "of training",
                    "step": "step",
                    "reached": "reached",
                    "train_loss": "train loss",
                    "train_accuracy": "train match rate",
                    "probe_loss": "probe loss",
                    "probe_accuracy": "probe match rate",
                    "probe_confidence": "p(correct)",
                    "probe_confidence_correct": "p(correct) when right",
                    "probe_confidence_incorrect": "p(correct) when wrong",
                },
                caption="Probe values at the last sample at or before each milestone; train "
                "values are means over the trailing 5% of training.",
            )
            + "</div>"
        )
    predictions = analysis_table(run, "predictions")
    if predictions is not None:
        parts.append(predictions_html(predictions))
    return "".join(parts)


def predictions_html(table: pd.DataFrame) -> str:
    """The pre-registered predictions section: a verdict count, the lock state, the table."""
    counts = table["verdict"].value_counts() if "verdict" in table.columns else pd.Series()
    summary = ", ".join(f"{int(n)} {str(v).lower()}" for v, n in counts.items())
    flags = []
    for column, text in (
        ("edited", "EDITED AFTER LOCK: the file differs from the locked text (judged)."),
        ("late", "LATE: locked after the run had data; not pre-registered."),
    ):
        if column in table.columns and bool(table[column].any()):
            flags.append(f'<p class="td-flag">{html.escape(text)}</p>')
    if "locked" in table.columns and not bool(table["locked"].all()):
        flags.append('<p class="td-flag">NOT LOCKED: these predictions were never locked.</p>')
    return (
        "<h3>Pre-registered predictions</h3>"
        + (f"<p>{html.escape(summary)}</p>" if summary else "")
        + "".join(flags)
        + '<div class="td-scroll">'
        + table_html(
            table,
            [
                "id",
                "verdict",
                "value",
                "statistic",
                "expected",
                "partial",
                "target",
                "window",
                "claim",
                "detail",
            ],
            caption="Judged by traindyn predictions check; value is the statistic's number.",
        )
        + "</div>"
    )


def run_page(
    run: Run,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    live: Mapping[str, Any] | None = None,
    plotly_src: str | None = None,
) -> str:
    """The HTML report of one run (also the live view's run page)."""
    data = run_data(run, max_points=max_points)
    body = f'<div class="td-scope" data-run="{html.escape(run.id)}">{_run_block(run, data)}</div>'
    subtitle = f"{run.status} · {data['downsample']['n_samples']} samples · {run.path}"
    return page(
        title=f"traindyn: {run.id}",
        subtitle=subtitle,
        body=section("Run", body, anchor="run"),
        payload=data,
        max_points=max_points,
        live=live,
        plotly_src=plotly_src,
    )


def directory_page(root: Path, runs: Sequence[Run], *, max_points: int = DEFAULT_MAX_POINTS) -> str:
    """The HTML report of a suite: the suite-level panels, then one run at a time."""
    data = directory_data(root, runs, max_points=max_points)
    overview = directory_table(root, "overview")
    statuses = pd.Series([r.status for r in runs]).value_counts()
    durations = [run_data_duration(r) for r in runs]
    total = sum(d for d in durations if d is not None)
    versions = sorted({f"traindyn {r.manifest.versions.traindyn}" for r in runs})
    parts = [
        '<nav class="td-toc"><a href="#overview">overview</a><a href="#archs">architectures</a>'
        '<a href="#temporal">temporal</a><a href="#bands">seed bands</a>'
        '<a href="#runs">runs</a></nav>'
    ]
    suite = {
        "directory": str(root),
        "runs": len(runs),
        "status": ", ".join(f"{n} {s}" for s, n in statuses.items()),
        "training time (sum over runs)": _duration(total),
        "written by": ", ".join(versions),
    }
    parts.append(
        section(
            "Overview",
            '<div class="td-cards">'
            + key_values(suite, title="Suite")
            + "</div>"
            + '<div class="td-scroll">'
            + table_html(
                overview,
                caption="One row per run; shares are of the change above noise.",
                empty="No suite analysis yet (traindyn analyze DIR).",
            )
            + "</div>",
            anchor="overview",
        )
    )
    parts.append(
        section(
            "Architecture comparison",
            (
                plot_html("by-arch")
                if data["by_arch"]
                else '<p class="td-empty">No architecture recorded in these runs\' configs.</p>'
            )
            + table_html(directory_table(root, "by_arch"), empty="No architecture table."),
            anchor="archs",
        )
    )
    parts.append(
        section(
            "Temporal distribution of change",
            plot_html("pooled-temporal")
            if data["temporal"]
            else '<p class="td-empty">No suite analysis yet (traindyn analyze DIR).</p>',
            anchor="temporal",
        )
    )
    groups = list(data["bands"])
    if groups:
        band_metrics = list(dict.fromkeys(m for g in data["bands"].values() for m in g["metrics"]))
        controls = (
            '<div class="td-controls">'
            + select_html("td-group", groups, label="group", selected=groups[0])
            + select_html("td-metric", band_metrics, label="metric", selected=band_metrics[0])
            + "</div>"
        )
        seeds = directory_table(root, "seeds")
        body = (
            f'<div class="td-scope">{controls}{plot_html("bands")}</div>'
            + '<div class="td-scroll">'
            + table_html(seeds, caption="Final values over seeds (std with ddof=0, seed 003).")
            + "</div>"
        )
    else:
        body = '<p class="td-empty">No group has two or more seeds.</p>'
    parts.append(section("Seed bands", body, anchor="bands"))
    suite_predictions = directory_table(root, "predictions")
    if suite_predictions is not None and not suite_predictions.empty:
        parts.append(
            section("Predictions", predictions_html(suite_predictions), anchor="predictions")
        )
    blocks = []
    for i, (key, run) in enumerate(zip(data["order"], runs, strict=True)):
        hidden = "" if i == 0 else " hidden"
        blocks.append(
            f'<div class="td-scope td-run-block" data-run="{html.escape(key)}"{hidden}>'
            f"{_run_block(run, data['runs'][key])}</div>"
        )
    chooser = (
        '<div class="td-controls">'
        + select_html("td-run", data["order"], label="run", selected=data["order"][0])
        + "</div>"
    )
    parts.append(section("Runs", chooser + "".join(blocks), anchor="runs"))
    return page(
        title=f"traindyn: {root.name}",
        subtitle=f"{len(runs)} runs in {root}",
        body="".join(parts),
        payload=data,
        max_points=max_points,
    )


def run_data_duration(run: Run) -> float | None:
    """Seconds from a run's creation to its end (or last heartbeat)."""
    manifest = run.manifest
    end = manifest.finished_at or manifest.updated_at
    return (end - manifest.created_at).total_seconds()


def compare_page(a: Run, b: Run, *, max_points: int = DEFAULT_MAX_POINTS) -> str:
    """Two runs side by side, with the comparison statistics of seed 000's tables."""
    from traindyn.analysis import compare_all

    data = compare_data(a, b, max_points=max_points)
    metrics = data["metrics"]
    parts = []
    if metrics:
        controls = (
            '<div class="td-controls">'
            + select_html("td-metric", metrics, label="metric", selected=metrics[0])
            + "</div>"
        )
        columns = "".join(
            f'<div data-run="{key}"><h3>{html.escape(run.id)}</h3>{plot_html("heatmap")}'
            f"{plot_html('trajectories', tall=True)}</div>"
            for key, run in (("a", a), ("b", b))
        )
        parts.append(
            section(
                "Side by side",
                f'<div class="td-scope">{controls}<div class="td-side">{columns}</div></div>'
                '<p class="td-caption">Both trajectory panels share the metric axis range.</p>',
                anchor="side",
            )
        )
    else:
        parts.append(
            section("Side by side", '<p class="td-note">No metric in common.</p>', anchor="side")
        )
    stats = []
    for kind, ta, tb in (("metrics", a.metrics, b.metrics), ("scalars", a.scalars, b.scalars)):
        if ta.empty or tb.empty:
            continue
        table = compare_all(ta, tb)
        if not table.empty:
            stats.append((kind, table))
    headings = {
        "layer": "layer",
        "metric": "metric",
        "name": "scalar",
        "mean_a": f"mean {a.id}",
        "mean_b": f"mean {b.id}",
        "difference": "difference (A − B)",
        "relative_difference": "relative %",
        "cohens_d": "Cohen's d",
        "effect_over": "effect over",
        "p_value": "Welch p",
        "reason": "note",
    }
    body = "".join(
        f"<h3>{kind}</h3>"
        + table_html(
            t,
            headings,
            caption="Means over time points of one run each: d is descriptive (time points "
            "are not independent); p needs two or more seeds per side.",
        )
        for kind, t in stats
    )
    parts.append(
        section("Statistics (A against B)", body or "<p>No shared series.</p>", anchor="stats")
    )
    phase_rows = []
    for run in (a, b):
        phases = analysis_table(run, "phases")
        if phases is not None and not phases.empty:
            phase_rows.append(phases.assign(run=run.id))
    if phase_rows:
        from traindyn.analysis import format_change

        table = pd.concat(phase_rows, ignore_index=True)
        table = table.loc[table["table"] == "metrics"] if "table" in table.columns else table
        table = table.assign(
            change=[
                format_change(first, last)
                for first, last in zip(table["first"], table["last"], strict=True)
            ]
        )
        parts.append(
            section(
                "Per phase",
                '<div class="td-scroll">'
                + table_html(
                    table,
                    ("run", "phase", "start", "end", "layer", "metric", "change", "mean"),
                    max_rows=400,
                )
                + "</div>",
                anchor="phases",
            )
        )
    return page(
        title=f"traindyn: {a.id} vs {b.id}",
        subtitle=f"A = {a.path} · B = {b.path}",
        body="".join(parts),
        payload=data,
        max_points=max_points,
    )


def _runs_of(path: Path) -> tuple[bool, list[Run]]:
    if not path.exists():
        raise RunNotFound(f"{path} does not exist; pass a run directory or a directory of runs.")
    if (path / MANIFEST_NAME).is_file():
        return True, [Run(path)]
    dirs = find_run_dirs(path)
    if not dirs:
        raise RunNotFound(
            f"{path} holds no run (no run.json at any depth); run `traindyn ls {path}` to check."
        )
    return False, [Run(d) for d in dirs]


def _needs_analysis(run: Run) -> bool:
    return run.status == "finished" and not (run.path / "analysis" / "summary.json").is_file()


def report(
    path: str | Path,
    *,
    out: str | Path | None = None,
    figures: bool = True,
    run_figures: bool = False,
    analyse: bool = True,
    max_points: int = DEFAULT_MAX_POINTS,
    on_step: Callable[[str], None] | None = None,
) -> Report:
    """Write the self-contained HTML report of a run or of every run under a directory.

    Parameters
    ----------
    path : str or Path
        A run directory, or a directory holding runs (a suite).
    out : str or Path, optional
        Where to write; default ``path/report.html``.
    figures : bool, default=True
        Also write PNG figures of the main panels: a run's to ``RUN/figures/``, a
        suite's own panels (architectures, temporal distribution, seed bands) to
        ``DIR/figures/``.
    run_figures : bool, default=False
        For a suite, also every run's figures (about 0.1 s per figure; ``traindyn run``
        turns it on).
    analyse : bool, default=True
        Analyse finished runs that have no analysis first (``traindyn analyze``).
    max_points : int, default=250
        Display cap per series (see :mod:`traindyn.report.data`).
    on_step : callable, optional
        Called with a short description of each stage (progress display).

    Returns
    -------
    Report

    Raises
    ------
    RunNotFound
        If ``path`` does not exist or holds no run.
    """
    start = time.perf_counter()
    root = Path(path)
    single, runs = _runs_of(root)
    analysed: tuple[str, ...] = ()
    todo = [r for r in runs if _needs_analysis(r)]
    if analyse and (todo or (not single and not (root / "analysis" / "summary.json").is_file())):
        from traindyn.analysis import analyze

        if on_step:
            on_step(f"analysing {len(todo) or len(runs)} run(s)")
        analyze(root, workers=None)
        analysed = tuple(r.id for r in todo or runs)
    if on_step:
        on_step("building the page")
    text = (
        run_page(runs[0], max_points=max_points)
        if single
        else directory_page(root, runs, max_points=max_points)
    )
    target = Path(out) if out is not None else root / REPORT_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    written: tuple[Path, ...] = ()
    if figures:
        from traindyn.report.pngs import report_figures

        if on_step:
            on_step("drawing PNG figures")
        written = tuple(report_figures(root, runs, single=single, each_run=run_figures))
    return Report(
        path=target,
        size_bytes=target.stat().st_size,
        seconds=time.perf_counter() - start,
        n_runs=len(runs),
        figures=written,
        analysed=analysed,
    )


def compare(
    run_a: str | Path,
    run_b: str | Path,
    *,
    out: str | Path | None = None,
    max_points: int = DEFAULT_MAX_POINTS,
) -> Report:
    """Write ``compare.html``: two runs side by side and the statistics between them.

    Parameters
    ----------
    run_a, run_b : str or Path
        Run directories. B is the reference: differences are A − B.
    out : str or Path, optional
        Default ``compare.html`` in the parent directory of ``run_a``.

    Raises
    ------
    RunNotFound
        If either is not a run directory.
    """
    start = time.perf_counter()
    runs = []
    for p in (Path(run_a), Path(run_b)):
        if not (p / MANIFEST_NAME).is_file():
            raise RunNotFound(
                f"{p} is not a run directory (no {MANIFEST_NAME}); compare takes two runs, "
                "e.g. traindyn compare runs/x/mlp_s0 runs/x/cnn_s0."
            )
        runs.append(Run(p))
    text = compare_page(runs[0], runs[1], max_points=max_points)
    target = Path(out) if out is not None else Path(run_a).parent / COMPARE_NAME
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return Report(
        path=target,
        size_bytes=target.stat().st_size,
        seconds=time.perf_counter() - start,
        n_runs=2,
    )
