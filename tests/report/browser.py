"""Headless Chromium for the browser tests of the HTML report and the live view.

Tests get the session-wide driver from the ``browser`` fixture (tests/report/conftest.py)
and use the helpers here::

    from tests.report.browser import console_errors, count, open_page, screenshot

    def test_report_renders(browser, report_path):
        open_page(browser, report_path)
        assert console_errors(browser) == []
        assert count(browser, "svg.td-figure") == 4
        screenshot(browser, "report")

The browser is Debian's ``chromium`` driven by Debian's ``chromium-driver`` through
selenium; nothing is downloaded (selenium's driver manager is never consulted, because
both the driver and the browser binary are given explicitly). When any of the three is
absent the fixture skips with the reason; an installed Chromium that fails to start is a
test error, not a skip.

Selenium is imported lazily, so this module (collected by ``--doctest-modules``) imports
without it.
"""

from __future__ import annotations

import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_ENV = "TRAINDYN_ARTIFACTS"  # overrides where screenshots go (tests only)
INSTALL_HINT = (
    "install with `bash scripts/install-browser.sh` "
    "(or `apt-get install chromium chromium-driver`; selenium comes with "
    "`bash scripts/install.sh --dev`)"
)
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox refuses to start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)
VIEWPORT = (1400, 1000)  # CSS pixels of the page (the window is grown to fit them)
READY_TIMEOUT = 20.0  # seconds open_page waits for the load and for window.tdReady

# Waits for window.tdReady: absent or true -> ready; a thenable -> its settlement;
# anything else (false, undefined set later) -> polled until it becomes one of those.
_WAIT_READY_JS = """
const done = arguments[arguments.length - 1];
function check() {
  const r = window.tdReady;
  if (r === undefined || r === true) { done({ok: true}); return; }
  if (r !== null && typeof r.then === "function") {
    r.then(() => done({ok: true}),
           (e) => done({ok: false, error: String((e && e.stack) || e)}));
    return;
  }
  setTimeout(check, 25);
}
check();
"""


def find_chromium() -> str | None:
    """Path of the Chromium binary: Debian's /usr/bin/chromium, else ``chromium`` on PATH."""
    return _find("/usr/bin/chromium", "chromium")


def find_chromedriver() -> str | None:
    """Path of chromedriver: Debian's /usr/bin/chromedriver, else ``chromedriver`` on PATH."""
    return _find("/usr/bin/chromedriver", "chromedriver")


def _find(debian_path: str, name: str) -> str | None:
    if os.access(debian_path, os.X_OK):
        return debian_path
    return shutil.which(name)


