"""Track a model in your own training loop (the two-line integration).

Run:  .venv/bin/python examples/own_training_loop.py
Then: the run directory `runs/example-own-loop` holds parquet tables and a heatmap.
"""

from __future__ import annotations

import shutil

import torch
from torch import nn

import traindyn as td
from traindyn.report.figures import heatmap

torch.manual_seed(0)
x = torch.randn(2048, 20)
y = (x[:, :3].sum(dim=1) > 0).long() + (x[:, 3] > 1).long()
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
probe = (x[:256], y[:256])  # a fixed probe set, measured at every sample

shutil.rmtree("runs/example-own-loop", ignore_errors=True)
with td.Tracker(model, probe=probe, run="runs/example-own-loop", every=5) as tracker:
    for step in range(300):
        idx = torch.randint(0, x.shape[0], (64,))
        logits = model(x[idx])
        loss = nn.functional.cross_entropy(logits, y[idx])
        optimizer.zero_grad()
        loss.backward()
        tracker.step(
            step, loss=loss, outputs=logits, targets=y[idx], lr=3e-3
        )  # step N: after N updates
        optimizer.step()

run = td.open_run("runs/example-own-loop")
pr = run.metrics.query("metric == 'participation_ratio'")
print(pr.pivot(index="step", columns="layer", values="value").iloc[[0, -1]])
print(run.scalars.query("name == 'probe_accuracy'").tail(1))
print("heatmap:", heatmap(run.metrics, "participation_ratio", path=run.path / "pr.png"))
