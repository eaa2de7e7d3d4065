"""Secrets beside the push password (registry_auths, github_token): validated without echoing them, sealed
in one plaintext, redacted everywhere; and private GitHub repositories fetched with the token from a
local fake of GitHub's REST API (real sockets, real archives in GitHub's layout)."""

from __future__ import annotations

import io
import time

import pytest

from chalicelib.api.validation import validate_build
from chalicelib.domain.errors import BuildFailed, InvalidRequest
from chalicelib.domain.settings import load_settings
from chalicelib.stores.sealing import Credentials, sealed_json
from worker.context.archive import ContextLimits
from worker.job.control import JobControl
from worker.redact import Redactor
from worker.sources import github

SETTINGS = load_settings({})
GH = {"image_name": "u/i", "github_username": "octo", "github_reponame": "private", "github_tag": "main"}
SECRET = "s3cr3t-Base-Pw!"
TOKEN = "ghp_" + "Z" * 36


def test_registry_auths_and_token_are_kept_and_never_shown():
    request = validate_build(
        {**GH, "registry_auths": {"Ghcr.io": {"username": "me", "password": SECRET}}, "github_token": TOKEN}, SETTINGS
    )
    credentials = request.credentials
    assert credentials.registry_auths == {"ghcr.io": {"username": "me", "password": SECRET}}
    assert credentials.source_token == TOKEN
    assert SECRET not in repr(request) and TOKEN not in repr(request)
    assert credentials.secret_pairs() == [("me", SECRET), ("x-access-token", TOKEN)]
    assert credentials.to_seal and not credentials.present


def test_sealed_plaintext_leaves_out_empty_extras():
    assert sealed_json(Credentials("u", "p")) == '{"username": "u", "password": "p", "email": ""}'


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"registry_auths": ["ghcr.io"]}, "registry_auths"),
        ({"registry_auths": {"not a host": {"username": "u", "password": SECRET}}}, "registry_auths"),
        ({"registry_auths": {"ghcr.io": {"username": "u"}}}, "registry_auths"),
        ({"registry_auths": {"ghcr.io": {"username": "u", "password": SECRET, "token": "x"}}}, "registry_auths"),
        ({"registry_auths": {"ghcr.io": {"username": "u", "password": SECRET + "\n"}}}, "registry_auths"),
        ({"registry_auths": {"ghcr.io": {"username": "", "password": SECRET}}}, "registry_auths"),
        (
            {"registry_auths": {f"r{i}.example": {"username": "u", "password": SECRET} for i in range(9)}},
            "registry_auths",
        ),
        (
            {"registry_auths": {f"r{i}.example": {"username": "u", "password": SECRET * 60} for i in range(8)}},
            "registry_auths",
        ),
        ({"github_token": "has space" + SECRET}, "github_token"),
        ({"github_token": 12345}, "github_token"),
        ({"github_token": "t" * 256}, "github_token"),
    ],
)
def test_bad_secret_fields_are_400_without_echo(fields, field):
    with pytest.raises(InvalidRequest) as caught:
        validate_build({**GH, **fields}, SETTINGS)
    assert caught.value.field == field
    assert SECRET not in caught.value.message


def test_github_token_is_only_for_a_github_source():
    with pytest.raises(InvalidRequest) as caught:
        validate_build({"image_name": "u/i", "tar_url": "https://e.com/a.tgz", "github_token": TOKEN}, SETTINGS)
    assert caught.value.field == "github_token" and TOKEN not in caught.value.message


def test_every_secret_of_a_job_is_redacted():
    credentials = Credentials(
        "pusher", "push-Pw-123", registry_auths={"ghcr.io": {"username": "me", "password": SECRET}}, source_token=TOKEN
    )
    redact = Redactor.for_pairs(credentials.secret_pairs())
    text = f"push-Pw-123 {SECRET} {TOKEN} Authorization: Bearer {TOKEN}"
    assert redact(text) == "[redacted] [redacted] [redacted] Authorization: Bearer [redacted]"


# --- private GitHub repositories through the fake REST API --------------------------------------

LIMITS = ContextLimits(max_bytes=10 * 1024 * 1024, max_files=100, max_ratio=200)


@pytest.fixture
def api_settings(archive_server):
    return load_settings({"BOATYARD_GITHUB_API_BASE": archive_server.base_url, "BOATYARD_ALLOW_PRIVATE_URLS": "true"})


