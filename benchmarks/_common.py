"""Shared helpers of the benchmark scripts: thread setup, interleaved timing, tables.

Not part of the package and not a test: each script in this folder runs on its own
(``.venv/bin/python benchmarks/<name>.py``) and imports this file from its own folder.

Timing rules used by every script (the machine is shared and noisy):

- all contenders are measured in ONE process, side by side;
- repetitions are interleaved (A B C A B C ...), never A A A B B B, so a slow phase of the
  machine hits every contender alike;
- a warm-up call of each contender runs before anything is timed;
- the reported figure is the median over repetitions, and ratios are computed per
  repetition and then reduced with the median.
"""

from __future__ import annotations

import datetime as _dt
import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "add_common_arguments",
    "environment_lines",
    "format_table",
    "gc_quiet",
    "interleaved_times",
    "median",
    "planted_suite_table",
    "print_header",
    "setup_threads",
    "verdict",
]


def add_common_arguments(parser: Any) -> None:
    """The flags every benchmark accepts: --quick, --threads, --cpus, --markdown."""
    parser.add_argument(
        "--quick", action="store_true", help="smoke test: small sizes, runs in < 30 s"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: measured single-threaded)",
    )
    parser.add_argument(
        "--cpus",
        type=int,
        default=None,
        help="pin the process to this many CPUs (os.sched_setaffinity); default: no pinning",
    )
    parser.add_argument(
        "--markdown", action="store_true", help="print tables as Markdown (for the README)"
    )


_LIMITS: list[Any] = []  # keeps the threadpoolctl limiter alive for the whole run


def setup_threads(threads: int, cpus: int | None) -> None:
    """Limit every thread pool to ``threads`` and optionally pin to ``cpus`` CPUs.

    torch's intra-op pool is set with ``torch.set_num_threads``; the BLAS and OpenMP
    pools of numpy, scipy and scikit-learn (which scikit-dimension uses) are limited with
    threadpoolctl, so that "single-threaded" holds for every contender, not only torch.
    """
    if cpus is not None:
        available = sorted(os.sched_getaffinity(0))
        if cpus < 1 or cpus > len(available):
            raise SystemExit(f"--cpus must be in 1..{len(available)}; got {cpus}.")
        os.sched_setaffinity(0, set(available[:cpus]))
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn depends on it; without it only torch is limited
        return
    _LIMITS.append(threadpool_limits(limits=threads))


def environment_lines() -> list[str]:
    """Date, machine and library versions, for the header of every report."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    return [
        f"date: {_dt.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs ({affinity} usable), "
        f"{platform.system()} {platform.release()}",
        f"python {platform.python_version()}, torch {torch.__version__}, numpy {np.__version__}",
        f"torch threads: {torch.get_num_threads()} (interop {torch.get_num_interop_threads()})"
        f"; BLAS/OpenMP pools: {_pool_threads()}",
    ]


def _pool_threads() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    found = sorted({f"{p['internal_api']}={p['num_threads']}" for p in threadpool_info()})
    return ", ".join(found) or "none loaded"


def print_header(title: str, extra: Sequence[str] = ()) -> None:
    """Print the report header: title, environment, and script-specific settings."""
    print(title)
    print("=" * len(title))
    for line in [*environment_lines(), *extra]:
        print(f"  {line}")
    print()


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def interleaved_times(
    contenders: Mapping[str, Callable[[], Any]],
    *,
    repeats: int,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Wall-clock seconds of each contender over ``repeats`` interleaved rounds.

    Round r calls every contender once, starting at a rotating offset so that no
    contender always runs first (after a gc pass) or last.
    """
    names = list(contenders)
    for _ in range(warmup):
        for name in names:
            contenders[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for i in range(len(names)):
            name = names[(i + r) % len(names)]
            fn = contenders[name]
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def gc_quiet() -> None:
    """Collect garbage now so that a collection does not land inside a timed region."""
    gc.collect()


def format_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    markdown: bool = False,
) -> str:
    """A plain-text (or Markdown) table; numbers right-aligned, text left-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    numeric = [all(_is_number(row[j]) for row in rows if j < len(row)) for j in range(len(headers))]
    widths = [
        max([len(h), *(len(row[j]) for row in cells if j < len(row))])
        for j, h in enumerate(headers)
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(widths[j]) if numeric[j] else v.ljust(widths[j]) for j, v in enumerate(values)
        ]
        return ("| " + " | ".join(parts) + " |") if markdown else "  ".join(parts).rstrip()

    out: list[str] = []
    if title:
        out.append(f"**{title}**" if markdown else title)
        if markdown:
            out.append("")
    out.append(line(list(headers)))
    if markdown:
        out.append(
            "|"
            + "|".join(
                ("-" * (w + 1) + ":") if n else (":" + "-" * (w + 1))
                for w, n in zip(widths, numeric, strict=True)
            )
            + "|"
        )
    else:
        out.append("  ".join("-" * w for w in widths))
    out.extend(line(row) for row in cells)
    return "\n".join(out)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.floating | np.integer) and not isinstance(value, bool)


def _cell(value: Any) -> str:
    if isinstance(value, float | np.floating):
        v = float(value)
        if v != v:
            return "nan"
        if v == 0.0:
            return "0"
        a = abs(v)
        if a >= 100:
            return f"{v:.1f}"
        if a >= 1:
            return f"{v:.3f}"
        if a >= 1e-3:
            return f"{v:.4f}"
        return f"{v:.2e}"
    return str(value)


def verdict(ok: bool, text: str) -> str:
    """One target line: ``PASS  <text>`` or ``MISS  <text>``."""
    return f"{'PASS' if ok else 'MISS'}  {text}"


def planted_suite_table(
    rng: np.random.Generator,
    layers: Sequence[str],
    metrics: Sequence[str],
    n_samples: int,
    every: int,
    seed: int,
) -> Any:
    """A phase1-shaped run's metrics table: decaying trajectories, noise 0.05, and steps of
    10-15 noise sd on 2 random layers at a random sample in 40..360 (draws from ``rng``)."""
    from traindyn.analysis.synthetic import planted_metrics

    noise = 0.05
    jumps = {
        str(layer): {
            int(rng.integers(40, 360)): float(rng.uniform(10, 15) * rng.choice([-1, 1])) * noise
        }
        for layer in rng.choice(list(layers), size=2, replace=False)
    }
    return planted_metrics(
        n_samples=n_samples,
        every=every,
        layers=layers,
        metrics=metrics,
        jumps=jumps,
        noise=noise,
        decay=(4.0, float(rng.uniform(20, 40))),
        seed=seed,
    )
