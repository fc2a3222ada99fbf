"""Checkpoints that refuse to load silently into the wrong architecture.

The seeds lost days to `load_state_dict(strict=False)`: a model built with
`use_controller=False` loaded a checkpoint saved with `use_controller=True`, and ten
projection layers stayed randomly initialised without a word. traindyn lists every
difference instead.

Run:  .venv/bin/python examples/checkpoints.py
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass

import torch
from torch import nn

from traindyn.exceptions import CheckpointMismatch
from traindyn.store.checkpoints import diff_checkpoint, load_checkpoint, save_checkpoint


@dataclass(frozen=True)
class VAEConfig:
    hidden: int = 32
    use_controller: bool = True
    curvature: float = 1.0


class TinyVAE(nn.Module):
    def __init__(self, config: VAEConfig) -> None:
        super().__init__()
        self.config = config  # recorded in the checkpoint's fingerprint
        self.encoder = nn.Linear(16, config.hidden)
        self.decoder = nn.Linear(config.hidden, 16)
        if config.use_controller:
            self.controller = nn.Sequential(nn.Linear(config.hidden, 8), nn.Linear(8, 2))


shutil.rmtree("runs/example-checkpoints", ignore_errors=True)
saved = TinyVAE(VAEConfig(use_controller=True, curvature=1.0))
path = save_checkpoint(saved, "runs/example-checkpoints", step=500)
print("saved", path)

wrong = TinyVAE(VAEConfig(use_controller=False, curvature=2.0))
try:
    load_checkpoint(wrong, path)  # strict by default
except CheckpointMismatch as err:
    print("\nrefused, as it should be:\n", err)

print("\nthe same check as a diff (also `traindyn checkpoint diff`):")
print(diff_checkpoint(path, wrong))

right = TinyVAE(VAEConfig(use_controller=True, curvature=1.0))
load_checkpoint(right, path)
pairs = zip(saved.state_dict().values(), right.state_dict().values(), strict=True)
assert all(torch.equal(a, b) for a, b in pairs)
print("\nloaded into the matching architecture: weights identical")
