"""Build options on the real daemon and registry: build args, target, a Dockerfile in a subfolder, no_cache,
extra tags, automatic OCI labels, and the memory/CPU limits of RUN steps."""

from __future__ import annotations

import threading
import uuid

import pytest

from tests.support import worker_jobs
from tests.support.images import pull_and_run
from tests.support.services import stores

pytestmark = pytest.mark.docker

OCI = "org.opencontainers.image."


def _finished(make_worker, job_id: str) -> str:
    worker_jobs.run_until_terminal(make_worker(), job_id)
    logs = worker_jobs.full_log(job_id)
    assert worker_jobs.status(job_id) == "Finished", logs
    return logs


def _pull_labels(docker_api, registry, image: str) -> dict[str, str]:
    repository, _, tag = image.rpartition(":")
    for message in docker_api.pull(repository, tag=tag, auth_config=registry.auth_config, stream=True, decode=True):
        assert "error" not in message, message
    try:
        return docker_api.inspect_image(image)["Config"]["Labels"] or {}
    finally:
        docker_api.remove_image(image)


def test_build_arg_reaches_run_and_secret_looking_names_are_warned(
    make_worker, registry, base_image, docker_api, test_password
):
    image = worker_jobs.image_for(registry.host, "buildarg")
    dockerfile = (
        f'FROM {base_image}\nARG GREETING=unset\nARG NPM_TOKEN\nRUN echo "arg=$GREETING" > /out\nCMD ["cat", "/out"]\n'
    )
    job_id = worker_jobs.submit(
        image,
        dockerfile=dockerfile,
        username=registry.username,
        password=test_password,
        options={"build_args": {"GREETING": "hello-from-arg", "NPM_TOKEN": "t0k"}, "labels": {"com.example.team": "a"}},
    )
    logs = _finished(make_worker, job_id)
    assert "[boatyard] warning: the build arg NPM_TOKEN looks like a secret" in logs
    assert "GREETING" not in logs.split("warning")[1].split("\n")[0]  # only the secret-looking name is warned about
    labels = _pull_labels(docker_api, registry, image)
    assert labels["com.example.team"] == "a" and labels[OCI + "created"].endswith("Z")
    assert pull_and_run(docker_api, registry, image) == "arg=hello-from-arg\n"


def test_target_stops_at_its_stage(make_worker, registry, base_image, docker_api, test_password):
    image = worker_jobs.image_for(registry.host, "target")
    dockerfile = (
        f'FROM {base_image} AS first\nRUN echo first > /stage\nCMD ["cat", "/stage"]\n'
        f"FROM {base_image} AS second\nRUN exit 7\n"  # built only when target is ignored: the job would fail
    )
    job_id = worker_jobs.submit(
        image, dockerfile=dockerfile, username=registry.username, password=test_password, options={"target": "first"}
    )
    logs = _finished(make_worker, job_id)
    assert "exit 7" not in logs
    assert pull_and_run(docker_api, registry, image) == "first\n"


def test_dockerfile_in_a_subfolder_of_a_context_folder(
    make_worker, registry, base_image, docker_api, archive_server, test_password
):
    image = worker_jobs.image_for(registry.host, "subfolder")
    repo = image.rsplit("/", 1)[1].split(":")[0]
    archive_server.add_repo(
        "octo",
        repo,
        "v3.0.0",
        {
            "Dockerfile": "FROM scratch-never-built\n",
            "secret.env": "KEY=outside the context\n",
            "services/api/docker/Dockerfile": f'FROM {base_image}\nCOPY . /ctx\nCMD ["sh", "-c", "cd /ctx && find . | sort"]\n',
            "services/api/main.txt": "api\n",
        },
    )
    job_id = worker_jobs.submit(
        image,
        github=("octo", repo, "v3.0.0"),
        username=registry.username,
        password=test_password,
        options={"context_path": "services/api", "dockerfile_path": "docker/Dockerfile"},
    )
    _finished(make_worker, job_id)
    labels = _pull_labels(docker_api, registry, image)
    assert labels[OCI + "source"] == f"{archive_server.base_url}/octo/{repo}"
    assert labels[OCI + "revision"] == archive_server.commit_of("octo", repo, "v3.0.0")  # the archive's commit
    assert pull_and_run(docker_api, registry, image).split() == [".", "./docker", "./docker/Dockerfile", "./main.txt"]


