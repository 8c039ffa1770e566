"""Debian's chromium, driven by Playwright: one launcher for the browser tests and `make screenshots`.

Playwright's own browser download (`playwright install`) is never used: this project's machines and CI have no
network beyond the package registries, so the browser is the Debian package (scripts/system-packages.sh) and
Playwright's driver is the one inside its wheel.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Playwright

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and quiet on the network: nothing but the rollcall under test is ever asked for anything.
ARGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync")
MISSING = (f"Debian's chromium is not installed ({CHROMIUM} is missing): the browser tests need it. "
           "Run scripts/system-packages.sh (as root, or with sudo), which `make test` runs for you.")


class BrowserMissing(RuntimeError):
    """The browser, or Playwright, is not installed; the message says how to install it."""


def start() -> Playwright:
    """Playwright's driver, from the wheel of the dev extra."""
    if not CHROMIUM.exists():
        raise BrowserMissing(MISSING)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as error:
        raise BrowserMissing("Playwright for Python is not installed: `.venv/bin/pip install -e '.[dev]'` "
                             f"(make test does it) ({error})") from None
    return sync_playwright().start()


def launch(playwright: Playwright) -> Browser:
    """A headless chromium with a fresh temporary profile (Playwright makes one per launch and removes it)."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(ARGS), headless=True)
