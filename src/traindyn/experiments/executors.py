"""Run many experiments: a local process pool or Ray, with one overall progress bar.

Each task trains one :class:`~traindyn.experiments.suite.ExperimentSpec` into its own run
directory, so a suite is just many run directories; a failed experiment is recorded as
failed and the others go on. Both executors run the same task, :func:`_run_one`, with one
torch thread, so that the same seeds give the same metrics on either. traindyn never
implements a scheduler of its own: Ray schedules Ray tasks.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import shutil
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from traindyn.exceptions import ConfigError, TraindynError, TraindynWarning
from traindyn.experiments.datasets import DATASETS
from traindyn.experiments.suite import ExperimentSpec
from traindyn.experiments.trainer import TrainingOutcome, total_steps, train
from traindyn.store import open_run

__all__ = [
    "Executor",
    "ExperimentResult",
    "TaskFailed",
    "WorkerDied",
    "map_isolated",
    "map_ray",
    "run_experiments",
    "run_local",
    "run_ray",
]

Executor = Literal["local", "ray"]

_progress_queue: Any = None  # set in each worker process by _init_worker


@dataclass(frozen=True)
class ExperimentResult:
    """How one experiment ended: its run directory, status, and training outcome."""

    name: str
    run_dir: Path
    status: Literal["finished", "failed"]
    error: str | None = None
    outcome: TrainingOutcome | None = None


def _init_worker(progress_queue: Any, threads: int) -> None:
    global _progress_queue
    _progress_queue = progress_queue
    import torch

    # One intra-op thread per worker: N workers on N cores without oversubscription.
    torch.set_num_threads(threads)


def _report(n: int) -> None:
    if _progress_queue is not None:
        _progress_queue.put(n)


def _run_one(
    spec: ExperimentSpec,
    run_dir: Path,
    resume: bool = False,
    progress: Callable[[int], None] = _report,
) -> ExperimentResult:
    try:
        if resume and _finished(run_dir):  # --resume skips what is done
            progress(planned_steps(spec))
            recorded = open_run(run_dir).read_analysis("training")
            outcome = TrainingOutcome(**recorded) if isinstance(recorded, dict) else None
            return ExperimentResult(spec.run_name, run_dir, "finished", outcome=outcome)
        outcome = train(spec, run_dir, progress=progress, resume=resume)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return ExperimentResult(spec.run_name, run_dir, "failed", detail)
    return ExperimentResult(spec.run_name, run_dir, "finished", outcome=outcome)


def planned_steps(spec: ExperimentSpec) -> int:
    """Steps an experiment will train, for progress bars (its budget; may stop earlier)."""
    return total_steps(spec, DATASETS[spec.dataset].n_train) + 1


def run_local(
    configs: Sequence[ExperimentSpec],
    root: str | Path,
    *,
    workers: int | None = None,
    show_progress: bool = True,
    resume: bool = False,
) -> list[ExperimentResult]:
    """Train every experiment into ``root/<run_name>`` on a local process pool.

    Parameters
    ----------
    configs : sequence of ExperimentSpec
    root : path
        Directory that receives one run directory per experiment.
    workers : int, optional
        Worker processes; default the number of CPU cores (capped by the number of
        experiments). ``workers=0`` runs in this process (useful for debugging).
    show_progress : bool
        Draw a rich progress bar over all steps of all experiments.
    resume : bool
        Skip experiments whose run is finished and continue interrupted ones from their
        latest checkpoint (see :func:`~traindyn.experiments.trainer.train`).

    Returns
    -------
    list of ExperimentResult
        In the order of ``configs``.
    """
    _check_unique(configs)
    if workers is not None and workers < 0:
        raise ConfigError(f"workers must be >= 0; got {workers!r}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n_workers = min(len(configs), workers if workers is not None else (os.cpu_count() or 1))
    total = sum(planned_steps(c) for c in configs)
    progress = _progress_bar(show_progress)
    with progress:
        task = progress.add_task(f"{len(configs)} experiments", total=total)
        if n_workers == 0:

            def advance(n: int) -> None:
                progress.update(task, advance=n)

            return [_run_one(config, root / config.run_name, resume, advance) for config in configs]

        outcomes = map_isolated(
            _run_one,
            [(config, root / config.run_name, resume) for config in configs],
            workers=n_workers,
            initializer=_init_worker,
            progress=lambda n: progress.update(task, advance=n),
            before_retry=_restart_from_scratch(configs, root),
        )
        progress.update(task, completed=total)
    return _as_results(configs, root, outcomes)


def run_ray(
    configs: Sequence[ExperimentSpec],
    root: str | Path,
    *,
    address: str | None = None,
    num_cpus: int | None = None,
    show_progress: bool = True,
    resume: bool = False,
) -> list[ExperimentResult]:
    """Train every experiment into ``root/<run_name>``, one Ray task (1 CPU) each.

    Ray schedules the tasks over the cluster. Each task trains with one torch thread,
    like a worker of :func:`run_local`, so that the same seeds give the same metrics
    under both executors.

    Parameters
    ----------
    configs : sequence of ExperimentSpec
    root : path
        Directory that receives one run directory per experiment. Tasks write there
        from whichever node runs them, so on a multi-node cluster ``root`` must be shared
        storage mounted at the same path on every node and on this machine (NFS, a
        cluster file system); a node-local disk would scatter the runs over the nodes.
    address : str, optional
        The cluster to connect to (``"auto"``, ``"<head-ip>:6379"``, ``"ray://..."``);
        default: start a local Ray instance. Used only if Ray is not initialised yet.
    num_cpus : int, optional
        CPUs of the local Ray instance, i.e. experiments trained at once; default all
        cores. Only for a local instance: a cluster declares its own CPUs.
    show_progress : bool
        Draw a rich progress bar over all steps of all experiments.
    resume : bool
        Skip experiments whose run is finished and continue interrupted ones from their
        latest checkpoint (see :func:`~traindyn.experiments.trainer.train`).

    Returns
    -------
    list of ExperimentResult
        In the order of ``configs``. An experiment that raised, or whose worker process
        or node died (twice: it is retried once from scratch), is ``"failed"`` with the
        reason in ``error``.

    Raises
    ------
    ConfigError
        If Ray is not installed, names repeat, or ``num_cpus`` is invalid.

    Notes
    -----
    If Ray is already initialised (``ray.init`` was called), the tasks run there and
    Ray is left running; ``address`` and ``num_cpus`` are then ignored, with a warning.
    Otherwise Ray is started for this call and shut down when it returns. Every node
    needs the same traindyn (and torch) installed as this machine.
    """
    _check_unique(configs)
    if num_cpus is not None and num_cpus < 1:
        raise ConfigError(
            f"num_cpus must be >= 1 (experiments trained at once); got {num_cpus!r}. "
            "Leave it unset to use every core."
        )
    ray = _import_ray()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if not configs:
        return []
    started = False
    if ray.is_initialized():
        if address is not None or num_cpus is not None:
            warnings.warn(
                f"Ray is already initialised, so address={address!r} and "
                f"num_cpus={num_cpus!r} are ignored; the experiments run on the existing "
                "Ray instance. Call ray.shutdown() first to start a new one.",
                TraindynWarning,
                stacklevel=2,
            )
    else:
        if address is not None and num_cpus is not None:
            raise ConfigError(
                f"num_cpus sizes a local Ray instance; the cluster at address={address!r} "
                f"declares its own CPUs, so num_cpus={num_cpus!r} cannot apply. Drop num_cpus."
            )
        ray.init(
            address=address,
            num_cpus=num_cpus,
            include_dashboard=False,
            logging_level="warning",  # the progress bar is the output; Ray's INFO lines clutter it
        )
        started = True
    total = sum(planned_steps(c) for c in configs)
    progress = _progress_bar(show_progress)
    # Tasks get absolute paths: a Ray worker's working directory is not ours.
    task_root = root.absolute()
    try:
        with progress:
            task = progress.add_task(f"{len(configs)} experiments", total=total)
            outcomes = map_ray(
                _run_one,
                [(config, task_root / config.run_name, resume) for config in configs],
                initializer=_init_worker,
                progress=lambda n: progress.update(task, advance=n),
                before_retry=_restart_from_scratch(configs, root),
            )
            progress.update(task, completed=total)
    finally:
        if started:
            ray.shutdown()
    return _as_results(configs, root, outcomes)


def run_experiments(
    configs: Sequence[ExperimentSpec],
    root: str | Path,
    *,
    executor: Executor = "local",
    workers: int | None = None,
    address: str | None = None,
    show_progress: bool = True,
    resume: bool = False,
) -> list[ExperimentResult]:
    """Train every experiment into ``root/<run_name>`` with the chosen executor.

    Parameters
    ----------
    configs : sequence of ExperimentSpec
    root : path
        Directory that receives one run directory per experiment (for ``"ray"`` on
        several nodes: shared storage, see :func:`run_ray`).
    executor : {"local", "ray"}
        ``"local"``: a process pool on this machine (:func:`run_local`). ``"ray"``: one
        Ray task per experiment (:func:`run_ray`).
    workers : int, optional
        Experiments trained at once on this machine: the pool size for ``"local"``, the
        CPUs of a local Ray instance for ``"ray"``. Default: every core.
    address : str, optional
        Ray cluster address (``executor="ray"`` only); default: a local Ray instance.
    show_progress : bool
        Draw a rich progress bar over all steps of all experiments.
    resume : bool
        Skip experiments whose run is finished and continue interrupted ones from their
        latest checkpoint (see :func:`~traindyn.experiments.trainer.train`).

    Returns
    -------
    list of ExperimentResult
        In the order of ``configs``.

    Raises
    ------
    ConfigError
        If ``executor`` is unknown, an option does not apply to it, or Ray is needed
        but not installed.
    """
    if executor not in get_args(Executor):
        valid = ", ".join(repr(e) for e in get_args(Executor))
        raise ConfigError(f"executor must be one of {valid}; got {executor!r}.")
    if executor == "local":
        if address is not None:
            raise ConfigError(
                f"address is a Ray cluster address; got address={address!r} with "
                "executor='local'. Pass executor='ray' to run on that cluster."
            )
        return run_local(configs, root, workers=workers, show_progress=show_progress, resume=resume)
    if workers is not None and workers < 1:
        raise ConfigError(
            f"workers must be >= 1 with executor='ray'; got {workers!r}. Use "
            "executor='local' with workers=0 to train in this process."
        )
    if workers is not None and address is not None:
        raise ConfigError(
            f"workers sizes a local Ray instance; the cluster at address={address!r} "
            f"declares its own CPUs, so workers={workers!r} cannot apply. Drop workers."
        )
    return run_ray(
        configs,
        root,
        address=address,
        num_cpus=workers,
        show_progress=show_progress,
        resume=resume,
    )


def _check_unique(configs: Sequence[ExperimentSpec]) -> None:
    names = [c.run_name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"experiment names must be unique; repeated: {duplicates}.")


def _progress_bar(show: bool) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        disable=not show,
    )


def _restart_from_scratch(configs: Sequence[ExperimentSpec], root: Path) -> Callable[[int], None]:
    def retry(index: int) -> None:
        # a worker died mid-run: its partial run directory is restarted from scratch
        _remove_unfinished(root / configs[index].run_name)

    return retry


def _as_results(
    configs: Sequence[ExperimentSpec],
    root: Path,
    outcomes: Sequence[ExperimentResult | TaskFailed],
) -> list[ExperimentResult]:
    results = []
    for config, outcome in zip(configs, outcomes, strict=True):
        run_dir = root / config.run_name
        if isinstance(outcome, TaskFailed):
            results.append(ExperimentResult(config.run_name, run_dir, "failed", str(outcome)))
        else:
            results.append(replace(outcome, run_dir=run_dir))
    return results


class TaskFailed(RuntimeError):
    """A task did not return a result; the message says why."""


class WorkerDied(TaskFailed):
    """A task killed the process running it (segfault, out-of-memory kill, os._exit)."""


T = TypeVar("T")


def map_isolated(
    func: Callable[..., T],
    argsets: Sequence[tuple[Any, ...]],
    *,
    workers: int,
    initializer: Callable[..., object] | None = None,
    progress: Callable[[int], None] | None = None,
    before_retry: Callable[[int], None] | None = None,
) -> list[T | WorkerDied]:
    """``[func(*args) for args in argsets]`` on a spawn process pool, isolating crashes.

    A worker that dies takes the whole pool with it (``BrokenProcessPool``), including
    tasks that were only waiting. Every task that did not complete is then run again,
    alone in a fresh one-worker pool, so a crash costs only the task that caused it: that
    one is returned as :class:`WorkerDied`. ``initializer(queue, 1)`` runs in each worker
    with the queue its tasks report progress on; ``progress(n)`` receives those reports.
    """
    ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
    progress_queue = ctx.Queue()
    results: dict[int, T | WorkerDied] = {}

    def run_round(indices: list[int], n_workers: int) -> list[int]:
        initargs: tuple[Any, ...] = (progress_queue, 1) if initializer else ()
        with ProcessPoolExecutor(
            max_workers=n_workers, mp_context=ctx, initializer=initializer, initargs=initargs
        ) as pool:
            futures = {i: pool.submit(func, *argsets[i]) for i in indices}
            while not all(f.done() for f in futures.values()):
                with contextlib.suppress(queue.Empty):
                    report = progress_queue.get(timeout=0.2)
                    if progress is not None:
                        progress(report)
        broken = []
        for i, future in futures.items():
            try:
                results[i] = future.result()
            except BrokenProcessPool:
                broken.append(i)
        return broken

    broken = run_round(list(range(len(argsets))), workers)
    for i in broken:
        if before_retry is not None:
            before_retry(i)
        if run_round([i], 1):
            results[i] = WorkerDied(
                f"the worker process died while running task {i} (a crash or an "
                "out-of-memory kill); the other tasks were not affected"
            )
    while True:  # reports still in flight
        try:
            report = progress_queue.get_nowait()
        except queue.Empty:
            break
        if progress is not None:
            progress(report)
    return [results[i] for i in range(len(argsets))]


def map_ray(
    func: Callable[..., T],
    argsets: Sequence[tuple[Any, ...]],
    *,
    initializer: Callable[..., object] | None = None,
    progress: Callable[[int], None] | None = None,
    before_retry: Callable[[int], None] | None = None,
    poll_interval: float = 0.2,
) -> list[T | TaskFailed]:
    """``[func(*args) for args in argsets]`` as Ray tasks of one CPU each, isolating failures.

    Ray must be initialised. ``func`` and the arguments must be importable or picklable
    on every node. A task whose worker process or node dies is run once more (after
    ``before_retry(i)``); if it dies again it is returned as :class:`WorkerDied`. A task
    that Ray could not run or that raised is returned as :class:`TaskFailed` with the
    error: unlike :func:`map_isolated`, nothing is raised, so one bad task never
    discards the others' results.

    Progress: ``initializer(reporter, 1)`` runs at the start of each task, like a pool
    initializer; ``reporter.put(n)`` sums step counts in the task and sends them, at most
    every ``poll_interval`` seconds and once at the end, to a ``ray.util.queue.Queue``
    that this function drains every ``poll_interval`` seconds into ``progress(n)``.
    """
    ray = _import_ray()
    from ray.util.queue import Queue

    crashes = (
        ray.exceptions.WorkerCrashedError,
        ray.exceptions.NodeDiedError,
        ray.exceptions.OutOfMemoryError,  # Ray's memory monitor killed the worker
        ray.exceptions.ObjectLostError,
        ray.exceptions.LocalRayletDiedError,
    )
    # The queue actor only relays numbers: it reserves no CPU, so it never holds back a task.
    reports = Queue(actor_options={"num_cpus": 0})
    # max_retries=0: Ray must not re-run a crashed task into its half-written run
    # directory; we retry it ourselves after before_retry has cleaned up.
    task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)
    pending: dict[Any, tuple[int, int]] = {}
    results: dict[int, T | TaskFailed] = {}

    def submit(i: int, attempt: int) -> None:
        ref = task.remote(func, argsets[i], initializer, reports, poll_interval)
        pending[ref] = (i, attempt)

    def drain() -> None:
        try:
            n = reports.qsize()
            counts = reports.get_nowait_batch(n) if n else []
        except ray.exceptions.RayError:  # progress is cosmetic; the results are not
            return
        if progress is not None and counts:
            progress(sum(counts))

    try:
        for i in range(len(argsets)):
            submit(i, 0)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=len(pending), timeout=poll_interval)
            drain()
            for ref in done:
                i, attempt = pending.pop(ref)
                try:
                    results[i] = ray.get(ref)
                except crashes as exc:
                    if attempt == 0:
                        if before_retry is not None:
                            before_retry(i)
                        submit(i, 1)
                    else:
                        results[i] = WorkerDied(
                            f"the Ray worker running task {i} died, also when retried "
                            f"({type(exc).__name__}: {_first_line(exc)}); the other tasks "
                            "were not affected"
                        )
                except ray.exceptions.RayError as exc:
                    results[i] = TaskFailed(_ray_error_text(exc))
        drain()
    finally:
        # Interrupted (Ctrl-C) or Ray itself failed: don't leave tasks running on a cluster.
        with contextlib.suppress(ray.exceptions.RayError):
            for ref in pending:
                ray.cancel(ref)
            reports.shutdown(force=True)
    return [results[i] for i in range(len(argsets))]


def _ray_task(
    func: Callable[..., T],
    args: tuple[Any, ...],
    initializer: Callable[..., object] | None,
    reports: Any,
    interval: float,
) -> T:
    """Body of one Ray task (runs on a Ray worker)."""
    reporter = _Reporter(reports, interval)
    if initializer is not None:
        initializer(reporter, 1)
    try:
        return func(*args)
    finally:
        reporter.close()


class _Reporter:
    """Step counts of one Ray task, batched: one queue round trip per ``interval`` seconds.

    A per-step ``put`` on the queue would cost a round trip to its actor every step.
    """

    def __init__(self, reports: Any, interval: float) -> None:
        self.reports = reports
        self.interval = interval
        self.pending = 0
        self.last = time.monotonic()
        self.closed = False

    def put(self, n: int) -> None:
        if self.closed:  # a later task on this worker reports through its own reporter
            return
        self.pending += n
        if time.monotonic() - self.last >= self.interval:
            self.flush()

    def flush(self) -> None:
        from ray.exceptions import RayError

        if self.pending:
            # progress is cosmetic: a lost queue (driver gone) must not fail the training
            with contextlib.suppress(RayError):
                self.reports.put(self.pending)
            self.pending = 0
        self.last = time.monotonic()

    def close(self) -> None:
        self.flush()
        self.closed = True


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "executor 'ray' needs the ray package, which is not installed. Install it "
            "with: pip install 'traindyn[ray]' (or run with the 'local' executor)."
        ) from None
    return ray


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _ray_error_text(exc: BaseException) -> str:
    """The original error of a ``RayTaskError`` (not Ray's remote traceback), else Ray's."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, BaseException):
        return "".join(traceback.format_exception_only(type(cause), cause)).strip()
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _finished(run_dir: Path) -> bool:
    try:
        return (run_dir / "run.json").is_file() and open_run(run_dir).is_finished
    except TraindynError:
        return False


def _remove_unfinished(run_dir: Path) -> None:
    if not run_dir.is_dir():
        return
    try:
        finished = open_run(run_dir).is_finished
    except TraindynError:  # no readable run.json: nothing worth keeping
        finished = False
    if not finished:
        shutil.rmtree(run_dir)
