from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from traindyn.cli.main import app
from traindyn.experiments import build_model
from traindyn.store.checkpoints import save_checkpoint

runner = CliRunner()


SMOKE_PREDICTIONS = """\
predictions:
  - id: match-rises
    claim: every run's probe match rate at least doubles over the 40 steps
    target: {scalar: probe_accuracy}
    statistic: relative_change
    across: all
    expect: {op: ">=", value: 1.0}
  - id: no-such-layer
    claim: a layer that no model has
    target: {layer: nowhere, metric: participation_ratio}
    statistic: final
    expect: {op: ">", value: 0}
"""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("cli")
    out = base / "smoke"
    predictions = base / "predictions.yaml"
    predictions.write_text(SMOKE_PREDICTIONS)
    result = runner.invoke(
        app,
        [
            *("run", "smoke", "--out", str(out), "--no-progress", "--workers", "1"),
            *("--predictions", str(predictions)),
        ],
    )
    return (
        out,
        result.output if result.exit_code == 0 else f"exit {result.exit_code}: {result.output}",
    )


def test_run_smoke_prints_summary_and_writes_heatmaps(smoke: tuple[Path, str]) -> None:
    out, output = smoke
    assert "exit" not in output[:5], output
    for name in ("mlp_medium_digits_s0", "cnn_shallow_digits_s0", "transformer_shallow_digits_s0"):
        assert name in output
        assert (out / name / "figures" / "heatmap-participation_ratio.png").stat().st_size > 1000
    assert "finished" in output and "Report:" in output
    assert (out / "report.html").stat().st_size > 1_000_000  # plotly.js is inlined


def test_run_locks_predictions_before_training_and_judges_them(
    smoke: tuple[Path, str],
) -> None:
    import pandas as pd

    from traindyn.store import open_run

    out, output = smoke
    assert "locked (sha256" in output
    for name in ("mlp_medium_digits_s0", "cnn_shallow_digits_s0", "transformer_shallow_digits_s0"):
        manifest = open_run(out / name).manifest
        assert manifest.predictions is not None
        assert not manifest.predictions.late
        assert manifest.predictions.locked_at <= manifest.created_at
    table = pd.read_parquet(out / "analysis" / "predictions.parquet").set_index("id")
    assert table.loc["no-such-layer", "verdict"] == "UNTESTABLE"
    assert table.loc["match-rises", "n_series"] == 3
    accuracy = [
        open_run(out / n).scalars.query("name == 'probe_accuracy'").sort_values("step")["value"]
        for n in ("mlp_medium_digits_s0", "cnn_shallow_digits_s0", "transformer_shallow_digits_s0")
    ]
    doubled = [a.iloc[-1] >= 2 * a.iloc[0] for a in accuracy]
    expected = (
        "SUPPORTED" if all(doubled) else "PARTIALLY SUPPORTED" if any(doubled) else "NOT SUPPORTED"
    )
    assert table.loc["match-rises", "verdict"] == expected
    assert "Predictions:" in output and "UNTESTABLE" in output
    assert "Pre-registered predictions" in (out / "report.html").read_text()


def test_predictions_lock_and_check_from_the_command_line(tmp_path: Path) -> None:
    from traindyn.store import Run, open_run

    predictions = tmp_path / "p.yaml"
    predictions.write_text(
        "predictions:\n- id: up\n  claim: acc rises\n  target: {scalar: acc}\n"
        "  statistic: change\n  expect: {op: '>', value: 0.5}\n"
    )
    run_dir = tmp_path / "run"
    locked = runner.invoke(app, ["predictions", "lock", str(predictions), "--run", str(run_dir)])
    assert locked.exit_code == 0, locked.output
    assert "Pending lock" in locked.output
    run = Run.create(run_dir, handle_signals=False)
    run.append_scalars(0, {"acc": 0.1})
    run.append_scalars(10, {"acc": 0.9})
    run.finish()
    checked = runner.invoke(app, ["predictions", "check", str(run_dir)])
    assert checked.exit_code == 0, checked.output
    text = " ".join(checked.output.split())
    assert "SUPPORTED" in text and "before any data" in text
    assert "1 supported" in text

    again = runner.invoke(app, ["predictions", "lock", str(predictions), "--run", str(run_dir)])
    assert again.exit_code == 0  # the same file: already locked, nothing changes
    predictions.write_text(predictions.read_text().replace("0.5", "0.9"))
    edited = runner.invoke(app, ["predictions", "check", str(run_dir)])
    text = " ".join(edited.output.split())
    assert "EDITED AFTER LOCK" in text and "up changed" in text
    refused = runner.invoke(app, ["predictions", "lock", str(predictions), "--run", str(run_dir)])
    assert refused.exit_code == 2
    assert "never replaced" in " ".join(refused.output.split())
    assert open_run(run_dir).manifest.predictions is not None


