"""Analyse a phased suite: what `traindyn analyze DIR` does, then seed 000's tables by hand.

Trains the pedagogy suite (phased training vs a phase-1-only ablation, two seeds each,
about 20 s on 2 cores), analyses every run, and prints:

* each run's events above the noise floor and the share of change early/mid/late;
* per-phase change of the last layer's participation ratio, in seed 000's words
  ("16.13 -> 9.61 (40.4% drop)");
* the full schedule vs the ablation over seeds (difference, effect size, bootstrap CI).

Run:  .venv/bin/python examples/analyze_a_suite.py
"""

from __future__ import annotations

import shutil
from pathlib import Path

import traindyn as td
from traindyn.analysis import analyze, compare_runs, format_change, phases_of
from traindyn.experiments.executors import run_local
from traindyn.experiments.suite import expand_suite, load_suite

ROOT = Path("runs/example-analysis")


def main() -> None:
    suite = load_suite(Path(__file__).parent / "suites" / "pedagogy.yaml")
    shutil.rmtree(ROOT, ignore_errors=True)
    run_local(expand_suite(suite), ROOT, workers=2, show_progress=False)

    result = analyze(ROOT)  # writes RUN/analysis/*.parquet and ROOT/analysis/*
    print(result.overview[["run", "events", "events_above_floor", "share_early"]].to_string())
    print("pooled share of change:")
    print(result.temporal[result.temporal["metric"] == "*"].to_string(index=False))

    run = td.open_run(ROOT / "full_s0")
    analysis = next(r for r in result.runs if r.run_id == "full_s0")
    last_layer = run.manifest.config["tracker"]["layers"][-1]
    rows = analysis.phases.query(
        "table == 'metrics' and metric == 'participation_ratio' and layer == @last_layer"
    )
    print(
        f"\nfull_s0, {last_layer} participation ratio by phase {[p.name for p in phases_of(run)]}:"
    )
    for row in rows.itertuples():
        print(f"  {row.phase:16s} {format_change(row.first, row.last)}")

    full = [td.open_run(ROOT / f"full_s{s}").scalars for s in (0, 1)]
    ablation = [td.open_run(ROOT / f"phase1_only_s{s}").scalars for s in (0, 1)]
    comparison = compare_runs(full, ablation, name="probe_accuracy", statistic="max")
    print("\nbest probe accuracy, full vs phase-1 only:", comparison.text())


if __name__ == "__main__":  # the process pool starts workers by importing this file
    main()
