"""Headless Chromium (the system /usr/bin/chromium; never a downloaded one) for the UI tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import CHROMIUM, CHROMIUM_ARGS, DESKTOP

# Playwright must never fetch a browser of its own.
os.environ.setdefault("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class PageErrors(list):
    """Uncaught JavaScript errors seen by a page; a test fails if any are left at the end."""


@pytest.fixture
def ui_page(chromium, request: pytest.FixtureRequest):
    """A fresh browser context (own localStorage) and page at desktop size."""
    size = getattr(request, "param", DESKTOP)
    context = chromium.new_context(viewport=size, base_url=None)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors = PageErrors()
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda msg: (
            errors.append(f"console.error: {msg.text}")
            if msg.type == "error" and "Failed to load resource" not in msg.text
            else None
        ),
    )
    page.js_errors = errors  # read by the tests that check the page raised nothing
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def fake_api() -> Iterator[object]:
    from tests.browser.fake_api import FakeApi

    fake = FakeApi()
    yield fake
    fake.stop()


@pytest.fixture
def stack(local_stack):
    """The session-scoped local stack of tests/conftest.py (api_url, registry, base_image)."""
    return local_stack