def test_no_cache_rebuilds_what_the_cache_would_give(make_worker, registry, base_image, docker_api, test_password):
    dockerfile = f"FROM {base_image}\nRUN echo {uuid.uuid4().hex} > /marker\n"
    # the layer cache this test builds against: a job of the same owner (another owner's layers are never reused)
    warm = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "cache-warm"),
        dockerfile=dockerfile,
        username=registry.username,
        password=test_password,
    )
    _finished(make_worker, warm)
    fresh = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "nocache"),
        dockerfile=dockerfile,
        username=registry.username,
        password=test_password,
        options={"no_cache": True},
    )
    fresh_logs = _finished(make_worker, fresh)
    cached = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "cached"),
        dockerfile=dockerfile,
        username=registry.username,
        password=test_password,
    )
    cached_logs = _finished(make_worker, cached)
    assert "Using cache" in cached_logs  # without no_cache the warm layer is reused: the check below can fail
    assert "Using cache" not in fresh_logs and "Running in " in fresh_logs


def test_extra_tags_are_pushed_by_the_same_job_and_all_pullable(
    make_worker, registry, base_image, docker_api, test_password
):
    image = worker_jobs.image_for(registry.host, "tags", tag="v1")
    extra = f"extra-{uuid.uuid4().hex[:8]}"
    job_id = worker_jobs.submit(
        image,
        dockerfile=f'FROM {base_image}\nCMD ["echo", "tagged"]\n',
        username=registry.username,
        password=test_password,
        options={"tags": [extra, "v1"]},
    )
    logs = _finished(make_worker, job_id)
    job = stores().jobs.get_job(job_id)
    repository = image.rsplit(":", 1)[0]
    assert job.tag_digests == {extra: job.image_digest}  # the image_name's own tag is not pushed twice
    assert f"[boatyard] pushed {repository}:{extra} ({job.image_digest})" in logs
    assert job.status_body()["TagDigests"] == {extra: job.image_digest}
    assert docker_api.images(name=f"{repository}:{extra}") == []  # extra tags leave the build host too
    for ref in (image, f"{repository}:{extra}"):
        assert pull_and_run(docker_api, registry, ref) == "tagged\n"


def test_memory_and_cpus_limit_the_run_steps(make_worker, registry, base_image, docker_api, test_password):
    marker = uuid.uuid4().hex
    seen: dict[str, dict] = {}
    done = threading.Event()

    def watch() -> None:  # the RUN step's container, as the daemon created it
        while not done.is_set() and not seen:
            for container in docker_api.containers():
                if marker in container.get("Command", ""):
                    seen["host"] = docker_api.inspect_container(container["Id"])["HostConfig"]
            done.wait(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    image = worker_jobs.image_for(registry.host, "limits")
    dockerfile = f"FROM {base_image}\nRUN echo {marker}; grep MemTotal /proc/meminfo; sleep 3\n"
    job_id = worker_jobs.submit(
        image,
        dockerfile=dockerfile,
        username=registry.username,
        password=test_password,
        options={"memory": "64m", "cpus": 0.5},
    )
    try:
        _finished(make_worker, job_id)
    finally:
        done.set()
        watcher.join(5)
    assert seen, "the RUN step's container was never seen"
    assert seen["host"]["Memory"] == 64 * 1024**2 and seen["host"]["MemorySwap"] == 64 * 1024**2
    assert (seen["host"]["CpuQuota"], seen["host"]["CpuPeriod"]) == (50_000, 100_000)
