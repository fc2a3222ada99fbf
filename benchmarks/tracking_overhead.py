"""What tracking costs a training loop: traindyn vs ndtracker vs no tracking.

Workload: the MLP 784-256-128-10 (ReLU), batch 64, synthetic Gaussian inputs labelled by
a fixed random linear teacher (argmax of x @ W), cross-entropy, SGD (lr 0.01, momentum
0.9) or Adam (lr 1e-3), N steps over a pool of 64 pre-generated batches. The three
Linear layers (``0``, ``2``, ``4``) are measured, every 1 or every 5 steps.

Contenders, each in the two capture modes:

- untracked: the bare loop (the baseline);
- traindyn probe mode: ``td.Tracker(model, probe=(x_probe, y_probe), run=..., every=k,
  layers=["0", "2", "4"])`` (default metrics: the five spectral ones) with
  ``tracker.step(step, loss=loss)`` after ``optimizer.step()``; the probe is a fixed set of
  256 samples (``--probe-size``) from the same distribution;
- traindyn batch mode: ``td.Tracker(model, run=..., mode="batch", every=k, layers=...)``,
  ``with tracker.watch(step): logits = model(x)`` and ``tracker.step(step, loss=loss)``;
- ndtracker batch mode: ``ndt.HighFrequencyTracker(model, layers=[model[0], model[2],
  model[4]], sampling_frequency=k, enable_jump_detection=False)`` and
  ``tracker.log(step, loss.item())`` after ``optimizer.step()``: its permanent hooks keep
  the training forward's outputs and ``log`` computes its four metrics (one SVD per layer)
  synchronously on sampled steps;
- ndtracker "probe mode" (ndtracker has none; this is the closest equivalent): the same
  tracker, plus, on sampled steps only (``step % k == 0``), a ``torch.no_grad()`` forward of
  the same 256-sample probe right before ``tracker.log``, so that its hooks hold the probe's
  activations when ``log`` measures them. The model stays in train mode (no dropout or
  batch norm here, so the outputs are those of eval mode) and the RNG state is not saved;
  traindyn's probe pass additionally switches to eval mode and back, saves and restores
  the RNG state, and records probe accuracy, confidence and loss.

Timing: one process, torch single-threaded (``--threads``). Every tracked run is paired
with an untracked run of the same N steps immediately before it; pairs run in rounds
and the order of configurations rotates from round to round. For each run we time
setup (tracker construction; for traindyn the run directory, manifest and worker thread
start on entering ``with tracker:``), the training loop, and ``close()`` (traindyn:
draining the worker queue, computing what is left, writing the parquet parts and the
manifest; ndtracker: removing hooks). "total" is loop + close; setup is reported apart.
Ratios and added ms/step are computed per pair, then the median over rounds is reported,
with the range over rounds. traindyn computes metrics on a worker thread; on this 2-CPU
machine it can use the second core. ``--cpus 1`` pins the process to one CPU to show the
cost when no core is spare.

Run: ``.venv/bin/python benchmarks/tracking_overhead.py [--quick] [--cpus 1]``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from _common import (
    add_common_arguments,
    format_table,
    gc_quiet,
    median,
    print_header,
    setup_threads,
    verdict,
)
from torch import nn
from torch.nn import functional as F

import traindyn as td

try:
    import ndt
except ImportError:  # pragma: no cover - the bench extra installs it
    ndt = None

LAYERS = ["0", "2", "4"]
N_BATCHES = 64
BATCH = 64
TARGET_BATCH_RATIO = 1.05
TARGET_VS_NDT = 0.5


@dataclass(frozen=True)
class Data:
    xs: torch.Tensor
    ys: torch.Tensor
    x_probe: torch.Tensor
    y_probe: torch.Tensor


@dataclass(frozen=True)
class Config:
    tool: str  # "traindyn" | "ndtracker"
    mode: str  # "batch" | "probe"
    every: int

    @property
    def label(self) -> str:
        return f"{self.tool} {self.mode} every={self.every}"


@dataclass
class Result:
    base: list[float] = field(default_factory=list)  # untracked loop seconds of each pair
    setup: list[float] = field(default_factory=list)
    loop: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)

    def total(self, i: int) -> float:
        """Training loop plus close() (draining the worker); setup is reported apart."""
        return self.loop[i] + self.close[i]


def make_data(seed: int, probe_size: int) -> Data:
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(784, 10, generator=g)
    xs = torch.randn(N_BATCHES, BATCH, 784, generator=g)
    x_probe = torch.randn(probe_size, 784, generator=g)
    return Data(xs, (xs @ teacher).argmax(-1), x_probe, (x_probe @ teacher).argmax(-1))


def make_model(seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, 10)
    )


def make_optimizer(model: nn.Module, name: str) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=1e-3)
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


# Each loop is written out in full so that the untracked and tracked loops differ only by
# the tracking calls. Every runner returns (setup, loop, close) in seconds.
Timings = tuple[float, float, float]


def run_untracked(model: nn.Module, opt: torch.optim.Optimizer, data: Data, steps: int) -> Timings:
    xs, ys = data.xs, data.ys
    t0 = time.perf_counter()
    for step in range(steps):
        x, y = xs[step % N_BATCHES], ys[step % N_BATCHES]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return 0.0, time.perf_counter() - t0, 0.0


def run_traindyn_batch(
    model: nn.Module, opt: torch.optim.Optimizer, data: Data, steps: int, every: int, run: Path
) -> Timings:
    xs, ys = data.xs, data.ys
    t0 = time.perf_counter()
    tracker = td.Tracker(model, run=run, mode="batch", every=every, layers=LAYERS)
    with tracker:
        t1 = time.perf_counter()
        for step in range(steps):
            x, y = xs[step % N_BATCHES], ys[step % N_BATCHES]
            with tracker.watch(step):
                logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tracker.step(step, loss=loss)
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def run_traindyn_probe(
    model: nn.Module, opt: torch.optim.Optimizer, data: Data, steps: int, every: int, run: Path
) -> Timings:
    xs, ys = data.xs, data.ys
    t0 = time.perf_counter()
    tracker = td.Tracker(
        model, probe=(data.x_probe, data.y_probe), run=run, every=every, layers=LAYERS
    )
    with tracker:
        t1 = time.perf_counter()
        for step in range(steps):
            x, y = xs[step % N_BATCHES], ys[step % N_BATCHES]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tracker.step(step, loss=loss)
        t2 = time.perf_counter()
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def _ndt_tracker(model: nn.Sequential, every: int) -> object:
    assert ndt is not None
    return ndt.HighFrequencyTracker(
        model,
        layers=[model[0], model[2], model[4]],
        sampling_frequency=every,
        enable_jump_detection=False,
    )


def run_ndt_batch(
    model: nn.Sequential, opt: torch.optim.Optimizer, data: Data, steps: int, every: int
) -> Timings:
    xs, ys = data.xs, data.ys
    t0 = time.perf_counter()
    tracker = _ndt_tracker(model, every)
    t1 = time.perf_counter()
    for step in range(steps):
        x, y = xs[step % N_BATCHES], ys[step % N_BATCHES]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        tracker.log(step, loss.item())  # type: ignore[attr-defined]
    t2 = time.perf_counter()
    tracker.close()  # type: ignore[attr-defined]
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def run_ndt_probe(
    model: nn.Sequential, opt: torch.optim.Optimizer, data: Data, steps: int, every: int
) -> Timings:
    xs, ys, x_probe = data.xs, data.ys, data.x_probe
    t0 = time.perf_counter()
    tracker = _ndt_tracker(model, every)
    t1 = time.perf_counter()
    for step in range(steps):
        x, y = xs[step % N_BATCHES], ys[step % N_BATCHES]
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0:
            with torch.no_grad():
                model(x_probe)  # the hooks now hold the probe's activations
        tracker.log(step, loss.item())  # type: ignore[attr-defined]
    t2 = time.perf_counter()
    tracker.close()  # type: ignore[attr-defined]
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, t3 - t2


def run_config(
    cfg: Config | None, data: Data, steps: int, optim: str, seed: int, check: bool = False
) -> Timings:
    """One fresh model + optimizer, one run of ``cfg`` (None: untracked)."""
    model = make_model(seed)
    opt = make_optimizer(model, optim)
    gc_quiet()
    if cfg is None:
        return run_untracked(model, opt, data, steps)
    if cfg.tool == "ndtracker":
        runner = run_ndt_batch if cfg.mode == "batch" else run_ndt_probe
        return runner(model, opt, data, steps, cfg.every)
    root = Path(tempfile.mkdtemp(prefix="traindyn-bench-"))
    try:
        fn: Callable[..., Timings] = (
            run_traindyn_batch if cfg.mode == "batch" else run_traindyn_probe
        )
        timings = fn(model, opt, data, steps, cfg.every, root / "run")
        if check:
            _check_rows(root / "run", cfg, steps)
        return timings
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _check_rows(path: Path, cfg: Config, steps: int) -> None:
    """The tracked run really recorded every sample (outside the timed region)."""
    run = td.open_run(path)
    n_samples = len(range(0, steps, cfg.every))
    expected = n_samples * len(LAYERS) * len(td.metrics.DEFAULT_METRICS)
    got = len(run.metrics)
    n_nan = int(run.metrics["value"].isna().sum())
    if got != expected or n_nan:
        raise SystemExit(f"{cfg.label}: expected {expected} metric rows, got {got} ({n_nan} NaN)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--steps", type=int, default=None, help="steps per run (1000; quick 100)")
    parser.add_argument("--rounds", type=int, default=None, help="paired rounds (3; quick 1)")
    parser.add_argument(
        "--every", type=int, nargs="+", default=None, help="sampling periods (5 1; quick 5)"
    )
    parser.add_argument("--probe-size", type=int, default=256)
    parser.add_argument("--optim", choices=["sgd", "adam"], default="sgd")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if ndt is None:
        print("ndtracker is not installed: bash scripts/install.sh --bench", file=sys.stderr)
        return 2
    setup_threads(args.threads, args.cpus)
    steps = args.steps or (100 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 3)
    every_list: list[int] = args.every or ([5] if args.quick else [5, 1])
    data = make_data(args.seed, args.probe_size)
    configs = [
        Config(tool, mode, every)
        for mode in ("batch", "probe")
        for every in every_list
        for tool in ("traindyn", "ndtracker")
    ]
    print_header(
        "Tracking overhead: traindyn vs ndtracker vs untracked",
        [
            f"traindyn {td.__version__}, ndtracker {ndt.__version__}",
            f"MLP 784-256-128-10 ReLU, batch {BATCH}, {args.optim}, {steps} steps per run, "
            f"{rounds} round(s), probe {args.probe_size} samples, layers {LAYERS}",
            "each tracked run paired with an untracked run just before it; medians over rounds",
        ],
    )

    warnings.simplefilter("error", td.capture.TrackerWarning)  # a failed metric is a bug here
    warm = min(steps, 20 if args.quick else 50)
    run_config(None, data, warm, args.optim, args.seed)
    for cfg in configs:
        run_config(cfg, data, warm, args.optim, args.seed, check=True)

    results = {cfg: Result() for cfg in configs}
    t_start = time.perf_counter()
    for r in range(rounds):
        for i in range(len(configs)):
            cfg = configs[(i + r) % len(configs)]
            _, base, _ = run_config(None, data, steps, args.optim, args.seed)
            setup, loop, close = run_config(cfg, data, steps, args.optim, args.seed, check=r == 0)
            res = results[cfg]
            res.base.append(base)
            res.setup.append(setup)
            res.loop.append(loop)
            res.close.append(close)
        print(f"  round {r + 1}/{rounds} done ({time.perf_counter() - t_start:.0f} s)")
    print()

    def ms(seconds: float) -> float:
        return seconds * 1e3 / steps

    rows = []
    added: dict[Config, float] = {}
    ratio_total: dict[Config, float] = {}
    for cfg in configs:
        res = results[cfg]
        idx = range(len(res.base))
        added_each = [ms(res.total(i) - res.base[i]) for i in idx]
        added[cfg] = median(added_each)
        ratio_total[cfg] = median([res.total(i) / res.base[i] for i in idx])
        rows.append(
            [
                cfg.mode,
                cfg.every,
                cfg.tool,
                median([ms(b) for b in res.base]),
                median([ms(x) for x in res.loop]),
                median([ms(res.total(i)) for i in idx]),
                median([x * 1e3 for x in res.setup]),
                median([x * 1e3 for x in res.close]),
                median([res.loop[i] / res.base[i] for i in idx]),
                ratio_total[cfg],
                median([ms(res.loop[i] - res.base[i]) for i in idx]),
                added[cfg],
                f"{min(added_each):.3f}..{max(added_each):.3f}",
            ]
        )
    headers = [
        "mode",
        "every",
        "tool",
        "untracked ms/step",
        "loop ms/step",
        "total ms/step",
        "setup ms",
        "close ms",
        "ratio loop",
        "ratio total",
        "added loop ms/step",
        "added total ms/step",
        "added total min..max",
    ]
    print(format_table(headers, rows, title="Per configuration", markdown=args.markdown))
    print()

    cmp_rows = []
    for mode in ("batch", "probe"):
        for every in every_list:
            a = added[Config("traindyn", mode, every)]
            b = added[Config("ndtracker", mode, every)]
            cmp_rows.append([mode, every, a, b, a / b if b > 0 else float("nan")])
    print(
        format_table(
            ["mode", "every", "traindyn added ms/step", "ndtracker added ms/step", "td / ndt"],
            cmp_rows,
            title="Added ms/step (loop + close): traindyn / ndtracker",
            markdown=args.markdown,
        )
    )
    print()

    print("Targets (on total = training loop + close):")
    if 5 in every_list:
        r = ratio_total[Config("traindyn", "batch", 5)]
        ok = r <= TARGET_BATCH_RATIO
        print(verdict(ok, f"traindyn batch every=5 overhead ratio {r:.3f} <= {TARGET_BATCH_RATIO}"))
    for row in cmp_rows:
        mode, every, a, b, rel = row
        ok = b > 0 and a <= TARGET_VS_NDT * b
        print(
            verdict(
                ok,
                f"{mode} every={every}: traindyn added {a:.3f} ms/step <= "
                f"{TARGET_VS_NDT} x ndtracker's {b:.3f} (ratio {rel:.2f})",
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
