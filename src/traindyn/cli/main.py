"""The ``traindyn`` command: a thin typer layer over the public Python API."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from traindyn.exceptions import ConfigError, TraindynError

__all__ = ["app", "main"]

app = typer.Typer(
    name="traindyn",
    help="Watch, measure and trust how a network's representations change while it trains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
checkpoint_app = typer.Typer(help="Inspect checkpoints and explain why one does not fit a model.")
app.add_typer(checkpoint_app, name="checkpoint")
predictions_app = typer.Typer(
    help="Pre-register predictions before training (lock) and judge them after it (check)."
)
app.add_typer(predictions_app, name="predictions")

console = Console()
err_console = Console(stderr=True)
F = TypeVar("F", bound=Callable[..., Any])


def _friendly(func: F) -> F:
    """Turn traindyn errors into a one-line reason and exit code 2 (no traceback)."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (TraindynError, FileNotFoundError) as exc:
            err_console.print(
                f"[bold red]error:[/] {exc}", markup=True, highlight=False, soft_wrap=True
            )
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


@app.command()
@_friendly
def run(
    suite: Annotated[
        str, typer.Argument(help="A suite YAML file or a built-in suite (`traindyn suites`).")
    ] = "quick",
    out: Annotated[Path | None, typer.Option(help="Directory for the suite's runs.")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (default: cores).")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the expanded experiments and stop.")
    ] = False,
    executor: Annotated[
        str, typer.Option(help="local (process pool) or ray (a Ray cluster).")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address, e.g. ray://head:10001.")
    ] = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="Skip finished runs; continue killed ones.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    analyse: Annotated[
        bool,
        typer.Option("--analyze/--no-analyze", help="Analyse the runs when they finish."),
    ] = True,
    predictions: Annotated[
        Path | None,
        typer.Option(
            help="A predictions YAML locked into every run before training, judged after."
        ),
    ] = None,
) -> None:
    """Run a suite of experiments, then print a summary, draw heatmaps and analyse them.

    Example: traindyn run                      (the built-in quick suite on bundled data)
             traindyn run my-suite.yaml --dry-run
             traindyn run my-suite.yaml --out runs/x --resume
             traindyn run quick --predictions predictions.yaml
             traindyn run phase1 --executor ray --address ray://head:10001 --out /shared/runs
    """
    from traindyn.experiments.executors import run_experiments
    from traindyn.experiments.suite import builtin_suite, expand_suite, load_suite

    path = Path(suite)
    is_file = path.suffix in (".yaml", ".yml") or path.is_file()
    spec = load_suite(path) if is_file else builtin_suite(suite)
    experiments = expand_suite(spec, source=str(path) if is_file else f"suite {suite!r}")
    if dry_run:
        _print_experiments(spec.name, experiments)
        return
    if resume and out is None:
        raise TraindynError("--resume needs --out: the directory of the suite to continue.")
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    root = out or Path("runs") / f"{spec.name}-{stamp}"
    console.print(f"[bold]traindyn run {suite}[/]: {len(experiments)} experiments -> {root}")
    if predictions is not None:
        from traindyn.analysis.predictions import lock as lock_predictions

        locked = lock_predictions(predictions, suite=root)
        console.print(
            f"Predictions {predictions} locked (sha256 {locked.lock.sha256[:12]}) before "
            "training; each run's run.json holds them."
        )
    results = run_experiments(
        experiments,
        root,
        executor=executor,  # type: ignore[arg-type]  # checked by run_experiments
        workers=workers,
        address=address,
        show_progress=progress,
        resume=resume,
    )
    failed = [r for r in results if r.status == "failed"]
    _print_suite_summary(root, per_layer=len(results) <= 12)
    finished = [r.run_dir for r in results if r.status == "finished"]
    if analyse and finished:
        from traindyn.analysis.engine import analyze as run_analysis
        from traindyn.store import open_run

        with_checkpoints = [d for d in finished if len(open_run(d).checkpoints()) >= 2]
        if with_checkpoints:
            _measure_run_checkpoints(
                with_checkpoints, noise=False, compare=True, progress=progress, quiet=True
            )
        console.print()
        _print_directory_analysis(run_analysis(root))
        console.print(f"Analysis tables are in {root}/analysis and each run's analysis/.")
    if predictions is not None and finished:
        from traindyn.analysis.predictions import check as check_predictions

        console.print()
        _print_prediction_check(check_predictions(root))
    if finished:
        from traindyn.report.build import report as write_report

        with console.status("writing the report"):
            page = write_report(root, analyse=False, run_figures=True)
        console.print(
            f"\n[bold]Report:[/] {page.path} ({_size(page.size_bytes)}, {page.seconds:.1f} s; "
            f"{len(page.figures)} PNG figures in each run's figures/ and {root}/figures/)"
        )
    for r in failed:
        err_console.print(f"[red]failed[/] {r.name}: {r.error}")
    console.print(
        f"Runs are in [bold]{root}[/]; open one with td.open_run('{results[0].run_dir}')."
    )
    if failed:
        raise typer.Exit(code=1)


@app.command()
@_friendly
def suites() -> None:
    """List the built-in suites.

    Example: traindyn suites
    """
    from traindyn.experiments.suite import SUITES, expand_suite

    table = Table("suite", "experiments", "description")
    for name, make in SUITES.items():
        spec = make()
        table.add_row(name, str(len(expand_suite(spec))), spec.description)
    console.print(table)