def test_ls_lists_the_runs(smoke: tuple[Path, str]) -> None:
    result = runner.invoke(app, ["ls", str(smoke[0])])
    assert result.exit_code == 0
    assert result.output.count("finished") == 3


def test_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", "nosuch", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "suite must be one of" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["ls", str(tmp_path / "absent")])
    assert missing.exit_code == 2
    assert "absent" in missing.output


def test_checkpoint_inspect_and_diff(tmp_path: Path) -> None:
    torch.manual_seed(0)
    mlp = build_model("mlp_medium", input_shape=(1, 8, 8), n_classes=10)
    wide = build_model("mlp_wide", input_shape=(1, 8, 8), n_classes=10)
    a = save_checkpoint(mlp, tmp_path / "a", 10)
    b = save_checkpoint(wide, tmp_path / "b", 10)
    shown = runner.invoke(app, ["checkpoint", "inspect", str(a)])
    assert shown.exit_code == 0
    assert "layers.0.linear.weight" in shown.output
    same = runner.invoke(app, ["checkpoint", "diff", str(a), "--model", "mlp_medium"])
    assert same.exit_code == 0, same.output
    differ = runner.invoke(app, ["checkpoint", "diff", str(a), str(b)])
    assert differ.exit_code == 1
    assert "layers.0.linear.weight" in differ.output and "hidden" in differ.output
    both = runner.invoke(app, ["checkpoint", "diff", str(a), str(b), "--model", "mlp_medium"])
    assert both.exit_code == 2
    gone = runner.invoke(app, ["checkpoint", "inspect", str(tmp_path / "nope.safetensors")])
    assert gone.exit_code == 2


@pytest.mark.parametrize("command", [["run"], ["ls"], ["suites"], ["checkpoint", "diff"]])
def test_every_command_has_help_with_an_example(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "traindyn"  # the venv's console script
    assert exe.exists()
    out = subprocess.run([str(exe), "suites"], capture_output=True, text=True, check=True)
    assert "quick" in out.stdout and "smoke" in out.stdout


def test_suite_summary_defaults_to_probe_accuracy(smoke: tuple[Path, str]) -> None:
    import traindyn as td
    from traindyn.analysis import summarize_suite

    summary = summarize_suite(td.open_runs(smoke[0]))
    assert (summary.experiments["monitor"] == "probe_accuracy").all()
    for row in summary.experiments.to_dict("records"):
        acc = td.open_run(smoke[0] / row["run"]).scalars.query("name == 'probe_accuracy'")
        assert row["best"] == acc["value"].max()
        assert row["initial"] == acc["value"].iloc[0]


def test_analyze_a_directory_of_runs_is_idempotent(smoke: tuple[Path, str]) -> None:
    out, _ = smoke
    first = runner.invoke(app, ["analyze", str(out), "--no-progress"])
    assert first.exit_code == 0, first.output
    assert "runs" in first.output and "Share of all change" in first.output
    written = sorted(p.relative_to(out) for p in out.rglob("analysis/*.parquet"))
    assert Path("analysis/overview.parquet") in written
    assert Path("mlp_medium_digits_s0/analysis/events.parquet") in written
    before = {p: (out / p).read_bytes() for p in written}
    second = runner.invoke(app, ["analyze", str(out), "--no-progress"])
    assert second.exit_code == 0 and second.output == first.output
    assert {p: (out / p).read_bytes() for p in written} == before


def test_analyze_one_run_prints_its_tables(smoke: tuple[Path, str]) -> None:
    run_dir = smoke[0] / "mlp_medium_digits_s0"
    result = runner.invoke(app, ["analyze", str(run_dir), "--detector", "zscore", "--no-write"])
    assert result.exit_code == 0, result.output
    for text in ("candidate events", "surviving", "Convergence order", "Critical"):
        assert text in result.output


def test_analyze_bad_input_is_one_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["analyze", str(tmp_path), "--detector", "cusum"])
    assert result.exit_code == 2
    assert "--detector must be one of 'scan', 'pelt', 'zscore'; got 'cusum'" in result.output
    empty = runner.invoke(app, ["analyze", str(tmp_path)])
    assert empty.exit_code == 2 and "holds no run" in empty.output


