"""The built-in grokking suite groks; its shuffled-label control does not (slow: ~5 min).

Run with:  .venv/bin/python -m pytest -m slow tests/experiments/test_grokking.py
"""

from __future__ import annotations

from pathlib import Path

import pytest

import traindyn as td
from traindyn.experiments.executors import run_experiments
from traindyn.experiments.suite import builtin_suite, expand_suite


@pytest.mark.slow
def test_grokking_suite_groks_and_the_control_does_not(tmp_path: Path) -> None:
    specs = expand_suite(builtin_suite("grokking"))
    results = run_experiments(specs, tmp_path, workers=2, show_progress=False)
    assert [r.status for r in results] == ["finished", "finished"]
    real, control = (td.open_run(r.run_dir).scalars for r in results)

    def first(table: object, name: str, at_least: float) -> float:
        rows = table.query(f"name == '{name}' and value >= {at_least}")  # type: ignore[attr-defined]
        return float(rows["step"].min()) if len(rows) else float("inf")

    memorised = first(real, "batch_accuracy", 0.99)
    generalised = first(real, "probe_accuracy", 0.95)
    assert memorised < generalised < float("inf")
    assert generalised > 3 * memorised  # the delay that makes it grokking
    assert first(control, "batch_accuracy", 0.99) < float("inf")  # memorises too
    final_control = control.query("name == 'probe_accuracy'")["value"].iloc[-1]
    assert final_control < 0.1  # chance is 1/53
