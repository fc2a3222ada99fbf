"""The report, the comparison and the live view in headless Chromium.

A real (small) suite is run through ``traindyn run`` (train, checkpoint comparison,
analysis, report), then every page is opened in the browser: no console errors, every
visible figure drawn by plotly, nothing fetched from the network, the metric selector
redraws the heatmap with the other metric's values, and a screenshot is saved to
``test-artifacts/``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from tests.report.browser import console_errors, count, open_page, screenshot
from tests.report.planted import planted_run, with_chance_and_predictions
from typer.testing import CliRunner

from traindyn.analysis import analyze
from traindyn.cli.main import app
from traindyn.report.build import compare, report
from traindyn.report.serve import make_server
from traindyn.store import Run

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

SUITE = """
name: mini-quick
description: the quick suite's MLP and CNN on digits, 2 seeds, 150 steps
defaults:
  train: {steps: 150}
  checkpoints: {steps: [0, 50], final: true}
grid:
  arch: [mlp_medium, cnn_shallow]
  dataset: [digits]
  seed: [0, 1]
"""
# Drawn in every run block: heatmap, trajectories, jump types, convergence, temporal.
RUN_PLOTS = 5


@pytest.fixture(scope="module")
def mini_suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``traindyn run`` on a 4-run slice of the quick suite, ending with its report."""
    base = tmp_path_factory.mktemp("mini")
    (base / "mini.yaml").write_text(SUITE)
    out = base / "runs"
    result = CliRunner().invoke(
        app, ["run", str(base / "mini.yaml"), "--out", str(out), "--no-progress", "--workers", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "Report:" in result.output
    return out


def _visible_plots(browser: WebDriver) -> tuple[int, int]:
    """(visible plot containers, of which drawn by plotly)."""
    total, drawn = browser.execute_script(
        "const p = [...document.querySelectorAll('.td-plot')].filter(e => e.offsetParent);"
        "return [p.length, p.filter(e => e.classList.contains('js-plotly-plot')"
        " && e.querySelector('.main-svg')).length];"
    )
    return int(total), int(drawn)


def _no_network(browser: WebDriver) -> list[str]:
    """Resources the page fetched from anywhere but its own file or server."""
    names: list[str] = browser.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);"
    )
    return [n for n in names if not n.startswith(("file:", "http://127.0.0.1"))]


def _heatmap_state(browser: WebDriver, scope_css: str) -> dict[str, Any]:
    state: dict[str, Any] = browser.execute_script(
        "const el = document.querySelector(arguments[0] + ' .td-plot[data-plot=heatmap]');"
        "return {metric: el.getAttribute('data-metric'), z: el.data[0].z,"
        " title: el.layout.title.text};",
        scope_css,
    )
    return state


def _select(browser: WebDriver, css: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.CSS_SELECTOR, css)).select_by_value(value)
    browser.execute_async_script(
        "const done = arguments[arguments.length - 1]; window.tdReady.then(done);"
    )


def test_suite_report_draws_every_panel_and_the_selectors_work(
    browser: WebDriver, mini_suite: Path
) -> None:
    page = mini_suite / "report.html"
    open_page(browser, page)
    assert console_errors(browser) == []
    assert _no_network(browser) == []
    total, drawn = _visible_plots(browser)
    # Suite panels (architectures, temporal, seed bands) + the first run's panels + its
    # checkpoint CKA matrices (one per layer across 0/50/150, one per step across layers).
    n_cka = count(browser, ".td-run-block:not([hidden]) .td-plot[data-plot=cka]")
    assert n_cka >= 3
    assert total == drawn == 3 + RUN_PLOTS + n_cka
    assert count(browser, ".td-plot[data-drawn=empty]") == 0
    # The heatmap's cells are a layer x step grid of the selected metric.
    scope = ".td-run-block:not([hidden])"
    before = _heatmap_state(browser, scope)
    assert before["metric"] == "participation_ratio"
    _select(browser, f"{scope} select.td-metric", "stable_rank")
    after = _heatmap_state(browser, scope)
    assert after["metric"] == "stable_rank" and "stable_rank" in after["title"]
    assert after["z"] != before["z"]
    assert console_errors(browser) == []
    screenshot(browser, "suite-report", full_page=True)
    # Another run: its block appears and is drawn; the first is hidden.
    _select(browser, "select.td-run", "cnn_shallow_digits_s1")
    shown = browser.execute_script(
        "return [...document.querySelectorAll('.td-run-block')]"
        ".filter(b => !b.hidden).map(b => b.getAttribute('data-run'));"
    )
    assert shown == ["cnn_shallow_digits_s1"]
    total, drawn = _visible_plots(browser)
    assert total == drawn
    # Seed bands: a band (min, max) and a mean line per layer.
    _select(browser, "#bands select.td-group", "cnn_shallow_digits")
    traces = browser.execute_script(
        "return document.querySelector('.td-plot[data-plot=bands]').data.length;"
    )
    n_layers = len(Run(mini_suite / "cnn_shallow_digits_s0").metrics["layer"].unique())
    assert traces == 3 * n_layers
    assert console_errors(browser) == []


