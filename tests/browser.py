"""Debian's chromium, headless, driven through Playwright (it cannot download browsers here): the
tests' one way to open a page as a person would."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

from tests.conftest import skip_unless_ci

#: Debian's /usr/bin/chromium; chromium-browser where a distribution names it so.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"]


@contextlib.contextmanager
def chromium() -> Iterator[object]:
    """A launched browser (Playwright's ``Browser``), closed afterwards."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_unless_ci("needs Playwright (pip install -e '.[dev]')")
    if not os.access(CHROMIUM, os.X_OK):
        skip_unless_ci(f"needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
