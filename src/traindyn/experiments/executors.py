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
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from traindyn.exceptions import ConfigError
from traindyn.experiments.trainer import TrainConfig, train

__all__ = ["ExperimentResult", "run_local"]

_progress_queue: Any = None  # set in each worker process by _init_worker


@dataclass(frozen=True)
class ExperimentResult:
    """How one experiment ended."""

    name: str
    run_dir: Path
    status: Literal["finished", "failed"]
    error: str | None = None


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
    config: TrainConfig, run_dir: Path, progress: Callable[[int], None] = _report
) -> ExperimentResult:
    try:
        train(config, run_dir, progress=progress)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return ExperimentResult(config.name, run_dir, "failed", detail)
    return ExperimentResult(config.name, run_dir, "finished")


def run_local(
    configs: Sequence[TrainConfig],
    root: str | Path,
    *,
    workers: int | None = None,
    show_progress: bool = True,
) -> list[ExperimentResult]:
    """Train every config into ``root/<config.name>`` on a local process pool.

    Parameters
    ----------
    configs : sequence of TrainConfig
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
    names = [c.name for c in configs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"experiment names must be unique; repeated: {duplicates}.")
    if workers is not None and workers < 0:
        raise ConfigError(f"workers must be >= 0; got {workers!r}.")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n_workers = min(len(configs), workers if workers is not None else (os.cpu_count() or 1))
    total = sum(c.steps for c in configs)
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

            return [_run_one(config, root / config.name, advance) for config in configs]
        ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
        progress_queue = ctx.Queue()
        with ProcessPoolExecutor(
            max_workers=n_workers,
            mp_context=ctx,
            initializer=_init_worker,
            initargs=(progress_queue, 1),
        ) as pool:
            futures: list[Future[ExperimentResult]] = [
                pool.submit(_run_one, config, root / config.name) for config in configs
            ]
            while not all(f.done() for f in futures):
                with contextlib.suppress(queue.Empty):
                    progress.update(task, advance=progress_queue.get(timeout=0.2))
            while True:
                try:
                    progress.update(task, advance=progress_queue.get_nowait())
                except queue.Empty:
                    break
            progress.update(task, completed=total)
            return [f.result() for f in futures]
