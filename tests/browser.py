"""A real headless browser for tests: Chromium (Debian's `chromium` package) takes a screenshot
of a page. Tests that need it skip when no Chromium is installed (see conftest.require)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# Headless, sandbox off (CI runs as root), and nothing that talks to the network or writes
# outside its own fresh profile.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
)


def find_browser() -> str | None:
    """Path of an installed Chromium, or None."""
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


def screenshot(page: Path, png: Path, width: int = 1200, height: int = 2000, timeout: float = 90) -> Path:
    """Render ``page`` (a local HTML file) in headless Chromium and save a PNG screenshot."""
    browser = find_browser()
    if browser is None:
        raise RuntimeError("no Chromium installed")
    with tempfile.TemporaryDirectory(prefix="beadseg-chromium-") as profile:
        cmd = [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
               f"--screenshot={png}", Path(page).resolve().as_uri()]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if not Path(png).is_file():
        raise RuntimeError(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-2000:]}")
    return Path(png)
