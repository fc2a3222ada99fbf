"""Null-control bands: is a layer's trajectory different from chance?

Trains an MLP on digits and its label-shuffled twin (about 5 s), then measures the same
metrics on the same probe for two more controls at the run's checkpoints: the
architecture freshly initialised with 5 seeds, and a Gaussian cloud with each
representation's own mean, covariance and n. Prints, for the last hidden layer, each
value next to each control's band and the "different" column.

Expect participation ratio to equal its Gaussian band (a spectral metric is a function
of the covariance, which the Gaussian keeps) while TwoNN, which sees the shape of the
cloud, can leave it; and the trained run to leave the random-init and shuffled bands.

Run:  .venv/bin/python examples/null_controls.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

import traindyn as td
from traindyn.analysis.chance import (
    chance_bands,
    different_from_chance,
    shuffled_bands,
    shuffled_controls,
)
from traindyn.capture.controls import null_controls
from traindyn.experiments import rebuild
from traindyn.experiments.suite import ExperimentSpec
from traindyn.experiments.trainer import train

ROOT = Path("runs/example-controls")
METRICS = ["participation_ratio", "twonn_dimension"]


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    spec = ExperimentSpec(
        arch="mlp_medium",
        dataset="digits",
        train={"steps": 300, "lr": 3e-3, "batch_size": 128},
        tracking={"every": 25, "probe_per_class": 20, "metrics": METRICS},
        checkpoints={"steps": [0, 100, 300]},
    )
    for experiment in (spec, spec.shuffled_control()):
        train(experiment, ROOT / experiment.run_name)
    run_dir = ROOT / spec.run_name

    rebuilt = rebuild(run_dir)  # the run's architecture and its exact probe
    controls = null_controls(
        run_dir,
        rebuilt.model,
        rebuilt.probe,
        init=rebuilt.initial_model,  # draw d: the initial weights of a run with seed d
        layers=spec.tracking.layers,
        metrics=METRICS,
        n_draws=5,
    )
    twins = shuffled_controls(run_dir, ROOT)
    bands = pd.concat(
        [chance_bands(controls), shuffled_bands([t.metrics for t in twins])], ignore_index=True
    )
    run = td.open_run(run_dir)
    at_checkpoints = run.metrics[run.metrics["step"].isin(run.checkpoints())]
    table = different_from_chance(at_checkpoints, bands)

    last = run.manifest.config["tracker"]["layers"][-2]  # the last hidden layer
    shown = table[table["layer"] == last].drop(columns=["layer", "reason"])
    print(f"{spec.run_name}, layer {last!r}, against {len(twins)} shuffled twin(s):")
    print(shown.round(3).to_string(index=False))
    counts = table.groupby(["control", "metric"])["different"].mean().unstack()
    print("\nshare of (layer, step) values different from chance:")
    print(counts.round(2).to_string())


if __name__ == "__main__":
    main()