@app.command()
@_friendly
def analyze(
    path: Annotated[Path, typer.Argument(help="A run directory or a directory of runs.")],
    detector: Annotated[
        str,
        typer.Option(help="Candidate detector: scan (default), pelt, or zscore (seed 001's)."),
    ] = "scan",
    min_snr: Annotated[
        float, typer.Option(help="Events below this multiple of the noise floor are noise.")
    ] = 4.0,
    criterion: Annotated[
        str,
        typer.Option(help="Stabilisation: mean (seed: var < 10% of mean) or range (scale-free)."),
    ] = "mean",
    metric: Annotated[list[str] | None, typer.Option(help="Only this metric (repeatable).")] = None,
    write: Annotated[bool, typer.Option(help="Write tables to analysis/.")] = True,
    workers: Annotated[
        int | None,
        typer.Option(help="Processes (default: one per core from 8 runs on, else 1)."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    probe_noise: Annotated[
        bool,
        typer.Option(
            "--probe-noise",
            help="First measure each metric's spread across probe sets at every checkpoint "
            "(suite runs) and add it to the noise floor.",
        ),
    ] = False,
    controls: Annotated[
        bool,
        typer.Option(
            "--controls",
            help="First measure null controls on each suite run's probe (5 random "
            "initialisations; a Gaussian cloud with each representation's covariance at "
            "every checkpoint) and add a different-from-chance table.",
        ),
    ] = False,
    checkpoints: Annotated[
        bool,
        typer.Option(
            "--checkpoints",
            help="First compare early/mid/late checkpoints (CKA, attention, filters, hidden "
            "units) of suite runs with two or more checkpoints.",
        ),
    ] = False,
) -> None:
    """Convergence, jumps, critical periods, temporal distribution and phases.

    Writes each run's tables to RUN/analysis/ (parquet + summary.json) and, for a
    directory, the pooled tables to DIR/analysis/. Running it twice gives the same files.

    Post-hoc measurement of checkpoints (suite runs: the model and the exact probe are
    rebuilt from run.json). --probe-noise measures, at every checkpoint, each tracked
    metric's spread across probe sets of the probe's size (20 random halves) and writes
    RUN/analysis/probe_noise.parquet; its median over checkpoints then joins each
    series' noise floor (whenever that file exists). --checkpoints compares the first,
    middle and last checkpoint and writes RUN/analysis/checkpoint_comparison_*.parquet.
    Runs that cannot be rebuilt are listed, one line each, and analysed without.

    Example: traindyn analyze runs/quick-20261122-031500
             traindyn analyze runs/x/mlp_medium_digits_s0 --detector zscore
             traindyn analyze runs/x --probe-noise --checkpoints
             traindyn analyze runs/x --controls        (random-init and Gaussian bands)
    """
    from rich.progress import Progress

    from traindyn._validation import check_in
    from traindyn.analysis.convergence import CRITERIA
    from traindyn.analysis.engine import AnalysisOptions
    from traindyn.analysis.engine import analyze as run_analysis
    from traindyn.analysis.jumps import DETECTORS

    check_in(detector, DETECTORS, name="--detector")
    check_in(criterion, CRITERIA, name="--criterion")
    options = AnalysisOptions(
        metrics=tuple(metric) if metric else None,
        detector=detector,  # type: ignore[arg-type]  # checked above
        min_snr=min_snr,
        stabilization_criterion=criterion,  # type: ignore[arg-type]  # checked above
    )
    from traindyn.store.run import find_run_dirs

    if (probe_noise or checkpoints or controls) and not write:
        raise ConfigError(
            "--no-write cannot be combined with --probe-noise, --checkpoints or --controls, "
            "which write their tables to each run's analysis/; drop --no-write."
        )
    single = (path / "run.json").is_file()
    dirs = [path] if single else find_run_dirs(path) if path.is_dir() else []
    if probe_noise or checkpoints:
        _measure_run_checkpoints(dirs, noise=probe_noise, compare=checkpoints, progress=progress)
    if controls:
        _measure_controls(dirs, progress=progress)
    n = len(dirs)
    with Progress(console=err_console, disable=not progress or n <= 1, transient=True) as bar:
        task = bar.add_task("analysing", total=n)
        result = run_analysis(
            path, options, write=write, on_run=lambda _: bar.advance(task), workers=workers
        )
    if len(result.runs) == 1 and not result.failed:
        _print_run_analysis(result.runs[0])
    else:
        _print_directory_analysis(result)
    for run_id, reason in result.failed.items():
        err_console.print(f"[red]not analysed[/] {run_id}: {reason}")
    if write:
        where = path / "analysis" if len(result.runs) == 1 else path / "*" / "analysis"
        console.print(f"Tables written to {where}")


def _measure_run_checkpoints(
    dirs: list[Path], *, noise: bool, compare: bool, progress: bool, quiet: bool = False
) -> None:
    """``analyze --probe-noise/--checkpoints``: rebuild each suite run, measure its
    checkpoints and write the tables to its ``analysis/``; one line per run done and
    one per run (partly) skipped, with the reason."""
    from rich.markup import escape
    from rich.progress import Progress

    from traindyn.store import open_run

    runs = [open_run(d) for d in dirs]
    saved = {r.path: r.checkpoints() for r in runs}
    # Progress counts probe passes: one per checkpoint for the noise, one per comparison.
    work = sum(
        (len(steps) if noise else 0) + int(compare and len(steps) >= 2) for steps in saved.values()
    )
    done: list[str] = []
    skipped: list[str] = []
    with Progress(console=err_console, disable=not progress, transient=True) as bar:
        task = bar.add_task("measuring checkpoints", total=work)
        for run in runs:
            bar.update(task, description=f"measuring {run.id}")
            steps = saved[run.path]
            reasons: list[str] = []
            if noise and not steps:
                reasons.append("no checkpoint, so no probe-resampling floor")
            if compare and len(steps) < 2:
                reasons.append(f"{len(steps)} checkpoint(s), no comparison (needs 2)")
            wants_noise, wants_compare = noise and len(steps) >= 1, compare and len(steps) >= 2
            if wants_noise or wants_compare:
                lines, failures = _measure_one_run(
                    run,
                    steps if wants_noise else [],
                    compare=wants_compare,
                    advance=lambda k: bar.advance(task, k),
                )
                done += [f"{run.id}: {line}" for line in lines]
                reasons += failures
            if reasons:
                skipped.append(f"{run.id}: {'; '.join(reasons)}")
    for line in [] if quiet else done:
        console.print(escape(line), highlight=False, soft_wrap=True)
    for line in skipped:
        err_console.print(f"[yellow]skipped[/] {escape(line)}", highlight=False, soft_wrap=True)


_CONTROL_SEED = 1000  # random-init draws never repeat a suite run's own seed (0, 1, 2, ...)


def _measure_controls(dirs: list[Path], *, progress: bool) -> None:
    """``analyze --controls``: null controls of each suite run, written to its
    ``analysis/null_controls.parquet``; one line per run done or skipped, with the reason.
    Runs that are themselves label-shuffled controls are skipped."""
    from rich.markup import escape
    from rich.progress import Progress

    from traindyn.capture import null_controls
    from traindyn.experiments.rebuild import rebuild
    from traindyn.store import open_run

    with Progress(console=err_console, disable=not progress, transient=True) as bar:
        task = bar.add_task("measuring null controls", total=len(dirs))
        for d in dirs:
            run = open_run(d)
            bar.update(task, description=f"controls of {run.id}")
            try:
                rebuilt = rebuild(run)
                if rebuilt.spec.shuffle_labels or rebuilt.spec.dataset.endswith("_shuffled"):
                    raise ConfigError("a label-shuffled control itself")
                tracking = rebuilt.spec.tracking
                if tracking.mode != "probe":
                    raise ConfigError("tracked on training batches, not on a fixed probe")
                table = null_controls(
                    run,
                    rebuilt.model,
                    rebuilt.probe,
                    init=rebuilt.initial_model,
                    controls=("random_init", "gaussian") if run.checkpoints() else "random_init",
                    seed=_CONTROL_SEED,
                    layers=tracking.layers,
                    metrics=tracking.metrics,
                    reduce=tracking.reduce,
                )
                run.write_analysis("null_controls", table)
                console.print(
                    f"{escape(run.id)}: {len(table)} null-control values", highlight=False
                )
            except Exception as exc:  # one run must not stop a suite's analysis
                err_console.print(
                    f"[yellow]skipped[/] {escape(run.id)}: no controls ({escape(str(exc))})",
                    highlight=False,
                    soft_wrap=True,
                )
            bar.advance(task)


def _measure_one_run(
    run: Any, noise_steps: list[int], *, compare: bool, advance: Callable[[int], None]
) -> tuple[list[str], list[str]]:
    """Probe noise at ``noise_steps`` and/or an early/mid/late comparison of one run.

    Returns the summary lines of what was written and the reasons of what was not. A
    failure is reported, never raised: one run must not stop a suite's analysis.
    """
    import pandas as pd

    from traindyn.capture import compare_checkpoints, probe_noise, write_checkpoint_comparison
    from traindyn.experiments.rebuild import rebuild

    if noise_steps:  # a failed recomputation must not leave an older floor in use
        run.delete_analysis("probe_noise")
    try:
        rebuilt = rebuild(run)
    except Exception as exc:
        advance(len(noise_steps) + int(compare))
        return [], [f"not rebuilt, analysed without ({exc})"]
    tracking = rebuilt.spec.tracking
    lines: list[str] = []
    failures: list[str] = []
    pending = len(noise_steps)  # progress not yet advanced when the noise fails
    if noise_steps:
        try:
            if tracking.mode != "probe":
                raise ConfigError(
                    "tracked on training batches (tracking.mode 'batch'), not on a fixed probe"
                )
            tables = []
            for step in noise_steps:  # one call per checkpoint, for the progress bar
                tables.append(
                    probe_noise(
                        run,
                        rebuilt.model,
                        rebuilt.probe,
                        steps=[step],
                        layers=tracking.layers,
                        metrics=tracking.metrics,
                        reduce=tracking.reduce,
                    )
                )
                advance(1)
                pending -= 1
            run.write_analysis("probe_noise", pd.concat(tables, ignore_index=True))
            lines.append(f"probe noise at {len(noise_steps)} checkpoint(s)")
        except Exception as exc:
            advance(pending)
            failures.append(f"no probe noise, analysed without ({exc})")
    if compare:
        try:
            comparison = compare_checkpoints(
                run,
                rebuilt.model,
                rebuilt.probe,
                layers=tracking.layers,
                # CKA needs one row per input: per_position runs are compared on the mean.
                reduce="flatten" if tracking.reduce == "flatten" else "mean",
            )
            write_checkpoint_comparison(run, comparison)
            lines.append(_cka_line(comparison))
        except Exception as exc:
            failures.append(f"no checkpoint comparison ({exc})")
        advance(1)
    return lines, failures


def _cka_line(comparison: Any) -> str:
    """CKA of each layer between the first and the last compared checkpoint, on one line."""
    first, last = comparison.steps[0], comparison.steps[-1]
    rows = comparison.across_steps
    ends = rows[(rows["step_a"] == first) & (rows["step_b"] == last)]
    cka = ", ".join(f"{r.layer} {_fmt(r.cka)}" for r in ends.itertuples())
    return f"CKA step {first} vs {last}: {cka} (steps {', '.join(map(str, comparison.steps))})"


def _print_run_analysis(result: Any) -> None:
    head = result.headline()
    console.print(
        f"[bold]{result.run_id}[/]: {head['n_series']} series, {head['events']} candidate "
        f"events, {head['events_above_floor']} above the noise floor "
        f"(x{result.options.min_snr}), [bold]{head['events_surviving']} surviving[/] "
        f"(not drift, BH q <= {result.options.alpha}), {head['event_types']} event types"
    )
    shares = ", ".join(f"{w} {_pct(v)}" for w, v in head["change_share"].items())
    console.print(f"Share of change: {shares}")
    order = Table("metric", "stabilised layers", "rho", "order", title="Convergence order")
    for r in result.convergence.order.itertuples():
        label = str(r.order) + (" [yellow](suspicious)[/]" if r.suspicious else "")
        order.add_row(str(r.metric), str(r.n_layers), _fmt(r.rho), label)
    console.print(order)
    crit = Table(
        "metric",
        "periods",
        "mean coord. (chance, p)",
        "max coord.",
        "loss falling (chance, p)",
        title="Critical periods, against independent layers shifted at random",
    )
    null = result.critical_null.set_index("metric") if len(result.critical_null) else None
    for r in result.critical.summary.itertuples():
        row = null.loc[r.metric] if null is not None and r.metric in null.index else None

        def vs(observed: Any, key: str, pct: bool = False, row: Any = row) -> str:
            shown = _pct(observed) if pct else _fmt(observed)
            if row is None:
                return shown
            chance = _pct(row[f"{key}_null"]) if pct else _fmt(row[f"{key}_null"])
            return f"{shown} ({chance}, p={_fmt(row[f'{key}_p'])})"

        crit.add_row(
            str(r.metric),
            str(r.n_periods),
            vs(r.mean_coordination, "mean_coordination"),
            _fmt(r.max_coordination),
            vs(r.loss_correlation, "loss_correlation", pct=True),
        )
    console.print(crit)
    phases = result.phases
    if len(phases):
        from traindyn.analysis.phases import format_change

        wanted = phases[(phases["table"] == "scalars") & phases["metric"].isin(_PHASE_SCALARS)]
        if len(wanted):
            table = Table("phase", "steps", *_PHASE_SCALARS, title="Phases")
            for (name, start, end), g in wanted.groupby(["phase", "start", "end"], sort=False):
                cells = {
                    str(r.metric): format_change(r.first, r.last) if r.first == r.first else "-"
                    for r in g.itertuples()
                }
                table.add_row(
                    str(name), f"{start}-{end}", *[cells.get(m, "-") for m in _PHASE_SCALARS]
                )
            console.print(table)
    _print_milestones(result.milestones)
    top = result.surviving.sort_values("snr", ascending=False).head(10)
    if len(top):
        events = Table(
            "layer",
            "metric",
            "step",
            "shape",
            "delta",
            "x floor",
            "q",
            *(["seeds"] if "replicated_in" in top else []),
            title="Strongest surviving events",
        )
        for r in top.itertuples():
            seeds = [f"{r.replicated_in}/{r.n_seeds}"] if "replicated_in" in top else []
            events.add_row(
                str(r.layer),
                str(r.metric),
                str(r.location),
                str(r.shape),
                _fmt(r.delta),
                _fmt(r.snr),
                f"{r.q_value:.1e}",
                *seeds,
            )
        console.print(events)
    for control, share in head.get("different_from_chance", {}).items():
        console.print(f"Different from chance ({control}): {_pct(share)} of tracked values")
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)


def _print_milestones(table: Any) -> None:
    """Seed 004's progress-tracking slots, filled: one row per milestone."""
    if table is None or not len(table) or table["probe_accuracy"].isna().all():
        return
    out = Table(
        "milestone",
        "step",
        "train loss",
        "probe loss",
        "match rate",
        "p(correct) right / wrong",
        title="Milestones",
    )
    for r in table.itertuples():
        step = "-" if _missing(r.step) else str(r.step)
        if not r.reached:
            step += " (not reached)"
        out.add_row(
            f"{r.fraction:.0%}",
            step,
            _fmt(r.train_loss),
            _fmt(r.probe_loss),
            _pct(r.probe_accuracy),
            f"{_fmt(r.probe_confidence_correct)} / {_fmt(r.probe_confidence_incorrect)}",
        )
    console.print(out)


def _missing(value: Any) -> bool:
    import pandas as pd

    return bool(pd.isna(value))


def _print_directory_analysis(result: Any) -> None:
    overview = result.overview
    if overview.empty:
        return
    windows = [c for c in overview.columns if c.startswith("share_")]
    table = Table(
        "run",
        "surviving",
        "events ≥ floor",
        *[c.removeprefix("share_") for c in windows],
        "mean coord.",
        "loss falling",
        title=f"{len(overview)} runs",
    )
    for r in overview.to_dict("records"):
        table.add_row(
            str(r["run"]),
            str(r.get("events_surviving", "-")),
            f"{r['events_above_floor']}/{r['events']}",
            *[_pct(r[c]) for c in windows],
            _fmt(r["mean_coordination"]),
            _pct(r["loss_correlation"]),
        )
    console.print(table)
    pooled = result.temporal[result.temporal["metric"] == "*"]
    shares = ", ".join(f"{r.window} {_pct(r.share)}" for r in pooled.itertuples())
    console.print(f"Share of all change, pooled over runs: {shares}")
    if len(result.by_arch) and "n_runs" in result.by_arch:
        arch = Table(
            "arch", "runs", "events ≥ floor", "mean coord.", "loss falling", title="By architecture"
        )
        for r in result.by_arch.to_dict("records"):
            arch.add_row(
                str(r["arch"]),
                str(r["n_runs"]),
                _fmt(r.get("events_above_floor")),
                _fmt(r.get("mean_coordination")),
                _pct(r.get("loss_correlation")),
            )
        console.print(arch)


_PHASE_SCALARS = ["loss", "probe_accuracy"]


def _pct(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{100 * value:.1f}%"


def _print_experiments(name: str, experiments: list[Any]) -> None:
    table = Table(
        "run",
        "arch",
        "dataset",
        "seed",
        "steps",
        "optimizer",
        "lr",
        "schedule",
        "phases",
        "early stop",
        title=f"{name}: {len(experiments)} experiments",
    )
    for e in experiments:
        duration = f"{e.train.steps}" if e.train.steps else f"{e.train.epochs} ep"
        phases = ", ".join(f"{p.name}[{p.start},{p.end})" for p in e.phases) or "-"
        if e.stop_after_phase:
            phases += f" (stop after {e.stop_after_phase})"
        stop = (
            f"{e.early_stopping.monitor} {e.early_stopping.mode} p={e.early_stopping.patience}"
            if e.early_stopping
            else "-"
        )
        table.add_row(
            e.run_name,
            e.arch,
            e.dataset,
            str(e.seed),
            duration,
            e.train.optimizer,
            f"{e.train.lr:g}",
            e.train.schedule.kind,
            phases,
            stop,
        )
    console.print(table)


@app.command()
@_friendly
def report(
    path: Annotated[Path, typer.Argument(help="A run directory or a directory of runs.")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write the HTML (default PATH/report.html).")
    ] = None,
    figures: Annotated[
        bool, typer.Option("--figures/--no-figures", help="Also write PNG figures.")
    ] = True,
    analyse: Annotated[
        bool,
        typer.Option("--analyze/--no-analyze", help="Analyse finished runs that have no analysis."),
    ] = True,
    max_points: Annotated[
        int, typer.Option(help="Draw at most this many samples per series (every k-th).")
    ] = 250,
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the report in the default browser.")
    ] = False,
) -> None:
    """Write a self-contained HTML report (+ PNG figures) of a run or a suite.

    The page inlines its scripts and data (no network to view it): heatmaps with a
    metric selector, trajectories with events, critical periods and phases beside loss,
    accuracy and confidence, convergence, jump types, temporal distribution, critical
    periods against chance, checkpoint CKA, and for a suite the architecture comparison
    and seed bands. PNG figures of the main panels go to PATH/figures/.

    Example: traindyn report runs/quick-20261122-031500
             traindyn report runs/x/mlp_medium_digits_s0 --no-figures --open
    """
    from traindyn.report.build import report as write_report

    with console.status("report") as status:
        result = write_report(
            path,
            out=out,
            figures=figures,
            analyse=analyse,
            max_points=max_points,
            on_step=lambda text: status.update(text),
        )
    if result.analysed:
        console.print(f"Analysed {len(result.analysed)} run(s) first.")
    console.print(
        f"[bold]{result.path}[/]: {result.n_runs} run(s), {_size(result.size_bytes)}, "
        f"{result.seconds:.1f} s"
        + (
            f"; {len(result.figures)} PNG figures in {result.figures[0].parent}"
            if result.figures
            else ""
        )
    )
    if open_browser:
        import webbrowser

        webbrowser.open(result.path.resolve().as_uri())


@app.command()
@_friendly
def compare(
    run_a: Annotated[Path, typer.Argument(help="Run A.")],
    run_b: Annotated[Path, typer.Argument(help="Run B, the reference (differences are A - B).")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default compare.html beside RUN_A).")
    ] = None,
    metric: Annotated[
        list[str] | None, typer.Option(help="Print only these metrics (repeatable).")
    ] = None,
) -> None:
    """Two runs side by side: trajectories, and the statistics between them.

    Writes compare.html (side-by-side heatmaps and trajectories on a shared axis, the
    comparison table of every shared series, per-phase changes) and prints the
    comparison of each metric's mean over layers (seed 000's "10.35 vs 9.85 mean").

    Example: traindyn compare runs/x/mlp_medium_digits_s0 runs/x/cnn_shallow_digits_s0
    """
    from traindyn.analysis import compare_all
    from traindyn.report.build import compare as write_compare
    from traindyn.store import Run

    result = write_compare(run_a, run_b, out=out)
    a, b = Run(run_a), Run(run_b)
    table = Table(title=f"A = {a.id} against B = {b.id} (means over time points; d is descriptive)")
    for heading in ("metric", "layer", "A", "B", "A - B", "relative", "d"):
        table.add_column(heading, overflow="fold")
    frames = []
    if not (a.metrics.empty or b.metrics.empty):
        rows = compare_all(a.metrics, b.metrics)
        frames.append(rows.loc[rows["metric"].isin(metric)] if metric else rows)
    if not (a.scalars.empty or b.scalars.empty):
        frames.append(compare_all(a.scalars, b.scalars).assign(metric=lambda t: t["name"]))
    for frame in frames:
        for r in frame.to_dict("records"):
            table.add_row(
                str(r["metric"]),
                str(r["layer"]) if "layer" in r else "(scalar)",
                _fmt(r["mean_a"]),
                _fmt(r["mean_b"]),
                _fmt(r["difference"]),
                _pct(r["relative_difference"] / 100),
                _fmt(r["cohens_d"]),
            )
    if table.row_count:
        console.print(table)
    else:
        console.print("The two runs share no series.")
    console.print(f"[bold]{result.path}[/]: {_size(result.size_bytes)}, {result.seconds:.1f} s")


