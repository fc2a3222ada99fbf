"""Report a suite: the HTML page, PNG figures, two runs side by side, and the live view.

Trains a small slice of the quick suite (MLP and CNN on digits, two seeds, 150 steps,
checkpoints at 0, 50 and 150; about 20 s on 2 cores), compares its checkpoints (CKA),
analyses it, then:

* writes ``report.html``: one self-contained file (scripts and data inside, no network
  to view it) with heatmaps and a metric selector, trajectories with surviving events,
  critical periods and phases beside loss/accuracy/confidence, convergence, jump types,
  temporal distribution, architecture comparison, seed bands and checkpoint CKA;
* writes PNG figures of the same panels for a paper;
* compares the MLP with the CNN (``compare.html`` and the statistics table);
* starts the live view for a moment and reads its run list, as a browser would.

Run:  .venv/bin/python examples/report_a_suite.py
Then: open runs/example-report/report.html, or `traindyn serve runs/example-report`.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

from traindyn.analysis import analyze, compare_all
from traindyn.capture import compare_checkpoints, write_checkpoint_comparison
from traindyn.experiments.executors import run_local
from traindyn.experiments.rebuild import rebuild
from traindyn.experiments.suite import SuiteSpec, expand_suite
from traindyn.report import compare, make_server, report
from traindyn.store import open_run

ROOT = Path("runs/example-report")


def main() -> None:
    suite = SuiteSpec(
        name="example-report",
        description="MLP and CNN on digits, 2 seeds",
        defaults={"train": {"steps": 150}, "checkpoints": {"steps": [0, 50], "final": True}},
        grid={"arch": ["mlp_medium", "cnn_shallow"], "dataset": ["digits"], "seed": [0, 1]},
    )
    shutil.rmtree(ROOT, ignore_errors=True)
    results = run_local(expand_suite(suite), ROOT, workers=2, show_progress=False)
    for result in results:  # what `traindyn analyze DIR --checkpoints` does first
        run = open_run(result.run_dir)
        rebuilt = rebuild(run)  # the run's architecture and exact probe, from run.json
        layers = rebuilt.spec.tracking.layers
        comparison = compare_checkpoints(run, rebuilt.model, rebuilt.probe, layers=layers)
        write_checkpoint_comparison(run, comparison)
    analyze(ROOT)

    page = report(ROOT)  # `traindyn report runs/example-report`
    print(f"{page.path}: {page.n_runs} runs, {page.size_bytes / 1e6:.1f} MB, {page.seconds:.1f} s")
    print(f"{len(page.figures)} PNG figures, e.g. {page.figures[0]}")

    a, b = ROOT / "mlp_medium_digits_s0", ROOT / "cnn_shallow_digits_s0"
    side = compare(a, b)  # `traindyn compare RUN_A RUN_B`
    print(f"{side.path}: {side.size_bytes / 1e6:.1f} MB")
    stats = compare_all(open_run(a).scalars, open_run(b).scalars)
    print(stats.loc[stats["name"] == "probe_accuracy", ["name", "mean_a", "mean_b", "difference"]])

    server = make_server(ROOT, port=0)  # `traindyn serve runs/example-report --port 0`
    server.start()
    try:
        with urllib.request.urlopen(server.url, timeout=10) as response:
            listed = response.read().decode().count('href="/run/')
        print(f"live view at {server.url} lists {listed} runs")
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
