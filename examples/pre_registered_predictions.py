"""Write predictions first, lock them into the run, judge them after training.

Seed 004's question, "does match rate rise while loss stays flat?", asked of a run
before it exists, with milestones at 15, 30, 50 and 100% of training recorded for you.

Run:  .venv/bin/python examples/pre_registered_predictions.py
Then: traindyn predictions check runs/example-predictions
      traindyn report runs/example-predictions   (the verdicts and milestones are in it)
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

import traindyn as td
from traindyn.analysis import predictions

PREDICTIONS = """\
predictions:
  - id: match-rises
    claim: Match rate rises by at least 20% in the first 30% of training
    target: {scalar: probe_accuracy}
    window: {fraction: [0, 0.3]}
    statistic: relative_change
    expect: {op: ">=", value: 0.2}
    partial: {op: ">", value: 0}
  - id: loss-flat
    claim: while the probe loss stays within 5% of its start (seed 004, Hypothesis 2)
    target: {scalar: probe_loss}
    window: {fraction: [0, 0.3]}
    statistic: relative_change
    expect: {between: [-0.05, 0.05]}
  - id: final-match
    claim: Final match rate is 85-100%
    target: {scalar: probe_accuracy}
    statistic: final
    expect: {between: [0.85, 1.0]}
  - id: right-answers-confident
    claim: At the end, right answers get more probability than wrong ones, by >= 0.3
    target: {scalar: probe_confidence_correct}
    versus: {scalar: probe_confidence_incorrect}
    window: {fraction: [1, 1]}
    statistic: difference
    of: final
    expect: {op: ">=", value: 0.3}
  - id: last-layer-compresses
    claim: The last hidden layer's participation ratio drops by more than 10%
    target: {layer: "2", metric: participation_ratio}
    statistic: relative_change
    expect: {op: "<", value: -0.1}
"""

RUN = Path("runs/example-predictions")
shutil.rmtree(RUN, ignore_errors=True)
Path("predictions.yaml").write_text(PREDICTIONS)

torch.manual_seed(0)
x = torch.randn(2048, 20)
y = (x[:, :3].sum(dim=1) > 0).long() + (x[:, 3] > 1).long()
model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 3))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
steps = 300

# predictions= locks the file (SHA-256, text, time) into run.json before the first row;
# total_steps= makes the tracker sample the milestones whatever `every` says.
tracker = td.Tracker(
    model, probe=(x[:256], y[:256]), run=RUN, every=10, total_steps=steps,
    predictions="predictions.yaml",
)  # fmt: skip
with tracker:
    for step in range(steps + 1):  # step N is the state after N updates
        idx = torch.randint(256, x.shape[0], (64,))
        logits = model(x[idx])
        loss = nn.functional.cross_entropy(logits, y[idx])
        tracker.step(step, loss=loss, outputs=logits, targets=y[idx])
        if step < steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

run = td.open_run(RUN)
lock = run.manifest.predictions
assert lock is not None
print(f"locked {lock.locked_at:%H:%M:%S} (sha256 {lock.sha256[:12]}), late: {lock.late}")
print(td.analysis.milestones(run).round(3).to_string(index=False))

result = predictions.check(RUN)  # also writes analysis/predictions.parquet for the report
print(result.table[["id", "verdict", "value"]].to_string(index=False))
for detail in result.table["detail"]:
    print(" ", detail)
