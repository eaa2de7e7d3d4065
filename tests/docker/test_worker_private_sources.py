"""A private GitHub repository built by the worker with the job's sealed github_token (real daemon and registry,
a local fake of GitHub's REST API serving a real archive in GitHub's layout)."""
from __future__ import annotations

import uuid

import pytest

from chalicelib import jobstore
from tests.docker import jobkit
from tests.docker.conftest import pull_and_run

pytestmark = pytest.mark.docker


def test_private_github_repo_builds_with_the_token_and_reports_its_commit(
    make_worker, registry, base_image, docker_api, archive_server, test_password, monkeypatch
):
    jobkit.set_env(monkeypatch, BOATYARD_GITHUB_API_BASE=archive_server.base_url)
    token = "ghp_" + uuid.uuid4().hex
    repo = f"private-{uuid.uuid4().hex[:8]}"
    commit = archive_server.add_private_repo("octo", repo, "main", {
        "Dockerfile": f"FROM {base_image}\nRUN echo fetched with $(echo {token} | wc -c) chars\nCMD [\"echo\", \"private\"]\n",
    }, token)
    image = jobkit.image_for(registry.host, "private")
    job_id = jobkit.submit(image, github=("octo", repo, "main"), username=registry.username, password=test_password,
                           github_token=token)
    jobkit.run_until_terminal(make_worker(), job_id)
    logs = jobkit.full_log(job_id)
    job = jobstore.get_job(job_id)
    assert job.status_word == "Finished", logs
    assert job.status_body()["Commit"] == commit  # the branch resolved to the commit the archive names
    assert token not in logs and "[redacted]" in logs  # the Dockerfile echoed it; the log hides it
    assert pull_and_run(docker_api, image, registry) == "private\n"


def test_private_github_repo_with_a_bad_token_fails_saying_so(make_worker, registry, archive_server, monkeypatch):
    jobkit.set_env(monkeypatch, BOATYARD_GITHUB_API_BASE=archive_server.base_url)
    repo = f"private-{uuid.uuid4().hex[:8]}"
    archive_server.add_private_repo("octo", repo, "main", {"Dockerfile": "FROM scratch\n"}, "ghp_right")
    job_id = jobkit.submit(jobkit.image_for(registry.host, "badtoken"), github=("octo", repo, "main"),
                           github_token="ghp_wrong")
    jobkit.run_until_terminal(make_worker(), job_id)
    status = jobkit.status(job_id)
    assert status.startswith("Failed: GitHub refused the github_token (401"), status
    assert "ghp_wrong" not in jobkit.full_log(job_id)
