"""What the framework adapters, the mirrors and the prediction check cost.

Four measurements, side by side in one process, torch single-threaded (``--threads``):

1. **Hugging Face Trainer.** A tiny BERT built from its config (``BertConfig(vocab_size=1000,
   hidden_size=128, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
   max_position_embeddings=64)`` -> ``BertForSequenceClassification``, 2 classes) on 512
   synthetic sequences of 32 tokens (class 0 draws tokens 1-499, class 1 tokens 500-999),
   batch 16, AdamW (lr 1e-3), ``--hf-steps`` updates (200; quick 40),
   ``TrainingArguments(report_to=[], use_cpu=True, save_strategy="no", disable_tqdm=True,
   logging_steps=10)``, the ``PrinterCallback`` removed (it prints every log). Untracked vs
   ``callbacks=[TraindynCallback(probe, run, every=5)]`` with a fixed probe of 64 sequences
   (``--hf-probe``; default layers: both encoder layers, the pooler and the classifier). Timed:
   ``trainer.train()``, which for the tracked run includes building the tracker (run
   directory, worker start, the step-0 sample) and closing it.
2. **PyTorch Lightning.** The MLP 784-256-128-10 of ``tracking_overhead.py`` as a
   ``LightningModule`` (SGD lr 0.01, momentum 0.9) on 64 pre-generated batches of 64
   Gaussian inputs labelled by a fixed linear teacher (a ``DataLoader`` over them, no
   shuffle), ``Trainer(max_steps=N, accelerator="cpu", logger=False,
   enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)``,
   ``--pl-steps`` updates (1000; quick 100). Untracked vs
   ``TraindynLightningCallback((x_probe, y_probe), run, every=5, layers=["net.0", "net.2",
   "net.4"])`` with a probe of 256 samples, and for reference the same callback sampling
   step 0 only (``every=[0], milestones=None``: the adapter's per-step cost without
   measurements). Timed: ``trainer.fit(module, loader)``.

   For both adapters the time spent inside the callback's hooks is also measured (the
   hooks wrapped on the instance): "begin" (building the tracker, the first sample), the
   per-step hooks (``Tracker.step``: on due steps the probe forward pass on the training
   thread), "end" (closing: draining the worker). What the tracked run adds beyond its hooks
   is the tracker's worker thread (metrics, parquet writes) competing for the CPU and the
   GIL. A bare forward of the probe (eval, ``no_grad``, no hooks; median of 20) is shown
   under each table.
3. **Mirrors.** The plain loop of ``tracking_overhead.py`` (same MLP and data) with
   ``td.Tracker(model, probe=..., run=..., every=k, layers=[...])`` at every 5 and every 1,
   vs the same plus ``mirrors=[TensorBoardMirror(tmp)]`` vs plus
   ``mirrors=[WandbMirror(mode="offline", dir=tmp)]``, ``--mirror-steps`` steps (1000; quick
   100). The mirror is built and started (``start()``: the ``SummaryWriter``, or
   ``wandb.init``) before the tracker and that setup is reported apart; the ratio is on
   loop + ``close()`` (which drains the worker, so it holds every ``log`` call, and closes
   the writer or finishes the W&B run) against the unmirrored tracked run of the same round.
4. **Predictions.** ``traindyn.analysis.predictions.lock(file, suite=dir)`` of a
   6-prediction file (relative change, slope, change with ``beyond_noise`` across all
   layers, difference of finals, two ``first_event_step``) into a directory before its runs
   exist, then 33 synthetic runs x 401 samples (steps 0..2000 every 5) x 5 layers x 5
   metrics written into it with ``Run.create`` + ``append_metrics`` (values from
   ``td.analysis.synthetic.planted_metrics`` with an early decay and 2 planted jumps per
   run, flushed every 500 steps) and ``append_scalars`` (``loss``, ``lr`` each step,
   ``probe_accuracy`` / ``probe_loss`` at the samples). The suite is copied, and the copy
   analysed with ``analyze(copy)`` (timed once, as information). Timed (median of 3,
   interleaved): ``check(dir)`` without a stored analysis (the ``first_event_step``
   predictions run ``analyze_run`` on each run on the fly) and ``check(copy)`` with it;
   the two must give the same verdicts. ``--quick``: 4 runs, one repeat.

The every=5 mirror group also shows the untracked loop, for reference. Outside the timed
regions, the first round checks every tracked run (a sample at every 5th step, no NaN,
status finished) and that each mirror wrote its event file or offline W&B run.

Rounds: every contender of a group (1: untracked, tracked; 2: the same; 3: tracked,
+TensorBoard, +W&B, one group per ``every``) runs once per round, groups and the order
inside each group rotating from round to round; each round's ratios are to that round's
baseline, and the median over rounds is reported with the range. A warm-up run of each
contender (fewer steps) comes first. ``--quick``: one round, fewer steps.

Run: ``.venv/bin/python benchmarks/integrations.py [--quick] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# nothing may download, and W&B stays quiet (WandbMirror is given mode="offline"; the
# WANDB_MODE variable is not set: transformers prints a banner when it is)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")

import numpy as np
import torch
from _common import (
    add_common_arguments,
    format_table,
    gc_quiet,
    interleaved_times,
    median,
    planted_suite_table,
    print_header,
    setup_threads,
    verdict,
)
from torch import nn
from torch.nn import functional as F
from tracking_overhead import Data, make_data
from tracking_overhead import make_model as make_mlp

import traindyn as td
from traindyn.analysis import predictions as preds
from traindyn.analysis.engine import analyze
from traindyn.store import Run

TARGET_ADAPTER = 1.15  # tracked / untracked training time at every=5
TARGET_MIRROR = 1.05  # mirrored / unmirrored tracked run, loop + close
TARGET_CHECK_S = 10.0  # check() of the 33-run suite with a stored analysis

EVERY = 5
MLP_LAYERS = ["0", "2", "4"]
N_BATCHES = 64
BATCH = 64
PROBE = 256

HF_SEQ = 32
HF_VOCAB = 1000
HF_TRAIN = 512
HF_PROBE = 64
HF_BATCH = 16
HF_LOGGING_STEPS = 10

# the prediction suite: 33 runs like phase1, 5 layers each
SUITE_RUNS = 33
SUITE_LAYERS = [f"layers.{i}" for i in range(5)]
SUITE_METRICS = (
    "participation_ratio",
    "effective_rank",
    "stable_rank",
    "energy_rank",
    "nuclear_norm_ratio",
)
SUITE_SAMPLES = 401
SUITE_TOTAL = 2000
SUITE_FLUSH = 500

PREDICTIONS_YAML = """\
version: 1
predictions:
  - id: P1-accuracy-rises
    claim: probe accuracy rises by at least 20% in the first 30% of training
    target: {scalar: probe_accuracy}
    window: {fraction: [0, 0.3]}
    statistic: relative_change
    expect: {op: ">=", value: 0.2}
    partial: {op: ">", value: 0}
  - id: P2-loss-falls-late
    claim: the loss still falls in the second half of training
    target: {scalar: loss}
    window: {fraction: [0.5, 1.0]}
    statistic: slope
    expect: {op: "<", value: 0}
  - id: P3-rank-compresses
    claim: every layer's effective rank falls beyond twice its noise in the first 30%
    target: {layer: "*", metric: effective_rank}
    window: {fraction: [0, 0.3]}
    statistic: change
    across: all
    beyond_noise: 2
    expect: {op: "<", value: 0}
  - id: P4-early-event
    claim: the participation ratio has a surviving event before half of training
    target: {layer: "*", metric: participation_ratio}
    window: {fraction: [0, 0.5]}
    statistic: first_event_step
    expect: {op: "<=", value: 1000}
  - id: P5-deep-vs-shallow
    claim: the last layer ends with a lower stable rank than the first
    target: {layer: layers.4, metric: stable_rank}
    versus: {layer: layers.0}
    statistic: difference
    of: final
    expect: {op: "<", value: 0}
  - id: P6-late-event
    claim: every layer's nuclear norm ratio has a surviving event in the second half
    target: {layer: "*", metric: nuclear_norm_ratio}
    window: {fraction: [0.5, 1.0]}
    statistic: first_event_step
    across: all
    expect: {op: ">=", value: 1000}
