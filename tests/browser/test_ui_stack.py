"""The UI in headless Chromium against the real local stack: chalice local serving ui/ and the API,
a worker on the real Docker daemon, and the test registry. Nothing reaches the internet:
every Dockerfile starts FROM the stack's local base image."""

from __future__ import annotations

import gzip
import io
import re
import tarfile
import time
import uuid

import docker
import pytest
import requests
from playwright.sync_api import Page, expect

from tests.support.browser import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

BUILD_TIMEOUT_MS = 240_000
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


def unique_image(stack, name: str) -> str:
    return f"{stack.registry.host}/ui/{name}:{uuid.uuid4().hex[:10]}"


def open_stack_ui(page: Page, stack, fragment: str = "") -> None:
    page.goto(f"{stack.api_url}/{fragment}")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def fill_credentials(page: Page, stack, image: str) -> None:
    page.get_by_label("Image name").fill(image)
    page.get_by_label("Username").fill(stack.registry.username)
    page.get_by_label("Password").fill(stack.registry.password)
    page.get_by_label("Email").fill("tester@example.com")


def job_id_from_url(page: Page) -> str:
    expect(page).to_have_url(re.compile(r"#job=[0-9a-f-]{36}$"), timeout=30_000)
    return page.url.rsplit("#job=", 1)[1]


def test_dockerfile_build_reaches_finished_with_its_log(ui_page: Page, stack) -> None:
    token = uuid.uuid4().hex[:12]
    image = unique_image(stack, "dockerfile")
    # The shell computes 42, so the marker is in the log only if the RUN step really ran.
    dockerfile = f"FROM {stack.base_image}\nRUN echo ui-marker-$((6*7))-{token}\n"
    open_stack_ui(ui_page, stack)
    fill_credentials(ui_page, stack, image)
    ui_page.get_by_role("textbox", name="Dockerfile").fill(dockerfile)
    ui_page.get_by_role("button", name="Build it!").click()
    job = job_id_from_url(ui_page)

    status = ui_page.get_by_role("status")
    expect(ui_page.locator("#job-image")).to_have_text(image)
    expect(status).to_contain_text("Finished", timeout=BUILD_TIMEOUT_MS)
    expect(status).to_have_attribute("data-state", "success")
    log = ui_page.get_by_role("log")
    expect(log).to_contain_text(f"ui-marker-42-{token}")
    expect(log).to_contain_text(stack.base_image)
    expect(ui_page.locator("#job-status")).to_have_attribute("data-done", "true", timeout=30_000)

    digest = ui_page.locator("#digest").inner_text()
    assert DIGEST_RE.match(digest), digest
    api = requests.get(f"{stack.api_url}/api/v1/{job}/status", timeout=10).json()
    assert api["ImageDigest"] == digest
    # The pane shows the whole log exactly once (tailing appended, never repeated).
    full = requests.get(f"{stack.api_url}/api/v1/{job}/logs", timeout=10).json()["Logs"]
    assert log.inner_text().strip() == full.strip()
    assert ui_page.evaluate("document.title").startswith("✔")
    screenshot(ui_page, "stack-dockerfile-finished")

    # The shareable address reopens it in a fresh page.
    other = ui_page.context.new_page()
    open_stack_ui(other, stack, f"#job={job}")
    expect(other.get_by_role("status")).to_contain_text("Finished")
    expect(other.locator("#digest")).to_have_text(digest)
    expect(other.get_by_role("log")).to_contain_text(f"ui-marker-42-{token}")
    stored = other.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert job in stored and stack.registry.password not in stored
    other.close()


def test_failing_build_shows_the_failure_and_dockers_message(ui_page: Page, stack) -> None:
    open_stack_ui(ui_page, stack)
    fill_credentials(ui_page, stack, unique_image(stack, "failing"))
    ui_page.get_by_role("textbox", name="Dockerfile").fill(
        f"FROM {stack.base_image}\nRUN echo about to fail && exit 3\n"
    )
    ui_page.get_by_role("button", name="Build it!").click()
    job_id_from_url(ui_page)

    status = ui_page.get_by_role("status")
    expect(status).to_contain_text("Failed", timeout=BUILD_TIMEOUT_MS)
    expect(status).to_have_attribute("data-state", "failure")
    # Docker's own words (classic builder or BuildKit) for the exit code.
    docker_message = re.compile(r"non-zero code: 3|exit code: 3")
    expect(ui_page.locator("#job-reason")).to_be_visible()
    expect(ui_page.locator("#job-reason")).to_contain_text(docker_message)
    expect(ui_page.get_by_role("log")).to_contain_text("about to fail")
    expect(ui_page.get_by_role("log")).to_contain_text(docker_message, timeout=30_000)
    expect(ui_page.locator("#digest-row")).to_be_hidden()
    screenshot(ui_page, "stack-dockerfile-failed")


