"""Planted runs shared by the report tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from traindyn.analysis.synthetic import planted_metrics
from traindyn.store import Run

LAYERS = ["l0", "l1", "l2"]
METRICS = ["participation_ratio", "stable_rank"]
JUMP_SAMPLE = 120  # step 600 at every=5


def planted_run(
    path: Path, *, seed: int, arch: str = "mlp", n_samples: int = 400, finish: bool = True
) -> Run:
    """A finished run of 400 samples (steps 0..1995, every 5) with a planted step on l1."""
    run = Run.create(
        path,
        config={
            "total_steps": 5 * (n_samples - 1),
            "experiment": {"arch": arch, "dataset": "synthetic", "seed": seed, "phases": []},
            "tracker": {"layers": LAYERS, "metrics": METRICS},
        },
        probe={"dataset": "synthetic", "n": 200},
    )
    table = planted_metrics(
        n_samples=n_samples,
        layers=LAYERS,
        metrics=METRICS,
        jumps={"l1": {min(JUMP_SAMPLE, n_samples // 2): -3.0}},
        decay=(1.0, 15.0),
        noise=0.01,
        seed=seed,
    )
    run.append_metrics(table[["step", "layer", "metric", "value"]].itertuples(index=False))
    for step in range(0, 5 * n_samples, 5):
        run.append_scalars(
            step,
            {
                "loss": 2.0 * np.exp(-step / 300) + 0.1,
                "probe_accuracy": 1 - 0.9 * np.exp(-step / 300),
                "probe_confidence": 1 - 0.8 * np.exp(-step / 400),
            },
        )
    if finish:
        run.finish()
    else:
        run.flush()
    return run


def with_chance_and_predictions(run: Run) -> None:
    """Null-control bands and a predictions table, as analyze --controls / issue 7 write."""
    steps = np.arange(0, 2000, 5)
    band = pd.DataFrame(
        {
            "step": np.tile(steps, 2),
            "layer": np.repeat(["l0", "l1"], len(steps)),
            "metric": "participation_ratio",
            "control": "random_init",
            "lo": 0.5,
            "hi": np.tile(1.0 + steps / 2000, 2),
            "different": np.tile(steps > 1000, 2),
        }
    )
    run.write_analysis("chance", band)
    run.write_analysis(
        "predictions",
        pd.DataFrame(
            {
                "id": ["p1"],
                "claim": ["PR of l1 drops by > 10%"],
                "verdict": ["SUPPORTED"],
                "value": [-0.42],
            }
        ),
    )
