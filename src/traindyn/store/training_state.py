"""Resumable training state beside a checkpoint: optimiser, RNG and loop state.

``checkpoints/step-<N>.state.safetensors`` holds every tensor of the optimiser's state
dict and the torch RNG state; its safetensors header holds the rest as JSON (param
groups, scalar state, the training loop's own counters). No pickle anywhere. Together
with ``step-<N>.safetensors`` (the weights) it restarts a run at step N exactly.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch

from traindyn.exceptions import StoreError
from traindyn.store.run import CHECKPOINTS_DIR, atomic_write_path
from traindyn.store.schema import to_json_value

__all__ = ["TrainingState", "latest_training_state", "load_training_state", "save_training_state"]

_META_KEY = "traindyn.training_state"
_STATE_RE = re.compile(r"^step-(\d+)\.state\.safetensors$")


@dataclass(frozen=True)
class TrainingState:
    """What :func:`load_training_state` restores besides the optimiser (loaded in place).

    Attributes
    ----------
    step : int
    rng_state : torch.Tensor
        ``torch.get_rng_state()`` as it was at the start of ``step``.
    extra : dict
        The training loop's own JSON state (early stopping, tracker state...).
    """

    step: int
    rng_state: torch.Tensor
    extra: dict[str, Any]


def _path(run_dir: str | os.PathLike[str], step: int) -> Path:
    return Path(run_dir) / CHECKPOINTS_DIR / f"step-{step}.state.safetensors"


def save_training_state(
    run_dir: str | os.PathLike[str],
    step: int,
    *,
    optimizer: torch.optim.Optimizer,
    rng_state: torch.Tensor,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write the state needed to resume at ``step`` (atomically, no pickle)."""
    tensors: dict[str, torch.Tensor] = {"rng": rng_state.detach().cpu().contiguous()}
    state = optimizer.state_dict()
    structure: dict[str, Any] = {"state": {}, "param_groups": state["param_groups"]}
    for pid, entries in state["state"].items():
        slot: dict[str, Any] = {}
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                key = f"optimizer.{pid}.{name}"
                tensors[key] = value.detach().cpu().contiguous()
                slot[name] = {"__tensor__": key}
            else:
                slot[name] = value
        structure["state"][str(pid)] = slot
    meta = {
        "optimizer": to_json_value(structure, name="optimizer state"),
        "extra": to_json_value(dict(extra or {}), name="extra"),
        "step": step,
    }
    final = _path(run_dir, step)
    final.parent.mkdir(parents=True, exist_ok=True)
    metadata = {_META_KEY: json.dumps(meta)}
    atomic_write_path(
        final, lambda tmp: safetensors.torch.save_file(tensors, str(tmp), metadata=metadata)
    )
    return final


def latest_training_state(run_dir: str | os.PathLike[str]) -> int | None:
    """The largest step with both weights and training state saved, or None."""
    directory = Path(run_dir) / CHECKPOINTS_DIR
    if not directory.is_dir():
        return None
    steps = [int(m.group(1)) for p in directory.iterdir() if (m := _STATE_RE.match(p.name))]
    complete = [s for s in steps if (directory / f"step-{s}.safetensors").is_file()]
    return max(complete) if complete else None


def load_training_state(
    run_dir: str | os.PathLike[str], step: int, *, optimizer: torch.optim.Optimizer
) -> TrainingState:
    """Load the optimiser state of ``step`` into ``optimizer`` and return the rest.

    Raises
    ------
    StoreError
        If the file is missing or unreadable, or does not fit the optimiser (names the
        file and what differs).
    """
    path = _path(run_dir, step)
    try:
        with safetensors.safe_open(str(path), framework="pt") as f:
            meta = json.loads((f.metadata() or {})[_META_KEY])
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118
    except (OSError, KeyError, ValueError, safetensors.SafetensorError) as exc:
        raise StoreError(
            f"{path} is not a readable training state ({exc}); resume from an earlier step "
            "or start the run again."
        ) from None
    structure = meta["optimizer"]
    state: dict[int, dict[str, Any]] = {}
    for pid, slot in structure["state"].items():
        state[int(pid)] = {
            name: tensors[value["__tensor__"]]
            if isinstance(value, dict) and "__tensor__" in value
            else value
            for name, value in slot.items()
        }
    try:
        optimizer.load_state_dict({"state": state, "param_groups": structure["param_groups"]})
    except (ValueError, KeyError) as exc:
        raise StoreError(f"{path} does not fit this optimiser: {exc}") from None
    return TrainingState(step=int(meta["step"]), rng_state=tensors["rng"], extra=meta["extra"])