def _fetch(settings, repo: str, ref: str, token: str):
    out = io.BytesIO()
    return github.fetch("octo", repo, ref, out, LIMITS, settings, JobControl(), token=token), out


def test_private_repo_is_fetched_with_the_token_which_never_follows_the_redirect(archive_server, api_settings):
    repo = f"private-{time.monotonic_ns()}"
    commit = archive_server.add_private_repo("octo", repo, "main", {"Dockerfile": "FROM x\n"}, TOKEN)
    stats, _ = _fetch(api_settings, repo, "main", TOKEN)
    assert stats.commit == commit  # the ref resolved to the archive's commit
    api_path = f"/repos/octo/{repo}/tarball/main"
    assert archive_server.authorizations[api_path] == f"Bearer {TOKEN}"
    assert archive_server.authorizations[f"/_codeload{api_path}"] == ""  # another host: no token sent there


def test_bad_token_missing_repo_and_rate_limit_say_why(archive_server, api_settings):
    repo = f"private-{time.monotonic_ns()}"
    archive_server.add_private_repo("octo", repo, "main", {"Dockerfile": "FROM x\n"}, TOKEN)
    with pytest.raises(BuildFailed) as caught:
        _fetch(api_settings, repo, "main", "ghp_wrong")
    assert "401" in caught.value.message and "github_token" in caught.value.message
    with pytest.raises(BuildFailed) as caught:
        _fetch(api_settings, repo, "no-such-branch", TOKEN)
    assert "not found, or the github_token cannot read it" in caught.value.message
    archive_server.rate_limit(1767225600)  # 2026-01-01T00:00:00Z
    try:
        with pytest.raises(BuildFailed) as caught:
            _fetch(api_settings, repo, "main", TOKEN)
    finally:
        archive_server.rate_limit(None)
    assert "rate limit" in caught.value.message and "until 2026-01-01T00:00:00Z" in caught.value.message
    assert TOKEN not in caught.value.message


# --- GitLab and Bitbucket ----------------------------------------------------------------------


@pytest.fixture
def host_settings(archive_server):
    return load_settings(
        {
            "BOATYARD_GITLAB_BASE": archive_server.base_url,
            "BOATYARD_BITBUCKET_BASE": archive_server.base_url,
            "BOATYARD_ALLOW_PRIVATE_URLS": "true",
        }
    )


def _members(out: io.BytesIO) -> set[str]:
    import tarfile

    out.seek(0)
    with tarfile.open(fileobj=out, mode="r:") as tar:
        return set(tar.getnames())


def test_gitlab_and_bitbucket_fields_are_validated():
    gitlab = validate_build(
        {"image_name": "u/i", "gitlab_project": "group/sub/app", "gitlab_ref": "a" * 40, "gitlab_token": TOKEN},
        SETTINGS,
    )
    assert gitlab.fields == {"gitlab_project": "group/sub/app", "gitlab_ref": "a" * 40}
    assert gitlab.credentials.source_token == TOKEN and TOKEN not in repr(gitlab)
    bitbucket = validate_build(
        {
            "image_name": "u/i",
            "bitbucket_workspace": "team",
            "bitbucket_repo": "app",
            "bitbucket_ref": "release/1.0",
            "bitbucket_username": "me",
            "bitbucket_app_password": SECRET,
        },
        SETTINGS,
    )
    assert bitbucket.fields == {"bitbucket_workspace": "team", "bitbucket_repo": "app", "bitbucket_ref": "release/1.0"}
    assert (bitbucket.credentials.source_user, bitbucket.credentials.source_token) == ("me", SECRET)
    assert (
        validate_build({"image_name": "u/i", "gitlab_project": "42", "gitlab_ref": "main"}, SETTINGS).fields[
            "gitlab_project"
        ]
        == "42"
    )


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"gitlab_project": "group/app"}, "gitlab_ref"),
        ({"gitlab_project": "../etc", "gitlab_ref": "main"}, "gitlab_project"),
        ({"gitlab_project": "group/app", "gitlab_ref": "a..b"}, "gitlab_ref"),
        ({"gitlab_project": "single", "gitlab_ref": "main"}, "gitlab_project"),
        ({"bitbucket_workspace": "team", "bitbucket_repo": "app"}, "bitbucket_ref"),
        ({"bitbucket_workspace": "te am", "bitbucket_repo": "app", "bitbucket_ref": "main"}, "bitbucket_workspace"),
        ({"bitbucket_workspace": "team", "bitbucket_repo": "..", "bitbucket_ref": "main"}, "bitbucket_repo"),
        (
            {
                "bitbucket_workspace": "team",
                "bitbucket_repo": "app",
                "bitbucket_ref": "main",
                "bitbucket_app_password": SECRET,
            },
            "bitbucket_username",
        ),
        (
            {
                "bitbucket_workspace": "team",
                "bitbucket_repo": "app",
                "bitbucket_ref": "main",
                "bitbucket_username": "me",
            },
            "bitbucket_app_password",
        ),
        ({"gitlab_project": "group/app", "gitlab_ref": "main", "github_token": TOKEN}, "github_token"),
        (
            {"gitlab_project": "group/app", "gitlab_ref": "main", "bitbucket_app_password": SECRET},
            "bitbucket_app_password",
        ),
        ({"tar_url": "https://e.com/a.tgz", "gitlab_token": TOKEN}, "gitlab_token"),
        ({"gitlab_project": "group/app", "gitlab_ref": "main", "github_username": "octo"}, "source"),
    ],
)
def test_bad_gitlab_and_bitbucket_fields_are_400(fields, field):
    with pytest.raises(InvalidRequest) as caught:
        validate_build({"image_name": "u/i", **fields}, SETTINGS)
    assert caught.value.field == field
    assert SECRET not in caught.value.message and TOKEN not in caught.value.message


