"""Opening a gallery page in a headless Chromium (for tests and ``benchmarks/report_speed.py``).

Nothing here is needed to write or view a gallery; it only drives a locally installed browser
(Debian: ``apt-get install chromium``) with no network, no GPU and a throw-away profile.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--mute-audio")


def find_chromium() -> Optional[str]:
    """``$SHRN_CHROMIUM`` when set, else the first Chromium/Chrome on ``PATH``; None when absent."""
    override = os.environ.get("SHRN_CHROMIUM")
    if override:
        return override if shutil.which(override) else None
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


def run_headless(browser: str, page: str | Path, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess:
    """Run the browser once on ``page`` (a file path or URL) with ``args`` such as ``--dump-dom``
    or ``--screenshot=FILE``; stdout holds the dumped DOM."""
    url = page if isinstance(page, str) and "://" in page else Path(page).resolve().as_uri()
    with tempfile.TemporaryDirectory(prefix="shrn-chromium-") as profile:
        command = [browser, *FLAGS, f"--user-data-dir={profile}", *args, url]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout)