"""


# --------------------------------------------------------------------------- quiet frameworks


def silence_frameworks() -> None:
    """Silence the frameworks' informational output and known warnings, narrowly."""
    import transformers

    transformers.logging.set_verbosity_error()  # "Some weights were not initialised"...
    # Lightning logs "GPU available: False, used: False" and the like at INFO on these
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Lightning's PossibleUserWarning: the in-memory loader is fastest without workers
    warnings.filterwarnings("ignore", message=r".*does not have many workers", category=UserWarning)
    # lightning 2.6's CombinedLoader calls torch's deprecated pytree LeafSpec check
    warnings.filterwarnings(
        "ignore",
        message=r"`isinstance\(treespec, LeafSpec\)` is deprecated",
        category=FutureWarning,
    )
    warnings.simplefilter("error", td.capture.TrackerWarning)  # a failed metric is a bug here


# --------------------------------------------------------------------------- timing structure

Timings = tuple[float, float, float]  # setup, loop, close (seconds)


class HookClock:
    """Wall time spent inside a callback's hooks, by part (begin, steps, end).

    The hooks are wrapped on the instance (both frameworks look them up with
    ``getattr(callback, name)``); the difference between the tracked and the untracked
    run that is not spent in hooks is the worker thread's share of the CPU and the GIL.
    """

    def __init__(self, callback: Any, parts: dict[str, Sequence[str]]) -> None:
        self.seconds = dict.fromkeys(parts, 0.0)
        for part, names in parts.items():
            for name in names:
                setattr(callback, name, self._wrap(getattr(callback, name), part))

    def _wrap(self, fn: Callable[..., Any], part: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[part] += time.perf_counter() - t0

        return timed


# the last timings of the adapters' hooks, read by run_rounds after each run
_LAST_HOOKS: dict[str, float] = {}


@dataclass
class Member:
    """One contender of a group: a runner of ``steps`` steps returning its timings."""

    label: str
    run: Callable[[int, bool], Timings]  # (steps, check) -> timings
    setup: list[float] = field(default_factory=list)
    loop: list[float] = field(default_factory=list)
    close: list[float] = field(default_factory=list)
    hooks: dict[str, list[float]] = field(default_factory=dict)  # adapters: time in hooks
    reference: bool = False  # shown for comparison, no target

    def total(self, i: int) -> float:
        """Loop plus close(); setup is reported apart."""
        return self.loop[i] + self.close[i]


@dataclass
class Group:
    """Contenders measured against the first (the baseline), round by round."""

    name: str
    steps: int
    warmup_steps: int
    members: list[Member]
    probe_forward: Callable[[], Any] | None = None  # a bare forward of the probe set

    @property
    def baseline(self) -> Member:
        return self.members[0]


def run_rounds(groups: Sequence[Group], rounds: int) -> None:
    """Warm up every contender, then ``rounds`` rounds with rotating order."""
    for g in groups:
        for m in g.members:
            gc_quiet()
            m.run(g.warmup_steps, True)
    t_start = time.perf_counter()
    for r in range(rounds):
        for gi in range(len(groups)):
            g = groups[(gi + r) % len(groups)]
            n = len(g.members)
            for mi in range(n):
                m = g.members[(mi + r) % n]
                gc_quiet()
                _LAST_HOOKS.clear()
                setup, loop, close = m.run(g.steps, r == 0)
                m.setup.append(setup)
                m.loop.append(loop)
                m.close.append(close)
                for part, seconds in _LAST_HOOKS.items():
                    m.hooks.setdefault(part, []).append(seconds)
        print(f"  round {r + 1}/{rounds} done ({time.perf_counter() - t_start:.0f} s)", flush=True)


def _range(values: Sequence[float], fmt: str = "{:.3f}") -> str:
    return f"{fmt.format(min(values))}..{fmt.format(max(values))}"


# --------------------------------------------------------------------------- data and models


MLPData = Data  # tracking_overhead.py's workload: the same MLP and teacher-labelled data


def make_mlp_data(seed: int) -> MLPData:
    return make_data(seed, PROBE)


def _check_run(path: Path, label: str, n_layers: int, min_samples: int) -> None:
    """The tracked run recorded every sample, no NaN (outside the timed region)."""
    run = td.open_run(path)
    m = run.metrics
    steps = m["step"].nunique()
    expected = steps * n_layers * len(td.metrics.DEFAULT_METRICS)
    n_nan = int(m["value"].isna().sum())
    if steps < min_samples or len(m) != expected or n_nan or run.manifest.status != "finished":
        raise SystemExit(
            f"{label}: {len(m)} metric rows at {steps} steps (expected >= {min_samples} steps, "
            f"{expected} rows), {n_nan} NaN, status {run.manifest.status!r}"
        )


class _TempRoot:
    """A fresh temporary directory per run, removed afterwards."""

    def __enter__(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="traindyn-bench-int-"))
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def _bare_forward(model: nn.Module, x: Any) -> Callable[[], Any]:
    """A forward of the probe set in eval mode under no_grad, without the tracker."""
    model.eval()

    def forward() -> Any:
        with torch.no_grad():
            return model(**x) if isinstance(x, dict) else model(x)

    return forward


