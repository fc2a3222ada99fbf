"""The Tracker: a probe pass on schedule, metrics off the training thread, rows to a run.

Two lines in a training loop::

    tracker = td.Tracker(model, probe=(x_probe, y_probe), run="runs/my-run", every=5)
    for step, (x, y) in enumerate(loader):
        ...
        tracker.step(step, loss=loss)
    tracker.close()

Data flow per sample: hooks (training thread, cheap: detach + copy) -> bounded queue ->
worker thread (reduce to 2-D, ``metrics.measure``, append rows, flush every few seconds)
-> parquet parts in the run directory. When the queue is full, ``step`` waits for the
worker (backpressure) instead of growing memory without bound.
"""

from __future__ import annotations

import atexit
import math
import numbers
import queue
import threading
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, runtime_checkable

import torch
from torch import nn

from traindyn._validation import check_in, check_positive
from traindyn.capture._probe import (
    ROOT_LABEL,
    layer_output,
    model_device,
    n_samples,
    prepare_probe,
    split_probe,
)
from traindyn.capture.hooks import (
    Capture,
    LayerSelector,
    Layout,
    OutputSelector,
    capture_activations,
    infer_layout,
    resolve_layers,
)
from traindyn.capture.schedule import Schedule, as_schedule
from traindyn.exceptions import ConfigError, StoreError, TrackerWarning
from traindyn.metrics import DEFAULT_METRICS, Measurement, get_metric, measure, reduce_activation
from traindyn.store import Run
from traindyn.store.checkpoints import fingerprint, save_checkpoint

__all__ = ["DEFAULT_MILESTONES", "CaptureMode", "Mirror", "ReduceRule", "Tracker", "TrackerWarning"]

DEFAULT_MILESTONES = (0.15, 0.30, 0.50, 1.00)
"""Fractions of training at which a probe sample is always taken (seed 004's checkpoints)."""


