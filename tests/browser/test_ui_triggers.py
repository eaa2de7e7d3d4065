"""The UI's Triggers panel in headless Chromium against the real local stack: create a trigger (its webhook URL
and secret are shown once), deliver a signed push to it over HTTP, see the build under the trigger's recent builds
and open it, then delete the trigger."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest
import requests
from playwright.sync_api import Page, expect

from chalicelib.api.hook_signatures import signed_headers
from tests.support.browser import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _open(page: Page, stack) -> None:
    page.goto(f"{stack.api_url}/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def test_create_a_trigger_see_its_secret_once_and_its_builds(ui_page: Page, stack) -> None:
    repo = f"ui-hooked-{uuid.uuid4().hex[:8]}"
    sha = hashlib.sha1(repo.encode()).hexdigest()
    stack.archive_server.add_commit(
        "octo-user", repo, sha, {"Dockerfile": f"FROM {stack.base_image}\nCMD echo from a trigger\n"}
    )
    _open(ui_page, stack)
    panel = ui_page.locator("#triggers-panel")
    ui_page.get_by_role("button", name="New trigger").click()
    form = ui_page.locator("#trigger-form")
    form.get_by_label("Repository").fill(f"octo-user/{repo}")
    form.get_by_label("Branches").fill("main")
    form.get_by_label("Image", exact=True).fill(f"{stack.registry.host}/ui/{repo}:{{branch}}-{{short_sha}}")
    form.get_by_label("Registry username").fill(stack.registry.username)
    form.get_by_label("Registry password").fill(stack.registry.password)

    # a bad field is named, and nothing is created
    form.get_by_label("Tags", exact=False).fill("(a+)+")
    ui_page.get_by_role("button", name="Create trigger").click()
    expect(ui_page.locator("#trigger-error")).to_contain_text("tag_regex:")
    form.get_by_label("Tags", exact=False).fill("")
    ui_page.get_by_role("button", name="Create trigger").click()

    created = ui_page.locator("#trigger-created")
    expect(created).to_be_visible()
    url = ui_page.locator("#trigger-created-url").inner_text()
    secret = ui_page.locator("#trigger-created-secret").inner_text()
    assert url.startswith(f"{stack.api_url}/api/v1/hooks/") and len(secret) >= 40
    expect(ui_page.locator("#trigger-form")).to_have_count(0)  # the form and its password left the page
    screenshot(ui_page, "triggers-created")
    ui_page.get_by_role("button", name="I have copied it").click()
    expect(created).to_be_hidden()
    assert secret not in ui_page.content() and stack.registry.password not in ui_page.content()

    item = panel.locator(".t-item").filter(has_text=repo)
    expect(item).to_contain_text(f"github: octo-user/{repo}")

    # the git host delivers a signed push; the build shows under the trigger
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "after": sha,
            "head_commit": {"id": sha, "message": "Update"},
            "commits": [],
            "repository": {"full_name": f"octo-user/{repo}", "default_branch": "main"},
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        **signed_headers("github", secret, body),
    }
    delivered = requests.post(url, data=body, headers=headers, timeout=60)
    assert delivered.status_code == 202, delivered.text
    (build,) = delivered.json()["Builds"]
    item.get_by_role("button", name="Recent builds").click()
    link = item.locator(".t-build")
    expect(link).to_have_count(1)
    expect(link).to_contain_text(f"main @ {sha[:7]}")
    screenshot(ui_page, "triggers-builds")
    link.click()
    expect(ui_page).to_have_url(f"{stack.api_url}/#job={build['JobIdentifier']}")
    expect(ui_page.locator("#job-image")).to_have_text(build["ImageName"])
    expect(ui_page.get_by_role("status")).to_contain_text("Finished", timeout=240_000)

    ui_page.once("dialog", lambda dialog: dialog.accept())
    item.get_by_role("button", name="Delete").click()
    expect(panel.locator(".t-item").filter(has_text=repo)).to_have_count(0)
    assert requests.post(url, data=body, headers=headers, timeout=60).status_code == 401
