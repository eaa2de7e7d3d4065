"""The BuildKit engine against the real daemon and registry: cache mounts, secrets, parallel stages, failures,
cancel, per-owner caches, and a deployment that does not allow BuildKit."""

from __future__ import annotations

import os
import uuid

import pytest

from chalicelib.domain.jobs import Phase
from tests.support import worker_jobs
from tests.support.archives import make_tar
from tests.support.images import pull_and_run
from tests.support.services import stores
from tests.support.waiting import wait_until

pytestmark = pytest.mark.docker

CACHE_PROBE = (
    "RUN --mount=type=cache,target=/cache,id=deps sh -c "
    '\'if [ -f /cache/dep ]; then echo CACHE""-HIT $(cat /cache/dep); else echo CACHE""-MISS; echo {owner} > /cache/dep; fi\''
)


def _run(make_worker, image: str, dockerfile: str, registry, password: str, **kw) -> tuple[str, str]:
    job_id = worker_jobs.submit(image, dockerfile=dockerfile, username=registry.username, password=password, **kw)
    worker_jobs.run_until_terminal(make_worker(), job_id)
    return job_id, worker_jobs.full_log(job_id)


def _processes_running(marker: str, parent: int | None = None) -> list[int]:
    """Processes on this host (the daemon's too) whose command line holds ``marker`` (children of ``parent``)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as handle:
                if marker.encode() not in handle.read():
                    continue
            with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
                ppid = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if parent is None or ppid == parent:
            found.append(int(pid))
    return found


def test_cache_mount_builds_twice_and_the_second_hits_the_cache(make_worker, registry, base_image, test_password):
    cache_id = uuid.uuid4().hex[:8]  # a fresh cache for this test run
    body = CACHE_PROBE.replace("id=deps", f"id=deps-{cache_id}").format(owner="first")
    logs = []
    for attempt in (1, 2):
        dockerfile = (
            f"FROM {base_image}\nRUN echo build-{attempt}-{cache_id}\n{body}\n"  # step 2 differs: step 3 runs again
        )
        job_id, log = _run(
            make_worker, worker_jobs.image_for(registry.host, "bkcache"), dockerfile, registry, test_password
        )
        assert worker_jobs.status(job_id) == "Finished", log
        logs.append(log)
    assert "[boatyard] engine: buildkit (the Dockerfile uses BuildKit syntax: line 3 (RUN --mount))" in logs[0]
    assert "CACHE-MISS" in logs[0] and "CACHE-HIT" not in logs[0]
    assert "CACHE-HIT first" in logs[1], logs[1]
    assert "mount(s) keyed to this owner (cache id=anonymous/..., secret ids s" in logs[1]


def test_secret_is_readable_in_run_and_absent_from_image_and_logs(
    make_worker, registry, base_image, docker_api, test_password
):
    secret = f"bk-secret-{uuid.uuid4().hex}"
    image = worker_jobs.image_for(registry.host, "bksecret")
    dockerfile = (
        f"FROM {base_image}\nRUN echo {uuid.uuid4().hex[:8]}-run\n"  # unique per run: no step comes from an earlier run's cache
        "RUN --mount=type=secret,id=token cat /run/secrets/token && wc -c < /run/secrets/token > /token-length\n"
        "RUN --mount=type=secret,id=token,target=/tmp/t test -s /tmp/t && echo secret-was-there\n"
        'CMD ["cat", "/token-length"]\n'
    )
    job_id, log = _run(make_worker, image, dockerfile, registry, test_password, secrets={"token": secret})
    assert worker_jobs.status(job_id) == "Finished", log
    assert "secret-was-there" in log and "[redacted]" in log  # cat printed it; the log hides it
    assert secret not in log and test_password not in log
    assert secret not in str(stores().jobs.get_job(job_id).to_item())
    assert pull_and_run(docker_api, registry, image).strip() == str(len(secret))  # pulls, runs, removes
    repository, _, tag = image.rpartition(":")
    for message in docker_api.pull(repository, tag=tag, auth_config=registry.auth_config, stream=True, decode=True):
        assert "error" not in message, message
    try:
        saved = b"".join(docker_api.get_image(image))  # every layer tar, the config (with history)
        assert len(saved) > 100_000 and b"token-length" in saved
        assert secret.encode() not in saved
        assert "bk-secret" not in str(docker_api.inspect_image(image))
        assert "bk-secret" not in str(docker_api.history(image))
    finally:
        docker_api.remove_image(image)


def test_parallel_multistage_build(make_worker, registry, base_image, docker_api, test_password):
    image = worker_jobs.image_for(registry.host, "bkstages")
    nonce = uuid.uuid4().hex[:8]

    def stage(name: str, other: str) -> str:
        # each stage waits (up to 60 s) for the other to have started: only a parallel build can finish
        return (
            f"FROM {base_image} AS {name}\n"
            f"RUN --mount=type=cache,target=/sync,id=sync-{nonce},sharing=shared sh -c 'touch /sync/{name}; i=0; "
            f"while [ ! -f /sync/{other} ]; do i=$((i+1)); [ $i -gt 600 ] && exit 7; sleep 0.1; done; "
            f"echo {name} > /out'\n"
        )

    dockerfile = (
        stage("left", "right")
        + stage("right", "left")
        + f"FROM {base_image}\nCOPY --from=left /out /left\nCOPY --from=right /out /right\n"
        'CMD ["cat", "/left", "/right"]\n'
    )
    job_id, log = _run(make_worker, image, dockerfile, registry, test_password, engine="buildkit")
    assert worker_jobs.status(job_id) == "Finished", log
    assert "[boatyard] engine: buildkit (requested)" in log
    assert "[left 2/2] RUN" in log and "[right 2/2] RUN" in log
    assert pull_and_run(docker_api, registry, image) == "left\nright\n"


def test_buildkit_failure_gives_buildkits_reason(make_worker, registry, base_image, docker_api, test_password):
    image = worker_jobs.image_for(registry.host, "bkexit")
    job_id, log = _run(
        make_worker,
        image,
        f"FROM {base_image}\nRUN echo before && exit 3\n",
        registry,
        test_password,
        engine="buildkit",
    )
    status = worker_jobs.status(job_id)
    # Docker 20.10's BuildKit says "executor failed running [...]"; newer ones 'process "..." did not complete'
    assert status in (
        "Failed: executor failed running [/bin/sh -c echo before && exit 3]: exit code: 3",
        'Failed: process "/bin/sh -c echo before && exit 3" did not complete successfully: exit code: 3',
    ), status
    assert log.rstrip("\n").endswith("[boatyard] Failed: " + status[len("Failed: ") :])
    assert "before" in log
    assert docker_api.images(name=image) == []


def test_cancel_mid_build_leaves_nothing_running(make_worker, registry, base_image, test_password):
    marker = f"{700 + uuid.uuid1().int % 200}.{uuid.uuid4().int % 10**6}"  # a sleep only this build runs
    job_id = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "bkcancel"),
        dockerfile=f"FROM {base_image}\nRUN echo sleeping && sleep {marker}\n",
        username=registry.username,
        password=test_password,
        engine="buildkit",
    )
    worker = make_worker()
    [future] = worker.poll(wait_seconds=1)
    wait_until(lambda: "sleeping" in worker_jobs.full_log(job_id), 90, "the build to start")
    assert _processes_running(marker), "the RUN step should be running"
    assert _processes_running("--iidfile", parent=os.getpid()), "the worker runs the docker CLI"
    stores().jobs.fail(job_id, "cancelled by the user", target=Phase.CANCELLED)
    result = future.result(timeout=60)  # the heartbeat notices, the CLI's process group is killed
    assert result.outcome.value == "lost"
    assert worker_jobs.status(job_id) == "Cancelled"
    wait_until(lambda: not _processes_running(marker), 30, "the daemon to stop the RUN step")
    assert not _processes_running("--iidfile", parent=os.getpid()), "no docker build CLI of this worker is left"


def test_one_owners_cache_mount_is_not_visible_to_another(
    make_worker, registry, base_image, test_password, monkeypatch
):
    import worker.job.runner

    cache_id = f"shared-{uuid.uuid4().hex[:8]}"  # the same id in both owners' Dockerfiles
    owner = {"name": "alice"}
    monkeypatch.setattr(worker.job.runner, "owner_of", lambda job: owner["name"])

    def build(who: str) -> str:
        owner["name"] = who
        body = CACHE_PROBE.replace("id=deps", f"id={cache_id}").format(owner=who)
        dockerfile = f"FROM {base_image}\nRUN echo {who}-{uuid.uuid4().hex}\n{body}\n"
        job_id, log = _run(
            make_worker, worker_jobs.image_for(registry.host, "bkowner"), dockerfile, registry, test_password
        )
        assert worker_jobs.status(job_id) == "Finished", log
        return log

    assert "CACHE-MISS" in build("alice")
    bob = build("bob")
    assert "CACHE-MISS" in bob and "CACHE-HIT" not in bob, bob  # alice's cache did not feed bob's build
    assert "CACHE-HIT alice" in build("alice")  # while alice's own cache persists
    assert "CACHE-HIT bob" in build("bob")


def test_deployment_without_buildkit_refuses_a_mount_dockerfile_before_building(
    make_worker, registry, base_image, docker_api, test_password, monkeypatch
):
    worker_jobs.set_env(monkeypatch, BOATYARD_ALLOWED_ENGINES="classic")
    image = worker_jobs.image_for(registry.host, "bkrefused")
    dockerfile = f"FROM {base_image}\n# deps\nRUN --mount=type=cache,target=/root/.cache echo never-runs\n"
    job_id, log = _run(make_worker, image, dockerfile, registry, test_password)
    job = stores().jobs.get_job(job_id)
    assert job.phase == Phase.FAILED
    assert job.reason == (
        "the Dockerfile's line 3 (RUN --mount) needs BuildKit, and this deployment does not allow BuildKit builds "
        "(allowed engines: classic); build it where BuildKit is allowed or remove that line"
    )
    assert "never-runs" not in log and "Step 1/" not in log and "#1 " not in log  # no build was started
    assert log.rstrip("\n").endswith("[boatyard] Failed: " + job.reason)
    assert docker_api.images(name=image) == []


def test_a_step_that_read_one_owners_secret_is_not_served_from_cache_to_another(
    make_worker, registry, base_image, docker_api, test_password, monkeypatch
):
    import worker.job.runner

    owner = {"name": "alice"}
    monkeypatch.setattr(worker.job.runner, "owner_of", lambda job: owner["name"])
    nonce = uuid.uuid4().hex[:8]
    # the same Dockerfile for both: BuildKit does not key its cache on secret values
    dockerfile = f'FROM {base_image}\nRUN --mount=type=secret,id=tok cp /run/secrets/tok /copied-{nonce}\nCMD ["cat", "/copied-{nonce}"]\n'
    for who in ("alice", "bob"):
        owner["name"] = who
        image = worker_jobs.image_for(registry.host, f"bksec{who}")
        job_id, log = _run(
            make_worker, image, dockerfile, registry, test_password, secrets={"tok": f"{who}-private-{nonce}"}
        )
        assert worker_jobs.status(job_id) == "Finished", log
        assert pull_and_run(docker_api, registry, image) == f"{who}-private-{nonce}", f"{who} got another owner's layer"


def test_buildkit_pulls_bases_with_the_jobs_credentials_only(
    make_worker, registry, base_image, docker_api, test_password, monkeypatch, tmp_path
):
    import base64
    import json

    # the worker user's Docker config opens the registry; the base is on the host already
    token = base64.b64encode(f"{registry.username}:{test_password}".encode()).decode()
    (tmp_path / "config.json").write_text(json.dumps({"auths": {registry.host: {"auth": token}}}))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_api.images(name=base_image), "the private base is on the host"
    dockerfile = f"FROM {base_image}\nRUN echo built-{uuid.uuid4().hex}\n"
    anonymous, log = _run(
        make_worker, worker_jobs.image_for(registry.host, "bkanon"), dockerfile, registry, "", engine="buildkit"
    )
    job = stores().jobs.get_job(anonymous)
    assert job.phase == Phase.FAILED, log
    assert "[boatyard] BuildKit:" not in log and "RUN echo built-" not in log, log  # it stopped at FROM
    assert any(word in (job.reason or "").lower() for word in ("401", "unauthorized", "authoriz", "denied")), job.reason
    owner, log = _run(
        make_worker,
        worker_jobs.image_for(registry.host, "bkowner"),
        dockerfile,
        registry,
        test_password,
        engine="buildkit",
    )
    assert worker_jobs.status(owner) == "Finished", log


def test_a_dockerfile_off_the_root_is_detected_and_keyed_per_owner(
    make_worker, registry, base_image, test_password, monkeypatch
):
    import worker.job.runner

    owner = {"name": "alice"}
    monkeypatch.setattr(worker.job.runner, "owner_of", lambda job: owner["name"])
    cache_id = f"nested-{uuid.uuid4().hex[:8]}"

    def build(who: str) -> str:
        owner["name"] = who
        body = CACHE_PROBE.replace("id=deps", f"id={cache_id}").format(owner=who)
        archive = make_tar(
            {
                "Dockerfile": f"FROM {base_image}\nRUN echo the-root-dockerfile\n",  # plain: not the one built
                "build/docker/app.Dockerfile": f"FROM {base_image}\nRUN echo {who}-{uuid.uuid4().hex}\n{body}\n",
            }
        )
        job_id = worker_jobs.submit(
            worker_jobs.image_for(registry.host, "bknested"),
            archive=archive,
            username=registry.username,
            password=test_password,
            options={"dockerfile_path": "build/docker/app.Dockerfile"},
        )
        worker_jobs.run_until_terminal(make_worker(), job_id)
        log = worker_jobs.full_log(job_id)
        assert worker_jobs.status(job_id) == "Finished", log
        assert "[boatyard] engine: buildkit (the Dockerfile uses BuildKit syntax: line 3 (RUN --mount))" in log
        assert "the-root-dockerfile" not in log
        return log

    assert "CACHE-MISS" in build("alice")
    bob = build("bob")
    assert "CACHE-MISS" in bob and "CACHE-HIT" not in bob, bob  # alice's cache mount did not feed bob's build
    assert "cache id=bob/..." in bob
    assert "CACHE-HIT alice" in build("alice")
