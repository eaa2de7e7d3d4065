"""Nothing of a job's registry credentials enters its build: the pushed image's whole filesystem (including what
its RUN step could see: environment, every process's environ, /etc, the file list), its config and its history
are searched for the password (issue 17 §4)."""

from __future__ import annotations

import base64
import uuid

import pytest

from tests.support import faults, worker_jobs

pytestmark = pytest.mark.docker

CAPTURE = (
    "RUN env > /captured-env; cat /proc/[0-9]*/environ > /captured-procenv 2>/dev/null; "
    "cat /proc/[0-9]*/cmdline > /captured-cmdline 2>/dev/null; cp -r /etc /captured-etc; "
    "ls -laR / > /captured-files 2>/dev/null; mount > /captured-mounts 2>/dev/null; true\n"
)


def test_a_finished_build_holds_no_trace_of_the_password(make_worker, registry, base_image, docker_api, test_password):
    image = worker_jobs.image_for(registry.host, "nosecret")
    job_id = worker_jobs.submit(
        image,
        dockerfile=f"FROM {base_image}\nRUN echo {uuid.uuid4().hex}\n{CAPTURE}",
        username=registry.username,
        password=test_password,
    )
    worker_jobs.run_until_terminal(make_worker(), job_id)
    assert worker_jobs.status(job_id) == "Finished", worker_jobs.full_log(job_id)
    repository, _, tag = image.rpartition(":")
    for message in docker_api.pull(repository, tag=tag, auth_config=registry.auth_config, stream=True, decode=True):
        assert "error" not in message, message
    try:
        saved = b"".join(docker_api.get_image(image))  # docker save: every layer, the config with env and history
        config = docker_api.inspect_image(image)
        history = docker_api.history(image)
    finally:
        docker_api.remove_image(image)
    assert b"captured-procenv" in saved and len(saved) > 100_000, "the saved image must hold the captured files"
    basic = base64.b64encode(f"{registry.username}:{test_password}".encode())
    assert faults.find_secret(saved, test_password) == []
    assert basic not in saved and base64.b64encode(test_password.encode()) not in saved
    assert faults.find_secret(repr(config), test_password) == []
    assert faults.find_secret(repr(history), test_password) == []
    assert test_password not in worker_jobs.full_log(job_id)
