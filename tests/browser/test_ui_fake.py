"""Fast UI tests: headless Chromium against the fake API (no Docker, no AWS)."""

from __future__ import annotations

import itertools
import json
import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.support.browser import PASSWORD, PHONE, error_of, fill_common, open_ui, screenshot

DIGEST = "sha256:" + "ab12" * 16


def submit_dockerfile(page: Page, fake, dockerfile: str = "FROM busybox\nRUN echo hi\n", count: int = 1) -> str:
    fill_common(page)
    page.get_by_role("tab", name="Dockerfile").click()
    page.get_by_role("textbox", name="Dockerfile").fill(dockerfile)
    page.get_by_role("button", name="Build it!").click()
    return fake.wait_for_build(count)


# --------------------------------------------------------------------------- form checks


def test_required_fields_are_checked_before_sending(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    ui_page.get_by_role("button", name="Build it!").click()

    for field in ("image_name", "dockerfile"):
        expect(error_of(ui_page, field)).to_be_visible()
        expect(ui_page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    # Credentials and email are optional (a registry may take pushes without login).
    for field in ("username", "password", "email"):
        expect(error_of(ui_page, field)).to_be_hidden()
    expect(ui_page.locator("#image_name")).to_be_focused()

    # ...but a username without its password (or the other way round) is a mistake.
    ui_page.get_by_label("Username").fill("someone")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "password")).to_contain_text("password for this username")
    expect(error_of(ui_page, "username")).to_be_hidden()
    ui_page.get_by_label("Email").fill("not-an-email")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "email")).to_be_visible()
    screenshot(ui_page, "fake-required-fields")

    # Editing a field clears its error.
    ui_page.get_by_label("Image name").fill("team/app")
    expect(error_of(ui_page, "image_name")).to_be_hidden()
    assert fake_api.api_requests("/api/v1/build") == [], "nothing may be sent while fields are wrong"

    ui_page.get_by_label("Username").fill("")
    ui_page.get_by_label("Email").fill("")
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    assert fake_api.builds[0]["username"] == "" and fake_api.builds[0]["password"] == ""


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ("my image", "can't contain spaces"),
        ("team/MyApp", "must be lowercase"),
        ("team/app:-bad", "is not a valid tag"),
        ("team//app", "empty part"),
        ("team/app@sha256:abc", "not a digest"),
        ("bad_host_:5000/app", "is not a valid registry host"),
        ("team/app-", "is not a valid name part"),
    ],
)
def test_invalid_image_name_shows_field_error(ui_page: Page, fake_api, image: str, message: str) -> None:
    open_ui(ui_page, fake_api)
    fill_common(ui_page, image)
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "image_name")).to_contain_text(message)
    expect(ui_page.locator("#image_name")).to_be_focused()
    for ok in ("username", "password", "dockerfile"):
        expect(error_of(ui_page, ok)).to_be_hidden()
    assert fake_api.api_requests("/api/v1/build") == []


@pytest.mark.parametrize(
    "image",
    [
        "app",
        "team/app",
        "team/app:1.0",
        "127.0.0.1:5000/team/my_app:v1.2-rc",
        "localhost/app",
        "registry.example.com/a/b/c:latest",
    ],
)
def test_valid_image_names_are_sent(ui_page: Page, fake_api, image: str) -> None:
    open_ui(ui_page, fake_api)
    fill_common(ui_page, image)
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    assert fake_api.builds[0]["image_name"] == image


