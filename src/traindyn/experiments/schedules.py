"""Pure functions of the step: learning rate, active phase, batch order.

Everything the training loop decides from the step number alone lives here, so a run
resumed at step s makes exactly the decisions an uninterrupted run made at step s.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from traindyn.experiments.suite import LRScheduleSpec, PhaseSpec

__all__ = ["active_phase", "batch_indices", "lr_at"]


def lr_at(step: int, base_lr: float, schedule: LRScheduleSpec, total_steps: int) -> float:
    """Learning rate at ``step``: linear warm-up, then constant, step decay or cosine.

    Warm-up rises linearly from ``base_lr / warmup_steps`` to ``base_lr`` over the first
    ``warmup_steps`` steps. Cosine decays from ``base_lr`` to ``min_lr`` over the
    remaining steps (Loshchilov & Hutter 2017, without restarts).

    Examples
    --------
    >>> s = LRScheduleSpec(kind="cosine", warmup_steps=10)
    >>> lr_at(4, 1.0, s, 110), lr_at(10, 1.0, s, 110), round(lr_at(60, 1.0, s, 110), 6)
    (0.5, 1.0, 0.5)
    """
    if step < schedule.warmup_steps:
        return base_lr * (step + 1) / schedule.warmup_steps
    t = step - schedule.warmup_steps
    if schedule.kind == "constant":
        return base_lr
    if schedule.kind == "step":
        return base_lr * schedule.gamma ** (t // schedule.step_size)
    span = max(1, total_steps - schedule.warmup_steps)
    progress = min(1.0, t / span)
    return schedule.min_lr + 0.5 * (base_lr - schedule.min_lr) * (1 + math.cos(math.pi * progress))


def active_phase(step: int, phases: Sequence[PhaseSpec]) -> PhaseSpec | None:
    """The phase whose ``[start, end)`` range holds ``step``, or None."""
    for phase in phases:
        if phase.start <= step < phase.end:
            return phase
    return None


def batch_indices(step: int, n: int, batch_size: int, seed: int) -> torch.Tensor:
    """Indices of the training batch at ``step``: epochs of a seeded permutation.

    Epoch e = step // (n // batch_size) uses ``randperm(n)`` seeded by (seed, e); the
    remainder of an epoch that does not fill a batch is skipped. A pure function of
    its arguments, so resuming needs no data-loader state.

    Examples
    --------
    >>> a = batch_indices(3, 10, 4, seed=0); b = batch_indices(3, 10, 4, seed=0)
    >>> bool((a == b).all()), a.shape
    (True, torch.Size([4]))
    """
    per_epoch = max(1, n // batch_size)
    epoch, position = divmod(step, per_epoch)
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(n, generator=generator)
    return order[position * batch_size : (position + 1) * batch_size]
