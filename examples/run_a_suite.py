"""Run a suite file from Python: the same thing `traindyn run SUITE.yaml` does.

Run:  .venv/bin/python examples/run_a_suite.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import traindyn as td
from traindyn.analysis import summarize_suite
from traindyn.experiments.executors import run_local
from traindyn.experiments.suite import expand_suite, load_suite


def main() -> None:
    suite = load_suite(Path(__file__).parent / "suites" / "pedagogy.yaml")
    experiments = expand_suite(suite)
    print([e.run_name for e in experiments])
    shutil.rmtree("runs/example-suite", ignore_errors=True)
    results = run_local(experiments, "runs/example-suite", workers=2, show_progress=False)
    print([(r.name, r.status) for r in results])
    summary = summarize_suite(td.open_runs("runs/example-suite"))
    columns = ["run", "last_step", "final_probe_accuracy", "best", "best_step", "stopped_early"]
    print(summary.experiments[columns].to_string(index=False))
    print(summary.groups[["group", "n", "best_mean", "best_std"]].to_string(index=False))


if __name__ == "__main__":  # the process pool starts workers by importing this file
    main()
