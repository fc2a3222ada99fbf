"""Mirror traindyn's per-layer metrics into a Weights & Biases run, offline.

Run:  .venv/bin/python examples/wandb_offline.py
Then: wandb sync <the printed offline-run directory>   (when you want it online)

Offline mode needs no account and no network. The run directory stays the record; W&B
is a view of it. Needs `pip install traindyn[wandb]`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import torch
from torch import nn

import traindyn as td
from traindyn.integrations import WandbMirror

# Keep W&B's own logs and settings beside this example (default: ~/.cache, ~/.config).
os.environ.setdefault("WANDB_CACHE_DIR", str(Path("wandb-cache").resolve()))
os.environ.setdefault("WANDB_CONFIG_DIR", str(Path("wandb-config").resolve()))

torch.manual_seed(0)
x = torch.randn(2048, 20)
y = (x[:, :3].sum(dim=1) > 0).long() + (x[:, 3] > 1).long()
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

shutil.rmtree("runs/example-wandb", ignore_errors=True)
# mode="offline" is the default; name= and config= go to wandb.init
mirror = WandbMirror(project="traindyn-examples", name="mlp", config={"lr": 3e-3})
tracker = td.Tracker(
    model, probe=(x[:256], y[:256]), run="runs/example-wandb", every=5, mirrors=[mirror]
)
with tracker:
    for step in range(200):
        idx = torch.randint(0, x.shape[0], (64,))
        logits = model(x[idx])
        loss = nn.functional.cross_entropy(logits, y[idx])
        optimizer.zero_grad()
        loss.backward()
        tracker.step(step, loss=loss, lr=3e-3, outputs=logits, targets=y[idx])
        optimizer.step()

assert mirror.run_ is not None  # started by the first sample
offline_dir = mirror.run_.settings.sync_dir
print("traindyn run:     runs/example-wandb")
print(f"W&B offline run:  {offline_dir}")
print("keys: traindyn/<metric>/<layer> (dots become /), traindyn/scalars/<name>")
print("x-axis of every key: traindyn/step")
print(f"upload it with:   wandb sync {offline_dir}")
