"""Run many experiments: a local process pool with one overall progress bar.

Each task trains one :class:`~traindyn.experiments.trainer.TrainConfig` into its own run
directory, so a suite is just many run directories; a failed experiment is recorded as
failed and the others go on. traindyn never implements a scheduler of its own.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import shutil
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from traindyn.exceptions import ConfigError, TraindynError
from traindyn.experiments.datasets import DATASETS
from traindyn.experiments.suite import ExperimentSpec
from traindyn.experiments.trainer import TrainingOutcome, total_steps, train
from traindyn.store import open_run

__all__ = ["ExperimentResult", "WorkerDied", "map_isolated", "run_local"]

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
    spec: ExperimentSpec, run_dir: Path, progress: Callable[[int], None] = _report
) -> ExperimentResult:
    try:
        outcome = train(spec, run_dir, progress=progress)
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

    Returns
    -------
    list of ExperimentResult
        In the order of ``configs``.
    """
    names = [c.run_name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"experiment names must be unique; repeated: {duplicates}.")
    if workers is not None and workers < 0:
        raise ConfigError(f"workers must be >= 0; got {workers!r}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n_workers = min(len(configs), workers if workers is not None else (os.cpu_count() or 1))
    total = sum(planned_steps(c) for c in configs)
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("steps"),
        TimeElapsedColumn(),
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task(f"{len(configs)} experiments", total=total)
        if n_workers == 0:

            def advance(n: int) -> None:
                progress.update(task, advance=n)

            return [_run_one(config, root / config.run_name, advance) for config in configs]

        def retry(index: int) -> None:
            # a worker died mid-run: its partial run directory is restarted from scratch
            _remove_unfinished(root / configs[index].run_name)

        outcomes = map_isolated(
            _run_one,
            [(config, root / config.run_name) for config in configs],
            workers=n_workers,
            initializer=_init_worker,
            progress=lambda n: progress.update(task, advance=n),
            before_retry=retry,
        )
        progress.update(task, completed=total)
    results = []
    for config, outcome in zip(configs, outcomes, strict=True):
        if isinstance(outcome, WorkerDied):
            run_dir = root / config.run_name
            outcome = ExperimentResult(config.run_name, run_dir, "failed", str(outcome))
        results.append(outcome)
    return results


class WorkerDied(RuntimeError):
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


def _remove_unfinished(run_dir: Path) -> None:
    if not run_dir.is_dir():
        return
    try:
        finished = open_run(run_dir).is_finished
    except TraindynError:  # no readable run.json: nothing worth keeping
        finished = False
    if not finished:
        shutil.rmtree(run_dir)
