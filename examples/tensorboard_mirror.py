"""See traindyn's per-layer metrics in TensorBoard while the model trains.

Run:  .venv/bin/python examples/tensorboard_mirror.py
Then: tensorboard --logdir tb   (the metrics are in the "traindyn" section)

The run directory stays the record; TensorBoard is a live view of it. Needs
`pip install traindyn[tensorboard]`.
"""

from __future__ import annotations

import shutil
from itertools import groupby

import torch
from torch import nn

import traindyn as td
from traindyn.integrations import TensorBoardMirror
from traindyn.integrations.replay import replay

torch.manual_seed(0)
x = torch.randn(2048, 20)
y = (x[:, :3].sum(dim=1) > 0).long() + (x[:, 3] > 1).long()
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

for path in ("runs/example-tensorboard", "tb/example-mlp", "tb/example-replayed"):
    shutil.rmtree(path, ignore_errors=True)
mirror = TensorBoardMirror("tb/example-mlp")  # tags: traindyn/<metric>/<layer>
tracker = td.Tracker(
    model, probe=(x[:256], y[:256]), run="runs/example-tensorboard", every=5, mirrors=[mirror]
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

print(f"{len(mirror.tags_)} tags written to tb/example-mlp:")
for group, tags in groupby(mirror.tags_, key=lambda tag: tag.rsplit("/", 1)[0]):
    print(f"  {group}/  {', '.join(tag.rsplit('/', 1)[1] for tag in tags)}")

# An old run (or one recorded without a mirror) can be sent to TensorBoard afterwards:
n_steps = replay("runs/example-tensorboard", TensorBoardMirror("tb/example-replayed"))
print(f"replayed {n_steps} steps into tb/example-replayed")
print("view them with:  tensorboard --logdir tb")
