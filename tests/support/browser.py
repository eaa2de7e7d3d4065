"""Headless Chromium for the UI tests: the system browser, its flags, the viewport sizes, and screenshots; and the
form steps the UI tests share (:func:`open_ui`, :func:`fill_common`, :func:`error_of`)."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Locator, Page, expect

from tests.support.canary import TEST_PASSWORD

REPO = Path(__file__).resolve().parents[2]  # the checkout
SCREENSHOTS = REPO / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("BOATYARD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
PASSWORD = TEST_PASSWORD
"""The registry password :func:`fill_common` types: the leak canary, so a test can look for it where it must not be."""


def screenshot(page, name: str, full_page: bool = True) -> Path:
    """Saves test-artifacts/screenshots/<name>.png (gitignored) and returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def open_ui(page: Page, fake, fragment: str = "") -> None:
    """Open the UI served by ``fake`` (anything with a ``url``) and wait until its script is ready."""
    page.goto(f"{fake.url}/{fragment}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def fill_common(page: Page, image: str = "127.0.0.1:5000/team/app:1.0") -> None:
    """Fill the fields every build form needs: image name and registry credentials (password :data:`PASSWORD`)."""
    page.get_by_label("Image name").fill(image)
    page.get_by_label("Username").fill("builder")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_label("Email").fill("builder@example.com")


def error_of(page: Page, field: str) -> Locator:
    """The error line under a form field."""
    return page.locator(f"#{field}-error")