def test_run_report_and_comparison_render(browser: WebDriver, mini_suite: Path) -> None:
    a, b = mini_suite / "mlp_medium_digits_s0", mini_suite / "cnn_shallow_digits_s0"
    single = report(a, figures=False)
    open_page(browser, single.path)
    assert console_errors(browser) == []
    total, drawn = _visible_plots(browser)
    assert total == drawn >= RUN_PLOTS
    # Trajectories: one line per layer, then loss / accuracy / confidence panels, and a
    # dashed line per surviving event of the metric.
    axes = browser.execute_script(
        "const el = document.querySelector('.td-plot[data-plot=trajectories]');"
        "return [Object.keys(el.layout).filter(k => k.startsWith('yaxis')).length,"
        " el.layout.shapes.filter(s => s.line && s.line.dash === 'dash').length];"
    )
    assert axes[0] == 4
    screenshot(browser, "run-report", full_page=True)

    side = compare(a, b, out=mini_suite / "compare.html")
    open_page(browser, side.path)
    assert console_errors(browser) == []
    total, drawn = _visible_plots(browser)
    assert total == drawn == 4
    # Both trajectory panels share one metric range.
    ranges = browser.execute_script(
        "return [...document.querySelectorAll('.td-plot[data-plot=trajectories]')]"
        ".map(e => e._fullLayout.yaxis.range);"
    )
    assert ranges[0] == pytest.approx(ranges[1])
    screenshot(browser, "compare", full_page=True)


def test_live_view_redraws_a_running_run(browser: WebDriver, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    planted_run(root / "finished_s0", seed=0, n_samples=40)
    server = make_server(root, port=0, interval_s=0.25)
    server.start()
    run = Run.create(root / "live_s0", config={"total_steps": 1000})
    run.append_metrics(
        [(0, "l0", "participation_ratio", 1.0), (0, "l1", "participation_ratio", 2.0)]
    )
    run.append_scalars(0, {"loss": 2.0})
    run.flush()
    stop = threading.Event()

    def writer() -> None:
        step = 0
        while not stop.is_set() and step < 995:
            step += 5
            run.append_metrics(
                [
                    (step, "l0", "participation_ratio", 1.0 + step / 500),
                    (step, "l1", "participation_ratio", 2.0 - step / 1000),
                ]
            )
            run.append_scalars(step, {"loss": 2.0 / (1 + step / 100)})
            run.flush()
            time.sleep(0.05)

    thread = threading.Thread(target=writer)
    try:
        open_page(browser, server.url)
        assert count(browser, "table.td-index tbody tr") == 2
        assert console_errors(browser) == []
        thread.start()
        open_page(browser, server.url + "run/live_s0")
        first = int(browser.find_element("css selector", ".td-live").get_attribute("data-samples"))
        deadline = time.monotonic() + 15
        later = first
        while time.monotonic() < deadline and later < first + 10:
            time.sleep(0.3)
            later = int(
                browser.find_element("css selector", ".td-live").get_attribute("data-samples")
            )
        assert later >= first + 10, (first, later)
        steps = browser.execute_script(
            "return document.querySelector('.td-plot[data-plot=heatmap]').data[0].x.length;"
        )
        assert steps >= first + 10
        assert console_errors(browser) == []
        total, drawn = _visible_plots(browser)
        assert total == drawn >= 2
        screenshot(browser, "live-view", full_page=True)
    finally:
        stop.set()
        if thread.is_alive():
            thread.join()
        run.finish()
        server.shutdown()
        server.server_close()


def test_trajectories_are_drawn_against_null_control_bands(
    browser: WebDriver, tmp_path: Path
) -> None:
    run = planted_run(tmp_path / "banded", seed=0)
    analyze(run.path)
    with_chance_and_predictions(run)
    open_page(browser, report(run.path, figures=False).path)
    assert console_errors(browser) == []
    fills, legend = browser.execute_script(
        "const el = document.querySelector('.td-plot[data-plot=trajectories]');"
        "return [el.data.filter(t => t.fill === 'tonexty').length,"
        " el.data.filter(t => t.showlegend !== false).map(t => t.name)];"
    )
    assert fills == 2  # l0 and l1 have a random-init band
    assert legend.count("chance: random_init") == 1
    assert count(browser, "table.td-table td") > 0
    screenshot(browser, "null-control-bands")
