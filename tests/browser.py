"""Debian's Chromium driven by Playwright, for the /ui tests and the browser benchmark.

Playwright cannot download its own browsers on these machines, so it launches the system
`chromium` (installed by `make test` as root). The flags keep it from reaching out to
Google's services, which this network refuses.
"""

from __future__ import annotations

import json
import shutil

from playwright.sync_api import Browser, Page, Playwright

CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
KEY_STORAGE_NAME = "neonomaly.apiKey"  # as web/ui/static/api.js keeps it


def chromium_path() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch_chromium(playwright: Playwright) -> Browser:
    path = chromium_path()
    if path is None:
        raise RuntimeError("chromium is not installed: `apt-get install chromium` (as root)")
    return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, headless=True)


def signed_in(page: Page, key: str) -> None:
    """Put the key where the page keeps it after signing in, before any page script runs."""
    page.add_init_script(
        f"sessionStorage.setItem({json.dumps(KEY_STORAGE_NAME)}, {json.dumps(key)})"
    )
