"""Each source kind builds, pushes, and the pushed image (pulled back with auth) runs — real daemon and registry."""
from __future__ import annotations

import docker
import pytest

from chalicelib import jobstore
from chalicelib.jobs import Phase
from tests.docker import jobkit
from tests.docker.conftest import pull_and_run

pytestmark = pytest.mark.docker


def _assert_not_on_host(api: docker.APIClient, image: str) -> None:
    assert api.images(name=image) == [], "the pushed tag must be removed from the build host"


def test_dockerfile_source_builds_pushes_and_runs(make_worker, registry, base_image, docker_api, test_password):
    image = jobkit.image_for(registry.host, "dockerfile")
    job_id = jobkit.submit(
        image,
        dockerfile=f"FROM {base_image}\nCMD [\"echo\", \"hello from boatyard\"]\n",
        username=registry.username,
        password=test_password,
    )
    results = jobkit.run_until_terminal(make_worker(), job_id)
    job = jobstore.get_job(job_id)
    assert job.status_word == "Finished", job.status_word
    assert job.phase == Phase.FINISHED and job.attempt == 1
    assert job.image_digest and job.image_digest.startswith("sha256:")
    assert results[-1].digest == job.image_digest
    logs = jobkit.full_log(job_id)
    assert "Step 1/2 : FROM " + base_image in logs
    assert job.image_digest in logs
    assert test_password not in logs
    _assert_not_on_host(docker_api, image)
    assert pull_and_run(docker_api, image, registry) == "hello from boatyard\n"
