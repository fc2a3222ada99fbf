"""The cheapest capture: measure the training batch inside your own forward pass.

No probe set and no extra forward pass: hooks are registered only on the steps that are
due, around the forward you already run. Also shows a CNN's conv outputs reduced to
channels, and reading many runs at once with DuckDB.

Run:  .venv/bin/python examples/batch_mode.py
"""

from __future__ import annotations

import shutil

import torch
from torch import nn

import traindyn as td

torch.manual_seed(0)
x = torch.randn(1024, 1, 28)
y = (x[:, 0, :14].mean(dim=1) > x[:, 0, 14:].mean(dim=1)).long()

shutil.rmtree("runs/example-batch", ignore_errors=True)
for lr in (1e-2, 1e-3):
    model = nn.Sequential(
        nn.Conv1d(1, 16, 5),
        nn.ReLU(),
        nn.Conv1d(16, 32, 5),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(32 * 20, 2),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    run = f"runs/example-batch/lr={lr:g}"
    with td.Tracker(model, run=run, mode="batch", every=10, config={"lr": lr}) as tracker:
        for step in range(200):
            idx = torch.randint(0, 1024, (64,))
            with tracker.watch(step):  # hooks exist only inside this block, on due steps
                logits = model(x[idx])
            loss = nn.functional.cross_entropy(logits, y[idx])
            optimizer.zero_grad()
            loss.backward()
            tracker.step(step, loss=loss, outputs=logits, targets=y[idx])
            optimizer.step()

runs = td.open_runs("runs/example-batch")
print(
    runs.query(
        "select run, layer, round(avg(value), 2) as mean_pr from metrics "
        "where metric = 'participation_ratio' group by run, layer order by run, layer"
    )
)
