"""What the browser tests share: finding Debian's Chromium, launching it, telling local URLs apart.

The browser tests need Playwright's Python package and a Chromium: Debian's `chromium` package (or
the executable named by FASHION_COURSE_CHROMIUM), since no browser can be downloaded offline. In CI
(environment variable CI set) a missing piece is a failure, so the tests cannot silently vanish;
on a learner's machine it is a skip that says what to install.
"""

from __future__ import annotations

import contextlib
import os
import urllib.parse
from pathlib import Path

import pytest

ARTIFACTS = Path(os.environ.get("FASHION_COURSE_ARTIFACTS",
                                Path(__file__).resolve().parent.parent / "test-artifacts"))


def unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests: {reason}", pytrace=False)
    pytest.skip(reason)


def find_chromium() -> str | None:
    named = os.environ.get("FASHION_COURSE_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if Path(candidate).exists():
            return candidate
    return None


@contextlib.contextmanager
def chromium():
    """A headless Chromium, closed whatever happens; skips (or fails in CI) without one."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("Playwright is not installed (pip install -r requirements.txt)")
    executable = find_chromium()
    if executable is None:
        unavailable("no Chromium found (sudo apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def is_local(url: str, hosts: tuple[str, ...] = ()) -> bool:
    """A request a page may make offline: a file, inline data, or one of `hosts` (e.g. 127.0.0.1)."""
    parsed = urllib.parse.urlsplit(url)
    return parsed.scheme in ("file", "data", "blob", "about") or parsed.hostname in hosts


class Screenshots:
    """Lists a test run's screenshots at the end of pytest's report, where a CI log shows them."""

    def __init__(self, title: str, folder: Path):
        self.title, self.folder, self.paths = title, folder, []
        folder.mkdir(parents=True, exist_ok=True)

    def add(self, path: Path) -> None:
        self.paths.append(path)

    def pytest_terminal_summary(self, terminalreporter):
        if self.paths:
            terminalreporter.section(self.title)
            terminalreporter.write_line(f"{len(self.paths)} in {self.folder}:")
            for path in self.paths:
                terminalreporter.write_line(f"  {path.name}")


def screenshots(config, title: str, folder: Path) -> Screenshots:
    listing = Screenshots(title, folder)
    config.pluginmanager.register(listing, f"fashion-course-screenshots-{folder.name}")
    return listing
