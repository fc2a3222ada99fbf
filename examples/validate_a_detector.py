"""Is a "transition" real? Score detectors on known answers, then judge events of a run.

1. The harness (`traindyn validate` does the same) scores the built-in default, seed
   001's z-score rule and a detector of your own on fixtures with known truth: steps,
   a slope change, white, AR(1) and heavy-tailed noise, smooth drifts.
2. The evidence behind each event of a synthetic run with one planted step: its shape,
   its p-values against surrogate nulls fitted to the same trajectory, the
   Benjamini-Hochberg q-value, and whether it survives.
3. Critical-period coordination beside what independent layers give by chance.

Run:  .venv/bin/python examples/validate_a_detector.py   (about 45 s on 2 cores)
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

import traindyn as td
from traindyn.analysis import (
    builtin_fixtures,
    coordination_null,
    critical_periods,
    detect_jumps,
    evaluate,
    event_evidence,
    get_detector,
    planted_metrics,
    series_of,
)


def largest_difference(values: NDArray[np.float64]) -> list[int]:
    """A naive user detector: the single biggest first difference, always."""
    return [int(np.argmax(np.abs(np.diff(values)))) + 1]


def main() -> None:
    fixtures = builtin_fixtures(n_repeats=5)
    result = evaluate(
        {
            "default": get_detector("default"),
            "zscore": get_detector("zscore"),
            "mine": largest_difference,
        },
        fixtures,
    )
    table = result.scores.pivot_table(
        index="family", columns="detector", values=["recall", "false_positives_per_1000"]
    )
    print(table.round(2).to_string())
    for verdict in result.verdicts:
        print(f"{verdict.detector}: {'PASS' if verdict.passed else 'FAIL'}", *verdict.reasons[:3])

    # A run of three layers, one step planted in layer1 at sample 200, on a fast decay.
    metrics = planted_metrics(
        n_samples=400,
        layers=["layer0", "layer1", "layer2"],
        jumps={"layer1": {200: -0.3}},
        decay=(2.0, 20.0),
        noise=0.02,
    )
    series = series_of(metrics)
    events = event_evidence(series, detect_jumps(series, total_steps=2000, detector="scan"))
    columns = ["layer", "step", "shape", "delta", "snr", "p_ar1", "q_value", "survives"]
    print(f"\n{len(events)} candidates, {int(events['survives'].sum())} surviving:")
    print(events.sort_values("q_value")[columns].head(6).to_string(index=False))

    cp = critical_periods(series)
    null = coordination_null(series, n_shuffles=500)
    row = null.iloc[0]
    print(
        f"\nmean coordination {row['mean_coordination']:.2f}; chance gives "
        f"{row['mean_coordination_null']:.2f} (p = {row['mean_coordination_p']:.3f}) "
        f"over {int(cp.summary['n_layers'].iloc[0])} layers"
    )
    print(f"traindyn {td.__version__}")


if __name__ == "__main__":
    main()
