"""Suite throughput: experiments per minute under the local pool and under Ray.

Workload: a suite (default the built-in ``smoke``: MLP, CNN and Transformer on digits,
40 steps each, tracked every 5 steps) trained end to end into a fresh temporary root per
call, exactly as ``traindyn run`` would: process start-up, imports, data loading,
training, tracking and writing the run directories are all inside the timed region.

Contenders:

- ``run_local(workers=1)``: the reference (a one-worker spawn pool);
- ``run_local(workers=2)``: a two-worker spawn pool;
- ``run_ray(num_cpus=2)`` cold: Ray is not running, so each call starts a local Ray
  instance and shuts it down (what one ``traindyn run --executor ray`` costs);
- ``run_ray()`` warm: Ray was started once beforehand with ``num_cpus=2`` (a long-lived
  cluster); its worker processes stay up between calls, torch already imported.

Timing: one process; rounds are interleaved and rotate the order (see ``_common.py``).
The cold contenders are timed while Ray is down, then Ray is started and the warm one is
timed against the same local reference. Ratios (experiments/minute relative to
``run_local(workers=1)``) are computed per round against that round's reference, then the
median is reported. Every executor trains each experiment with one torch thread, so the
work per experiment is the same; only the parallelism and the overheads differ.

Run: ``.venv/bin/python benchmarks/suite_throughput.py [--suite smoke] [--quick]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import format_table, interleaved_times, median, print_header

from traindyn.experiments.executors import ExperimentResult, run_local, run_ray
from traindyn.experiments.suite import (
    SUITES,
    ExperimentSpec,
    builtin_suite,
    expand_suite,
    load_suite,
)

QUICK_STEPS = 10


def load_specs(suite: str, *, quick: bool) -> list[ExperimentSpec]:
    """The suite's experiments; with ``quick``, at most QUICK_STEPS steps each."""
    spec = builtin_suite(suite) if suite in SUITES else load_suite(suite)
    specs = expand_suite(spec, source=suite)
    if quick:
        specs = [
            s.model_copy(update={"train": s.train.model_copy(update={"steps": QUICK_STEPS})})
            for s in specs
            if s.train.steps is not None
        ]
    return specs


def timed_call(
    run: Callable[[Path], Sequence[ExperimentResult]], scratch: Path
) -> Callable[[], None]:
    """A contender: train the suite into a fresh directory, check it, remove it."""

    def call() -> None:
        root = Path(tempfile.mkdtemp(dir=scratch))
        try:
            results = run(root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        failed = [f"{r.name}: {r.error}" for r in results if r.status != "finished"]
        if failed:
            raise SystemExit("experiments failed:\n  " + "\n  ".join(failed))

    return call


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--suite",
        default="smoke",
        help=f"a built-in suite ({', '.join(SUITES)}) or a suite YAML file (default: smoke)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {QUICK_STEPS} steps per experiment, one round, no warm-up",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (3; quick 1)")
    parser.add_argument("--workers", type=int, default=2, help="parallel workers / Ray CPUs")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    args = parser.parse_args(argv)
    try:
        import ray
    except ImportError:
        print("ray is not installed: pip install 'traindyn[ray]'", file=sys.stderr)
        return 2
    if ray.is_initialized():  # pragma: no cover - a fresh process never is
        ray.shutdown()
    specs = load_specs(args.suite, quick=args.quick)
    repeats = args.repeats or (1 if args.quick else 3)
    warmup = 0 if args.quick else 1
    n = len(specs)
    w = args.workers
    print_header(
        f"Suite throughput: {args.suite!r} ({n} experiments), local pool vs Ray",
        [
            f"ray {ray.__version__}; steps per experiment: "
            + ", ".join(sorted({str(s.train.steps or s.train.epochs) for s in specs})),
            f"{repeats} interleaved round(s), {warmup} warm-up round(s), median",
        ],
    )
    # Ray's own warnings (e.g. about /dev/shm) are not what is measured here.
    warnings.filterwarnings("ignore", module="ray")
    scratch = Path(tempfile.mkdtemp(prefix="traindyn-throughput-"))
    ref = "local, 1 worker"
    labels = {
        ref: "run_local(workers=1)",
        "local_w": f"run_local(workers={w})",
        "ray_cold": f"run_ray(num_cpus={w}), starts and stops Ray",
        "ray_warm": f"run_ray() on a running Ray (num_cpus={w})",
    }
    try:
        cold = interleaved_times(
            {
                ref: timed_call(
                    lambda r: run_local(specs, r, workers=1, show_progress=False), scratch
                ),
                "local_w": timed_call(
                    lambda r: run_local(specs, r, workers=w, show_progress=False), scratch
                ),
                "ray_cold": timed_call(
                    lambda r: run_ray(specs, r, num_cpus=w, show_progress=False), scratch
                ),
            },
            repeats=repeats,
            warmup=warmup,
        )
        t0 = time.perf_counter()
        ray.init(num_cpus=w, include_dashboard=False, logging_level="warning")
        init_s = time.perf_counter() - t0
        try:
            warm = interleaved_times(
                {
                    ref: timed_call(
                        lambda r: run_local(specs, r, workers=1, show_progress=False), scratch
                    ),
                    "ray_warm": timed_call(
                        lambda r: run_ray(specs, r, show_progress=False), scratch
                    ),
                },
                # the first warm call starts Ray's workers: always warm up once
                repeats=repeats,
                warmup=1,
            )
        finally:
            ray.shutdown()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    rows: list[list[Any]] = []
    for phase, times, keys in (
        ("Ray down", cold, [ref, "local_w", "ray_cold"]),
        ("Ray up", warm, [ref, "ray_warm"]),
    ):
        for key in keys:
            ratios = [r / t for r, t in zip(times[ref], times[key], strict=True)]
            seconds = median(times[key])
            rows.append([phase, labels[key], n, seconds, 60.0 * n / seconds, median(ratios)])
    print(
        format_table(
            ["phase", "executor", "experiments", "wall s", "experiments/min", "vs 1 local worker"],
            rows,
            markdown=args.markdown,
        )
    )
    print()
    print(f"ray.init(num_cpus={w}) before the warm phase took {init_s:.1f} s (not timed above).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
