"""Per-build limits on the real daemon: a fork bomb, a memory hog and a disk filler each fail their own build
with a clear reason while a well-behaved build running beside them on the same worker finishes."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import pytest

from chalicelib.domain.settings import MiB
from tests.support import worker_jobs
from tests.support.archives import make_tar
from tests.support.services import stores

pytestmark = pytest.mark.docker

HOSTILE = {
    # every process forks two more, forever; the nproc limit stops the forks, the step then ends
    "fork-bomb": (
        "RUN bomb() { bomb | bomb & }; bomb; sleep 5; exit 1\n",
        "can't fork",
        "returned a non-zero code",
    ),
    # 400 MiB through a pipe into tail, which keeps it all in memory: over the 64 MiB limit
    "memory-hog": (
        "RUN head -c 400m /dev/zero | tail > /dev/null; echo survived\n",
        None,
        "build memory limit of 64 MiB",
    ),
    # writes 8 MiB at a time, forever: only the worker's disk watch ends it (the timeout is far away)
    "disk-filler": (
        "RUN while true; do head -c 8m /dev/zero >> /filler; done\n",
        None,
        "a RUN step wrote",
    ),
}


@pytest.fixture
def limited(worker_env, monkeypatch):
    """Small limits, two build slots on one worker."""
    worker_jobs.set_env(
        monkeypatch,
        BOATYARD_WORKER_CONCURRENCY=2,
        BOATYARD_BUILD_MEMORY_BYTES=64 * MiB,
        BOATYARD_BUILD_PIDS_LIMIT=64,
        BOATYARD_MAX_IMAGE_BYTES=60 * MiB,
        BOATYARD_BUILD_TIMEOUT_SECONDS=240,
    )
    return worker_env


def _run_together(worker, job_ids: list[str], timeout: float = 300) -> None:
    """Poll until every job has started in this worker, then wait for all of them."""
    futures: list[concurrent.futures.Future] = []
    deadline = time.monotonic() + timeout
    while len(futures) < len(job_ids) and time.monotonic() < deadline:
        futures.extend(worker.poll(wait_seconds=1))
    assert len(futures) == len(job_ids), "both builds must run at once on the worker"
    concurrent.futures.wait(futures, timeout=max(1.0, deadline - time.monotonic()))
    for job_id in job_ids:
        assert stores().jobs.get_job(job_id).phase.is_terminal, worker_jobs.full_log(job_id)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_build_fails_with_the_limit_while_its_neighbour_finishes(
    limited, make_worker, registry, base_image, test_password, kind
):
    run, log_text, reason_text = HOSTILE[kind]
    hostile = worker_jobs.submit(
        worker_jobs.image_for(registry.host, kind),
        dockerfile=f"FROM {base_image}\n{run}",
        username=registry.username,
        password=test_password,
    )
    neighbour = worker_jobs.submit(
        worker_jobs.image_for(registry.host, f"beside-{kind}"),
        dockerfile=f"FROM {base_image}\nRUN echo {uuid.uuid4().hex}; for i in 1 2 3 4 5 6; do echo tick $i; sleep 1; done\n",
        username=registry.username,
        password=test_password,
    )
    worker = make_worker()
    assert worker.slots == 2
    started = time.monotonic()
    _run_together(worker, [hostile, neighbour])
    status = worker_jobs.status(hostile)
    assert status.startswith("Failed: ") and reason_text in status, (status, worker_jobs.full_log(hostile))
    if log_text:
        assert log_text in worker_jobs.full_log(hostile)
    assert "timed out" not in status
    assert worker_jobs.status(neighbour) == "Finished", worker_jobs.full_log(neighbour)
    assert "tick 6" in worker_jobs.full_log(neighbour)
    assert time.monotonic() - started < 200


def test_the_daemon_applies_every_limit_to_the_step_container(limited, monkeypatch, registry, base_image, docker_api):
    """Inspect a running RUN step's container: memory, memory+swap, CPU shares and quota, nproc ulimit."""
    import io
    import threading

    from worker.build.builder import Builder
    from worker.job.control import JobControl

    worker_jobs.set_env(monkeypatch, BOATYARD_BUILD_CPUS=0.5, BOATYARD_BUILD_CPU_SHARES=256)
    builder = Builder(stores().settings)
    control = JobControl()
    image = f"boatyard-limits-probe:{uuid.uuid4().hex[:8]}"
    context = io.BytesIO(make_tar({"Dockerfile": f"FROM {base_image}\nRUN sleep 8 # {uuid.uuid4().hex}\n"}, gz=False))
    seen: dict = {}

    def inspect_step() -> None:
        deadline = time.monotonic() + 120
        while not control.containers and time.monotonic() < deadline:
            time.sleep(0.2)
        seen.update(docker_api.inspect_container(control.containers[-1])["HostConfig"])

    spy = threading.Thread(target=inspect_step)
    spy.start()
    try:
        auths = {registry.host: {**registry.auth_config, "serveraddress": registry.host}}  # builds pull FROM fresh
        builder.build(context, image, lambda _text: None, control, registry_auths=auths)
    finally:
        spy.join(timeout=130)
        builder.remove_image(image)
    assert seen["Memory"] == 64 * MiB and seen["MemorySwap"] == 64 * MiB
    assert seen["CpuShares"] == 256
    assert (seen["CpuPeriod"], seen["CpuQuota"]) == (100_000, 50_000)
    assert {"Name": "nproc", "Soft": 64, "Hard": 64} in seen["Ulimits"]
