"""Track a ``LightningModule`` trained by ``lightning.pytorch.Trainer``.

::

    from traindyn.integrations import TraindynLightningCallback

    callback = TraindynLightningCallback((x_probe, y_probe), "runs/mlp", every=5)
    trainer = Trainer(max_steps=1000, callbacks=[callback])
    trainer.fit(module, loader)

Needs ``lightning`` (``pip install traindyn[lightning]``). Importing this module imports
``lightning``; ``import traindyn.integrations`` alone does not.

The callback is a thin adapter: the :class:`~traindyn.Tracker` does every measurement.
Steps are ``trainer.global_step``, the number of optimiser updates done, so step 0 is
the model before its first update (traindyn's convention).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch.optim import Optimizer

from traindyn.capture import Tracker
from traindyn.capture.schedule import Schedule
from traindyn.exceptions import ConfigError
from traindyn.integrations._common import TrackerOwner
from traindyn.store import Run

__all__ = ["TraindynLightningCallback"]

_RESERVED = {
    "model": "the Trainer's LightningModule is tracked",
    "probe": "it is the first argument",
    "run": "it is the second argument",
    "every": "it is a keyword of the callback itself",
}


class TraindynLightningCallback(TrackerOwner, pl.Callback):
    """A ``lightning.pytorch.Callback`` that records a run with a :class:`~traindyn.Tracker`.

    The tracker is built in ``on_fit_start`` for the ``LightningModule`` being fitted,
    with ``total_steps=trainer.estimated_stepping_batches`` (the optimiser updates
    planned) so the milestones of training are sampled. The current step is measured
    when training starts (step 0, or the step a resumed fit restarts at), then every
    step the schedule asks for after each update. At each training batch the loss
    returned by ``training_step`` (``outputs["loss"]``) is recorded as ``loss`` and the
    learning rate used for the update as ``lr``. The run is closed as ``"finished"``
    when the fit ends, or as ``"failed"`` with the error when it raises (or is
    interrupted).

    Parameters
    ----------
    probe : (x, y) or x
        The fixed probe set passed as ``module(x)`` (a mapping as ``module(**x)``), with
        optional integer targets ``y`` ``(n,)`` for ``probe_accuracy``. See
        :class:`~traindyn.Tracker`.
    run : str, Path or Run
        Run directory to create.
    every : int, list of int, or Schedule
        When to sample, in optimiser updates (default every 5).
    **tracker_kwargs
        Any other :class:`~traindyn.Tracker` option (``layers``, ``metrics``,
        ``mirrors``, ``resume``, ``config``...). ``total_steps`` overrides the
        trainer's estimate; ``config`` is recorded beside the ``"lightning"`` entry.

    Attributes
    ----------
    tracker : Tracker
        The tracker recording the run (from the start of the fit).
    run_path : Path
        The run directory.

    Raises
    ------
    TypeError
        If ``tracker_kwargs`` holds a name that is not a Tracker option.

    Notes
    -----
    ``lr`` is the first parameter group's learning rate of the first optimiser stepped,
    read just before ``optimizer.step()`` (a step-wise scheduler has already moved on
    by the end of the batch). With gradient accumulation the step is the same for the
    batches of one update, and the last batch's loss is kept.

    Resuming: the tracker's :meth:`~traindyn.Tracker.state_dict` is saved in Lightning
    checkpoints (which also flush the run). Fit again with ``ckpt_path=...``, the same
    ``run`` and ``resume=True``: the schedule continues from the checkpoint's step and
    the steps replayed replace the values recorded after it.

    Only the global-zero process records; in distributed training the others do
    nothing.

    Examples
    --------
    >>> import torch
    >>> callback = TraindynLightningCallback((torch.randn(8, 4), None), "runs/mlp")
    >>> callback.run_path
    PosixPath('runs/mlp')
    >>> callback.state_key.endswith("runs/mlp'}")
    True
    """

    _starts = (
        "the fit starts: pass the callback to Trainer(callbacks=[...]) and call "
        "trainer.fit(...) first."
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
            probe,
            run,
            every,
            tracker_kwargs,
            reserved=_RESERVED,
            config_key="lightning",
            config_what="the Trainer's settings",
        )
        self._loaded_state: dict[str, Any] | None = None
        self._lr: float | None = None

    @property
    def state_key(self) -> str:
        """Key of this callback's state in a checkpoint: one per run directory.

        The absolute path, so that it is the same before the run is created (when a
        checkpoint is restored) and after, however ``run`` was spelled.
        """
        return self._generate_state_key(run=str(self.run_path.resolve()))

    # ------------------------------------------------------------------ Trainer hooks
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Called when fit begins: build the tracker (checkpoint state already restored)."""
        if not trainer.is_global_zero:
            return
        if self._open:
            raise ConfigError(
                f"the run at {self.run_path} is still open from an earlier fit; close it with "
                "callback.close() or use a new callback (and run) for another fit."
            )
        options = dict(self.tracker_kwargs)
        if "total_steps" in options:
            total_steps = options.pop("total_steps")
        else:
            estimate = trainer.estimated_stepping_batches
            total_steps = int(estimate) if math.isfinite(estimate) and estimate > 0 else None
        config = {
            **(options.pop("config", None) or {}),
            "lightning": _trainer_config(trainer, pl_module),
        }
        self._tracker = Tracker(
            pl_module,
            self.probe,
            self.run,
            every=self.every,
            total_steps=total_steps,
            config=config,
            **options,
        )
        self._open = True
        if self._loaded_state is not None:
            self._tracker.load_state_dict(self._loaded_state)
            self._loaded_state = None

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Called when training starts (loops restored): measure the current step."""
        if self._tracker is not None and self._open:
            self._tracker.step(trainer.global_step)

    def on_before_optimizer_step(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, optimizer: Optimizer
    ) -> None:
        """Called before each optimiser step: note the learning rate it will use."""
        if self._lr is None and optimizer.param_groups:
            lr = optimizer.param_groups[0].get("lr")
            if isinstance(lr, torch.Tensor):
                lr = lr.item()
            if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
                self._lr = float(lr)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Called after each training batch: record loss and lr, sample if due."""
        if self._tracker is None or not self._open:
            return
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, numbers.Real) and not isinstance(loss, bool):
            loss = float(loss)
        elif not isinstance(loss, torch.Tensor):
            loss = None  # training_step returned None (a skipped batch) or no "loss"
        self._tracker.step(trainer.global_step, loss=loss, lr=self._lr)
        self._lr = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict[str, Any]
    ) -> None:
        """Called when a checkpoint is saved: flush, so the run holds every step it covers."""
        if self._tracker is not None and self._open:
            self._tracker.flush()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        """Called when the fit raises or is interrupted: close the run as failed."""
        if self._tracker is not None and self._open:
            self._open = False
            # the Tracker's own exit names the signal of an interruption, else the error
            self._tracker.__exit__(type(exception), exception, exception.__traceback__)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Called when fit ends: close the run as finished."""
        self.close()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The tracker's :meth:`~traindyn.Tracker.state_dict`, saved in checkpoints."""
        if self._tracker is not None:
            return self._tracker.state_dict()
        return dict(self._loaded_state or {})

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore a checkpoint's state into the tracker (now, or when it is built)."""
        if not state_dict:
            return
        if self._tracker is not None and self._open:
            self._tracker.load_state_dict(state_dict)
        else:
            self._loaded_state = dict(state_dict)


def _trainer_config(trainer: pl.Trainer, pl_module: pl.LightningModule) -> dict[str, Any]:
    """The Trainer settings that shape the training, and the module's JSON-safe hparams."""
    estimate = trainer.estimated_stepping_batches
    return {
        "module": f"{type(pl_module).__module__}.{type(pl_module).__qualname__}",
        "max_steps": trainer.max_steps,
        "max_epochs": trainer.max_epochs,
        "estimated_stepping_batches": int(estimate) if math.isfinite(estimate) else None,
        "accumulate_grad_batches": trainer.accumulate_grad_batches,
        "gradient_clip_val": _json_scalar(trainer.gradient_clip_val),
        "precision": str(trainer.precision),
        "world_size": trainer.world_size,
        "hparams": {  # values that are not JSON scalars (modules, tensors...) are left out
            str(k): _json_scalar(v)
            for k, v in dict(pl_module.hparams).items()
            if v is None or _json_scalar(v) is not None
        },
    }


def _json_scalar(value: Any) -> bool | int | float | str | None:
    """A number, bool or string as is (a non-finite float as text); anything else None."""
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        out = float(value)
        return out if math.isfinite(out) else str(out)
    return None
