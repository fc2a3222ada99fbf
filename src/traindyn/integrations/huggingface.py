"""Track a Hugging Face ``transformers`` model trained by ``Trainer``.

::

    from traindyn.integrations import TraindynCallback

    probe = ({"input_ids": ids, "attention_mask": mask}, labels)  # a fixed probe set
    callback = TraindynCallback(probe, "runs/bert", every=5)
    trainer = Trainer(model=model, args=args, train_dataset=ds, callbacks=[callback])
    with callback:  # a training that raises ends the run as "failed"
        trainer.train()

Needs ``transformers`` (and ``accelerate`` for ``Trainer``): ``pip install
traindyn[huggingface]``. Importing this module imports ``transformers``; ``import
traindyn.integrations`` alone does not.

The callback is a thin adapter: the :class:`~traindyn.Tracker` does every measurement.
Steps are ``TrainerState.global_step``, the number of optimiser updates done, so step 0
is the model before its first update (traindyn's convention).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from torch import nn
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from traindyn.capture import Tracker
from traindyn.capture.schedule import Schedule
from traindyn.exceptions import ConfigError
from traindyn.integrations._common import TrackerOwner
from traindyn.store import Run

__all__ = ["TraindynCallback"]

_RESERVED = {
    "model": "the Trainer passes the model when training begins",
    "probe": "it is the first argument",
    "run": "it is the second argument",
    "every": "it is a keyword of the callback itself",
}

_TRAINING_ARGS = (
    "learning_rate",
    "per_device_train_batch_size",
    "per_device_eval_batch_size",
    "train_batch_size",
    "gradient_accumulation_steps",
    "world_size",
    "max_steps",
    "num_train_epochs",
    "seed",
    "data_seed",
    "optim",
    "weight_decay",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "max_grad_norm",
    "lr_scheduler_type",
    "warmup_steps",
    "warmup_ratio",
    "label_smoothing_factor",
    "fp16",
    "bf16",
    "logging_steps",
    "eval_strategy",
    "eval_steps",
)
"""TrainingArguments recorded in ``run.json`` (those this version of transformers has):
what shapes the training dynamics, not paths, hub tokens or logging plumbing."""

_UNTRACKED_LOG_SUFFIXES = ("_runtime", "_per_second")
"""Wall-clock timings and throughputs (``train_runtime``, ``eval_samples_per_second``...)
are not recorded: they describe the machine, not the training, and differ between
identical runs. ``total_flos`` is left out for the same reason."""

_LOG_RENAMES = {"learning_rate": "lr"}
"""Hugging Face log keys renamed to the name traindyn gives the same quantity."""


class TraindynCallback(TrackerOwner, TrainerCallback):
    """A ``transformers.TrainerCallback`` that records a run with a :class:`~traindyn.Tracker`.

    The tracker is built when training begins (``on_train_begin`` brings the model),
    with ``total_steps`` set to ``TrainerState.max_steps`` so the milestones of
    training are sampled. Step 0 (before the first update) is measured then, and
    every step the schedule asks for after each optimiser update. Every number the
    Trainer logs is recorded as a training scalar of the step it was logged at:
    ``loss`` (Hugging Face's mean over the steps since the previous log),
    ``learning_rate`` (as ``lr``), ``grad_norm``, ``epoch``, ``eval_*``,
    ``train_loss``... except wall-clock timings. The run is closed as ``"finished"``
    when training ends.

    Parameters
    ----------
    probe : (inputs, labels), inputs, or mapping with "labels"
        The fixed probe set; ``inputs`` is a mapping of tensors passed as
        ``model(**inputs)`` (``input_ids`` ``(n, t)``, ``attention_mask`` ``(n, t)``,
        ...) and ``labels`` the class indices ``(n,)`` (or token targets ``(n, t)``)
        used for ``probe_accuracy``. A collated batch ``{"input_ids": ..., "labels":
        ...}`` is split into the two. See :class:`~traindyn.Tracker` for details.
    run : str, Path or Run
        Run directory to create.
    every : int, list of int, or Schedule
        When to sample, in optimiser updates (default every 5).
    **tracker_kwargs
        Any other :class:`~traindyn.Tracker` option (``layers``, ``metrics``,
        ``mirrors``, ``resume``, ``config``...). ``total_steps`` overrides
        ``max_steps``; ``config`` is recorded beside the ``"huggingface"`` entry.

    Attributes
    ----------
    tracker : Tracker
        The tracker recording the run (from the start of training).
    run_path : Path
        The run directory.

    Raises
    ------
    TypeError
        If ``tracker_kwargs`` holds a name that is not a Tracker option.

    Notes
    -----
    ``Trainer`` has no hook for a training that raises, so the run would stay
    ``"running"`` until the process exits (then the tracker marks it ``"failed"``;
    everything older than its flush interval is on disk at any moment). Train inside
    ``with callback:`` to end it as ``"failed"``, with the error, at once.

    Only the main process (``state.is_world_process_zero``) records; in distributed
    training the others do nothing. Logs that arrive after training ended (a
    ``trainer.evaluate()`` after ``train()``) are not recorded: the run is closed.
    To resume, train from a checkpoint with ``resume=True`` and the same ``run``;
    the steps replayed are measured again and replace the earlier values.

    Examples
    --------
    >>> import torch
    >>> probe = ({"input_ids": torch.zeros(8, 4, dtype=torch.long)}, torch.zeros(8).long())
    >>> TraindynCallback(probe, "runs/bert", every=10).run_path
    PosixPath('runs/bert')
    >>> TraindynCallback(probe, "runs/bert", evry=10)
    Traceback (most recent call last):
    ...
    TypeError: TraindynCallback got an unknown Tracker option 'evry'; valid options: ...
    """

    _starts = (
        "training begins: pass the callback to Trainer(callbacks=[...]) and call "
        "trainer.train() first."
    )

    def __init__(
        self,
        probe: Any,
        run: str | Path | Run,
        *,
        every: int | Sequence[int] | Schedule = 5,
        **tracker_kwargs: Any,
    ) -> None:
        self._setup(
            _split_labels(probe),
            run,
            every,
            tracker_kwargs,
            reserved=_RESERVED,
            config_key="huggingface",
            config_what="the TrainingArguments",
        )

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._tracker is not None and self._open:
            self._open = False
            # the Tracker's own exit: "failed" with the error (or the signal) if one was raised
            self._tracker.__exit__(exc_type, exc, tb)

    # ------------------------------------------------------------------ Trainer hooks
    def on_train_begin(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        model: nn.Module | None = None,
        **kwargs: Any,
    ) -> None:
        """Called when training begins: build the tracker and measure the current step."""
        if not state.is_world_process_zero:
            return
        if self._open:
            raise ConfigError(
                f"the run at {self.run_path} is still open from an earlier trainer.train() "
                "(did it raise?). Train inside `with callback:` so a failure closes it, or "
                "call callback.close(status='failed') before training again."
            )
        if model is None:
            raise ConfigError(
                "on_train_begin received no model; TraindynCallback must be called by "
                "transformers.Trainer, which passes model=..."
            )
        options = dict(self.tracker_kwargs)
        total_steps = options.pop("total_steps", state.max_steps if state.max_steps > 0 else None)
        config = {**(options.pop("config", None) or {}), "huggingface": _training_config(args)}
        self._tracker = Tracker(
            model,
            self.probe,
            self.run,
            every=self.every,
            total_steps=total_steps,
            config=config,
            **options,
        )
        self._open = True
        try:
            self._tracker.step(state.global_step)  # 0, or the step a resumed training resumes at
        except BaseException as exc:  # the training will not start: neither will the run
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Called after each optimiser update: sample if the step is due."""
        if self._tracker is not None and self._open:
            self._tracker.step(state.global_step)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """Called when the Trainer logs: record its numbers as scalars of the current step."""
        if self._tracker is None or not self._open or not logs:
            return
        scalars = _log_scalars(logs)
        if scalars:
            # the same step as the on_step_end just before: the tracker records scalars only
            _step_with_scalars(self._tracker, state.global_step, scalars)

    def on_save(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Called after a checkpoint is saved: flush, so the run holds every step it covers."""
        if self._tracker is not None and self._open:
            self._tracker.flush()

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Called when training ends: close the run as finished."""
        self.close()


def _log_scalars(logs: Mapping[str, Any]) -> dict[str, float]:
    """The numbers of a Trainer log, under traindyn's names, as training scalars.

    ``learning_rate`` becomes ``lr``; wall-clock timings (``*_runtime``,
    ``*_per_second``), ``total_flos`` and anything that is not a real number are left
    out.

    Examples
    --------
    >>> _log_scalars({"loss": 0.5, "learning_rate": 1e-3, "train_runtime": 2.0, "note": "x"})
    {'loss': 0.5, 'lr': 0.001}
    """
    out: dict[str, float] = {}
    for key, value in logs.items():
        if key == "total_flos" or key.endswith(_UNTRACKED_LOG_SUFFIXES):
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            continue
        out[_LOG_RENAMES.get(key, key)] = float(value)
    return out


def _step_with_scalars(tracker: Tracker, step: int, scalars: Mapping[str, float]) -> None:
    # Any: the keys are never Tracker.step's own arguments (renamed below), all floats
    named: dict[str, Any] = {
        k: v for k, v in scalars.items() if k not in ("loss", "lr", "grad_norm")
    }
    clash = sorted(set(named) & {"step", "outputs", "targets"})
    if clash:  # never Tracker arguments: keep them as scalars under a prefixed name
        for key in clash:
            named[f"hf_{key}"] = named.pop(key)
    tracker.step(
        step,
        loss=scalars.get("loss"),
        lr=scalars.get("lr"),
        grad_norm=scalars.get("grad_norm"),
        **named,
    )


def _training_config(args: TrainingArguments) -> dict[str, Any]:
    """The JSON-safe TrainingArguments of :data:`_TRAINING_ARGS` (enums as their value)."""
    out: dict[str, Any] = {}
    for name in _TRAINING_ARGS:
        try:
            value = getattr(args, name)
        except (AttributeError, ValueError):  # absent in this version, or not computable
            continue
        if isinstance(value, Enum):
            value = value.value
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        if value is None or isinstance(value, (bool, int, float, str)):
            out[name] = value
    return out


def _split_labels(probe: Any) -> Any:
    """A collated batch ``{"input_ids": ..., "labels": ...}`` as ``(inputs, labels)``."""
    if isinstance(probe, Mapping) and "labels" in probe:
        inputs = {k: v for k, v in probe.items() if k != "labels"}
        return inputs, probe["labels"]
    return probe
