"""The training loop of one experiment: a client of the Tracker, like any user loop.

Every decision the loop takes is a pure function of the step (learning rate, phase,
batch indices; see :mod:`traindyn.experiments.schedules`), and early stopping waits for
the measurement it reads, so the same seed gives the same run on any executor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from traindyn.capture import AtSteps, Every, LogSpaced, Schedule, Tracker, resolve_layers
from traindyn.exceptions import ConfigError
from traindyn.experiments.datasets import (
    Dataset,
    load_dataset,
    probe_description,
    probe_split,
    shuffle_train_labels,
)
from traindyn.experiments.models import ZooModel, build_model
from traindyn.experiments.schedules import active_phase, batch_indices, lr_at
from traindyn.experiments.suite import CheckpointSpec, ExperimentSpec, PhaseSpec
from traindyn.store import Run, open_run
from traindyn.store.checkpoints import load_checkpoint, save_checkpoint
from traindyn.store.training_state import (
    latest_training_state,
    load_training_state,
    save_training_state,
)

__all__ = ["TrainingOutcome", "train"]


@dataclass(frozen=True)
class TrainingOutcome:
    """How a run ended; also written to ``analysis/training.json``.

    Attributes
    ----------
    last_step : int
        The last step trained.
    stopped_early : bool
        True if early stopping (not the step budget or an ablation) ended training.
    stop_reason : str
        ``"steps"``, ``"early_stopping"`` or ``"stop_after_phase:<name>"``.
    monitor : str or None
        The early-stopping monitor, if any.
    best_step, best_value : int or None, float
        Step and value of the best monitored sample (NaN without early stopping).
    initial_value : float
        The monitored value at the first sample (seed 003 correlates it with the best).
    """

    last_step: int
    stopped_early: bool
    stop_reason: str
    monitor: str | None
    best_step: int | None
    best_value: float
    initial_value: float


def total_steps(spec: ExperimentSpec, n_train: int) -> int:
    """The step budget: ``train.steps``, or ``train.epochs`` full passes over the data."""
    if spec.train.steps is not None:
        return spec.train.steps
    if spec.train.epochs is None:
        raise ConfigError(f"{spec.run_name}: train.steps or train.epochs is required.")
    return spec.train.epochs * max(1, n_train // _batch_size(spec, n_train))


def train(
    spec: ExperimentSpec,
    run_dir: str | Path,
    *,
    progress: Callable[[int], None] | None = None,
    resume: bool = False,
) -> TrainingOutcome:
    """Train ``spec`` into ``run_dir``, tracked and checkpointed as specified.

    Parameters
    ----------
    spec : ExperimentSpec
    run_dir : path
        The run directory to create (or, with ``resume``, to continue).
    progress : callable, optional
        Called with the number of steps completed since the last call.
    resume : bool
        Continue an interrupted run in ``run_dir`` from its latest checkpoint that has
        training state (weights, optimiser, RNG, loop state): the result equals an
        uninterrupted run's. Without such a checkpoint the run restarts at step 0.
    """
    run_dir = Path(run_dir)
    resuming = resume and (run_dir / "run.json").is_file()
    data, model, probe = setup_experiment(spec)
    optimizer = _optimizer(spec, model)
    steps = total_steps(spec, data.x_train.shape[0])
    loop = _Loop(spec, data, model, optimizer, steps)
    tracker = Tracker(
        model,
        probe=probe,
        run=run_dir,
        every=_tracking_schedule(spec),
        layers=spec.tracking.layers,
        metrics=spec.tracking.metrics,
        mode=spec.tracking.mode,
        reduce=spec.tracking.reduce,
        config={
            "experiment": spec.model_dump(mode="json"),
            "model": model.config if hasattr(model, "config") else None,
            "probe": probe_description(
                data, per_class=spec.tracking.probe_per_class, seed=spec.data_seed
            ),
            "total_steps": steps,
        },
        resume=resuming,
        total_steps=steps,
    )
    start = 0
    if resuming and (at := latest_training_state(run_dir)) is not None:
        load_checkpoint(model, Run(run_dir).checkpoint_path(at), config=_model_config(model))
        state = load_training_state(run_dir, at, optimizer=optimizer)
        torch.set_rng_state(state.rng_state)
        tracker.load_state_dict(state.extra["tracker"])
        loop.restore(state.extra["loop"])
        start = at
        if progress is not None:
            progress(at)
    with tracker:
        outcome = loop.run(tracker, run_dir, progress, start=start)
    open_run(run_dir).write_analysis("training", _outcome_json(outcome))
    return outcome


def setup_experiment(
    spec: ExperimentSpec,
) -> tuple[Dataset, ZooModel, tuple[torch.Tensor, torch.Tensor]]:
    """The data, the freshly initialised model and the probe of ``spec``, in the order
    :func:`train` creates them (seed, data, model: the same seed gives the same initial
    weights). Seeds the global torch generator with ``spec.seed``. With
    ``spec.shuffle_labels`` the training labels are permuted with ``spec.data_seed``
    (a private generator: the initial weights equal the unshuffled twin's)."""
    torch.manual_seed(spec.seed)
    data = load_dataset(spec.dataset, seed=spec.data_seed)
    if spec.shuffle_labels:
        data = shuffle_train_labels(data, seed=spec.data_seed)
    model = build_model(
        spec.arch,
        input_shape=data.input_shape,
        n_classes=data.n_classes,
        vocab_size=data.vocab_size,
    )
    probe = probe_split(data, per_class=spec.tracking.probe_per_class, seed=spec.data_seed)
    return data, model, probe


class _Loop:
    """State of one training loop (the model, its optimiser, early stopping)."""

    def __init__(
        self,
        spec: ExperimentSpec,
        data: Dataset,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        steps: int,
    ) -> None:
        self.spec, self.data, self.model, self.optimizer = spec, data, model, optimizer
        self.steps = steps
        self.checkpoints = _checkpoint_schedule(spec.checkpoints)
        self.loss_fn = nn.CrossEntropyLoss()
        self.subsets: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        self.frozen: dict[str, list[nn.Parameter]] = {
            p.name: _params_of(model, p.freeze) for p in spec.phases
        }
        self.best_value = math.nan
        self.best_step: int | None = None
        self.initial_value = math.nan
        self.bad_samples = 0

    def state(self) -> dict[str, Any]:
        """Loop state for resuming (early stopping); JSON."""
        return {
            "best_value": None if math.isnan(self.best_value) else self.best_value,
            "best_step": self.best_step,
            "initial_value": None if math.isnan(self.initial_value) else self.initial_value,
            "bad_samples": self.bad_samples,
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state`."""
        self.best_value = math.nan if state["best_value"] is None else state["best_value"]
        self.best_step = state["best_step"]
        self.initial_value = math.nan if state["initial_value"] is None else state["initial_value"]
        self.bad_samples = state["bad_samples"]

    def run(
        self,
        tracker: Tracker,
        run_dir: Path,
        progress: Callable[[int], None] | None,
        *,
        start: int = 0,
    ) -> TrainingOutcome:
        spec = self.spec
        stop_reason = "steps"
        last = 0
        stop_phase = next((p for p in spec.phases if p.name == spec.stop_after_phase), None)
        end = self.steps if stop_phase is None else min(self.steps, stop_phase.end)
        for step in range(start, end + 1):
            last = step
            phase = active_phase(step, spec.phases)
            # the final step is measured but not trained: step N is the state after N updates
            stop = self._step(step, phase, tracker, run_dir, final=step == end)
            if progress is not None:
                progress(1)
            if stop:
                stop_reason = "early_stopping"
                break
        if stop_phase is not None and last == stop_phase.end:
            stop_reason = f"stop_after_phase:{stop_phase.name}"
        if spec.checkpoints.final and last not in _run_checkpoints(run_dir):
            save_checkpoint(self.model, run_dir, last, config=_model_config(self.model))
        es = spec.early_stopping
        return TrainingOutcome(
            last_step=last,
            stopped_early=stop_reason == "early_stopping",
            stop_reason=stop_reason,
            monitor=es.monitor if es else None,
            best_step=self.best_step,
            best_value=self.best_value,
            initial_value=self.initial_value,
        )

    def _step(
        self, step: int, phase: PhaseSpec | None, tracker: Tracker, run_dir: Path, *, final: bool
    ) -> bool:
        """One step: measure the model as it is (after ``step`` updates), then update it."""
        spec, model = self.spec, self.model
        rng_at_start = torch.get_rng_state()  # a resumed step must replay its dropout masks
        lr = lr_at(step, spec.train.lr, spec.train.schedule, self.steps)
        if phase is not None and phase.lr is not None:
            lr = phase.lr
        elif phase is not None and phase.lr_scale is not None:
            lr *= phase.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        frozen = self.frozen[phase.name] if phase is not None else []
        for param in frozen:
            param.requires_grad_(False)
        x, y = self._batch(step, phase)
        model.train()
        logits = model(x)
        weights = (phase.loss_weights if phase and phase.loss_weights else None) or (
            spec.train.loss_weights
        )
        loss = self._loss(logits, y, weights)
        self.optimizer.zero_grad(set_to_none=True)
        is_last = final
        if not is_last:
            loss.backward()  # type: ignore[no-untyped-call]
        trainable = [p for p in model.parameters() if p.requires_grad]
        grad_norm = _grad_norm(trainable) if not is_last else None
        if grad_norm is not None and spec.train.grad_clip is not None:
            nn.utils.clip_grad_norm_(trainable, spec.train.grad_clip)
        tracker.step(step, loss=loss, outputs=logits, targets=y, lr=lr, grad_norm=grad_norm)
        if self.checkpoints is not None and self.checkpoints.is_due(step):
            save_checkpoint(model, run_dir, step, config=_model_config(model))
        if self.checkpoints is not None and self.checkpoints.is_due(step) and not final:
            tracker.flush()  # rows up to this step survive with the checkpoint
            save_training_state(
                run_dir,
                step,
                optimizer=self.optimizer,
                rng_state=rng_at_start,
                extra={"loop": self.state(), "tracker": tracker.state_dict()},
            )
        stop = self._early_stop(step, tracker, run_dir, loss)
        if not is_last and not stop:
            self.optimizer.step()
        for param in frozen:
            param.requires_grad_(True)
        return stop

    def _batch(self, step: int, phase: PhaseSpec | None) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self._subset(phase)
        idx = batch_indices(step, x.shape[0], _batch_size(self.spec, x.shape[0]), self.spec.seed)
        return x[idx], y[idx]

    def _subset(self, phase: PhaseSpec | None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training data of a phase: its class subset and noisy labels (cached)."""
        key = phase.name if phase is not None and phase.data is not None else ""
        if key not in self.subsets:
            x, y = self.data.x_train, self.data.y_train
            mix = phase.data if phase is not None else None
            if mix is not None and mix.classes is not None:
                keep = torch.isin(y, torch.tensor(mix.classes))
                if not bool(keep.any()):
                    raise ConfigError(
                        f"phases[{phase.name!r}].data.classes {mix.classes} selects no training "  # type: ignore[union-attr]
                        f"example of {self.data.name} (classes 0..{self.data.n_classes - 1})."
                    )
                x, y = x[keep], y[keep]
            if mix is not None and mix.label_noise > 0:
                g = torch.Generator().manual_seed(self.spec.seed + 7919)
                noisy = torch.rand(y.shape[0], generator=g) < mix.label_noise
                y = y.clone()
                y[noisy] = torch.randint(0, self.data.n_classes, (int(noisy.sum()),), generator=g)
            self.subsets[key] = (x, y)
        return self.subsets[key]

    def _loss(
        self, logits: torch.Tensor, y: torch.Tensor, weights: dict[str, float]
    ) -> torch.Tensor:
        total = logits.new_zeros(())
        if weights.get("ce", 0.0):
            total = total + weights["ce"] * self.loss_fn(logits, y)
        if weights.get("confidence_penalty", 0.0):
            logp = torch.log_softmax(logits, dim=-1)
            neg_entropy = (logp.exp() * logp).sum(dim=-1).mean()
            total = total + weights["confidence_penalty"] * neg_entropy
        if weights.get("l2", 0.0):
            l2 = sum((p * p).sum() for p in self.model.parameters() if p.requires_grad)
            total = total + weights["l2"] * 0.5 * l2
        return total

    def _early_stop(self, step: int, tracker: Tracker, run_dir: Path, loss: torch.Tensor) -> bool:
        es = self.spec.early_stopping
        if es is None or not tracker.is_due(step):
            return False
        if es.monitor == "loss":
            value = float(loss)
        else:
            value = tracker.wait_for(step).get(es.monitor, math.nan)
        if math.isnan(self.initial_value):
            self.initial_value = value
        if not math.isfinite(value):
            return False
        sign = 1.0 if es.mode == "max" else -1.0
        improved = math.isnan(self.best_value) or sign * (value - self.best_value) > es.min_delta
        if improved:
            previous = self.best_step
            self.best_value, self.best_step, self.bad_samples = value, step, 0
            save_checkpoint(self.model, run_dir, step, config=_model_config(self.model))
            if previous is not None and previous != step and not self._scheduled(previous):
                Run(run_dir).delete_checkpoint(previous)  # keep only the best one
            return False
        self.bad_samples += 1
        return step >= es.start_step and self.bad_samples >= es.patience

    def _scheduled(self, step: int) -> bool:
        return self.checkpoints is not None and self.checkpoints.is_due(step)


def _batch_size(spec: ExperimentSpec, n: int) -> int:
    size = spec.train.batch_size
    return n if size == "full" else min(size, n)


def _optimizer(spec: ExperimentSpec, model: nn.Module) -> torch.optim.Optimizer:
    t = spec.train
    params = model.parameters()
    if t.optimizer == "adam":
        return torch.optim.Adam(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay)
    if t.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=t.lr, betas=t.betas, weight_decay=t.weight_decay)
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)


def _tracking_schedule(spec: ExperimentSpec) -> Schedule:
    tracking = spec.tracking
    if tracking.log_spaced is not None:
        return LogSpaced(per_decade=tracking.log_spaced)
    if isinstance(tracking.every, list):
        return AtSteps.of(tracking.every)
    return Every(tracking.every)


class _AnyOf:
    def __init__(self, *schedules: Schedule) -> None:
        self.schedules = schedules

    def is_due(self, step: int) -> bool:
        return any(s.is_due(step) for s in self.schedules)


def _checkpoint_schedule(spec: CheckpointSpec) -> Schedule | None:
    parts: list[Schedule] = []
    if spec.every is not None:
        parts.append(Every(spec.every))
    if spec.steps:
        parts.append(AtSteps.of(spec.steps))
    if spec.log_spaced is not None:
        parts.append(LogSpaced(per_decade=spec.log_spaced))
    return _AnyOf(*parts) if parts else None


def _params_of(model: nn.Module, patterns: list[str]) -> list[nn.Parameter]:
    if not patterns:
        return []
    names = resolve_layers(model, patterns)
    seen: dict[int, nn.Parameter] = {}
    for name in names:
        for param in model.get_submodule(name).parameters():
            seen[id(param)] = param
    return list(seen.values())


def _grad_norm(params: list[nn.Parameter]) -> torch.Tensor | None:
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return None
    norm: torch.Tensor = torch.linalg.vector_norm(
        torch.stack([torch.linalg.vector_norm(g) for g in grads])
    )
    return norm


def _model_config(model: nn.Module) -> Any:
    return getattr(model, "config", None)


def _run_checkpoints(run_dir: Path) -> list[int]:
    return Run(run_dir).checkpoints()


def _outcome_json(outcome: TrainingOutcome) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        return None if isinstance(value, float) and not math.isfinite(value) else value

    return {k: clean(v) for k, v in vars(outcome).items()}
