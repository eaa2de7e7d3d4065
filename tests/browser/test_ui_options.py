"""The build form's "Options" section (shared by every source tab): headless Chromium against the fake API."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.support.browser import error_of, fill_common, open_ui, screenshot


def open_options(page: Page) -> None:
    page.locator("#options summary").click()
    expect(page.get_by_label("Target")).to_be_visible()


def test_untouched_options_send_nothing(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    sent = set(fake_api.builds[0]) - {"_job_id"}
    assert sent == {"image_name", "username", "password", "email", "dockerfile"}


def test_every_option_is_sent_with_a_github_source(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="GitHub").click()
    ui_page.get_by_label("GitHub user").fill("octo")
    ui_page.get_by_label("Repository").fill("monorepo")
    ui_page.get_by_label("Tag").fill("v2.0.0")
    open_options(ui_page)
    ui_page.get_by_label("Build args").fill("VERSION=2.0.0\nGREETING=a=b c\n")
    ui_page.get_by_label("Context folder").fill("services/api")
    ui_page.get_by_label("Dockerfile path").fill("docker/Dockerfile")
    ui_page.get_by_label("Target").fill("runtime")
    ui_page.get_by_label("Also push as").fill("latest, 2.0")
    ui_page.get_by_label("Labels").fill("com.example.team=api")
    ui_page.get_by_label("Memory limit").fill("512m")
    ui_page.get_by_label("CPUs").fill("1.5")
    ui_page.get_by_label("Build without cache").check()
    ui_page.get_by_label("Pull fresh base images").uncheck()
    screenshot(ui_page, "fake-options")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    build = fake_api.builds[0]
    assert build["github_reponame"] == "monorepo"
    assert {
        k: build[k]
        for k in (
            "build_args",
            "context_path",
            "dockerfile_path",
            "target",
            "tags",
            "labels",
            "memory",
            "cpus",
            "no_cache",
            "pull",
        )
    } == {
        "build_args": {"VERSION": "2.0.0", "GREETING": "a=b c"},
        "context_path": "services/api",
        "dockerfile_path": "docker/Dockerfile",
        "target": "runtime",
        "tags": ["latest", "2.0"],
        "labels": {"com.example.team": "api"},
        "memory": "512m",
        "cpus": 1.5,
        "no_cache": True,
        "pull": False,
    }


def test_path_options_are_for_archive_sources_only(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    open_options(ui_page)
    ui_page.get_by_role("tab", name="Tarball URL").click()
    ui_page.get_by_label("Context folder").fill("app")
    ui_page.get_by_role("tab", name="Dockerfile").click()
    expect(ui_page.get_by_label("Context folder")).to_be_hidden()
    fill_common(ui_page)
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    assert "context_path" not in fake_api.builds[0]  # the API would refuse it with Dockerfile text


def test_bad_options_are_shown_beside_their_field_and_nothing_is_sent(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="Tarball URL").click()
    ui_page.get_by_role("textbox", name="Tarball URL").fill("https://example.com/a.tar.gz")
    open_options(ui_page)
    ui_page.get_by_label("Build args").fill("1BAD=x")
    ui_page.get_by_label("Context folder").fill("../outside")
    ui_page.get_by_label("Also push as").fill("ok, -bad")
    ui_page.get_by_label("Memory limit").fill("lots")
    ui_page.get_by_label("CPUs").fill("0")
    ui_page.locator("#options summary").click()  # closed again: the first error reopens it
    ui_page.get_by_role("button", name="Build it!").click()
    for field in ("build_args", "context_path", "tags", "memory", "cpus"):
        expect(error_of(ui_page, field)).to_be_visible()
    expect(ui_page.locator("#build_args")).to_be_focused()
    assert fake_api.api_requests("/api/v1/build") == []


def test_secret_looking_build_arg_is_warned_about(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    open_options(ui_page)
    expect(ui_page.locator("#build_args-hint")).to_contain_text("Not for secrets")
    warning = ui_page.locator("#build_args-warning")
    ui_page.get_by_label("Build args").fill("VERSION=1")
    expect(warning).to_be_hidden()
    ui_page.get_by_label("Build args").fill("VERSION=1\nNPM_TOKEN=abc")
    expect(warning).to_contain_text("NPM_TOKEN looks like a secret")


def test_api_refusal_of_an_option_opens_the_section_at_that_field(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    fake_api.refuse_next_build(
        400, "InvalidRequest", "memory: is more than this service's maximum of 4294967296 bytes per build"
    )
    fill_common(ui_page)
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    open_options(ui_page)
    ui_page.get_by_label("Memory limit").fill("8g")
    ui_page.locator("#options summary").click()
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "memory")).to_have_text(
        "is more than this service's maximum of 4294967296 bytes per build"
    )
    expect(ui_page.locator("#memory")).to_be_focused()


def test_private_github_repo_token_is_sent_and_never_kept(ui_page: Page, fake_api) -> None:
    token = "ghp_" + "T0k3n" * 7
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="GitHub").click()
    ui_page.get_by_label("GitHub user").fill("octo")
    ui_page.get_by_label("Repository").fill("private")
    ui_page.get_by_label("Tag").fill("main")
    expect(ui_page.get_by_label("Access token")).to_have_attribute("type", "password")
    ui_page.get_by_label("Access token").fill(token)
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    assert fake_api.builds[0]["github_token"] == token
    stored = ui_page.evaluate("JSON.stringify(Object.assign({}, localStorage))")
    assert token not in stored


def test_a_public_github_build_sends_no_token_and_a_refused_token_is_shown_beside_it(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="GitHub").click()
    ui_page.get_by_label("GitHub user").fill("octo")
    ui_page.get_by_label("Repository").fill("public")
    ui_page.get_by_label("Tag").fill("v1")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    assert "github_token" not in fake_api.builds[0]
    fake_api.refuse_next_build(
        400, "InvalidRequest", "github_token: must be 1 to 255 printable ASCII characters without spaces"
    )
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("tab", name="GitHub").click()
    ui_page.get_by_label("GitHub user").fill("octo")
    ui_page.get_by_label("Repository").fill("public")
    ui_page.get_by_label("Tag").fill("v1")
    ui_page.get_by_label("Access token").fill("has a space")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "github_token")).to_contain_text("printable ASCII")


def test_notify_url_and_secret_are_sent_and_checked(ui_page: Page, fake_api) -> None:
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    open_options(ui_page)
    ui_page.get_by_label("Notify URL").fill("https://ci.example.com/hook")
    ui_page.get_by_label("Notify secret").fill("short")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "notify_secret")).to_be_visible()
    assert fake_api.api_requests("/api/v1/build") == []
    ui_page.get_by_label("Notify secret").fill("a-secret-of-20-chars")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    build = fake_api.builds[0]
    assert (build["notify_url"], build["notify_secret"]) == ("https://ci.example.com/hook", "a-secret-of-20-chars")


SSH_KEY = (
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\n"
    "-----END OPENSSH PRIVATE KEY-----\n"
)


def test_buildkit_fields_are_sent_and_secrets_are_masked_and_never_kept(ui_page: Page, fake_api, tmp_path) -> None:
    secret = "s3cr3t-" + "V4lue" * 6
    key_file = tmp_path / "deploy_key"
    key_file.write_text(SSH_KEY)
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("textbox", name="Dockerfile").fill(
        "FROM busybox\nRUN --mount=type=secret,id=npm_token --mount=type=ssh cat /run/secrets/npm_token\n"
    )
    open_options(ui_page)
    ui_page.get_by_label("Build engine").select_option("buildkit")
    ui_page.get_by_label("Reuse layers from").fill("127.0.0.1:5000/team/app:latest")
    expect(ui_page.get_by_label("Secret 1 value")).to_have_attribute("type", "password")
    ui_page.get_by_label("Secret 1 id").fill("npm_token")
    ui_page.get_by_label("Secret 1 value").fill(secret)
    ui_page.get_by_role("button", name="Add a secret").click()
    expect(ui_page.get_by_label("Secret 2 id")).to_be_focused()
    ui_page.get_by_label("Secret 2 id").fill("second")
    ui_page.get_by_label("Secret 2 value").fill("two")
    ui_page.get_by_label("SSH key file").set_input_files(str(key_file))
    screenshot(ui_page, "fake-options-buildkit")
    ui_page.get_by_role("button", name="Build it!").click()
    fake_api.wait_for_build()
    build = fake_api.builds[0]
    assert build["engine"] == "buildkit" and build["cache_from"] == ["127.0.0.1:5000/team/app:latest"]
    assert build["secrets"] == {"npm_token": secret, "second": "two"} and build["ssh"] == SSH_KEY
    # once sent, the values are gone from the page and were never stored
    expect(ui_page.get_by_label("Secret 1 value")).to_have_value("")
    assert ui_page.get_by_label("SSH key file").evaluate("input => input.files.length") == 0
    page_text = ui_page.content() + ui_page.evaluate("JSON.stringify(Object.assign({}, localStorage, sessionStorage))")
    assert secret not in page_text and "b3BlbnNzaC1rZXkt" not in page_text


def test_bad_buildkit_fields_are_refused_before_sending_without_echoing_a_secret(
    ui_page: Page, fake_api, tmp_path
) -> None:
    secret = "h1dden-" + "S3cret" * 5
    not_a_key = tmp_path / "id_rsa.pub"
    not_a_key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample user@host\n")
    open_ui(ui_page, fake_api)
    fill_common(ui_page)
    ui_page.get_by_role("textbox", name="Dockerfile").fill("FROM busybox\n")
    open_options(ui_page)
    ui_page.get_by_label("Build engine").select_option("classic")  # secrets need BuildKit
    ui_page.get_by_label("Secret 1 id").fill("token")
    ui_page.get_by_label("Secret 1 value").fill(secret)
    ui_page.get_by_label("Reuse layers from").fill("user/app@sha256:" + "0" * 64)
    ui_page.get_by_label("SSH key file").set_input_files(str(not_a_key))
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "secrets")).to_contain_text("Needs BuildKit")
    expect(error_of(ui_page, "cache_from")).to_contain_text("digest")
    expect(error_of(ui_page, "ssh")).to_contain_text("private key")
    assert fake_api.api_requests("/api/v1/build") == []
    ui_page.get_by_label("Build engine").select_option("")
    ui_page.get_by_label("Secret 1 id").fill("../bad id")
    ui_page.get_by_label("Reuse layers from").fill("")
    ui_page.get_by_label("SSH key file").set_input_files([])
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "secrets")).to_contain_text("not a valid secret id")
    assert secret not in ui_page.locator("#options").inner_text()
    assert fake_api.api_requests("/api/v1/build") == []
    # the API's refusal of a secret is shown beside the secrets, naming no value
    fake_api.refuse_next_build(
        400, "InvalidRequest", "secrets: needs the buildkit engine, which this deployment does not allow"
    )
    ui_page.get_by_label("Secret 1 id").fill("token")
    ui_page.get_by_role("button", name="Build it!").click()
    expect(error_of(ui_page, "secrets")).to_have_text("needs the buildkit engine, which this deployment does not allow")
    assert secret not in ui_page.locator("#options").inner_text()