def selenium_available() -> bool:
    try:
        import selenium.webdriver  # noqa: F401
    except ImportError:
        return False
    return True


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (naming what is missing), or None if they can."""
    missing = []
    if find_chromium() is None:
        missing.append("Chromium (/usr/bin/chromium, Debian package `chromium`)")
    if find_chromedriver() is None:
        missing.append("chromedriver (/usr/bin/chromedriver, Debian package `chromium-driver`)")
    if not selenium_available():
        missing.append("the Python package selenium")
    if not missing:
        return None
    return "browser tests need " + " and ".join(missing) + "; " + INSTALL_HINT


def start_browser(user_data_dir: Path) -> WebDriver:
    """Start headless Chromium with a fresh profile in ``user_data_dir``.

    Raises ``RuntimeError`` (with Chromium's own error) when it does not start.
    """
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = find_chromium(), find_chromedriver()
    if chromium is None or chromedriver is None:
        raise RuntimeError(missing_browser())
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={user_data_dir}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    except WebDriverException as exc:
        raise RuntimeError(
            f"headless Chromium ({chromium}, driver {chromedriver}) failed to start: {exc.msg}"
        ) from exc
    _fit_viewport(driver, *VIEWPORT)
    return driver


def _fit_viewport(driver: WebDriver, width: int, height: int) -> None:
    # Headless Chromium still reserves room for its (invisible) toolbars: grow the
    # window by that much so the page itself, and so each screenshot, is width x height.
    driver.set_window_size(width, height)
    inner_width, inner_height = driver.execute_script(
        "return [window.innerWidth, window.innerHeight]"
    )
    if (inner_width, inner_height) != (width, height):
        driver.set_window_size(2 * width - inner_width, 2 * height - inner_height)


def launch_or_skip(user_data_dir: Path) -> WebDriver:
    """``start_browser``, skipping the test when the browser is absent, failing it on error."""
    import pytest

    reason = missing_browser()
    if reason is not None:
        pytest.skip(reason)
    try:
        return start_browser(user_data_dir)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


def _url(target: str | Path) -> str:
    if isinstance(target, str) and re.match(r"^[a-z][a-z0-9+.-]*:", target):
        return target  # http://, file://, about:, data: ...
    return Path(target).resolve().as_uri()


def open_page(browser: WebDriver, target: str | Path, *, timeout: float = READY_TIMEOUT) -> None:
    """Load ``target`` (a URL, or a file path) and wait until it has finished drawing.

    Waits for ``document.readyState == 'complete'``, then, if the page defines
    ``window.tdReady`` (a Promise, or a boolean it sets to true, when all its plots are
    drawn), for that. A rejected ``tdReady`` or a timeout fails the test. Console messages
    logged before the navigation are discarded, so ``console_errors`` reports this page's.
    """
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop earlier pages' messages
    browser.set_page_load_timeout(timeout)
    url = _url(target)
    browser.get(url)
    try:
        WebDriverWait(browser, timeout, poll_frequency=0.05).until(
            lambda d: d.execute_script("return document.readyState") == "complete"
        )
        browser.set_script_timeout(timeout)
        state: dict[str, Any] = browser.execute_async_script(_WAIT_READY_JS)
    except TimeoutException as exc:
        raise AssertionError(
            f"{url} did not finish loading within {timeout:g} s "
            "(document.readyState or window.tdReady)"
        ) from exc
    if not state.get("ok"):
        raise AssertionError(f"{url}: window.tdReady was rejected: {state.get('error')}")


def console_errors(browser: WebDriver) -> list[str]:
    """Messages of the SEVERE console entries since the last call (or ``open_page``).

    Includes ``console.error`` calls, uncaught exceptions and failed resource loads.
    Reading the log empties it.
    """
    return [
        str(entry["message"])
        for entry in browser.get_log("browser")
        if entry.get("level") == "SEVERE"
    ]


def count(browser: WebDriver, css: str) -> int:
    """Number of elements matching the CSS selector ``css``."""
    from selenium.webdriver.common.by import By

    return len(browser.find_elements(By.CSS_SELECTOR, css))


def artifact_dir() -> Path:
    """Where screenshots go: $TRAINDYN_ARTIFACTS, else test-artifacts/ at the repo root."""
    directory = Path(os.environ.get(ARTIFACTS_ENV) or REPO_ROOT / "test-artifacts")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def screenshot(browser: WebDriver, name: str, *, full_page: bool = False) -> Path:
    """Save a PNG of the page as ``<artifact_dir>/<name>.png`` and return its path.

    The viewport by default; ``full_page=True`` captures the whole scrollable page.
    """
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.removesuffix(".png")) or "screenshot"
    path = artifact_dir() / f"{stem}.png"
    if full_page:
        import base64

        # Grow the viewport to the page's height for the capture, then restore it (a
        # captureBeyondViewport capture would leave the shared browser without scrollbars).
        width, height = browser.execute_script(
            "return [window.innerWidth, document.documentElement.scrollHeight]"
        )
        browser.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 0, "mobile": False},
        )
        try:
            shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
        finally:
            browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        path.write_bytes(base64.b64decode(shot["data"]))
    elif not browser.save_screenshot(str(path)):
        raise AssertionError(f"could not save a screenshot to {path}")
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """Serve ``directory`` over HTTP on 127.0.0.1 (a free port) in a thread; yield its URL."""
    handler = partial(_QuietHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="test-http", daemon=True
    )
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