def test_invalid_image_name_shows_the_field_error(ui_page: Page, stack) -> None:
    sent: list[str] = []
    ui_page.on("request", lambda r: sent.append(r.url) if "/api/v1/build" in r.url else None)
    open_stack_ui(ui_page, stack)
    fill_credentials(ui_page, stack, f"{stack.registry.host}/UI/Bad Name")
    ui_page.get_by_role("textbox", name="Dockerfile").fill(f"FROM {stack.base_image}\n")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(ui_page.locator("#image_name-error")).to_be_visible()
    expect(ui_page.locator("#image_name-error")).to_contain_text("spaces")
    expect(ui_page.get_by_label("Image name")).to_have_attribute("aria-invalid", "true")
    assert sent == [], "an invalid form must not be sent"

    # The API agrees the name is wrong (client and server checks do not drift apart).
    answer = requests.post(
        f"{stack.api_url}/api/v1/build",
        json={"image_name": f"{stack.registry.host}/UI/Bad Name", "dockerfile": "FROM x\n"},
        timeout=10,
    )
    assert answer.status_code == 400 and answer.json()["Message"].startswith("image_name:")
    ui_page.get_by_label("Image name").fill(f"{stack.registry.host}/ui/MyApp")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(ui_page.locator("#image_name-error")).to_contain_text("lowercase")
    screenshot(ui_page, "stack-invalid-image-name")

    # Something only the API checks: its Message is shown next to the field it names.
    ui_page.get_by_label("Image name").fill(unique_image(stack, "refused"))
    ui_page.get_by_label("Username").fill("u" * 300)
    ui_page.get_by_role("button", name="Build it!").click()
    expect(ui_page.locator("#username-error")).to_contain_text("at most 256 characters")
    expect(ui_page.locator("#job-panel")).to_be_hidden()
    assert len(sent) == 1


def _context_archive(base_image: str, token: str) -> bytes:
    """A tar.gz build context: a Dockerfile that COPYs a file and prints it."""
    files = {
        "Dockerfile": f"FROM {base_image}\nCOPY hello.txt /hello.txt\nRUN cat /hello.txt\n".encode(),
        "hello.txt": f"uploaded-context-{token}\n".encode(),
        "padding.bin": uuid.uuid4().bytes * 65536,  # ~1 MiB, so there is something to upload
    }
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


def test_upload_tab_build_works(ui_page: Page, stack) -> None:
    token = uuid.uuid4().hex[:12]
    archive = _context_archive(stack.base_image, token)
    uploads: list[str] = []
    ui_page.on("request", lambda r: uploads.append(r.url) if r.method == "POST" else None)

    open_stack_ui(ui_page, stack)
    fill_credentials(ui_page, stack, unique_image(stack, "upload"))
    ui_page.get_by_role("tab", name="Upload").click()
    ui_page.get_by_label("Archive").set_input_files(
        {"name": "context.tar.gz", "mimeType": "application/gzip", "buffer": archive}
    )
    ui_page.get_by_role("button", name="Build it!").click()
    job_id_from_url(ui_page)

    # Ticket from the API, the file straight to S3 (moto), then the build: in that order.
    assert len(uploads) == 3, uploads
    assert uploads[0] == f"{stack.api_url}/api/v1/uploads"
    assert not uploads[1].startswith(stack.api_url), "the archive must go to the presigned URL, not the API"
    assert uploads[2] == f"{stack.api_url}/api/v1/build"
    expect(ui_page.locator("#upload-bar")).to_have_js_property("value", 100)
    expect(ui_page.locator("#upload-text")).to_contain_text("100%")

    status = ui_page.get_by_role("status")
    expect(status).to_contain_text("Finished", timeout=BUILD_TIMEOUT_MS)
    expect(ui_page.get_by_role("log")).to_contain_text(f"uploaded-context-{token}")
    assert DIGEST_RE.match(ui_page.locator("#digest").inner_text())
    screenshot(ui_page, "stack-upload-finished")


def test_cancel_stops_a_running_build(ui_page: Page, stack) -> None:
    image = unique_image(stack, "cancel")
    dockerfile = f"FROM {stack.base_image}\nRUN echo started-long-step && sleep 300\n"
    open_stack_ui(ui_page, stack)
    fill_credentials(ui_page, stack, image)
    ui_page.get_by_role("textbox", name="Dockerfile").fill(dockerfile)
    ui_page.get_by_role("button", name="Build it!").click()
    job = job_id_from_url(ui_page)

    expect(ui_page.get_by_role("log")).to_contain_text("started-long-step", timeout=BUILD_TIMEOUT_MS)
    ui_page.get_by_role("button", name="Cancel build").click()
    status = ui_page.get_by_role("status")
    expect(status).to_contain_text("Cancelled", timeout=30_000)
    expect(ui_page.get_by_role("button", name="Cancel build")).to_be_hidden()
    screenshot(ui_page, "stack-cancelled")
    assert requests.get(f"{stack.api_url}/api/v1/{job}/status", timeout=10).json()["Status"] == "Cancelled"
    # the worker stops the build at its next heartbeat: no container keeps sleeping
    client = docker.APIClient(base_url=stack.stack.env.get("DOCKER_HOST", "unix:///var/run/docker.sock"))
    deadline = time.monotonic() + 60
    sleeping = ["not checked yet"]
    while time.monotonic() < deadline:
        sleeping = [c for c in client.containers() if "sleep 300" in c.get("Command", "")]
        if not sleeping:
            break
        time.sleep(0.2)
    assert not sleeping, sleeping
