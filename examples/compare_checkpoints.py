"""Compare early, mid and late checkpoints of a run after training.

Trains a small MLP on the bundled digits for 60 steps, saving checkpoints at steps 0,
30 and 59 with the Tracker, then loads each checkpoint strictly and compares them:
linear CKA of every layer between checkpoints and between layers, and hidden-unit
statistics (dead units, sparsity) of the ReLU outputs. The same run is then measured
post hoc per class (mean over classes included), as if it had been trained without
tracking.

Run:  .venv/bin/python examples/compare_checkpoints.py
"""

from __future__ import annotations

import shutil

import pandas as pd
import torch
from torch import nn

import traindyn as td
from traindyn.capture import (
    compare_checkpoints,
    measure_checkpoints,
    write_checkpoint_comparison,
)
from traindyn.experiments import build_model, load_dataset, probe_split

pd.set_option("display.width", 120)
torch.manual_seed(0)
data = load_dataset("digits")
x_probe, y_probe = probe_split(data, per_class=10)
model = build_model("mlp_narrow", input_shape=data.input_shape, n_classes=data.n_classes)
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)

shutil.rmtree("runs/example-compare", ignore_errors=True)
tracker = td.Tracker(
    model,
    probe=(x_probe, y_probe),
    run="runs/example-compare",
    every=10,
    checkpoint_every=[0, 30, 59],  # early / mid / late
)
with tracker:
    for step in range(60):
        idx = torch.randint(0, data.x_train.shape[0], (64,))
        logits = model(data.x_train[idx])
        loss = nn.functional.cross_entropy(logits, data.y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        tracker.step(step, loss=loss)
        optimizer.step()

run = td.open_run("runs/example-compare")
print("checkpoints:", run.checkpoints())

# A fresh model of the same architecture receives each checkpoint in turn.
fresh = build_model("mlp_narrow", input_shape=data.input_shape, n_classes=data.n_classes)
comparison = compare_checkpoints(run, fresh, x_probe)
across = comparison.across_steps.query("step_a < step_b")
print("\nlinear CKA of each layer between checkpoints:")
print(across.pivot(index="layer", columns=["step_a", "step_b"], values="cka").round(3))
print("\nlinear CKA between layers at the last checkpoint:")
last = comparison.across_layers.query(f"step == {comparison.steps[-1]}")
print(last.pivot(index="layer_a", columns="layer_b", values="cka").round(3))
print("\nhidden units (ReLU outputs):")
print(comparison.hidden_units.round(3).to_string(index=False))

per_class = measure_checkpoints(
    run, fresh, (x_probe, y_probe), metrics=["participation_ratio"], per_class=True
)
means = per_class.query("`class` == 'mean'")
print("\nparticipation ratio, mean over classes:")
print(means.pivot(index="step", columns="layer", values="value").round(2))

print("\nwritten:", *(p.name for p in write_checkpoint_comparison(run, comparison)))