def test_api_refusal_message_is_shown_next_to_the_field_it_names(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    fake_api.refuse_next_build(400, "InvalidField", "image_name: registry host 10.9.9.9 is not allowed")
    submit_dockerfile_no_wait(ui_page)
    expect(error_of(ui_page, "image_name")).to_have_text("registry host 10.9.9.9 is not allowed")
    expect(ui_page.locator("#form-error")).to_be_hidden()
    expect(ui_page.get_by_role("button", name="Build it!")).to_be_enabled()
    screenshot(ui_page, "fake-api-refused-field")

    # A refusal that names no field goes above the form, with the API's words.
    fake_api.refuse_next_build(413, "TooLarge", "The request body is larger than 6 MB; use the upload tab.")
    ui_page.get_by_role("button", name="Build it!").click()
    alert = ui_page.get_by_role("alert").filter(has_text="larger than 6 MB")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("The request body is larger than 6 MB; use the upload tab.")
    expect(ui_page.locator("#job-panel")).to_be_hidden()


def submit_dockerfile_no_wait(page: Page) -> None:
    fill_common(page)
    page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    page.get_by_role("button", name="Build it!").click()


# ---------------------------------------------------------------------------------- tabs


def test_tabs_have_aria_roles_and_keyboard_navigation(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    tablist = ui_page.get_by_role("tablist", name="Build source")
    tabs = tablist.get_by_role("tab")
    expect(tabs).to_have_text(["Dockerfile", "GitHub", "Tarball URL", "Upload"])
    expect(ui_page.get_by_role("tab", name="Dockerfile")).to_have_attribute("aria-selected", "true")
    expect(ui_page.get_by_role("tabpanel")).to_have_count(1)  # hidden panels are not exposed

    ui_page.get_by_role("tab", name="GitHub").click()
    expect(ui_page.get_by_role("tab", name="GitHub")).to_have_attribute("aria-selected", "true")
    expect(ui_page.get_by_role("tab", name="Dockerfile")).to_have_attribute("aria-selected", "false")
    expect(ui_page.get_by_label("GitHub user")).to_be_visible()
    expect(ui_page.get_by_role("textbox", name="Dockerfile")).to_be_hidden()

    ui_page.get_by_role("tab", name="GitHub").press("ArrowRight")
    expect(ui_page.get_by_role("tab", name="Tarball URL")).to_be_focused()
    expect(ui_page.get_by_role("textbox", name="Tarball URL")).to_be_visible()
    ui_page.keyboard.press("End")
    expect(ui_page.get_by_role("tab", name="Upload")).to_have_attribute("aria-selected", "true")
    ui_page.keyboard.press("ArrowRight")  # wraps around
    expect(ui_page.get_by_role("tab", name="Dockerfile")).to_have_attribute("aria-selected", "true")

    # Only the chosen tab's fields are checked and sent.
    ui_page.get_by_role("tab", name="GitHub").click()
    fill_common(ui_page)
    ui_page.get_by_role("button", name="Build it!").click()
    for field in ("github_username", "github_reponame", "github_tag"):
        expect(error_of(ui_page, field)).to_be_visible()
    expect(error_of(ui_page, "dockerfile")).to_be_hidden()
    ui_page.get_by_label("GitHub user").fill("octo-org")
    ui_page.get_by_label("Repository").fill("hello.world")
    ui_page.get_by_label("Tag").fill("v1.2.0")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    sent = fake_api.builds[0]
    assert (sent["github_username"], sent["github_reponame"], sent["github_tag"]) == (
        "octo-org",
        "hello.world",
        "v1.2.0",
    )
    assert "dockerfile" not in sent and "tar_url" not in sent


def test_tarball_url_tab_checks_the_url(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="Tarball URL").click()
    ui_page.get_by_role("textbox", name="Tarball URL").fill("ftp://example.com/a.tar.gz")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "tar_url")).to_contain_text("http:// or https://")
    ui_page.get_by_role("textbox", name="Tarball URL").fill("https://example.com/a.tar.gz")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    assert fake_api.builds[0]["tar_url"] == "https://example.com/a.tar.gz"


# ------------------------------------------------------------------------ following a job


