"""The browser harness itself, on tiny pages: loading, counting, console, input, screenshots."""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from tests.report import browser as harness
from tests.report.browser import (
    console_errors,
    count,
    open_page,
    screenshot,
    serve_directory,
)

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

SVG_NS = "http://www.w3.org/2000/svg"

# Three SVG figures (one circle each) and two canvases drawn by script, as the report does.
FIGURES_JS = f"""
for (let i = 0; i < 3; i++) {{
  const svg = document.createElementNS("{SVG_NS}", "svg");
  svg.setAttribute("class", "figure");
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "80");
  const dot = document.createElementNS("{SVG_NS}", "circle");
  dot.setAttribute("cx", "40"); dot.setAttribute("cy", "40"); dot.setAttribute("r", "30");
  svg.appendChild(dot);
  document.body.appendChild(svg);
}}
for (let i = 0; i < 2; i++) {{
  const canvas = document.createElement("canvas");
  canvas.width = 50; canvas.height = 50;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "rgb(200, 0, 0)";
  ctx.fillRect(0, 0, 50, 50);
  document.body.appendChild(canvas);
}}
"""


def _page(tmp_path: Path, name: str, body: str, script: str = "") -> Path:
    path = tmp_path / name
    path.write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>t</title></head>"
        f"<body>{body}<script>{script}</script></body></html>",
        encoding="utf-8",
    )
    return path


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_counts_the_figures_a_script_drew(browser: WebDriver, tmp_path: Path) -> None:
    open_page(browser, _page(tmp_path, "figures.html", "", FIGURES_JS))
    assert count(browser, "svg.figure") == 3
    assert count(browser, "svg.figure circle") == 3
    assert count(browser, "canvas") == 2
    assert count(browser, "img") == 0
    # the canvases hold pixels, not just elements
    red = browser.execute_script(
        "return document.querySelector('canvas').getContext('2d')"
        ".getImageData(25, 25, 1, 1).data[0]"
    )
    assert red == 200
    assert console_errors(browser) == []


def test_waits_for_td_ready_promise(browser: WebDriver, tmp_path: Path) -> None:
    # The figures are drawn 300 ms after load; tdReady resolves only then.
    script = (
        "window.tdReady = new Promise((resolve) => setTimeout(() => {"
        + FIGURES_JS
        + "resolve(); }, 300));"
    )
    start = time.monotonic()
    open_page(browser, _page(tmp_path, "late.html", "", script))
    assert time.monotonic() - start >= 0.3
    assert count(browser, "svg.figure") == 3


def test_waits_for_td_ready_flag(browser: WebDriver, tmp_path: Path) -> None:
    script = (
        "window.tdReady = false; setTimeout(() => {"
        + FIGURES_JS
        + "window.tdReady = true; }, 200);"
    )
    open_page(browser, _page(tmp_path, "flag.html", "", script))
    assert count(browser, "canvas") == 2


def test_rejected_or_late_td_ready_fails(browser: WebDriver, tmp_path: Path) -> None:
    rejected = _page(
        tmp_path, "rejected.html", "", "window.tdReady = Promise.reject(new Error('no data'));"
    )
    with pytest.raises(AssertionError, match="tdReady was rejected: Error: no data"):
        open_page(browser, rejected)
    never = _page(tmp_path, "never.html", "", "window.tdReady = new Promise(() => {});")
    with pytest.raises(AssertionError, match=r"did not finish loading within 0\.5 s"):
        open_page(browser, never, timeout=0.5)


def test_console_errors(browser: WebDriver, tmp_path: Path) -> None:
    open_page(browser, _page(tmp_path, "error.html", "", "console.error('boom');"))
    errors = console_errors(browser)
    assert len(errors) == 1 and "boom" in errors[0]

    open_page(browser, _page(tmp_path, "throw.html", "", "throw new Error('kaboom');"))
    errors = console_errors(browser)
    assert len(errors) == 1 and "Uncaught Error: kaboom" in errors[0]

    # warnings and logs are not errors; messages of earlier pages do not leak into this one
    script = "console.log('hello'); console.warn('careful');"
    open_page(browser, _page(tmp_path, "clean.html", "", script))
    assert console_errors(browser) == []