def test_analyze_probe_noise_and_checkpoints(smoke: tuple[Path, str], tmp_path: Path) -> None:
    import shutil

    import numpy as np
    import pandas as pd

    import traindyn as td
    from traindyn.capture import probe_noise
    from traindyn.experiments import rebuild
    from traindyn.store import Run

    # The smoke suite saves only its final checkpoint (step 40). Give one run its step-0
    # checkpoint too: rebuild() draws exactly the trainer's initial weights.
    out = tmp_path / "smoke"
    shutil.copytree(smoke[0], out)
    mlp = out / "mlp_medium_digits_s0"
    initial = rebuild(mlp).model
    save_checkpoint(initial, mlp, 0, config=initial.config)
    mine = Run.create(out / "mine", config={"lr": 0.1}, handle_signals=False)
    mine.append_metrics([(s, "fc", "participation_ratio", 1.0 + s / 100) for s in range(0, 100, 5)])
    save_checkpoint(torch.nn.Linear(3, 2), mine, 10)
    mine.finish()

    result = runner.invoke(
        app, ["analyze", str(out), "--probe-noise", "--checkpoints", "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    cka_line = next(line for line in lines if line.startswith("mlp_medium_digits_s0: CKA"))
    assert "step 0 vs 40: layers.0 " in cka_line
    assert any(
        line.startswith("skipped mine:") and "not trained by a suite" in line for line in lines
    )

    for name in ("mlp_medium_digits_s0", "cnn_shallow_digits_s0", "transformer_shallow_digits_s0"):
        run = td.open_run(out / name)
        table = run.read_analysis("probe_noise")
        assert isinstance(table, pd.DataFrame)
        assert list(table.columns) == ["step", "layer", "metric", "noise"]
        tracker = run.manifest.config["tracker"]
        assert sorted(set(table["layer"])) == sorted(tracker["layers"])
        assert sorted(set(table["metric"])) == sorted(tracker["metrics"])
        assert sorted(set(table["step"])) == run.checkpoints()
        pr = table[table["metric"] == "participation_ratio"]["noise"]
        assert pr.notna().all() and (pr > 0).all()
        summary = run.read_analysis("summary")
        assert isinstance(summary, dict) and summary["probe_noise"] is True
        # Every event carries its series' median probe noise from the table.
        events = run.read_analysis("events")
        assert isinstance(events, pd.DataFrame) and len(events)
        median = table.groupby(["layer", "metric"])["noise"].median()
        for row in events.itertuples():
            assert row.probe_noise == pytest.approx(median[(row.layer, row.metric)], rel=1e-12)
            assert row.noise_floor >= row.probe_noise

    # The table written is the public function's output on the rebuilt run: reproducible.
    run = td.open_run(out / "transformer_shallow_digits_s0")
    rebuilt = rebuild(run)
    again = probe_noise(run, rebuilt.model, rebuilt.probe, metrics=rebuilt.spec.tracking.metrics)
    written = run.read_analysis("probe_noise")
    assert isinstance(written, pd.DataFrame)
    np.testing.assert_allclose(again["noise"].to_numpy(), written["noise"].to_numpy(), rtol=1e-12)

    # Only the run with two checkpoints is compared: CKA of step 0 vs 40 below 1.
    across = td.open_run(mlp).read_analysis("checkpoint_comparison_across_steps")
    assert isinstance(across, pd.DataFrame)
    assert sorted(set(across["step_a"])) == [0, 40]
    diag = across[across["step_a"] == across["step_b"]]["cka"]
    assert diag.to_numpy() == pytest.approx(1.0)
    off = across[(across["step_a"] == 0) & (across["step_b"] == 40)]
    assert off["layer"].tolist() == ["layers.0", "layers.1", "layers.2"]
    assert off["cka"].between(0.05, 0.999).all()
    assert f"layers.0 {off['cka'].iloc[0]:.3g}" in cka_line
    assert not (out / "cnn_shallow_digits_s0" / "analysis" / "checkpoint_comparison.json").exists()
    mine_summary = td.open_run(out / "mine").read_analysis("summary")
    assert isinstance(mine_summary, dict) and mine_summary["probe_noise"] is False

    refused = runner.invoke(app, ["analyze", str(out), "--probe-noise", "--no-write"])
    assert refused.exit_code == 2 and "drop --no-write" in refused.output


def test_analyze_help_describes_probe_noise() -> None:
    result = runner.invoke(app, ["analyze", "--help"])
    assert result.exit_code == 0
    assert "--probe-noise" in result.output and "--checkpoints" in result.output
    assert "probe_noise.parquet" in result.output


def test_a_directory_named_like_a_suite_is_not_a_suite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "quick").mkdir()  # e.g. runs written with --out quick
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["run", "quick", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "quick: 12 experiments" in result.output