@app.command()
@_friendly
def serve(
    path: Annotated[Path, typer.Argument(help="A directory of runs (or one run).")],
    host: Annotated[
        str, typer.Option(help="Interface to listen on; loopback unless you choose otherwise.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port).")] = 8765,
    interval: Annotated[
        float, typer.Option(help="Seconds between refreshes of a running run's page.")
    ] = 2.0,
) -> None:
    """A local live view: lists runs and redraws a running run's panels as rows land.

    Reads only (parts are written under a temporary name and renamed), so the training
    process is never blocked. Stop with Ctrl-C.

    Example: traindyn serve runs/            then open http://127.0.0.1:8765/
             traindyn serve runs/ --port 0   (any free port; the URL is printed)
    """
    from traindyn.report.serve import LOOPBACK, make_server

    server = make_server(path, host=host, port=port, interval_s=interval)
    if host != LOOPBACK and host != "localhost":
        err_console.print(
            f"[yellow]warning:[/] serving on {host}: anyone who can reach this machine can "
            "read these runs' configs and paths."
        )
    console.print(f"Serving {path} at [bold]{server.url}[/] (Ctrl-C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("stopped")
    finally:
        server.server_close()


@app.command("ls")
@_friendly
def ls(
    root: Annotated[Path, typer.Argument(help="Directory holding runs.")] = Path("runs"),
) -> None:
    """List runs under a directory with their status, last step and size.

    Example: traindyn ls runs/
    """
    from traindyn.store import open_runs

    runs = open_runs(root)
    manifests = runs.manifests
    if manifests.empty:
        console.print(f"no runs under {root}")
        return
    table = Table("run", "status", "steps", "size", "created")
    for row in manifests.to_dict("records"):
        table.add_row(
            str(row["id"]),
            str(row["status"]),
            str(row["n_steps"]),
            _size(int(row["size_bytes"])),
            str(row["created_at"]),
        )
    console.print(table)


@app.command()
@_friendly
def validate(
    detector: Annotated[
        list[str] | None,
        typer.Option(
            help="A built-in detector (repeatable): evidence, pelt, pelt-raw, zscore, "
            "zscore-floor, or default (the best built-in). Default: every built-in."
        ),
    ] = None,
    repeats: Annotated[int, typer.Option(help="Random realisations of each fixture family.")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the fixtures (same seed, same table).")] = 0,
    run_dir: Annotated[
        Path | None,
        typer.Option(
            "--run",
            help="Also plant steps of 6, 8 and 10 noise sd in three long trajectories of "
            "this run (its own changes are not counted as false positives).",
        ),
    ] = None,
    tolerance: Annotated[
        int, typer.Option(help="Samples between a detection and a true change that still hit.")
    ] = 3,
    json_path: Annotated[
        Path | None, typer.Option("--json", help="Save scores, verdicts and rule as JSON.")
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Score the jump detectors on fixtures with known answers and give each a verdict.

    Fixtures (400 samples, sizes in noise sd): single and multiple steps of 6-10 sd and a
    slope change (positives); white, AR(1) phi 0.6 and 0.9, Student-t noise and smooth
    drifts (nulls). A detection within --tolerance samples of a true change is a hit.
    FP/1000 is false positives per 1000 samples. A FAIL is a finding, not an error: the
    exit code is 0.

    Example: traindyn validate
             traindyn validate --detector default --detector zscore --repeats 50
             traindyn validate --run runs/x/mlp_medium_digits_s0 --json validate.json
    """
    import json

    from rich.progress import Progress

    from traindyn.analysis.harness import (
        DEFAULT_DETECTOR,
        builtin_detectors,
        builtin_fixtures,
        evaluate,
        fixtures_from_run,
        get_detector,
    )

    names = list(dict.fromkeys(detector)) if detector else list(builtin_detectors())
    chosen = {name: get_detector(name) for name in names}
    fixtures = builtin_fixtures(n_repeats=repeats, seed=seed)
    if run_dir is not None:
        fixtures += fixtures_from_run(run_dir, n_repeats=repeats, seed=seed)
    with Progress(console=err_console, disable=not progress, transient=True) as bar:
        task = bar.add_task("scoring detectors", total=len(chosen) * len(fixtures))
        result = evaluate(
            chosen,
            fixtures,
            tolerance=tolerance,
            on_fixture=lambda name, _: bar.update(task, advance=1, description=name),
        )
    rule = result.rule

    def cell(value: float, bad: bool) -> str:
        text = _fmt(value)
        return f"[red]{text}[/]" if bad else text

    table = Table(
        title=f"Detector validation: {len(fixtures)} fixtures, tolerance {tolerance} samples",
        caption="* reported, not in the verdict. FP/1000: false positives per 1000 samples.",
    )
    table.add_column("detector", no_wrap=True)
    table.add_column("family", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    for column in ("recall", "precision", "FP/1000", "hits/true", "errors"):
        table.add_column(column, justify="right", no_wrap=True)
    for i, name in enumerate(chosen):
        if i:
            table.add_section()
        rows = result.scores[result.scores["detector"] == name].to_dict("records")
        for j, r in enumerate(rows):
            judged = r["family"] not in rule.exempt
            positive = r["kind"] == "positive"
            table.add_row(
                name if j == 0 else "",
                str(r["family"]) + ("" if judged else " *"),
                "pos" if positive else "null",
                cell(r["recall"], positive and judged and not r["recall"] >= rule.min_recall),
                _fmt(r["precision"]),
                cell(
                    r["false_positives_per_1000"],
                    not positive and not r["false_positives_per_1000"] <= rule.max_fp_per_1000,
                ),
                f"{r['hits']}/{r['n_true']}" if positive else "-",
                f"[red]{r['n_errors']}[/]" if r["n_errors"] else "0",
            )
    console.print(table)
    for v in result.verdicts:
        colour = "green" if v.passed else "red"
        console.print(
            f"[bold {colour}]{v.label}[/] {v.detector}"
            + (f": {'; '.join(v.reasons)}" if v.reasons else ""),
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"Rule: {result.rule_text}", highlight=False, soft_wrap=True)
    console.print(f"'default' is {DEFAULT_DETECTOR}.", highlight=False)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
        console.print(f"Scores written to {json_path}")


@predictions_app.command("lock")
@_friendly
def predictions_lock(
    file: Annotated[Path, typer.Argument(help="The predictions YAML file.")],
    run_dir: Annotated[
        Path | None,
        typer.Option("--run", help="The run directory (it may not exist yet)."),
    ] = None,
    suite_dir: Annotated[
        Path | None,
        typer.Option("--suite", help="A suite directory: every run created in it is locked."),
    ] = None,
    late: Annotated[
        bool,
        typer.Option(
            "--late", help="Lock a run that already has data (recorded and shown as LATE)."
        ),
    ] = False,
) -> None:
    """Freeze predictions (SHA-256, text, time) into a run's run.json before it trains.

    Example: traindyn predictions lock predictions.yaml --run runs/my-run
             traindyn predictions lock predictions.yaml --suite runs/phase1
             traindyn run phase1 --out runs/phase1      (its runs take the lock)
    """
    from traindyn.analysis.predictions import lock

    result = lock(file, run=run_dir, suite=suite_dir, late=late)
    n = len(result.lock.content.splitlines())
    console.print(
        f"Locked {file} ({n} lines, sha256 {result.lock.sha256[:12]}) at "
        f"{result.lock.locked_at.isoformat(timespec='seconds')}."
    )
    if result.pending is not None:
        where = "the run" if run_dir is not None else "every run created directly in it"
        console.print(f"Pending lock {result.pending}: {where} will hold it from its first row.")
    for d in result.runs:
        tag = " [bold red]LATE[/] (the run already had data)" if d in result.late else ""
        console.print(f"  {d}/run.json{tag}")
    console.print("Judge them after training with: traindyn predictions check RUN_OR_DIR")


@predictions_app.command("check")
@_friendly
def predictions_check(
    path: Annotated[Path, typer.Argument(help="A run directory or a directory of runs.")],
    file: Annotated[
        Path | None,
        typer.Option(help="The predictions file now (default: the path it was locked from)."),
    ] = None,
    write: Annotated[
        bool,
        typer.Option(help="Write analysis/predictions.parquet (the report shows it)."),
    ] = True,
) -> None:
    """Judge locked predictions: SUPPORTED / PARTIALLY / NOT SUPPORTED / UNTESTABLE.

    Example: traindyn predictions check runs/my-run
             traindyn predictions check runs/phase1 --file predictions.yaml
    """
    from traindyn.analysis.predictions import check

    result = check(path, file=file, write=write)
    _print_prediction_check(result)
    if write:
        console.print(f"Verdicts written to {path}/analysis/predictions.parquet")


_VERDICT_STYLE = {
    "SUPPORTED": "bold green",
    "PARTIALLY SUPPORTED": "yellow",
    "NOT SUPPORTED": "bold red",
    "UNTESTABLE": "dim",
}


def _print_prediction_check(result: Any) -> None:
    lock = result.lock
    if lock is not None:
        when = lock.locked_at.isoformat(timespec="seconds")
        state = "[bold red]LATE[/]" if result.late else "before any data"
        console.print(f"Predictions locked {when} (sha256 {lock.sha256[:12]}), {state}.")
    for note in result.notes:
        style = "bold red" if note.startswith(("EDITED", "LATE", "NOT LOCKED")) else "yellow"
        console.print(f"[{style}]{note}[/]", highlight=False)
    table = Table(title=f"Predictions: {result.path}", show_lines=True)
    for column in ("id", "verdict", "value", "expected", "claim / numbers"):
        table.add_column(column, overflow="fold")
    for row in result.table.itertuples():
        partial = f" (partial {row.partial})" if isinstance(row.partial, str) else ""
        table.add_row(
            str(row.id),
            f"[{_VERDICT_STYLE[row.verdict]}]{row.verdict}[/]",
            _fmt(row.value),
            f"{row.statistic} {row.expected}{partial}",
            f"{row.claim}\n[dim]{row.target}, {row.window}: {row.detail}[/]",
        )
    console.print(table)
    counts = ", ".join(f"{n} {v.lower()}" for v, n in result.counts.items() if n)
    console.print(f"{len(result.table)} predictions: {counts}.")


@checkpoint_app.command("inspect")
@_friendly
def checkpoint_inspect(
    path: Annotated[Path, typer.Argument(help="A .safetensors (or legacy .pt) file.")],
) -> None:
    """Show what a checkpoint holds: step, model class, config and every tensor.

    Example: traindyn checkpoint inspect runs/x/checkpoints/step-100.safetensors
    """
    from traindyn.store.checkpoints import inspect_checkpoint

    console.print(str(inspect_checkpoint(path)))


@checkpoint_app.command("diff")
@_friendly
def checkpoint_diff(
    path: Annotated[Path, typer.Argument(help="The checkpoint to check.")],
    other: Annotated[
        Path | None, typer.Argument(help="A second checkpoint to compare with.")
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="A model-zoo architecture, e.g. mlp_medium.")
    ] = None,
    dataset: Annotated[
        str, typer.Option(help="Dataset fixing the model's input and classes.")
    ] = "digits",
) -> None:
    """Explain why a checkpoint does not fit a model or another checkpoint.

    Example: traindyn checkpoint diff a.safetensors b.safetensors
             traindyn checkpoint diff a.safetensors --model mlp_medium --dataset digits
    """
    from traindyn.store.checkpoints import diff_checkpoint

    target: Any
    if other is not None and model is None:
        target = other
    elif model is not None and other is None:
        from traindyn.experiments.datasets import load_dataset
        from traindyn.experiments.models import build_model

        data = load_dataset(dataset)
        target = build_model(
            model,
            input_shape=data.input_shape,
            n_classes=data.n_classes,
            vocab_size=data.vocab_size,
        )
    else:
        raise TraindynError("give exactly one of OTHER (a second checkpoint) or --model ARCH.")
    diff = diff_checkpoint(path, target)
    console.print(str(diff))
    if not diff.compatible:
        raise typer.Exit(code=1)


def _print_suite_summary(root: Path, *, per_layer: bool) -> None:
    from traindyn.analysis.summary import summarize_suite
    from traindyn.store import open_runs

    summary = summarize_suite(open_runs(root))
    if per_layer:
        for run_summary in summary.runs:
            if not run_summary.layers.empty:
                console.print(_layer_table(run_summary.run_id, run_summary.layers))
    overview = Table(
        "run",
        "status",
        "steps",
        "loss",
        "probe acc",
        "best",
        "at step",
        "early stop",
        title="Experiments",
    )
    for r in summary.experiments.to_dict("records"):
        overview.add_row(
            str(r["run"]),
            str(r["status"]),
            str(r["last_step"]),
            _fmt(r["final_loss"]),
            _fmt(r["final_probe_accuracy"]),
            "-" if r["monitor"] is None else f"{_fmt(r['best'])} ({r['monitor']})",
            "-" if r["best_step"] is None else str(r["best_step"]),
            "yes" if r["stopped_early"] else "no",
        )
    console.print(overview)
    groups = summary.groups
    if not groups.empty and int(groups["n"].max()) > 1:
        table = Table(
            "group",
            "seeds",
            "probe acc mean ± std",
            "range",
            "best mean ± std",
            "init~best rho",
            title="Seed groups",
        )
        for g in groups.to_dict("records"):
            table.add_row(
                str(g["group"]),
                str(g["n"]),
                f"{_fmt(g['final_probe_accuracy_mean'])} ± {_fmt(g['final_probe_accuracy_std'])}",
                f"[{_fmt(g['final_probe_accuracy_min'])}, {_fmt(g['final_probe_accuracy_max'])}]",
                f"{_fmt(g['best_mean'])} ± {_fmt(g['best_std'])}",
                _fmt(g["init_best_spearman"]),
            )
        console.print(table)


def _layer_table(run_id: str, layers: Any) -> Table:
    metric_names = list(dict.fromkeys(layers["metric"]))
    table = Table(title=f"{run_id}: first -> last", title_justify="left")
    table.add_column("layer", no_wrap=True)
    for metric in metric_names:
        table.add_column(_SHORT.get(metric, metric), justify="right", no_wrap=True)
    for layer, group in layers.groupby("layer", sort=False):
        cells = {
            str(r["metric"]): f"{_fmt(float(r['first']))} -> {_fmt(float(r['last']))}"
            for r in group.to_dict("records")
        }
        table.add_row(str(layer), *[cells.get(m, "-") for m in metric_names])
    return table


_SHORT = {
    "participation_ratio": "PR",
    "effective_rank": "eff. rank",
    "stable_rank": "stable rank",
    "energy_rank": "energy rank",
    "nuclear_norm_ratio": "nuclear ratio",
    "twonn_dimension": "TwoNN",
    "mle_dimension": "MLE",
}


def _fmt(value: Any) -> str:
    if not isinstance(value, int | float) or not math.isfinite(value):
        return "-"
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024:
            return f"{size:.0f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"


def main() -> None:
    """Console-script entry point."""
    app(prog_name="traindyn")


if __name__ == "__main__":
    main()
