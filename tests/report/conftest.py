"""Fixtures of the report tests: a headless Chromium shared by the session."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from tests.report.browser import launch_or_skip

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver


@pytest.fixture(scope="session")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium (selenium WebDriver) with a fresh profile, shared by all tests.

    Skips, naming what is missing, when Chromium, chromedriver or selenium is absent; an
    installed Chromium that fails to start fails the tests that use it.
    """
    driver = launch_or_skip(tmp_path_factory.mktemp("chromium-profile"))
    try:
        yield driver
    finally:
        driver.quit()