# --------------------------------------------------------------------------- 1. Hugging Face


class TokenClasses(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Class 0 sequences use tokens 1-499, class 1 tokens 500-999."""

    def __init__(self, n: int, seed: int) -> None:
        g = torch.Generator().manual_seed(seed)
        self.labels = torch.randint(0, 2, (n,), generator=g)
        half = HF_VOCAB // 2
        self.input_ids = (
            torch.randint(1, half, (n, HF_SEQ), generator=g) + (half - 1) * self.labels[:, None]
        )

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {
            "input_ids": self.input_ids[i],
            "attention_mask": torch.ones(HF_SEQ, dtype=torch.long),
            "labels": self.labels[i],
        }


def hf_group(steps: int, seed: int, probe_size: int = HF_PROBE) -> Group:
    import transformers
    from transformers.trainer_callback import PrinterCallback

    from traindyn.integrations import TraindynCallback

    train = TokenClasses(HF_TRAIN, seed=1)
    probe_data = TokenClasses(probe_size, seed=99)
    probe = (
        {
            "input_ids": probe_data.input_ids,
            "attention_mask": torch.ones(probe_size, HF_SEQ).long(),
        },
        probe_data.labels,
    )

    def make_model() -> nn.Module:
        torch.manual_seed(seed)
        config = transformers.BertConfig(
            vocab_size=HF_VOCAB,
            hidden_size=128,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=256,
            max_position_embeddings=64,
        )
        return transformers.BertForSequenceClassification(config)

    def make_trainer(out: Path, n: int, callbacks: list[Any]) -> Any:
        model = make_model()
        args = transformers.TrainingArguments(
            output_dir=str(out),
            max_steps=n,
            per_device_train_batch_size=HF_BATCH,
            learning_rate=1e-3,
            seed=seed,
            report_to=[],
            use_cpu=True,
            save_strategy="no",
            disable_tqdm=True,
            logging_steps=HF_LOGGING_STEPS,
        )
        trainer = transformers.Trainer(
            model=model, args=args, train_dataset=train, callbacks=callbacks
        )
        trainer.remove_callback(PrinterCallback)  # prints every log dict to stdout
        return trainer

    def untracked(n: int, check: bool) -> Timings:
        with _TempRoot() as root:
            trainer = make_trainer(root / "out", n, [])
            t0 = time.perf_counter()
            trainer.train()
            return 0.0, time.perf_counter() - t0, 0.0

    def tracked(n: int, check: bool) -> Timings:
        with _TempRoot() as root:
            callback = TraindynCallback(probe, root / "run", every=EVERY)
            clock = HookClock(
                callback,
                {
                    "begin": ["on_train_begin"],
                    "steps": ["on_step_end", "on_log"],
                    "end": ["on_train_end"],
                },
            )
            trainer = make_trainer(root / "out", n, [callback])
            t0 = time.perf_counter()
            with callback:
                trainer.train()
            elapsed = time.perf_counter() - t0
            _LAST_HOOKS.update(clock.seconds)
            if check:
                _check_run(root / "run", "huggingface", 4, n // EVERY + 1)
            return 0.0, elapsed, 0.0

    return Group(
        "Hugging Face Trainer",
        steps,
        min(steps, 10),
        [Member("untracked", untracked), Member(f"TraindynCallback every={EVERY}", tracked)],
        probe_forward=_bare_forward(make_model(), probe[0]),
    )


# --------------------------------------------------------------------------- 2. Lightning


def lightning_group(steps: int, seed: int, data: MLPData) -> Group:
    import lightning.pytorch as pl

    from traindyn.integrations import TraindynLightningCallback

    class MLPModule(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = make_mlp(seed)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out: torch.Tensor = self.net(x)
            return out

        def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], idx: int) -> Any:
            x, y = batch
            return F.cross_entropy(self.net(x), y)

        def configure_optimizers(self) -> Any:
            return torch.optim.SGD(self.parameters(), lr=0.01, momentum=0.9)

    dataset = torch.utils.data.TensorDataset(data.xs.reshape(-1, 784), data.ys.reshape(-1))
    probe = (data.x_probe, data.y_probe)
    layers = [f"net.{i}" for i in MLP_LAYERS]

    def fit(n: int, callbacks: list[Any]) -> float:
        loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=False)
        module = MLPModule()
        trainer = pl.Trainer(
            max_steps=n,
            accelerator="cpu",
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            callbacks=callbacks,
        )
        t0 = time.perf_counter()
        trainer.fit(module, loader)
        return time.perf_counter() - t0

    def untracked(n: int, check: bool) -> Timings:
        return 0.0, fit(n, []), 0.0

    def tracked(n: int, check: bool, sampling: bool = True) -> Timings:
        with _TempRoot() as root:
            options: dict[str, Any] = {} if sampling else {"milestones": None}
            every = EVERY if sampling else [0]  # the reference: step 0 only
            cb = TraindynLightningCallback(
                probe, root / "run", every=every, layers=layers, **options
            )
            clock = HookClock(
                cb,
                {
                    "begin": ["on_fit_start", "on_train_start"],
                    "steps": ["on_before_optimizer_step", "on_train_batch_end"],
                    "end": ["on_fit_end"],
                },
            )
            elapsed = fit(n, [cb])
            _LAST_HOOKS.update(clock.seconds)
            if check:
                _check_run(
                    root / "run", "lightning", len(layers), n // EVERY + 1 if sampling else 1
                )
            return 0.0, elapsed, 0.0

    return Group(
        "PyTorch Lightning",
        steps,
        min(steps, 20),
        [
            Member("untracked", untracked),
            Member(f"TraindynLightningCallback every={EVERY}", tracked),
            Member(
                "same, sampling step 0 only (reference)",
                lambda n, c: tracked(n, c, sampling=False),
                reference=True,
            ),
        ],
        probe_forward=_bare_forward(make_mlp(seed), data.x_probe),
    )


# --------------------------------------------------------------------------- 3. mirrors


def mirror_group(
    steps: int, every: int, seed: int, data: MLPData, *, with_untracked: bool = False
) -> Group:
    from traindyn.integrations import TensorBoardMirror, WandbMirror

    def loop(n: int, check: bool, make_mirror: Callable[[Path], Any] | None) -> Timings:
        with _TempRoot() as root:
            model = make_mlp(seed)
            opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
            xs, ys = data.xs, data.ys
            t0 = time.perf_counter()
            mirrors = []
            if make_mirror is not None:
                mirror = make_mirror(root)
                mirror.start()  # the SummaryWriter / wandb.init: one-time setup, apart
                mirrors.append(mirror)
            tracker = td.Tracker(
                model,
                probe=(data.x_probe, data.y_probe),
                run=root / "run",
                every=every,
                layers=MLP_LAYERS,
                mirrors=mirrors,
            )
            with tracker:
                t1 = time.perf_counter()
                for step in range(n):
                    x, y = xs[step % N_BATCHES], ys[step % N_BATCHES]
                    loss = F.cross_entropy(model(x), y)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    tracker.step(step, loss=loss)
                t2 = time.perf_counter()
            t3 = time.perf_counter()
            if check:
                _check_run(root / "run", f"mirrors every={every}", len(MLP_LAYERS), n // every)
                if make_mirror is not None:
                    _check_mirror(root, mirrors[0])
            return t1 - t0, t2 - t1, t3 - t2

    def untracked(n: int, check: bool) -> Timings:
        model = make_mlp(seed)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xs, ys = data.xs, data.ys
        t0 = time.perf_counter()
        for step in range(n):
            x, y = xs[step % N_BATCHES], ys[step % N_BATCHES]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return 0.0, time.perf_counter() - t0, 0.0

    def tensorboard(root: Path) -> Any:
        return TensorBoardMirror(root / "tb")

    def wandb(root: Path) -> Any:
        return WandbMirror(mode="offline", dir=root / "wandb")

    return Group(
        f"Mirrors, plain loop, every={every}",
        steps,
        min(steps, 20),
        [
            Member("tracked, no mirror", lambda n, c: loop(n, c, None)),
            Member("+ TensorBoardMirror", lambda n, c: loop(n, c, tensorboard)),
            Member("+ WandbMirror offline", lambda n, c: loop(n, c, wandb)),
            *(
                [Member("untracked loop (reference)", untracked, reference=True)]
                if with_untracked
                else []
            ),
        ],
    )


def _check_mirror(root: Path, mirror: Any) -> None:
    """The mirror wrote something (event file, or W&B offline run with rows)."""
    if hasattr(mirror, "tags_"):
        events = list((root / "tb").glob("events.out.tfevents.*"))
        n_tags = len(mirror.tags_)
        if not events or n_tags < len(MLP_LAYERS) * len(td.metrics.DEFAULT_METRICS):
            raise SystemExit(f"TensorBoardMirror wrote {len(events)} event files, {n_tags} tags")
    else:
        runs = list((root / "wandb" / "wandb").glob("offline-run-*/run-*.wandb"))
        if not runs or runs[0].stat().st_size == 0:
            raise SystemExit(f"WandbMirror left no offline run under {root / 'wandb'}")


# --------------------------------------------------------------------------- 4. predictions


def write_suite_run(path: Path, seed: int) -> None:
    """One run: 401 samples x 5 layers x 5 metrics, loss/lr each step, probe_* at samples."""
    rng = np.random.default_rng(seed)
    table = planted_suite_table(rng, SUITE_LAYERS, SUITE_METRICS, SUITE_SAMPLES, EVERY, seed)
    tau = float(rng.uniform(100, 300))
    config = {
        "total_steps": SUITE_TOTAL,
        "experiment": {"name": path.name, "arch": "mlp", "seed": seed},
        "tracker": {"layers": SUITE_LAYERS, "metrics": list(SUITE_METRICS)},
    }
    run = Run.create(path, config=config, handle_signals=False)
    for lo in range(0, SUITE_TOTAL + 1, SUITE_FLUSH):
        hi = min(lo + SUITE_FLUSH, SUITE_TOTAL + 1)
        run.append_metrics(table[(table["step"] >= lo) & (table["step"] < hi)])
        for step in range(lo, hi):
            decay = float(np.exp(-step / tau))
            values = {"loss": 0.02 + 2.3 * decay + abs(float(rng.normal(0, 0.03))), "lr": 1e-3}
            if step % EVERY == 0:
                values["probe_accuracy"] = 0.95 - 0.85 * decay + float(rng.normal(0, 0.005))
                values["probe_loss"] = 0.2 + 2.2 * decay + float(rng.normal(0, 0.005))
            run.append_scalars(step, values)
        run.flush()
    run.finish()


@dataclass
class PredictionTimes:
    n_runs: int
    lock: list[float]
    build_s: float
    analyze_s: float
    check_fly: list[float]
    check_stored: list[float]
    counts: dict[str, int]
    same: bool
    mismatch: str


def predictions_bench(n_runs: int, repeats: int) -> PredictionTimes:
    with _TempRoot() as root:
        file = root / "predictions.yaml"
        file.write_text(PREDICTIONS_YAML)
        preds.parse(PREDICTIONS_YAML)  # warm pydantic before timing
        lock_times = []
        for i in range(3):
            target = root / f"lock{i}"
            t0 = time.perf_counter()
            preds.lock(file, suite=target)
            lock_times.append(time.perf_counter() - t0)
        plain = root / "lock0"
        t0 = time.perf_counter()
        for i in range(n_runs):
            write_suite_run(plain / f"run_{i:02d}", seed=1000 + i)
        build_s = time.perf_counter() - t0
        stored = root / "analysed"
        shutil.copytree(plain, stored)
        t0 = time.perf_counter()
        analyze(stored)
        analyze_s = time.perf_counter() - t0

        fly: list[float] = []
        kept: list[float] = []
        tables: dict[str, Any] = {}
        for r in range(repeats):
            order = [(plain, fly, "fly"), (stored, kept, "stored")]
            for path, out, key in order if r % 2 == 0 else order[::-1]:
                gc_quiet()
                t0 = time.perf_counter()
                result = preds.check(path)
                out.append(time.perf_counter() - t0)
                tables[key] = result
        a, b = tables["fly"].table, tables["stored"].table
        same = bool(
            (a["verdict"] == b["verdict"]).all()
            and np.allclose(a["value"], b["value"], equal_nan=True)
        )
        mismatch = ""
        if not same:
            diff = a[
                (a["verdict"] != b["verdict"]) | ~np.isclose(a["value"], b["value"], equal_nan=True)
            ]
            mismatch = ", ".join(
                f"{i}: {va} {vv:.4g} vs {vb} {vbv:.4g}"
                for i, va, vv, vb, vbv in zip(
                    diff["id"],
                    diff["verdict"],
                    diff["value"],
                    b.loc[diff.index, "verdict"],
                    b.loc[diff.index, "value"],
                    strict=True,
                )
            )
        return PredictionTimes(
            n_runs,
            lock_times,
            build_s,
            analyze_s,
            fly,
            kept,
            tables["stored"].counts,
            same,
            mismatch,
        )


# --------------------------------------------------------------------------- report


Ratios = list[tuple[Group, Member, list[float]]]


def report_groups(groups: Sequence[Group], markdown: bool) -> Ratios:
    """Print one table per group; return the per-round ratios of every non-baseline."""
    ratios: Ratios = []
    for g in groups:
        base = g.baseline
        mirrors = g.name.startswith("Mirrors")
        rows = []
        for m in g.members:
            idx = range(len(m.loop))
            ratio = [m.total(i) / base.total(i) for i in idx]
            added = [(m.total(i) - base.total(i)) * 1e3 / g.steps for i in idx]
            if m is not base and not m.reference:
                ratios.append((g, m, ratio))
            row: list[Any] = [
                m.label,
                median([m.total(i) for i in idx]),
                median([m.total(i) * 1e3 / g.steps for i in idx]),
            ]
            if mirrors:  # setup is outside the ratio; close is inside it
                row += [median([x * 1e3 for x in m.setup]), median([x * 1e3 for x in m.close])]
            elif m.hooks:
                row += [
                    median([x * 1e3 for x in m.hooks["begin"]]),
                    median([x * 1e3 / g.steps for x in m.hooks["steps"]]),
                    median([x * 1e3 for x in m.hooks["end"]]),
                ]
            else:
                row += ["-", "-", "-"]
            if m is base:
                row += ["-", "-", "-", "-"]
            else:
                row += [median(ratio), _range(ratio), median(added), _range(added)]
            rows.append(row)
        if mirrors:
            headers = ["contender", "loop + close s", "ms/step", "setup ms", "close ms"]
        else:
            headers = [
                "contender",
                "train()/fit() s",
                "ms/step",
                "begin hook ms",
                "step hooks ms/step",
                "end hook ms",
            ]
        headers += ["ratio", "ratio min..max", "added ms/step", "added min..max"]
        print(
            format_table(
                headers, rows, title=f"{g.name} ({g.steps} steps per run)", markdown=markdown
            )
        )
        if g.probe_forward is not None:
            times = interleaved_times({"probe": g.probe_forward}, repeats=20, warmup=2)["probe"]
            ms = median(times) * 1e3
            print(
                f"  the probe's bare forward (eval, no_grad, no hooks): {ms:.2f} ms, i.e. "
                f"{ms / EVERY:.3f} ms/step at every={EVERY} (part of the step hooks' time)"
            )
        print()
    return ratios


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--hf-steps", type=int, default=None, help="HF updates (200; quick 40)")
    parser.add_argument("--hf-probe", type=int, default=HF_PROBE, help="HF probe sequences (64)")
    parser.add_argument("--pl-steps", type=int, default=None, help="Lightning (1000; quick 100)")
    parser.add_argument(
        "--mirror-steps", type=int, default=None, help="mirror loop steps (1000; quick 100)"
    )
    parser.add_argument("--rounds", type=int, default=None, help="rounds (5; quick 1)")
    parser.add_argument(
        "--runs", type=int, default=None, help="prediction suite runs (33; quick 4)"
    )
    parser.add_argument(
        "--skip", nargs="+", default=[], choices=["hf", "lightning", "mirrors", "predictions"]
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    setup_threads(args.threads, args.cpus)
    silence_frameworks()
    hf_steps = args.hf_steps or (40 if args.quick else 200)
    pl_steps = args.pl_steps or (100 if args.quick else 1000)
    mirror_steps = args.mirror_steps or (100 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 5)
    n_runs = args.runs or (4 if args.quick else SUITE_RUNS)
    repeats = 1 if args.quick else 3

    import lightning
    import tensorboard
    import transformers
    import wandb

    load = os.getloadavg()
    print_header(
        "Integrations: Hugging Face, Lightning, mirrors, prediction check",
        [
            f"traindyn {td.__version__}, transformers {transformers.__version__}, lightning "
            f"{lightning.__version__}, tensorboard {tensorboard.__version__}, wandb "
            f"{wandb.__version__}",
            f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            f"{rounds} round(s); HF {hf_steps} updates (probe {args.hf_probe}), Lightning "
            f"{pl_steps}, mirror loop {mirror_steps} steps; prediction suite {n_runs} runs, "
            f"{repeats} repeat(s)",
        ],
    )

    data = make_mlp_data(args.seed)
    groups: list[Group] = []
    if "hf" not in args.skip:
        groups.append(hf_group(hf_steps, args.seed, args.hf_probe))
    if "lightning" not in args.skip:
        groups.append(lightning_group(pl_steps, args.seed, data))
    if "mirrors" not in args.skip:
        groups += [
            mirror_group(mirror_steps, k, args.seed, data, with_untracked=k == EVERY)
            for k in (5, 1)
        ]
    t_start = time.perf_counter()
    ratios: Ratios = []
    if groups:
        run_rounds(groups, rounds)
        if torch.get_num_threads() != args.threads:
            print(f"  note: torch threads changed to {torch.get_num_threads()} by a framework")
        print()
        ratios = report_groups(groups, args.markdown)

    pt: PredictionTimes | None = None
    if "predictions" not in args.skip:
        print(f"Prediction check: building {n_runs} runs ...", flush=True)
        pt = predictions_bench(n_runs, repeats)
        rows = [
            [
                "lock(file, suite=dir), before the runs (pending lock)",
                median(pt.lock),
                _range(pt.lock, "{:.4f}"),
            ],
            [f"write the {n_runs} runs (setup, once)", pt.build_s, "-"],
            ["analyze(dir) (stored analysis, once)", pt.analyze_s, "-"],
            [
                "check(dir), no stored analysis (analyze_run on the fly)",
                median(pt.check_fly),
                _range(pt.check_fly),
            ],
            ["check(dir), stored analysis", median(pt.check_stored), _range(pt.check_stored)],
        ]
        print(
            format_table(
                ["call", "median s", "min..max s"],
                rows,
                title=f"Predictions: 6 predictions, {n_runs} runs x {SUITE_SAMPLES} samples x "
                f"{len(SUITE_LAYERS)} layers x {len(SUITE_METRICS)} metrics",
                markdown=args.markdown,
            )
        )
        counts = ", ".join(f"{k} {v}" for k, v in pt.counts.items())
        print(f"  verdicts: {counts}")
        agree = "identical" if pt.same else f"DIFFER ({pt.mismatch})"
        print(f"  stored vs on-the-fly analysis: verdicts and values {agree}")
        print()

    end_load = os.getloadavg()
    print(
        f"wall {time.perf_counter() - t_start:.0f} s; load average at end: "
        f"{end_load[0]:.2f} {end_load[1]:.2f} {end_load[2]:.2f}"
    )
    print()
    print("Targets:")
    for group, member, values in ratios:
        target = TARGET_MIRROR if group.name.startswith("Mirrors") else TARGET_ADAPTER
        r = median(values)
        print(
            verdict(
                r <= target,
                f"{group.name}: ({member.label}) / ({group.baseline.label}) = {r:.3f} <= "
                f"{target} (median of {len(values)} rounds, {_range(values)})",
            )
        )
    if pt is not None:
        s = median(pt.check_stored)
        scope = f"{pt.n_runs} runs" + ("" if pt.n_runs == SUITE_RUNS else f", not {SUITE_RUNS}")
        print(
            verdict(
                s <= TARGET_CHECK_S and pt.same,
                f"predictions check ({scope}) with stored analysis = {s:.2f} s <= "
                f"{TARGET_CHECK_S:g} s (median of {len(pt.check_stored)}), same verdicts as "
                "on the fly",
            )
        )
        print(
            f"info  predictions check without stored analysis = {median(pt.check_fly):.2f} s; "
            f"lock = {median(pt.lock) * 1e3:.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
