"""Report payloads, pages and the report/compare commands on planted runs (no browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tests.report.planted import (
    JUMP_SAMPLE,
    LAYERS,
    METRICS,
    planted_run,
    with_chance_and_predictions,
)
from typer.testing import CliRunner

from traindyn.analysis import analyze, compare_all
from traindyn.cli.main import app
from traindyn.exceptions import ConfigError, RunNotFound
from traindyn.report.build import compare, report
from traindyn.report.data import _round, directory_data, run_data, run_token, stride
from traindyn.store import Run


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seeds of one planted experiment, analysed like a suite."""
    root = tmp_path_factory.mktemp("suite")
    for seed in (0, 1):
        planted_run(root / f"mlp_synthetic_s{seed}", seed=seed)
    analyze(root)
    return root


def _payload(text: str) -> dict:
    match = re.search(r'<script id="td-data" type="application/json">(.*?)</script>', text, re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_rounding_keeps_five_significant_digits_and_maps_non_finite_to_none() -> None:
    values = _round(np.array([123456.0, 0.000123456, -2.5, 0.0, np.nan, np.inf, 1e-300]))
    assert values == [123460.0, 0.00012346, -2.5, 0.0, None, None, 1e-300]


def test_stride_rule_and_its_limits() -> None:
    assert [stride(n, 250) for n in (1, 250, 251, 401, 1000)] == [1, 1, 2, 2, 4]
    with pytest.raises(ConfigError, match="max_points must be at least 2"):
        stride(10, 1)


def test_run_payload_is_downsampled_measured_values_with_first_and_last(suite: Path) -> None:
    run = Run(suite / "mlp_synthetic_s0")
    data = run_data(run, max_points=150)
    pr = data["metrics"]["participation_ratio"]
    assert data["downsample"] == {"n_samples": 400, "stride": 3, "max_points": 150}
    steps = np.arange(0, 2000, 5)
    expected = steps[::3]  # 399 is a multiple of 3: the last sample is on the stride
    assert expected[-1] == steps[-1]
    assert pr["steps"] == expected.tolist()
    assert pr["layers"] == LAYERS
    # Drawn values are the measured values at those steps (to 5 significant digits).
    table = run.metrics
    rows = table[(table["metric"] == "participation_ratio") & (table["layer"] == "l1")]
    truth = rows.set_index("step").loc[expected, "value"].to_numpy()
    np.testing.assert_allclose(pr["z"][1], truth, rtol=1e-4)
    assert set(data["scalars"]) == {"loss", "probe_accuracy", "probe_confidence"}


def test_run_payload_carries_the_planted_event_and_analysis_panels(suite: Path) -> None:
    data = run_data(suite / "mlp_synthetic_s0")
    planted = [e for e in data["events"] if e["step"] == 5 * JUMP_SAMPLE]
    assert {e["layer"] for e in planted} == {"l1"}
    assert {e["metric"] for e in planted} == set(METRICS)
    assert all(e["shape"] == "step" for e in planted)
    assert data["analysed"] is True
    assert set(data["convergence"]) == set(METRICS)
    temporal = data["temporal"]["participation_ratio"]
    assert temporal["windows"] == ["early", "mid", "late"]
    np.testing.assert_allclose(
        np.nansum(np.array(temporal["share"], dtype=float), axis=1), 1.0, rtol=1e-4
    )
    assert [p["name"] for p in data["phases"]] == ["early", "mid", "late"]
    critical = pd.read_parquet(suite / "mlp_synthetic_s0" / "analysis" / "critical_periods.parquet")
    assert data["critical"]["start"] == critical["start"].tolist()
    assert data["critical"]["layer"] == critical["layer"].tolist()


def test_token_changes_when_rows_land(tmp_path: Path) -> None:
    run = planted_run(tmp_path / "r", seed=0, n_samples=20, finish=False)
    before = run_token(run.path)
    assert run_token(run.path) == before
    run.append_metrics([(100, "l0", "participation_ratio", 1.0)])
    run.flush()
    assert run_token(run.path) != before
    run.finish()


def test_seed_bands_are_mean_min_max_over_the_seeds(suite: Path) -> None:
    runs = [Run(p) for p in sorted(suite.glob("mlp_*"))]
    data = directory_data(suite, runs)
    assert data["groups"] == {
        "mlp_synthetic_s0": "mlp_synthetic",
        "mlp_synthetic_s1": "mlp_synthetic",
    }
    band = data["bands"]["mlp_synthetic"]["metrics"]["stable_rank"]
    assert band["n"] == 2
    step = band["steps"][10]
    values = []
    for r in runs:
        m = r.metrics
        mask = (m["metric"] == "stable_rank") & (m["layer"] == "l2") & (m["step"] == step)
        values.append(m.loc[mask, "value"].item())
    i = band["layers"].index("l2")
    assert band["mean"][i][10] == pytest.approx(np.mean(values), rel=1e-4)
    assert band["min"][i][10] == pytest.approx(min(values), rel=1e-4)
    assert band["max"][i][10] == pytest.approx(max(values), rel=1e-4)


def test_suite_report_is_self_contained_and_embeds_every_run(suite: Path, tmp_path: Path) -> None:
    result = report(suite, out=tmp_path / "report.html", figures=False)
    text = result.path.read_text()
    assert result.n_runs == 2 and result.size_bytes == len(text.encode())
    # Nothing is fetched at view time: no external script, stylesheet, image or font.
    assert not re.search(r"<(script|link|img)[^>]+(src|href)=", text)
    payload = _payload(text)
    assert payload["kind"] == "directory"
    assert payload["order"] == ["mlp_synthetic_s0", "mlp_synthetic_s1"]
    assert payload["runs"]["mlp_synthetic_s1"] == json.loads(
        json.dumps(run_data(suite / "mlp_synthetic_s1"))
    ) | {"token": payload["runs"]["mlp_synthetic_s1"]["token"]}
    for kind in ("heatmap", "trajectories", "by-arch", "pooled-temporal", "bands", "temporal"):
        assert f'data-plot="{kind}"' in text
    assert "every k-th sample" in text  # the downsampling rule is stated
    assert text.count('class="td-scope td-run-block"') == 2


def test_run_report_analyses_an_unanalysed_run_first(tmp_path: Path) -> None:
    run = planted_run(tmp_path / "fresh", seed=3, n_samples=120)
    skipped = report(run.path, figures=False, analyse=False)
    assert skipped.analysed == ()
    assert "has no analysis yet" in skipped.path.read_text()
    done = report(run.path, figures=False)
    assert done.analysed == ("fresh",)
    assert done.path == run.path / "report.html"
    assert "has no analysis yet" not in done.path.read_text()
    assert _payload(done.path.read_text())["analysed"] is True


def test_names_are_escaped_in_tables_and_payload(tmp_path: Path) -> None:
    with Run.create(tmp_path / "evil") as run:
        run.append_metrics(
            [
                (s, "<script>alert(1)</script>", "participation_ratio", 1.0 + s % 3)
                for s in range(10)
            ]
        )
    text = report(run.path, figures=False, analyse=False).path.read_text()
    assert "<script>alert(1)" not in text
    assert _payload(text)["metrics"]["participation_ratio"]["layers"] == [
        "<script>alert(1)</script>"
    ]


def test_compare_page_states_compare_all_statistics(suite: Path, tmp_path: Path) -> None:
    a, b = Run(suite / "mlp_synthetic_s0"), Run(suite / "mlp_synthetic_s1")
    result = compare(a.path, b.path, out=tmp_path / "c.html")
    text = result.path.read_text()
    payload = _payload(text)
    assert payload["kind"] == "compare" and payload["metrics"] == METRICS
    row = compare_all(a.metrics, b.metrics).iloc[0]
    assert f"{row['mean_a']:.2f}" in text and f"{row['mean_b']:.2f}" in text
    assert "Per phase" in text and "%" in text  # format_change rows: "x -> y (p% drop)"


def test_missing_paths_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(RunNotFound, match="does not exist"):
        report(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(RunNotFound, match="holds no run"):
        report(tmp_path / "empty")
    with pytest.raises(RunNotFound, match="not a run directory"):
        compare(tmp_path / "empty", tmp_path / "empty")


def test_cli_report_and_compare(suite: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(
        app, ["report", str(suite), "--no-figures", "--out", str(tmp_path / "r.html")]
    )
    assert out.exit_code == 0, out.output
    assert "2 run(s)" in out.output and (tmp_path / "r.html").is_file()
    cmp = runner.invoke(
        app,
        [
            "compare",
            str(suite / "mlp_synthetic_s0"),
            str(suite / "mlp_synthetic_s1"),
            "--out",
            str(tmp_path / "c.html"),
            "--metric",
            "stable_rank",
        ],
    )
    assert cmp.exit_code == 0, cmp.output
    assert "stable_rank" in cmp.output and (tmp_path / "c.html").is_file()
    bad = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert bad.exit_code == 2 and "does not exist" in bad.output


def test_report_table_rows_match_the_analysis(suite: Path) -> None:
    text = report(suite / "mlp_synthetic_s0", figures=False).path.read_text()
    events = pd.read_parquet(suite / "mlp_synthetic_s0" / "analysis" / "events.parquet")
    n = int(events["survives"].sum())
    assert f"{n} of {len(events)} candidate events survive" in text


def test_null_control_bands_and_predictions_reach_the_page(tmp_path: Path) -> None:
    run = planted_run(tmp_path / "banded", seed=0)
    analyze(run.path)
    with_chance_and_predictions(run)
    data = run_data(run)
    bands = data["chance"]["participation_ratio"]
    assert [(b["control"], b["layer"]) for b in bands] == [
        ("random_init", "l0"),
        ("random_init", "l1"),
    ]
    assert bands[1]["steps"][:3] == [0, 10, 20] and bands[1]["hi"][:3] == [1.0, 1.005, 1.01]
    text = report(run.path, figures=False).path.read_text()
    assert "Pre-registered predictions" in text and "PR of l1 drops by &gt; 10%" in text


def test_runs_sharing_an_id_get_their_own_block(tmp_path: Path) -> None:
    planted_run(tmp_path / "a" / "mlp_s0", seed=0, n_samples=30)
    planted_run(tmp_path / "b" / "mlp_s0", seed=1, n_samples=30)
    text = report(tmp_path, figures=False).path.read_text()
    payload = _payload(text)
    assert payload["order"] == ["a/mlp_s0", "b/mlp_s0"]
    first, second = (payload["runs"][k]["metrics"]["stable_rank"]["z"] for k in payload["order"])
    assert first != second
    assert 'data-run="a/mlp_s0"' in text and 'data-run="b/mlp_s0"' in text


def test_a_run_killed_after_one_sample_still_gets_a_report(tmp_path: Path) -> None:
    with Run.create(tmp_path / "one") as run:
        run.append_metrics([(0, "l0", "participation_ratio", 1.0)])
    result = report(run.path, figures=True)
    assert result.analysed == ("one",)
    assert _payload(result.path.read_text())["metrics"]["participation_ratio"]["steps"] == [0]
    assert (run.path / "figures" / "heatmap-participation_ratio.png").is_file()


def test_milestones_and_a_real_prediction_check_reach_the_page(tmp_path: Path) -> None:
    from traindyn.analysis import predictions

    spec = tmp_path / "p.yaml"
    spec.write_text(
        "predictions:\n- id: acc-up\n  claim: accuracy <rises>\n"
        "  target: {scalar: probe_accuracy}\n"
        "  window: {fraction: [0, 0.3]}\n  statistic: relative_change\n"
        "  expect: {op: '>=', value: 0.5}\n"
    )
    predictions.lock(spec, run=tmp_path / "run")
    run = planted_run(tmp_path / "run", seed=0)
    analyze(run.path)
    spec.write_text(spec.read_text().replace("0.5", "0.1"))  # edited after the lock
    result = predictions.check(run.path)
    assert result.edited
    text = report(run.path, figures=False).path.read_text()
    assert "<h3>Milestones</h3>" in text
    milestones = run.read_analysis("milestones")
    assert list(milestones["target_step"]) == [299, 598, 998, 1995]  # of 1995 steps
    assert "Pre-registered predictions" in text
    assert "accuracy &lt;rises&gt;" in text  # escaped
    assert "EDITED AFTER LOCK" in text
    assert re.search(r"predictions locked.*before any data", text)
    verdict = result.table.loc[0, "verdict"]
    assert f"1 {verdict.lower()}" in text