def test_select_changes_the_page(browser: WebDriver, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    body = (
        "<select id='metric'><option value='participation_ratio'>PR</option>"
        "<option value='effective_rank'>rank</option></select>"
        "<div id='heatmap' data-metric='participation_ratio'></div>"
    )
    script = (
        "document.getElementById('metric').addEventListener('change', (e) => {"
        "  document.getElementById('heatmap').dataset.metric = e.target.value; });"
    )
    open_page(browser, _page(tmp_path, "select.html", body, script))
    heatmap = browser.find_element(By.ID, "heatmap")
    assert heatmap.get_attribute("data-metric") == "participation_ratio"
    Select(browser.find_element(By.ID, "metric")).select_by_value("effective_rank")
    assert heatmap.get_attribute("data-metric") == "effective_rank"
    assert console_errors(browser) == []


def test_screenshot_is_a_png_of_the_page(
    browser: WebDriver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(harness.ARTIFACTS_ENV, str(tmp_path / "artifacts"))
    body = "<div style='height: 2500px; background: linear-gradient(red, blue)'></div>"
    open_page(browser, _page(tmp_path, "tall.html", body))

    path = screenshot(browser, "harness viewport")
    assert path == tmp_path / "artifacts" / "harness_viewport.png"
    ratio, width, height, client_width = browser.execute_script(
        "return [window.devicePixelRatio, window.innerWidth, window.innerHeight,"
        " document.documentElement.clientWidth]"
    )
    assert _png_size(path) == (round(width * ratio), round(height * ratio))
    assert (width, height) == (1400, 1000)

    page_height = browser.execute_script("return document.documentElement.scrollHeight")
    assert page_height >= 2500 > height
    full = screenshot(browser, "harness-full.png", full_page=True)
    assert full.name == "harness-full.png"
    assert _png_size(full) == (round(width * ratio), round(page_height * ratio))
    # the capture leaves the viewport (scrollbar included) as it was
    after = browser.execute_script(
        "return [window.innerWidth, window.innerHeight, document.documentElement.clientWidth]"
    )
    assert after == [width, height, client_width]


def test_artifacts_default_to_the_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(harness.ARTIFACTS_ENV, raising=False)
    assert harness.artifact_dir() == harness.REPO_ROOT / "test-artifacts"
    assert (harness.REPO_ROOT / "pyproject.toml").is_file()


def test_page_served_over_http(browser: WebDriver, tmp_path: Path) -> None:
    # The live view is served from a loopback HTTP server; scripts load as separate files.
    site = tmp_path / "site"
    site.mkdir()
    (site / "app.js").write_text(FIGURES_JS, encoding="utf-8")
    (site / "index.html").write_text(
        "<!doctype html><html><head><meta charset='utf-8'><title>live</title>"
        "<link rel='icon' href='data:,'></head>"
        "<body><script src='app.js'></script></body></html>",
        encoding="utf-8",
    )
    (site / "broken.html").write_text(
        "<!doctype html><html><head><link rel='icon' href='data:,'></head>"
        "<body><script src='missing.js'></script></body></html>",
        encoding="utf-8",
    )
    with serve_directory(site) as url:
        assert url.startswith("http://127.0.0.1:")
        open_page(browser, url)
        assert browser.title == "live"
        assert count(browser, "svg.figure") == 3
        assert count(browser, "canvas") == 2
        assert console_errors(browser) == []

        open_page(browser, url + "broken.html")  # a missing asset is a console error
        errors = console_errors(browser)
        assert len(errors) == 1 and "missing.js" in errors[0] and "404" in errors[0]


def test_absent_browser_skips_naming_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(harness, "find_chromium", lambda: None)
    with pytest.raises(pytest.skip.Exception) as skipped:
        harness.launch_or_skip(tmp_path)
    reason = str(skipped.value)
    assert reason.startswith("browser tests need Chromium (/usr/bin/chromium, Debian package")
    assert "bash scripts/install-browser.sh" in reason

    monkeypatch.setattr(harness, "find_chromedriver", lambda: None)
    monkeypatch.setattr(harness, "selenium_available", lambda: False)
    reason = harness.missing_browser() or ""
    assert "Chromium" in reason and "chromium-driver" in reason and "selenium" in reason


@pytest.mark.skipif(harness.missing_browser() is not None, reason=str(harness.missing_browser()))
def test_broken_chromium_fails_rather_than_skips(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(harness, "find_chromium", lambda: "/bin/false")
    with pytest.raises(pytest.fail.Exception, match=r"/bin/false.*failed to start"):
        harness.launch_or_skip(tmp_path)
