"""A private GitHub repository built by the worker with the job's sealed github_token (real daemon and registry,
a local fake of GitHub's REST API serving a real archive in GitHub's layout)."""

from __future__ import annotations

import uuid

import pytest

from tests.support import worker_jobs
from tests.support.images import pull_and_run
from tests.support.services import stores

pytestmark = pytest.mark.docker


def test_private_github_repo_builds_with_the_token_and_reports_its_commit(
    make_worker, registry, base_image, docker_api, archive_server, test_password, monkeypatch
):
    worker_jobs.set_env(monkeypatch, BOATYARD_GITHUB_API_BASE=archive_server.base_url)
    token = "ghp_" + uuid.uuid4().hex
    repo = f"private-{uuid.uuid4().hex[:8]}"
    commit = archive_server.add_private_repo(
        "octo",
        repo,
        "main",
        {
            "Dockerfile": f'FROM {base_image}\nRUN echo fetched with $(echo {token} | wc -c) chars\nCMD ["echo", "private"]\n',
        },
        token,
    )
    image = worker_jobs.image_for(registry.host, "private")
    job_id = worker_jobs.submit(
        image, github=("octo", repo, "main"), username=registry.username, password=test_password, source_token=token
    )
    worker_jobs.run_until_terminal(make_worker(), job_id)
    logs = worker_jobs.full_log(job_id)
    job = stores().jobs.get_job(job_id)
    assert job.status_word == "Finished", logs
    assert job.status_body()["Commit"] == commit  # the branch resolved to the commit the archive names
    assert token not in logs and "[redacted]" in logs  # the Dockerfile echoed it; the log hides it
    assert pull_and_run(docker_api, registry, image) == "private\n"


def test_private_github_repo_with_a_bad_token_fails_saying_so(make_worker, registry, archive_server, monkeypatch):
    worker_jobs.set_env(monkeypatch, BOATYARD_GITHUB_API_BASE=archive_server.base_url)
    repo = f"private-{uuid.uuid4().hex[:8]}"
    archive_server.add_private_repo("octo", repo, "main", {"Dockerfile": "FROM scratch\n"}, "ghp_right")
    job_id = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "badtoken"), github=("octo", repo, "main"), source_token="ghp_wrong"
    )
    worker_jobs.run_until_terminal(make_worker(), job_id)
    status = worker_jobs.status(job_id)
    assert status.startswith("Failed: GitHub refused the github_token (401"), status
    assert "ghp_wrong" not in worker_jobs.full_log(job_id)


@pytest.mark.parametrize("host", ["gitlab", "bitbucket"])
def test_gitlab_and_bitbucket_private_repos_build(
    host, make_worker, registry, base_image, docker_api, archive_server, test_password, monkeypatch
):
    from chalicelib.domain.jobs import SourceKind

    worker_jobs.set_env(
        monkeypatch, BOATYARD_GITLAB_BASE=archive_server.base_url, BOATYARD_BITBUCKET_BASE=archive_server.base_url
    )
    secret = f"app-pw-{uuid.uuid4().hex}"
    name = f"app-{uuid.uuid4().hex[:8]}"
    files = {"sub/Dockerfile": f'FROM {base_image}\nCMD ["echo", "from {host}"]\n'}
    if host == "gitlab":
        commit = archive_server.add_gitlab_project(f"group/{name}", "release/2.0", files, token=secret)
        hosted = (SourceKind.GITLAB, {"gitlab_project": f"group/{name}", "gitlab_ref": "release/2.0"})
        user = ""
    else:
        commit = archive_server.add_bitbucket_repo("team", name, "v2", files, "builder", secret)
        hosted = (SourceKind.BITBUCKET, {"bitbucket_workspace": "team", "bitbucket_repo": name, "bitbucket_ref": "v2"})
        user = "builder"
    image = worker_jobs.image_for(registry.host, host)
    job_id = worker_jobs.submit(
        image,
        source=hosted,
        source_token=secret,
        token_user=user,
        username=registry.username,
        password=test_password,
        options={"context_path": "sub"},
    )
    worker_jobs.run_until_terminal(make_worker(), job_id)
    logs = worker_jobs.full_log(job_id)
    job = stores().jobs.get_job(job_id)
    assert job.status_word == "Finished", logs
    assert job.status_body()["Commit"] == commit and job.status_body()["Source"] == host
    assert secret not in logs
    assert pull_and_run(docker_api, registry, image) == f"from {host}\n"


def test_registry_auths_let_a_build_pull_a_private_base_from_another_registry(
    make_worker, registry, base_image, docker_api, test_password
):
    """The base is on a registry host the push credentials do not cover (``localhost:<port>`` is another
    auth key than ``127.0.0.1:<port>``): it pulls only with the job's ``registry_auths`` for that host."""
    other = base_image.replace("127.0.0.1:", "localhost:", 1)
    assert other != base_image
    dockerfile = f'FROM {other}\nCMD ["echo", "private base"]\n'
    host = other.split("/", 1)[0]
    denied = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "nobaseauth"),
        dockerfile=dockerfile,
        username=registry.username,
        password=test_password,
    )
    worker_jobs.run_until_terminal(make_worker(), denied)
    reason = worker_jobs.status(denied)
    assert reason.startswith("Failed:") and ("auth" in reason.lower() or "denied" in reason.lower()), reason
    image = worker_jobs.image_for(registry.host, "baseauth")
    allowed = worker_jobs.submit(
        image,
        dockerfile=dockerfile,
        username=registry.username,
        password=test_password,
        registry_auths={host: {"username": registry.username, "password": test_password}},
    )
    worker_jobs.run_until_terminal(make_worker(), allowed)
    logs = worker_jobs.full_log(allowed)
    assert worker_jobs.status(allowed) == "Finished", logs
    assert test_password not in logs
    assert pull_and_run(docker_api, registry, image) == "private base\n"
