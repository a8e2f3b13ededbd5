"""Headless Chromium for the console's browser tests: Debian's `chromium` package driven by
Playwright (never Playwright's own browser download), pages watched for console errors and
failed requests, screenshots kept as test artifacts.

LIENTHONG_TEST_CHROMIUM names the browser (default /usr/bin/chromium: `.ci/run` installs
it); LIENTHONG_TEST_ARTIFACTS the directory for screenshots (default: under pytest's
temporary directory). A missing browser fails the tests, it never skips them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, Playwright, Request, Response

_LOAD_FAILED = re.compile(r"^Failed to load resource: the server responded with a status of (\d+)")
CHROMIUM = Path(os.environ.get("LIENTHONG_TEST_CHROMIUM", "/usr/bin/chromium"))


async def launch(playwright: Playwright) -> Browser:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no browser at {CHROMIUM}: install Debian's chromium (apt-get install -y "
            "chromium; .ci/run does) or set LIENTHONG_TEST_CHROMIUM"
        )
    # Root (as in CI) needs --no-sandbox; /dev/shm is small in containers.
    return await playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
    )


@dataclass
class PageWatch:
    """Everything that went wrong on a page: console errors, uncaught errors, requests that
    failed and answers of 400 or more (other than those a test expects)."""

    problems: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)

    def attach(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        page.on("requestfailed", self._failed)
        page.on("response", self._response)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type not in ("error", "warning"):
            return
        status = _LOAD_FAILED.search(message.text)
        if status is not None and int(status.group(1)) in self.expected_statuses:
            return  # Chromium's own line for an answer the test expects (and checks)
        self.problems.append(f"console {message.type}: {message.text}")

    def _failed(self, request: Request) -> None:
        self.problems.append(f"request failed: {request.method} {request.url} {request.failure}")

    def _response(self, response: Response) -> None:
        if response.status >= 400 and response.status not in self.expected_statuses:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def check(self) -> None:
        assert self.problems == [], "\n".join(self.problems)


class Screenshots:
    """Full-page screenshots, named by test, backend and step."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.taken: list[Path] = []

    async def take(self, page: Page, name: str) -> Path:
        path = self.directory / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name) + ".png")
        await page.screenshot(path=str(path), full_page=True)
        self.taken.append(path)
        return path


def artifacts_dir(base: Path) -> Path:
    configured = os.environ.get("LIENTHONG_TEST_ARTIFACTS")
    directory = Path(configured) / "console" if configured else base / "console-screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    return directory
