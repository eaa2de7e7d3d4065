"""Each source kind builds, pushes, and the pushed image (pulled back with auth) runs — real daemon and registry."""

from __future__ import annotations

import docker
import pytest

from chalicelib.domain.jobs import Phase
from tests.support import worker_jobs
from tests.support.archives import make_tar
from tests.support.images import pull_and_run
from tests.support.services import stores

pytestmark = pytest.mark.docker


def _assert_not_on_host(api: docker.APIClient, image: str) -> None:
    assert api.images(name=image) == [], "the pushed tag must be removed from the build host"


def test_dockerfile_source_builds_pushes_and_runs(make_worker, registry, base_image, docker_api, test_password):
    image = worker_jobs.image_for(registry.host, "dockerfile")
    job_id = worker_jobs.submit(
        image,
        dockerfile=f'FROM {base_image}\nCMD ["echo", "hello from boatyard"]\n',
        username=registry.username,
        password=test_password,
    )
    results = worker_jobs.run_until_terminal(make_worker(), job_id)
    job = stores().jobs.get_job(job_id)
    assert job.status_word == "Finished", job.status_word
    assert job.phase == Phase.FINISHED and job.attempt == 1
    assert job.image_digest and job.image_digest.startswith("sha256:")
    assert results[-1].digest == job.image_digest
    logs = worker_jobs.full_log(job_id)
    # FROM, the owner's cache-scope ARG (docs/security.md), CMD, then the automatic OCI labels
    assert "Step 1/4 : FROM " + base_image in logs
    assert "Step 2/4 : ARG BOATYARD_CACHE_SCOPE=" in logs
    assert "LABEL org.opencontainers.image.created=" in logs
    assert job.image_digest in logs
    assert test_password not in logs
    _assert_not_on_host(docker_api, image)
    assert pull_and_run(docker_api, registry, image) == "hello from boatyard\n"


def test_tar_url_source_from_a_local_server(
    make_worker, registry, base_image, docker_api, archive_server, test_password
):
    image = worker_jobs.image_for(registry.host, "tarurl")
    archive = make_tar(
        {
            "Dockerfile": f'FROM {base_image}\nCOPY greeting.txt /greeting.txt\nCMD ["cat", "/greeting.txt"]\n',
            "greeting.txt": "from a tarball URL\n",
        }
    )
    url = archive_server.add_file(f"ctx-{image.rsplit('-', 1)[1]}.tar.gz", archive)
    job_id = worker_jobs.submit(image, tar_url=url, username=registry.username, password=test_password)
    worker_jobs.run_until_terminal(make_worker(), job_id)
    assert worker_jobs.status(job_id) == "Finished", worker_jobs.full_log(job_id)
    assert pull_and_run(docker_api, registry, image) == "from a tarball URL\n"


def test_github_source_strips_the_top_folder(
    make_worker, registry, base_image, docker_api, archive_server, test_password
):
    image = worker_jobs.image_for(registry.host, "github")
    repo = image.rsplit("/", 1)[1].split(":")[0]
    archive_server.add_repo(
        "octo",
        repo,
        "v1.2.0",
        {
            "Dockerfile": f'FROM {base_image}\nCOPY app/message /message\nCMD ["cat", "/message"]\n',
            "app/message": "built from GitHub\n",
        },
    )
    job_id = worker_jobs.submit(
        image, github=("octo", repo, "v1.2.0"), username=registry.username, password=test_password
    )
    worker_jobs.run_until_terminal(make_worker(), job_id)
    assert worker_jobs.status(job_id) == "Finished", worker_jobs.full_log(job_id)
    assert pull_and_run(docker_api, registry, image) == "built from GitHub\n"


def test_uploaded_plain_tar_with_run_step(make_worker, registry, base_image, docker_api, test_password):
    image = worker_jobs.image_for(registry.host, "upload")
    archive = make_tar(
        {
            "Dockerfile": f'FROM {base_image}\nCOPY data.txt /data.txt\nRUN wc -l < /data.txt > /count\nCMD ["cat", "/count"]\n',
            "data.txt": "a\nb\nc\n",
        },
        gz=False,
    )
    job_id = worker_jobs.submit(image, archive=archive, username=registry.username, password=test_password)
    worker_jobs.run_until_terminal(make_worker(), job_id)
    assert worker_jobs.status(job_id) == "Finished", worker_jobs.full_log(job_id)
    assert pull_and_run(docker_api, registry, image).strip() == "3"


def test_failing_run_step_fails_with_dockers_message(make_worker, registry, base_image, docker_api, test_password):
    image = worker_jobs.image_for(registry.host, "exit3")
    job_id = worker_jobs.submit(
        image,
        dockerfile=f"FROM {base_image}\nRUN echo before && exit 3\n",
        username=registry.username,
        password=test_password,
    )
    results = worker_jobs.run_until_terminal(make_worker(), job_id)
    expected = "The command '/bin/sh -c echo before && exit 3' returned a non-zero code: 3"
    assert worker_jobs.status(job_id) == f"Failed: {expected}"
    logs = worker_jobs.full_log(job_id)
    assert "before\n" in logs and expected in logs
    assert logs.rstrip("\n").endswith(f"[boatyard] Failed: {expected}")  # the reason is the last log line
    assert results[-1].outcome.value == "failed"
    assert docker_api.images(name=image) == []


def test_exit_3_status_matches_the_seed_words(make_worker, registry, base_image, test_password):
    job_id = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "seedexit"),
        dockerfile=f"FROM {base_image}\nRUN exit 3\n",
        username=registry.username,
        password=test_password,
    )
    worker_jobs.run_until_terminal(make_worker(), job_id)
    assert worker_jobs.status(job_id) == "Failed: The command '/bin/sh -c exit 3' returned a non-zero code: 3"


def test_wrong_registry_password_fails_with_the_registrys_message(make_worker, registry, base_image, docker_api):
    wrong = "definitely-Wrong-pw-5521"
    image = worker_jobs.image_for(registry.host, "badauth")
    job_id = worker_jobs.submit(
        image, dockerfile=f'FROM {base_image}\nCMD ["true"]\n', username=registry.username, password=wrong
    )
    worker_jobs.run_until_terminal(make_worker(), job_id)
    job = stores().jobs.get_job(job_id)
    assert job.phase == Phase.FAILED
    assert job.status_word.startswith("Failed: ") and "unauthorized" in job.status_word.lower(), job.status_word
    logs = worker_jobs.full_log(job_id)
    assert "unauthorized" in logs.lower()
    assert wrong not in logs and wrong not in str(job.to_item())
    assert docker_api.images(name=image) == [], "a built but unpushed tag is removed too"