def test_dockerfile_build_follows_phases_and_tails_log_with_since_cursor(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    job = submit_dockerfile(ui_page, fake_api, "FROM busybox\nRUN echo hello\n")
    sent = fake_api.builds[0]
    assert sent["password"] == PASSWORD and sent["username"] == "builder" and sent["email"] == "builder@example.com"
    assert sent["dockerfile"] == "FROM busybox\nRUN echo hello\n"

    expect(ui_page).to_have_url(re.compile(rf"#job={job}$"))
    status = ui_page.get_by_role("status")
    expect(status).to_contain_text("Queued")
    expect(status).to_have_attribute("data-state", "progress")  # the spinner
    log = ui_page.get_by_role("log")

    fake_api.set_phase(job, "fetching")
    fake_api.set_phase(job, "building")
    fake_api.add_log(job, "Step 1/2 : FROM busybox\n")
    expect(status).to_contain_text("Building")
    expect(log).to_have_text("Step 1/2 : FROM busybox\n")
    fake_api.add_log(job, "Step 2/2 : RUN echo hello\n")
    fake_api.add_log(job, "hello\n")
    expect(log).to_have_text("Step 1/2 : FROM busybox\nStep 2/2 : RUN echo hello\nhello\n")
    expect(ui_page.locator("#elapsed")).to_have_text(re.compile(r"^\d+s$"))

    fake_api.set_phase(job, "pushing")
    expect(status).to_contain_text("Pushing")
    expect(ui_page.locator('#phase-steps li[data-phase="building"]')).to_have_class("done")
    screenshot(ui_page, "fake-build-in-progress")

    fake_api.add_log(job, "Successfully built 1234abcd\nPushed\n")
    fake_api.set_phase(job, "finished", digest=DIGEST)
    expect(status).to_contain_text("Finished")
    expect(status).to_have_attribute("data-state", "success")  # the check mark
    expect(ui_page.locator("#job-status")).to_have_attribute("data-done", "true")
    expect(ui_page.locator("#digest")).to_have_text(DIGEST)
    expect(log).to_have_text(
        "Step 1/2 : FROM busybox\nStep 2/2 : RUN echo hello\nhello\nSuccessfully built 1234abcd\nPushed\n"
    )
    expect(ui_page.locator("#job-image")).to_have_text("127.0.0.1:5000/team/app:1.0")
    screenshot(ui_page, "fake-build-finished")

    # The log was tailed: every read after the first passed the cursor the previous one returned.
    reads = fake_api.api_requests(f"/api/v1/{job}/logs")
    assert reads[0]["query"] == {}
    assert len(reads) >= 3
    for before, after in itertools.pairwise(reads):
        assert after["query"].get("since") == [before["next"]], "a log read did not pass the previous Next"
    assert reads[-1]["next"] == "4"  # the last read reached the end of the log

    # Terminal and complete: polling stops.
    count = len(fake_api.api_requests(f"/api/v1/{job}/"))
    time.sleep(2.5)
    assert len(fake_api.api_requests(f"/api/v1/{job}/")) == count, "the UI kept polling a finished job"


def test_failed_build_shows_warning_and_dockers_message(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    job = submit_dockerfile(ui_page, fake_api, "FROM busybox\nRUN exit 3\n")
    fake_api.set_phase(job, "building")
    expect(ui_page.get_by_role("status")).to_contain_text("Building")  # so the UI knows where it failed
    fake_api.add_log(job, "Step 2/2 : RUN exit 3\n ---> Running in 5d2c\n")
    reason = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    fake_api.add_log(job, reason + "\n")
    fake_api.set_phase(job, "failed", reason=reason)

    status = ui_page.get_by_role("status")
    expect(status).to_contain_text("Failed")
    expect(status).to_have_attribute("data-state", "failure")  # the warning sign
    expect(ui_page.locator("#job-reason")).to_have_text(reason)
    # Phases it is known to have passed are ticked; the last chip says it failed; none is guessed.
    expect(ui_page.locator("#phase-steps li.done")).to_have_text(["Queued", "Fetching"])
    expect(ui_page.locator("#phase-steps li.failed")).to_have_text(["Failed"])
    expect(ui_page.get_by_role("log")).to_contain_text("returned a non-zero code: 3")
    expect(ui_page.locator("#digest-row")).to_be_hidden()
    expect(ui_page.locator("#job-status")).to_have_attribute("data-done", "true")
    expect(ui_page.locator("#recent-list a").first).to_contain_text("Failed")
    screenshot(ui_page, "fake-build-failed")


def test_log_autoscrolls_unless_the_user_scrolled_up(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    job = submit_dockerfile(ui_page, fake_api)
    fake_api.set_phase(job, "building")
    fake_api.add_log(job, "".join(f"line {i}\n" for i in range(200)))
    log = ui_page.get_by_role("log")
    expect(log).to_contain_text("line 199")

    def distance_from_bottom() -> float:
        return log.evaluate("e => e.scrollHeight - e.scrollTop - e.clientHeight")

    assert log.evaluate("e => e.scrollHeight > e.clientHeight"), "the log should overflow its box"
    assert distance_from_bottom() <= 2

    log.evaluate("e => { e.scrollTop = 0; }")
    ui_page.wait_for_timeout(100)
    fake_api.add_log(job, "".join(f"more {i}\n" for i in range(50)))
    expect(log).to_contain_text("more 49")
    assert log.evaluate("e => e.scrollTop") == 0, "the log jumped while the user was reading above"
    jump = ui_page.get_by_role("button", name="Jump to latest")
    expect(jump).to_be_visible()
    jump.click()
    assert distance_from_bottom() <= 2
    expect(jump).to_be_hidden()
    # Following again: new text keeps it at the bottom.
    fake_api.add_log(job, "last line\n")
    expect(log).to_contain_text("last line")
    assert distance_from_bottom() <= 2


def test_job_link_reopens_the_job_and_recent_list_keeps_it(ui_page: Page, fake_api) -> None:
    done = fake_api.create_job("127.0.0.1:5000/team/old:2.0")
    fake_api.add_log(done, "Step 1/1 : FROM busybox\n")
    fake_api.set_phase(done, "finished", digest=DIGEST)

    open_ui(ui_page, fake_api, f"#job={done}")
    expect(ui_page.locator("#job-image")).to_have_text("127.0.0.1:5000/team/old:2.0")
    expect(ui_page.get_by_role("status")).to_contain_text("Finished")
    expect(ui_page.get_by_role("log")).to_have_text("Step 1/1 : FROM busybox\n")
    expect(ui_page.locator("#job-link")).to_have_attribute("href", f"#job={done}")

    # A new build from the form; both are listed, newest first.
    ui_page.get_by_role("button", name="New build").click()
    expect(ui_page.locator("#job-panel")).to_be_hidden()
    assert "#job=" not in ui_page.url
    new = submit_dockerfile(ui_page, fake_api)
    expect(ui_page).to_have_url(re.compile(rf"#job={new}$"))
    recent = ui_page.locator("#recent-list a")
    expect(recent).to_have_count(2)
    expect(recent.nth(0)).to_have_attribute("href", f"#job={new}")
    expect(recent.nth(1)).to_have_attribute("href", f"#job={done}")
    expect(recent.nth(1)).to_contain_text("127.0.0.1:5000/team/old:2.0")

    # The browser keeps it across reloads; the password is never stored.
    ui_page.reload()
    expect(ui_page.locator("body")).to_have_attribute("data-ready", "true")
    expect(ui_page.locator("#recent-list a")).to_have_count(2)
    stored = ui_page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert new in stored and done in stored
    assert PASSWORD not in stored and "password" not in stored.lower()

    # Clicking an entry opens it.
    ui_page.locator("#recent-list a", has_text="team/old:2.0").click()
    expect(ui_page).to_have_url(re.compile(rf"#job={done}$"))
    expect(ui_page.get_by_role("status")).to_contain_text("Finished")
    expect(ui_page.locator("#digest")).to_have_text(DIGEST)
    screenshot(ui_page, "fake-reopened-from-recent")

    ui_page.get_by_role("button", name="Clear").click()
    expect(ui_page.locator("#recent-list a")).to_have_count(0)
    expect(ui_page.get_by_text("No builds yet.")).to_be_visible()


def test_unknown_job_link_says_so(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api, "#job=00000000-0000-0000-0000-000000000000")
    expect(ui_page.get_by_role("status")).to_contain_text("No such build")
    expect(ui_page.locator("#job-reason")).to_contain_text("no build with id 00000000-0000-0000-0000-000000000000")


def test_lost_contact_is_shown_and_polling_recovers(ui_page: Page, fake_api) -> None:
    job = fake_api.create_job()
    fake_api.set_phase(job, "building")
    failing = {"on": True}

    def maybe_fail(route):
        if failing["on"]:
            route.fulfill(
                status=503,
                content_type="application/json",
                body=json.dumps({"Code": "ServiceUnavailable", "Message": "try again"}),
            )
        else:
            route.continue_()

    ui_page.route(re.compile(r".*/api/v1/.*/status$"), maybe_fail)
    open_ui(ui_page, fake_api, f"#job={job}")
    expect(ui_page.locator("#poll-error")).to_contain_text("Lost contact")
    failing["on"] = False
    fake_api.add_log(job, "back again\n")
    expect(ui_page.get_by_role("log")).to_have_text("back again\n", timeout=15_000)
    expect(ui_page.locator("#poll-error")).to_be_hidden()


# ---------------------------------------------------------------------------------- upload


def test_upload_tab_sends_file_to_presigned_post_with_progress(ui_page: Page, fake_api) -> None:
    fake_api.s3_chunk, fake_api.s3_delay = 256 * 1024, 0.03  # a slow "S3": progress is visible
    payload = bytes(range(256)) * (64 * 1024)  # 16 MiB, every byte value
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="Upload").click()
    ui_page.get_by_label("Archive").set_input_files(
        {"name": "context.tar.gz", "mimeType": "application/gzip", "buffer": payload}
    )
    ui_page.get_by_role("button", name="Build it!").click()

    bar = ui_page.locator("#upload-bar")
    expect(ui_page.locator("#upload-progress")).to_be_visible()
    ui_page.wait_for_function(
        "() => { const v = document.getElementById('upload-bar').value; return v > 0 && v < 100; }"
    )
    expect(ui_page.get_by_role("button", name=re.compile(r"Uploading \d+%"))).to_be_disabled()
    screenshot(ui_page, "fake-upload-in-progress")
    job = fake_api.wait_for_build(timeout=60)
    expect(bar).to_have_js_property("value", 100)
    expect(ui_page.locator("#upload-text")).to_contain_text("100%")

    upload_id = fake_api.builds[0]["upload_id"]
    upload = fake_api.uploads[upload_id]
    assert upload.data == payload, "the uploaded bytes differ from the file"
    assert upload.file_name == "context.tar.gz"
    assert upload.part_names[-1] == "file" and set(upload.part_names[:-1]) == set(upload.fields)
    assert fake_api.builds[0]["password"] == PASSWORD
    assert not any(k in fake_api.builds[0] for k in ("dockerfile", "tar_url", "github_username"))
    expect(ui_page).to_have_url(re.compile(rf"#job={job}$"))
    expect(ui_page.get_by_role("status")).to_contain_text("Queued")


def test_upload_larger_than_allowed_is_refused_before_sending(ui_page: Page, fake_api) -> None:
    fake_api.max_bytes = 1000
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="Upload").click()
    ui_page.get_by_label("Archive").set_input_files(
        {"name": "big.tar", "mimeType": "application/x-tar", "buffer": b"x" * 5000}
    )
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "upload_file")).to_contain_text("the limit is")
    assert fake_api.api_requests("/fake-s3/") == []
    assert fake_api.api_requests("/api/v1/build") == []

    ui_page.get_by_label("Archive").set_input_files({"name": "notes.txt", "mimeType": "text/plain", "buffer": b"hello"})
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "upload_file")).to_contain_text(".tar, .tar.gz or .tgz")


