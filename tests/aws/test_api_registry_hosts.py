"""The API refuses image names on private registry hosts unless the local-stack setting allows them; so does the worker."""

from __future__ import annotations

import pytest

from tests.aws.api_helpers import post_json
from tests.support import worker_jobs
from tests.support.probes import run_once
from tests.support.services import api_client, reconfigure, stores
from worker.job.loop import Worker
from worker.job.runner import Outcome


@pytest.fixture
def strict_client(aws_env, monkeypatch):
    """The API as deployed: BOATYARD_ALLOW_PRIVATE_REGISTRIES unset."""
    monkeypatch.delenv("BOATYARD_ALLOW_PRIVATE_REGISTRIES", raising=False)
    reconfigure()
    with api_client() as test_client:
        yield test_client


@pytest.mark.parametrize(
    "image",
    ["127.0.0.1:5000/x", "localhost:2375/x", "10.0.0.5:443/x", "[::1]:5000/x", "169.254.169.254/x", "100.64.0.1/x"],
)
def test_private_registry_is_a_400_naming_image_name(strict_client, image):
    answer = post_json(strict_client, {"image_name": image, "dockerfile": "FROM busybox\n"})
    assert answer.status_code == 400, answer.body
    body = answer.json_body
    assert body["Code"] == "InvalidRequest" and body["Message"].startswith("image_name: registry host ")


def test_public_registry_is_accepted(strict_client):
    answer = post_json(strict_client, {"image_name": "registry.example.com/team/app:1", "dockerfile": "FROM busybox\n"})
    assert answer.status_code == 202, answer.body


def test_the_local_stack_setting_allows_loopback_registries(client):
    answer = post_json(client, {"image_name": "127.0.0.1:5000/team/app:1", "dockerfile": "FROM busybox\n"})
    assert answer.status_code == 202, answer.body


def test_the_worker_refuses_a_private_registry_that_got_past_the_api(aws_env, monkeypatch):
    worker_jobs.set_env(
        monkeypatch, BOATYARD_ALLOW_PRIVATE_REGISTRIES="false", DOCKER_HOST="unix:///nonexistent/docker.sock"
    )
    job_id = worker_jobs.submit("10.0.0.5:5000/team/app:1", dockerfile="FROM busybox\n")
    worker = Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600)
    try:
        [result] = run_once(worker, wait_seconds=1)
    finally:
        worker.shutdown(grace_seconds=2)
    assert result.outcome == Outcome.FAILED
    assert worker_jobs.status(job_id) == (
        "Failed: registry host 10.0.0.5 is a private address; builds push only to registries on public addresses"
    )
