"""`traindyn validate`: the harness table, verdicts and rule; a FAIL still exits 0."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from traindyn.analysis.synthetic import planted_metrics
from traindyn.cli.main import app
from traindyn.store.run import Run

runner = CliRunner()


def test_validate_prints_scores_verdicts_and_rule(tmp_path: Path) -> None:
    out = tmp_path / "scores.json"
    args = ["validate", "--repeats", "2", "--no-progress", "--json", str(out)]
    result = runner.invoke(app, [*args, "--detector", "default", "--detector", "zscore"])
    assert result.exit_code == 0, result.output
    assert "white noise" in result.output and "Student t" in result.output
    assert "FAIL zscore: white noise:" in result.output  # a finding, not an error
    assert "Rule: PASS when recall >= 0.9" in result.output
    saved = json.loads(out.read_text())
    assert [v["detector"] for v in saved["verdicts"]] == ["default", "zscore"]
    assert saved["verdicts"][1]["verdict"] == "FAIL"
    assert len(saved["scores"]) == 2 * 10


def test_validate_plants_steps_in_a_run(tmp_path: Path) -> None:
    table = planted_metrics(n_samples=120, layers=["a", "b"], noise=0.01, decay=(1.0, 15))
    with Run.create(tmp_path / "run", handle_signals=False) as run:
        run.append_metrics(table)
    args = ["validate", "--repeats", "1", "--no-progress", "--detector", "pelt"]
    result = runner.invoke(app, [*args, "--run", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "16 fixtures" in result.output  # 10 built-in + 2 series x 3 sizes


def test_validate_rejects_an_unknown_detector() -> None:
    result = runner.invoke(app, ["validate", "--detector", "nope", "--no-progress"])
    assert result.exit_code == 2
    assert "'evidence', 'pelt', 'pelt-raw', 'zscore', 'zscore-floor', 'default'" in result.output


def test_validate_help_has_an_example() -> None:
    result = runner.invoke(app, ["validate", "--help"])
    assert result.exit_code == 0 and "Example" in result.output