@runtime_checkable
class Mirror(Protocol):
    """Somewhere else to send what the tracker records (TensorBoard, W&B...).

    ``log`` is called on the tracker's worker thread, after the values are appended to the
    run: once per sample with every ``"<layer>/<metric>"`` and the probe scalars, and with
    the training scalars of each ``step()`` call. Steps increase within each of the two
    kinds, not across them (a sample of step 10 may follow the scalars of step 13).
    Values may be NaN. ``close`` is called once, by :meth:`Tracker.close`. A mirror that
    raises is dropped with a warning; the run itself is never affected.
    """

    def log(self, step: int, values: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


CaptureMode = Literal["probe", "batch"]
ReduceRule = Literal["mean", "flatten", "per_position"]
_MODES: tuple[CaptureMode, ...] = ("probe", "batch")
_RULES: tuple[ReduceRule, ...] = ("mean", "flatten", "per_position")


@dataclass
class _Sample:
    step: int
    capture: Capture
    n_chunks: int
    stats: dict[str, torch.Tensor] = field(default_factory=dict)
    n_samples: int | None = None  # rows every layer output must have (probe mode)


@dataclass
class _Pending:
    """Scalars recorded on the training thread; tensors are converted off it."""

    step: int
    values: dict[str, float | torch.Tensor] = field(default_factory=dict)


class Tracker:
    """Record per-layer representation metrics and training scalars into a run directory.

    Parameters
    ----------
    model : nn.Module
        Any PyTorch model. It is never modified; hooks exist only during a sample.
    probe : (x, y) or x or None
        Fixed probe inputs (and optional integer targets) measured at every sample in
        ``mode="probe"``. ``x`` is a tensor passed as ``model(x)``, or a mapping of
        tensors passed as ``model(**x)`` (Hugging Face: ``{"input_ids": ...,
        "attention_mask": ...}``). ``y`` holds class indices ``(n,)``, or token targets
        ``(n, t)`` aligned with ``(n, t, vocab)`` logits (shift them yourself for a
        causal LM); negative targets (``-100``) are ignored.
    run : str, Path or Run
        Run directory to create (or a :class:`traindyn.store.Run`).
    every : int, list of int, or Schedule
        When to sample: every N steps, at explicit steps, or a schedule such as
        :class:`~traindyn.capture.schedule.LogSpaced`. Default 5 (the seeds' cadence).
    layers : None, str, list of str, or callable
        Which modules to measure; see :func:`traindyn.capture.hooks.resolve_layers`.
    metrics : sequence of str
        Registered metric names (``traindyn.metrics.METRICS``); default the five
        spectral metrics, all computed from one eigendecomposition per layer.
    mode : {"probe", "batch"}
        ``"probe"`` (default) runs the fixed probe set in eval mode under ``no_grad`` and
        restores every module's train/eval flag and the torch RNG state, so training is
        bit-identical with and without tracking. ``"batch"`` measures the current
        training batch during the user's own forward pass (cheapest; wrap the forward in
        ``with tracker.watch(step):``).
    reduce : {"mean", "flatten", "per_position"}
        How conv ``(n, c, h, w)`` and token ``(n, t, d)`` outputs become 2-D: mean over
        spatial/token positions (default; Conv1d ``(N, C, L)`` is thus measured over
        channels), flatten, or every position as a sample. Recorded in ``run.json``.
    layouts : mapping of layer name to layout, optional
        Override the inferred channel layout of specific layers.
    output_selector : callable or mapping of layer name to callable, optional
        Picks the representation out of a module output that is not a tensor (tuples of
        LSTMs, attention, HF blocks). Default: first tensor / ``last_hidden_state``.
    probe_batch_size : int, optional
        Run the probe in chunks of this size (default: one pass).
    checkpoint_every : int, list of int, Schedule or None
        Save safetensors checkpoints into ``run/checkpoints`` on this schedule.
    flush_interval : float
        Seconds between flushes of buffered rows to disk (default 5.0): a run killed at
        any moment keeps everything older than this.
    queue_size : int
        Samples waiting for the worker before ``step`` blocks (backpressure).
    config : mapping, optional
        Extra configuration recorded in ``run.json`` (hyper-parameters, dataset...).
    resume : bool
        Append to an existing run directory (use with :meth:`load_state_dict`).
    total_steps : int, optional
        Optimiser updates the training will make. With it, the run records it and the
        ``milestones`` are sampled. May be assigned (``tracker.total_steps = n``) until the
        first ``step``: frameworks know it only when training starts.
    milestones : sequence of float in (0, 1], or None
        Fractions of ``total_steps`` always sampled, whatever ``every`` says: steps
        ``round(f * total_steps)`` (step ``total_steps`` is the state after the last
        update; ``total_steps - 1`` is sampled too for loops that stop there). Default
        15, 30, 50 and 100% (seed 004); read back with
        :func:`traindyn.analysis.milestones`.
    mirrors : sequence of Mirror
        Also send every recorded value to these (e.g.
        :class:`traindyn.integrations.TensorBoardMirror`); see :class:`Mirror`.
    predictions : str or Path, optional
        A predictions YAML file (:mod:`traindyn.analysis.predictions`) locked into
        ``run.json`` when the run is created, before any data: its SHA-256, its text and
        the time. Judge it after training with ``traindyn predictions check``.

    Notes
    -----
    The constructor only validates and stores its arguments; the run directory is
    created and the worker started on first use (``step``, ``watch`` or ``with``).
    """

    def __init__(
        self,
        model: nn.Module,
        probe: Any = None,
        run: str | Path | Run = "runs/run",
        *,
        every: int | Sequence[int] | Schedule = 5,
        layers: LayerSelector = None,
        metrics: Sequence[str] = DEFAULT_METRICS,
        mode: CaptureMode = "probe",
        reduce: ReduceRule = "mean",
        layouts: Mapping[str, Layout] | None = None,
        output_selector: OutputSelector | Mapping[str, OutputSelector] | None = None,
        probe_batch_size: int | None = None,
        checkpoint_every: int | Sequence[int] | Schedule | None = None,
        flush_interval: float = 5.0,
        queue_size: int = 8,
        config: Mapping[str, Any] | None = None,
        resume: bool = False,
        total_steps: int | None = None,
        milestones: Sequence[float] | None = DEFAULT_MILESTONES,
        mirrors: Sequence[Mirror] = (),
        predictions: str | Path | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise ConfigError(f"model must be a torch.nn.Module; got {type(model).__name__}.")
        check_in(mode, _MODES, name="mode")
        check_in(reduce, _RULES, name="reduce")
        check_positive(flush_interval, name="flush_interval")
        if queue_size < 1:
            raise ConfigError(f"queue_size must be >= 1; got {queue_size!r}.")
        if probe_batch_size is not None and probe_batch_size < 1:
            raise ConfigError(f"probe_batch_size must be >= 1; got {probe_batch_size!r}.")
        if isinstance(metrics, str):
            metrics = (metrics,)
        for name in metrics:
            get_metric(name)  # unknown names fail here, listing the valid ones
        for layer, layout in (layouts or {}).items():
            check_in(layout, ("channels_first", "channels_last"), name=f"layouts[{layer!r}]")
        if mode == "probe" and probe is None:
            raise ConfigError(
                "probe must be given in mode='probe'; pass probe=(x, y) with a fixed set of "
                "inputs, or use mode='batch' to measure the training batch."
            )
        self.model = model
        self.probe = probe
        self.run = run
        self.every = every
        self.layers = layers
        self.metrics = tuple(metrics)
        self.mode = mode
        self.reduce = reduce
        self.layouts = dict(layouts or {})
        self.output_selector = output_selector
        self.probe_batch_size = probe_batch_size
        self.checkpoint_every = checkpoint_every
        self.flush_interval = float(flush_interval)
        self.queue_size = queue_size
        self.config = dict(config or {})
        self.resume = resume
        self.total_steps = total_steps
        self.milestones = _check_milestones(milestones)
        for i, mirror in enumerate(mirrors):
            if not isinstance(mirror, Mirror):
                raise ConfigError(
                    f"mirrors[{i}] must have log(step, values) and close() methods; got "
                    f"{type(mirror).__name__}."
                )
        self.mirrors = list(mirrors)
        self._mirrors_given = tuple(mirrors)  # all closed at the end, dropped ones too
        self.predictions = None if predictions is None else Path(predictions)
        if self.predictions is not None and not self.predictions.is_file():
            raise ConfigError(
                f"predictions file {str(self.predictions)!r} does not exist; pass the path "
                "of a predictions YAML (see traindyn.analysis.predictions)."
            )
        self._milestone_steps = _milestone_steps(total_steps, self.milestones)  # validates
        self.schedule_: Schedule = as_schedule(every)
        self.checkpoint_schedule_: Schedule | None = (
            None
            if checkpoint_every is None
            else as_schedule(checkpoint_every, name="checkpoint_every")
        )
        self._started = False
        self._closed = False
        self._last_step: int | None = None
        self._n_samples = 0
        self._warned: set[str] = set()
        self._pending_warnings: list[str] = []
        self._lock = threading.Lock()
        self._worker_error: BaseException | None = None
        self._batch_capture: Capture | None = None
        self._scalar_buffer: list[_Pending] = []  # shared with the worker under _lock
        self._measured = threading.Condition(self._lock)
        self._results: dict[int, dict[str, float]] = {}  # the last few samples' values
        self._last_seen: int | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Tracker:
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
            return
        signal_name = self.run_.interrupted_by if self._started else None
        error = f"interrupted by {signal_name}" if signal_name else f"{type(exc).__name__}: {exc}"
        self.close(status="failed", error=error)

    def _start(self) -> None:
        if self._started:
            return
        if self._closed:
            raise ConfigError("this Tracker is closed; create a new one to record more.")
        self.layers_ = resolve_layers(self.model, self.layers)
        unknown = sorted(set(self.layouts) - set(self.layers_))
        if unknown:
            raise ConfigError(f"layouts names layers that are not tracked: {unknown}.")
        self.layouts_: dict[str, Layout] = {
            name: self.layouts.get(name) or infer_layout(self.model, name) for name in self.layers_
        }
        self.device_ = model_device(self.model)
        if self.mode == "probe":
            self.probe_x_, self.probe_y_ = prepare_probe(self.probe, self.device_)
        self._milestone_steps = _milestone_steps(self.total_steps, self.milestones)
        lock = None
        if self.predictions is not None:
            if isinstance(self.run, Run):
                raise ConfigError(
                    "predictions= needs the tracker to create the run; pass run= as a path, "
                    "or lock with traindyn.analysis.predictions.lock before Run.create."
                )
            from traindyn.analysis.predictions import lock_for_tracker  # analysis imports capture

            lock = lock_for_tracker(self.predictions, self.run)
        if isinstance(self.run, Run):
            self.run_ = self.run
        else:
            self.run_ = Run.create(
                self.run,
                config=self._run_config(),
                model_fingerprint=fingerprint(self.model, self.config.get("model")),
                probe=self._probe_description(),
                predictions=lock,
                exist_ok=self.resume,
            )
        # On SIGTERM/SIGINT the store only flushes; the KeyboardInterrupt/SystemExit then
        # reaches __exit__ (or atexit) and close() drains the queue before finishing.
        self.run_.set_signal_policy("flush")
        # OpenMP thread counts are per thread: the worker must copy the caller's, or its
        # kernels spin a second thread against the training loop (measured: 2.8x slower).
        self._threads = torch.get_num_threads()
        self._queue: queue.Queue[_Sample | _FlushRequest | None] = queue.Queue(self.queue_size)
        self._worker = threading.Thread(target=self._work, name="traindyn-tracker", daemon=True)
        self._worker.start()
        atexit.register(self._close_at_exit)
        self._started = True

    def close(
        self, *, status: Literal["finished", "failed"] = "finished", error: str | None = None
    ) -> None:
        """Drain the queue, flush every row, and mark the run finished (or failed)."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        atexit.unregister(self._close_at_exit)
        try:
            self._queue.put(None)
            self._worker.join()
            if self._worker_error is not None and status == "finished":
                status, error = "failed", f"recording failed: {self._worker_error!r}"
            self.run_.finish(status=status, error=error)  # a no-op if already finished
        finally:
            for mirror in self._mirrors_given:
                self._call_mirror(mirror, "close")
            self._emit_warnings()
        self._raise_worker_error()

    def _close_at_exit(self) -> None:
        self.close(status="failed", error="the process exited before Tracker.close()")

    # ------------------------------------------------------------------ training API
    def is_due(self, step: int) -> bool:
        """True when ``step`` will be measured (its schedule or a milestone)."""
        return self.schedule_.is_due(step) or step in self._milestone_steps

    @contextmanager
    def watch(self, step: int) -> Iterator[None]:
        """In ``mode="batch"``, wrap the training forward pass of ``step`` in this block.

        Hooks are registered only when ``step`` is due, and removed on exit.
        """
        self._start()
        if self.mode != "batch" or not self.is_due(step):
            yield
            return
        with capture_activations(
            self.model, self.layers_, output_selector=self.output_selector
        ) as cap:
            yield
        self._batch_capture = cap

    def step(
        self,
        step: int,
        *,
        loss: float | torch.Tensor | None = None,
        outputs: torch.Tensor | None = None,
        targets: torch.Tensor | None = None,
        lr: float | None = None,
        grad_norm: float | torch.Tensor | None = None,
        **scalars: float | torch.Tensor,
    ) -> None:
        """Record scalars for ``step`` and, when a sample is due, measure every layer.

        Parameters
        ----------
        step : int
            The global training step (non-decreasing).
        loss, lr, grad_norm, **scalars : float or 0-d tensor
            Recorded under their names in the scalars table at every call. Tensors are
            detached here and converted off the training thread.
        outputs, targets : tensor, optional
            Logits ``(n, classes)`` (or ``(n, t, vocab)``) and integer targets of the
            training batch: ``batch_accuracy``, ``batch_confidence`` (mean probability
            of the correct class), ``batch_loss`` and ``batch_confidence_correct`` /
            ``_incorrect`` are recorded.

        A second call with the same ``step`` records its scalars only (no second sample).
        """
        if isinstance(step, bool) or not isinstance(step, int) or step < 0:
            raise ConfigError(f"step must be a non-negative int; got {step!r}.")
        if self._last_seen is not None and step < self._last_seen:
            raise ConfigError(
                f"step must not decrease; got {step} after {self._last_seen}. Pass the global "
                "step counter, not one that restarts every epoch."
            )
        self._start()
        self._raise_worker_error()
        repeated = self._last_seen == step  # a second call for one step records scalars only
        self._last_seen = step
        pending = _Pending(step)
        for name, value in (("loss", loss), ("lr", lr), ("grad_norm", grad_norm), *scalars.items()):
            if value is not None:
                pending.values[name] = _scalar(name, value)
        if outputs is not None and targets is not None:
            try:
                stats = _classification_stats(outputs.detach(), targets.detach(), prefix="batch")
            except ValueError as exc:
                raise ConfigError(f"outputs/targets of step {step}: {exc}") from None
            pending.values.update(stats)
        if pending.values:
            with self._lock:  # the worker drains this buffer, even while training pauses
                self._scalar_buffer.append(pending)
        if repeated:
            self._emit_warnings()
            return
        if self.is_due(step):
            self._sample(step)
            self._last_step = step
        if self.checkpoint_schedule_ is not None and self.checkpoint_schedule_.is_due(step):
            save_checkpoint(self.model, self.run_.path, step, config=self.config.get("model"))
        self._emit_warnings()

    def flush(self) -> None:
        """Block until every sample and scalar given so far is measured and on disk.

        Call it when saving a checkpoint to resume from: what was recorded up to that
        step then survives a crash together with the checkpoint.
        """
        self._start()
        request = _FlushRequest()
        self._queue.put(request)
        request.done.wait()
        self._raise_worker_error()

    def wait_for(self, step: int, *, timeout: float | None = None) -> dict[str, float]:
        """Block until the sample of ``step`` is measured; return its values.

        Keys are probe scalars (``probe_accuracy``, ``probe_loss``...) and
        ``"<layer>/<metric>"``. Used for early stopping: a decision that waits for the
        measurement is the same however fast the worker thread runs.

        Raises
        ------
        ConfigError
            If ``step`` is not the latest sampled step nor one of the last 16 measured.
        StoreError
            If recording failed.
        """
        with self._measured:
            ok = self._measured.wait_for(
                lambda: (
                    step in self._results
                    or self._worker_error is not None
                    or self._last_step != step
                ),
                timeout=timeout,
            )
            if self._worker_error is not None:
                self._raise_worker_error()
            if not ok or step not in self._results:
                raise ConfigError(
                    f"step {step} has no measurement to wait for: it was not sampled, or is "
                    "older than the last 16 samples."
                )
            return dict(self._results[step])

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        """What a resumed tracker needs: the last sampled step and what it warned about.

        Resume by creating a Tracker with ``resume=True`` on the same run, calling
        :meth:`load_state_dict`, and replaying training from your last checkpoint. Steps
        that are replayed are measured again; the store keeps one value per
        (step, layer, metric), the latest, so the replayed trajectory replaces the one
        recorded before the interruption.
        """
        return {
            "version": 1,
            "last_step": self._last_step,
            "n_samples": self._n_samples,
            "warned": sorted(self._warned),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` output (warnings already given are not repeated)."""
        if state.get("version") != 1:
            raise ConfigError(f"state['version'] must be 1; got {state.get('version')!r}.")
        last = state.get("last_step")
        self._last_step = None if last is None else int(last)
        self._n_samples = int(state.get("n_samples", 0))
        self._warned = set(state.get("warned", ()))

    # ------------------------------------------------------------------ internals
    def _sample(self, step: int) -> None:
        stats: dict[str, torch.Tensor] = {}
        if self.mode == "probe":
            cap, n_chunks, stats = self._probe_pass()
        else:
            if self._batch_capture is None:
                self._warn_once(
                    "batch-no-watch",
                    f"step {step} was due but no activations were captured: in mode='batch' "
                    "wrap the forward pass in `with tracker.watch(step):`.",
                )
                return
            cap, n_chunks = self._batch_capture, 1
            self._batch_capture = None
        self._n_samples += 1
        n_expected = n_samples(self.probe_x_) if self.mode == "probe" else None
        self._queue.put(_Sample(step, cap, n_chunks, stats, n_expected))  # blocks when full

    def _probe_pass(self) -> tuple[Capture, int, dict[str, torch.Tensor]]:
        model = self.model
        flags = [(m, m.training) for m in model.modules()]
        cpu_rng = torch.get_rng_state()
        cuda_rng = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None  # type: ignore[no-untyped-call]
        chunks = split_probe(self.probe_x_, self.probe_batch_size)
        try:
            model.eval()
            with (
                torch.no_grad(),
                capture_activations(
                    model, self.layers_, output_selector=self.output_selector
                ) as cap,
            ):
                outs = [model(**x) if isinstance(x, Mapping) else model(x) for x in chunks]
        finally:
            for module, was_training in flags:
                module.training = was_training
            torch.set_rng_state(cpu_rng)
            if cuda_rng is not None:
                torch.cuda.set_rng_state_all(cuda_rng)
        stats: dict[str, torch.Tensor] = {}
        if self.probe_y_ is not None:
            try:
                logits = torch.cat([_logits(o) for o in outs], dim=0)
                stats = _classification_stats(logits, self.probe_y_, prefix="probe")
            except Exception as exc:
                self._warn_once(
                    "probe-stats",
                    f"probe accuracy/confidence not recorded: {type(exc).__name__}: {exc}",
                )
        return cap, len(chunks), stats

    def _work(self) -> None:
        torch.set_num_threads(self._threads)
        while True:
            item: _Sample | _FlushRequest | _IdleType | None
            try:
                item = self._queue.get(timeout=self.flush_interval / 4)
            except queue.Empty:
                item = _IdleType()
            if self._worker_error is not None:  # keep consuming so step() never blocks
                if isinstance(item, _FlushRequest):
                    item.done.set()
                if item is None:
                    return
                continue
            try:
                self._drain_scalars()
                if isinstance(item, _Sample):
                    self._measure(item)
                if item is None:
                    self.run_.flush()
                    return
                if isinstance(item, _FlushRequest):
                    self.run_.flush()
                    item.done.set()
                # Every row older than flush_interval is on disk: half an interval here
                # plus a quarter waiting in the queue. Also refreshes the heartbeat.
                self.run_.maybe_flush(self.flush_interval / 2)
            except BaseException as exc:  # surfaced on the training thread at the next step
                with self._measured:
                    self._worker_error = exc
                    self._measured.notify_all()

    def _drain_scalars(self) -> None:
        with self._lock:
            pending, self._scalar_buffer = self._scalar_buffer, []
        for item in pending:
            values = _floats(item.values)
            self.run_.append_scalars(item.step, values)
            self._mirror(item.step, values)

    def _measure(self, sample: _Sample) -> None:
        values = _floats(sample.stats)
        if values:
            self.run_.append_scalars(sample.step, values)
        rows: list[tuple[int, str, str, float, str | None]] = []
        values = dict(values)
        for layer in self.layers_:
            label = layer or ROOT_LABEL
            try:
                results = self._measure_layer(sample, layer)
            except Exception as exc:  # one layer's surprise must not cost the others
                reason = f"{type(exc).__name__}: {exc}"
                results = [Measurement(m, math.nan, reason) for m in self.metrics]
            failed: dict[str, list[str]] = {}
            for r in results:
                rows.append((sample.step, label, r.metric, r.value, r.reason))
                values[f"{label}/{r.metric}"] = r.value
                if r.reason is not None:
                    failed.setdefault(r.reason, []).append(r.metric)
                elif r.note is not None:
                    self._warn_once(f"{label}:{r.metric}:note", f"layer {label!r}: {r.note}")
            for reason, metrics in failed.items():
                key = f"{label}:{reason.split(':')[0]}:{','.join(metrics)}"
                self._warn_once(
                    key,
                    f"{', '.join(metrics)} of layer {label!r} recorded as NaN from step "
                    f"{sample.step}: {reason}",
                )
        self.run_.append_metrics(rows)
        self._mirror(sample.step, values)
        with self._measured:
            self._results[sample.step] = values
            for old in sorted(self._results)[:-16]:
                del self._results[old]
            self._measured.notify_all()

    def _measure_layer(self, sample: _Sample, layer: str) -> list[Measurement]:
        acts, reason = layer_output(sample.capture, layer, sample.n_chunks, sample.n_samples)
        if reason is not None or acts is None:
            return [Measurement(m, math.nan, reason) for m in self.metrics]
        X = reduce_activation(acts, rule=self.reduce, layout=self.layouts_[layer])
        return measure(X, self.metrics)

    def _mirror(self, step: int, values: Mapping[str, float]) -> None:
        for mirror in list(self.mirrors):
            self._call_mirror(mirror, "log", step, values)

    def _call_mirror(self, mirror: Mirror, method: str, *args: Any) -> None:
        try:
            getattr(mirror, method)(*args)
        except Exception as exc:  # a mirror's failure never costs the run its data
            if mirror in self.mirrors:
                self.mirrors.remove(mirror)
            self._warn_once(
                f"mirror:{id(mirror)}",
                f"mirror {type(mirror).__name__} failed in {method}() and is dropped; the "
                f"run keeps recording: {type(exc).__name__}: {exc}",
            )

    def _warn_once(self, key: str, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
            self._pending_warnings.append(message)

    def _emit_warnings(self) -> None:
        # Warnings raised in the worker thread would be lost (or, under -W error, kill it):
        # they are queued there and raised here, on the caller's thread.
        with self._lock:
            messages, self._pending_warnings = self._pending_warnings, []
        for message in messages:
            warnings.warn(message, TrackerWarning, stacklevel=3)

    def _raise_worker_error(self) -> None:
        if self._worker_error is not None:
            raise StoreError(
                f"recording into {self.run_.path} failed: {self._worker_error}"
            ) from self._worker_error

    def _run_config(self) -> dict[str, Any]:
        return {
            "tracker": {
                "mode": self.mode,
                "schedule": repr(self.schedule_),
                "layers": self.layers_,
                "metrics": list(self.metrics),
                "reduce": self.reduce,
                "layouts": self.layouts_,
                "flush_interval_s": self.flush_interval,
                "checkpoint_schedule": None
                if self.checkpoint_schedule_ is None
                else repr(self.checkpoint_schedule_),
                "total_steps": self.total_steps,
                "milestones": list(self.milestones),
                "milestone_steps": sorted(self._milestone_steps),
                "mirrors": [type(m).__name__ for m in self.mirrors],
            },
            **self.config,
        }

    def _probe_description(self) -> dict[str, Any]:
        if self.mode != "probe":
            return {"mode": "batch"}
        desc: dict[str, Any] = {"mode": "probe", "n": n_samples(self.probe_x_)}
        if isinstance(self.probe_x_, torch.Tensor):
            desc["shape"] = list(self.probe_x_.shape)
            desc["dtype"] = str(self.probe_x_.dtype)
        if self.probe_y_ is not None:
            labels, counts = torch.unique(self.probe_y_.cpu(), return_counts=True)
            if labels.numel() <= 1000:
                desc["class_counts"] = {
                    str(int(k)): int(c) for k, c in zip(labels, counts, strict=True)
                }
        return desc


@dataclass
class _FlushRequest:
    done: threading.Event = field(default_factory=threading.Event)


class _IdleType:
    """Nothing arrived within half a flush interval: time to check the flush clock."""


def _check_milestones(milestones: Sequence[float] | None) -> tuple[float, ...]:
    if milestones is None:
        return ()
    out: list[float] = []
    for i, f in enumerate(milestones):
        if isinstance(f, bool) or not isinstance(f, numbers.Real) or not 0 < f <= 1:
            raise ConfigError(
                f"milestones[{i}] must be a fraction of training in (0, 1]; got {f!r} "
                "(write 30% as 0.3)."
            )
        out.append(float(f))
    return tuple(sorted(set(out)))


def _milestone_steps(total_steps: int | None, milestones: Sequence[float]) -> frozenset[int]:
    """Steps sampled for the milestones: ``round(f * total_steps)``, plus ``total_steps - 1``."""
    if total_steps is None or not milestones:
        return frozenset()
    if isinstance(total_steps, bool) or not isinstance(total_steps, numbers.Integral):
        raise ConfigError(f"total_steps must be a positive int; got {total_steps!r}.")
    if total_steps < 1:
        raise ConfigError(f"total_steps must be >= 1; got {total_steps!r}.")
    steps = {round(f * int(total_steps)) for f in milestones}
    if 1.0 in milestones:
        steps.add(int(total_steps) - 1)
    return frozenset(steps)


def _scalar(name: str, value: Any) -> float | torch.Tensor:
    """A scalar for the table: a number, or a one-element tensor copied (not viewed)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ConfigError(
                f"scalar {name!r} must be a number or a one-element tensor; got a tensor of "
                f"shape {tuple(value.shape)}. Reduce it first (e.g. .mean())."
            )
        # clone: an optimizer's tensor lr or a running sum changes in place later
        return value.detach().clone()
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    raise ConfigError(
        f"scalar {name!r} must be a real number or a one-element tensor; got {value!r} "
        f"({type(value).__name__}). Record text in the run config instead."
    )


def _logits(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    found = output.get("logits") if isinstance(output, Mapping) else None
    if isinstance(found, torch.Tensor):
        return found
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, (tuple, list)) and isinstance(output[0], torch.Tensor):
        return output[0]
    raise TypeError(f"cannot find logits in a model output of type {type(output).__name__}")


def _classification_stats(
    logits: torch.Tensor, targets: torch.Tensor, *, prefix: str
) -> dict[str, torch.Tensor]:
    """Accuracy ("match rate"), mean probability of the correct class and cross-entropy.

    Also the mean probability of the correct class over the examples predicted right
    (``*_confidence_correct``) and wrong (``*_confidence_incorrect``; NaN when there are
    none, and then not recorded): seed 004's "token-level confidence on correct vs
    incorrect answers".

    ``logits`` are ``(n, classes)``, ``(n, t, vocab)`` with ``(n, t)`` targets, or binary
    ``(n,)``/``(n, 1)`` logits of the positive class (sigmoid). Negative targets (the
    ``-100`` ignore index) are skipped. Returns 0-d tensors (no host sync here).
    """
    if targets.is_floating_point():
        if not bool((targets == targets.round()).all()):
            raise ValueError("targets must be class indices; got non-integer floats")
        targets = targets.long()
    if logits.ndim >= 2 and logits.shape[-1] == 1:
        logits = logits.squeeze(-1)
    binary = logits.shape == targets.shape
    if binary:
        logits, targets = logits.reshape(-1), targets.reshape(-1)
    elif logits.ndim > 2:  # (n, t, vocab) token predictions
        logits, targets = logits.reshape(-1, logits.shape[-1]), targets.reshape(-1)
    if (not binary and logits.ndim != 2) or logits.shape[0] != targets.shape[0]:
        raise ValueError(
            f"outputs must be logits (n, classes), (n, t, vocab) or binary (n,), matching "
            f"targets; got outputs {tuple(logits.shape)} and targets {tuple(targets.shape)}"
        )
    targets = targets.to(logits.device)
    valid = targets >= 0  # -100 style ignore indices
    logits, targets = logits[valid], targets[valid]
    n_classes = 2 if binary else logits.shape[1]
    if targets.numel() and int(targets.max()) >= n_classes:
        raise ValueError(
            f"targets must be class indices below {n_classes} (the outputs' last dimension); "
            f"got {int(targets.max())}"
        )
    if binary:
        p_pos = torch.sigmoid(logits.double())
        correct = torch.where(targets == 1, p_pos, 1.0 - p_pos)
        predicted = (p_pos > 0.5).long()
    else:
        probs = torch.softmax(logits.double(), dim=-1)
        correct = probs.gather(1, targets.long().unsqueeze(1)).squeeze(1)
        predicted = logits.argmax(dim=-1)
    hit = predicted == targets
    return {
        f"{prefix}_accuracy": hit.double().mean(),
        f"{prefix}_confidence": correct.mean(),
        f"{prefix}_loss": -torch.log(correct.clamp_min(1e-300)).mean(),
        # seed 004: is a right answer a confident one? (NaN when no example is right/wrong)
        f"{prefix}_confidence_correct": correct[hit].mean(),
        f"{prefix}_confidence_incorrect": correct[~hit].mean(),
    }


_UNDEFINED_WHEN_EMPTY = ("_confidence_correct", "_confidence_incorrect")


def _floats(values: Mapping[str, float | torch.Tensor]) -> dict[str, float]:
    """Scalars as floats; a confidence over no right (or no wrong) answer is left out."""
    out = {k: _to_float(v) for k, v in values.items()}
    return {
        k: v for k, v in out.items() if not (k.endswith(_UNDEFINED_WHEN_EMPTY) and math.isnan(v))
    }


def _to_float(value: float | torch.Tensor) -> float:
    if isinstance(value, torch.Tensor):  # one element (checked in step()): one call
        return float(value.item()) if value.numel() == 1 else math.nan
    return float(value)
