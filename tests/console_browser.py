"""The console's browser: Playwright's Python API driving Debian's ``chromium`` package.

Playwright's own browser download cannot reach the network here, so the tests launch the
system's chromium (``scripts/install.sh --dev`` installs it with apt). Each page records its
script errors and every request it makes, so a test can assert that the console made none to
another host and threw nothing. Screenshots (1280x800) go to ``.console-screenshots/``, which
git ignores.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / ".console-screenshots"
VIEWPORT = {"width": 1280, "height": 800}


@contextmanager
def chromium() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    assert executable, "chromium is missing: bash scripts/install.sh --dev installs it (apt)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class ConsolePage:
    """A page on the console with what it did: script errors and the URLs it requested."""

    page: Page
    base_url: str
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path

    def assert_clean(self) -> None:
        """No script error, no request to any host but Ember."""
        assert self.errors == []
        own = (self.base_url + "/", f"blob:{self.base_url}/")  # blob: the audit export
        foreign = [url for url in self.requests if not url.startswith(own)]
        assert foreign == []


@contextmanager
def open_console(
    browser: Browser, base_url: str, *, locale: str = "en-US", key: str | None = None
) -> Iterator[ConsolePage]:
    """A fresh browser context (its own sessionStorage) on the console; ``key`` signs in."""
    context = browser.new_context(viewport=VIEWPORT, locale=locale)
    page = context.new_page()
    console = ConsolePage(page, base_url)
    page.on("pageerror", lambda error: console.errors.append(str(error)))
    page.on("request", lambda request: console.requests.append(request.url))
    page.goto(base_url + "/")
    if key is not None:
        page.fill("#api-key", key)
        page.press("#api-key", "Enter")
        page.wait_for_selector("#prompt")
    try:
        yield console
    finally:
        context.close()