def test_gitlab_public_and_private_projects(archive_server, host_settings):
    from worker.sources import githosts

    name = f"group/app-{time.monotonic_ns()}"
    commit = archive_server.add_gitlab_project(name, "v1.0", {"Dockerfile": "FROM x\n", "src/a": "a"})
    out = io.BytesIO()
    stats = githosts.fetch_gitlab(name, "v1.0", "", out, LIMITS, host_settings, JobControl())
    assert stats.commit == commit and _members(out) == {"Dockerfile", "src/a"}
    private = f"group/secret-{time.monotonic_ns()}"
    archive_server.add_gitlab_project(private, "main", {"Dockerfile": "FROM x\n"}, token=TOKEN)
    githosts.fetch_gitlab(private, "main", TOKEN, io.BytesIO(), LIMITS, host_settings, JobControl())
    with pytest.raises(BuildFailed) as caught:
        githosts.fetch_gitlab(private, "main", "", io.BytesIO(), LIMITS, host_settings, JobControl())
    assert "GitLab needs credentials" in caught.value.message and "gitlab_token" in caught.value.message
    with pytest.raises(BuildFailed) as caught:
        githosts.fetch_gitlab(private, "main", "glpat-wrong", io.BytesIO(), LIMITS, host_settings, JobControl())
    assert "refused the gitlab_token (401)" in caught.value.message
    with pytest.raises(BuildFailed) as caught:
        githosts.fetch_gitlab(private, "no-such-ref", TOKEN, io.BytesIO(), LIMITS, host_settings, JobControl())
    assert "not found" in caught.value.message and TOKEN not in caught.value.message


def test_bitbucket_public_and_private_repos_follow_the_redirect_without_credentials(archive_server, host_settings):
    from worker.sources import githosts

    repo = f"app-{time.monotonic_ns()}"
    commit = archive_server.add_bitbucket_repo("team", repo, "main", {"Dockerfile": "FROM x\n"}, "me", SECRET)
    out = io.BytesIO()
    stats = githosts.fetch_bitbucket("team", repo, "main", "me", SECRET, out, LIMITS, host_settings, JobControl())
    assert stats.commit == commit and _members(out) == {"Dockerfile"}
    assert archive_server.authorizations[f"/team/{repo}/get/main.tar.gz"].startswith("Basic ")
    assert archive_server.authorizations[f"/_bbuploads/team/{repo}/{commit}.tar.gz"] == ""  # not sent to the other host
    with pytest.raises(BuildFailed) as caught:
        githosts.fetch_bitbucket("team", repo, "main", "me", "wrong", io.BytesIO(), LIMITS, host_settings, JobControl())
    assert "refused the bitbucket_app_password (401)" in caught.value.message
    with pytest.raises(BuildFailed) as caught:
        githosts.fetch_bitbucket("team", "nope", "main", "", "", io.BytesIO(), LIMITS, host_settings, JobControl())
    assert "Bitbucket repository or ref team/nope at main not found" in caught.value.message