# ------------------------------------------------------------------------- config, layout


def test_api_base_from_config_js_is_used(ui_page: Page, fake_api) -> None:
    """The page on one origin, the API on another (apiBase with a stage prefix), as on S3 + API Gateway."""
    api_base = f"{fake_api.url}/stage"
    ui_page.route(
        "**/config.js",
        lambda route: route.fulfill(
            content_type="text/javascript", body=f'window.BOATYARD_CONFIG = {{apiBase: "{api_base}/"}};'
        ),
    )
    ui_page.goto(f"http://localhost:{fake_api.port}/")
    expect(ui_page.locator("body")).to_have_attribute("data-ready", "true")
    job = submit_dockerfile(ui_page, fake_api)
    fake_api.add_log(job, "via the stage\n")
    expect(ui_page.get_by_role("log")).to_have_text("via the stage\n")
    assert fake_api.api_requests("/stage/api/v1/build", "POST")
    assert fake_api.api_requests(f"/stage/api/v1/{job}/logs")


@pytest.mark.parametrize("ui_page", [PHONE], indirect=True)
def test_phone_width_layout(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)

    def no_horizontal_scroll() -> None:
        width = ui_page.evaluate("[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
        assert width[0] <= width[1], f"page is wider than the phone screen: {width}"

    no_horizontal_scroll()
    user = ui_page.get_by_label("Username").bounding_box()
    password = ui_page.get_by_label("Password").bounding_box()
    assert user and password, "the form's fields are visible"
    assert password["y"] > user["y"] + user["height"] - 1, "username and password should stack on a phone"
    assert user["width"] > 300
    screenshot(ui_page, "fake-phone-form")

    job = submit_dockerfile(ui_page, fake_api)
    fake_api.set_phase(job, "building")
    fake_api.add_log(job, "Step 1/2 : FROM 127.0.0.1:5000/boatyard/busybox:latest-with-a-rather-long-tag-name\n")
    expect(ui_page.get_by_role("log")).to_contain_text("Step 1/2")
    # The open job comes before the form on a narrow screen.
    job_box = ui_page.locator("#job-panel").bounding_box()
    form_box = ui_page.locator("#build-panel").bounding_box()
    assert job_box and form_box, "both panels are visible"
    assert job_box["y"] < form_box["y"]
    no_horizontal_scroll()
    ui_page.evaluate("window.scrollTo(0, 0)")
    screenshot(ui_page, "fake-phone-job")


# --------------------------------------------------------------------------- API keys (issue 12)

KEY = "by_0123456789abcdef_" + "k" * 43


def test_api_key_is_kept_in_the_tab_sent_as_bearer_and_fills_recent_builds(ui_page: Page, fake_api) -> None:
    fake_api.required_key = KEY
    mine = fake_api.create_job("127.0.0.1:5000/team/history:1")
    fake_api.set_phase(mine, "finished", digest=DIGEST)
    open_ui(ui_page, fake_api)
    # no key yet: the history answer was 401 and the page says what to do
    expect(ui_page.locator("#key-state")).to_contain_text("needs an API key")
    expect(ui_page.locator("#recent-list a")).to_have_count(0)
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="Dockerfile").click()
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(ui_page.locator("#form-error")).to_contain_text("API key")

    ui_page.get_by_label("Your API key").fill(KEY)
    ui_page.get_by_role("button", name="Use key").click()
    expect(ui_page.locator("#key-state")).to_have_text("A key is set for this tab.")
    expect(ui_page.get_by_label("Your API key")).to_have_value("")  # not left in the page
    expect(ui_page.locator("#recent-list a")).to_have_count(1)
    expect(ui_page.locator("#recent-list a").first).to_contain_text("team/history:1")
    assert fake_api.api_requests("/api/v1/jobs", "GET")[-1]["authorization"] == f"Bearer {KEY}"

    ui_page.get_by_role("button", name="Build it!").click()
    new = fake_api.wait_for_build()
    expect(ui_page).to_have_url(re.compile(rf"#job={new}$"))
    assert fake_api.api_requests("/api/v1/build", "POST")[-1]["authorization"] == f"Bearer {KEY}"
    assert ui_page.evaluate("sessionStorage.getItem('boatyard.apiKey')") == KEY
    assert KEY not in ui_page.evaluate("JSON.stringify(Object.assign({}, localStorage))")

    ui_page.get_by_role("button", name="Forget").click()
    assert ui_page.evaluate("sessionStorage.getItem('boatyard.apiKey')") is None
    expect(ui_page.locator("#recent-list a")).to_have_count(0)


def test_quota_refusal_is_shown_clearly(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    fake_api.refuse_next_build(429, "TooManyRequests", "5 of your jobs are already queued or running (the limit)")
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="Dockerfile").click()
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(ui_page.locator("#form-error")).to_contain_text("Over your quota: 5 of your jobs are already queued")
