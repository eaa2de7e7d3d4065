"""Duplicates, timeouts, cancellation, shutdown and a killed worker: no job runs twice, none stays live."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import docker
import pytest

from chalicelib.domain.jobs import Phase
from tests.nonce import RUN_NONCE
from tests.support import worker_jobs
from tests.support.images import pull_and_run
from tests.support.probes import run_once
from tests.support.services import stores
from tests.support.waiting import wait_until

pytestmark = pytest.mark.docker
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_wait_for = wait_until


def _build_containers(job_id: str) -> list[str]:
    return re.findall(r"Running in ([0-9a-f]{12})", worker_jobs.full_log(job_id))


def _assert_containers_gone(api: docker.APIClient, ids: list[str]) -> None:
    assert ids, "the build should have started a container"

    def gone() -> bool:
        return all(not api.containers(all=True, filters={"id": cid}) for cid in ids)

    _wait_for(gone, 20, f"build containers {ids} to be removed")


def test_duplicate_delivery_builds_once(make_worker, registry, base_image, test_password):
    job_id = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "dup"),
        dockerfile=f"FROM {base_image}\nRUN : {RUN_NONCE} && echo building-now\n",
        username=registry.username,
        password=test_password,
        copies=2,
    )
    worker = make_worker()
    results = worker_jobs.run_until_terminal(worker, job_id)
    outcomes = sorted(r.outcome.value for r in results)
    assert outcomes.count("finished") == 1
    busy = [r for r in results if r.outcome.value == "busy"]
    for result in busy:  # let the duplicate come back now instead of after the lease
        stores().queue.extend(result.delivery.receipt_handle, 0)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and int(stores().queue.attributes()["ApproximateNumberOfMessages"]) + int(
        stores().queue.attributes()["ApproximateNumberOfMessagesNotVisible"]
    ):
        results += run_once(worker, wait_seconds=1)
    assert set(r.outcome.value for r in results) <= {"finished", "busy", "done_already"}
    logs = worker_jobs.full_log(job_id)
    assert logs.count("Successfully built") == 1 and logs.count("\nbuilding-now\n") == 1
    job = stores().jobs.get_job(job_id)
    assert job.status_word == "Finished" and job.attempt == 1
    attrs = stores().queue.attributes()
    assert attrs["ApproximateNumberOfMessages"] == "0" and attrs["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_build_timeout_fails_and_removes_the_container(
    make_worker, registry, base_image, docker_api, monkeypatch, test_password
):
    worker_jobs.set_env(monkeypatch, BOATYARD_BUILD_TIMEOUT_SECONDS=4)
    job_id = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "slow"),
        dockerfile=f"FROM {base_image}\nRUN echo sleeping && sleep 120\n",
        username=registry.username,
        password=test_password,  # the FROM is a private base: pulled fresh with the job's credentials
    )
    started = time.monotonic()
    worker_jobs.run_until_terminal(make_worker(), job_id, timeout=90)
    assert time.monotonic() - started < 40
    assert worker_jobs.status(job_id) == "Failed: timed out after 4 s"
    assert worker_jobs.full_log(job_id).rstrip().endswith("[boatyard] Failed: timed out after 4 s")
    _assert_containers_gone(docker_api, _build_containers(job_id))


def test_cancelled_job_stops_its_build(make_worker, registry, base_image, docker_api, test_password):
    job_id = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "cancel"),
        dockerfile=f"FROM {base_image}\nRUN echo sleeping && sleep 120\n",
        username=registry.username,
        password=test_password,  # the FROM is a private base: pulled fresh with the job's credentials
    )
    worker = make_worker()
    [future] = worker.poll(wait_seconds=1)
    # wait for the container's id in the stored log: a cancelled job's unflushed log is dropped, not written
    _wait_for(lambda: _build_containers(job_id), 60, "the build to start its container")
    stores().jobs.fail(job_id, "cancelled by the user", target=Phase.CANCELLED)
    result = future.result(timeout=30)  # the heartbeat (every 2 s) notices the lost lease
    assert result.outcome.value == "lost"
    assert worker_jobs.status(job_id) == "Cancelled"
    _assert_containers_gone(docker_api, _build_containers(job_id))


def test_shutdown_gives_a_running_job_back(make_worker, registry, base_image, docker_api, test_password):
    job_id = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "shutdown"),
        dockerfile=f"FROM {base_image}\nRUN echo sleeping && sleep 120\n",
        username=registry.username,
        password=test_password,  # the FROM is a private base: pulled fresh with the job's credentials
    )
    worker = make_worker()
    [future] = worker.poll(wait_seconds=1)
    _wait_for(lambda: "sleeping" in worker_jobs.full_log(job_id), 60, "the build to start")
    worker.shutdown(grace_seconds=1)
    result = future.result(timeout=5)
    assert result.outcome.value == "released"
    job = stores().jobs.get_job(job_id)
    assert job.phase.is_live and job.lease_owner is None and job.attempt == 0  # not counted as an attempt
    assert "shutting down" in worker_jobs.full_log(job_id)
    assert len(stores().queue.receive(1, 1, 30)) == 1, "the message is visible again at once"
    _assert_containers_gone(docker_api, _build_containers(job_id))


@pytest.fixture
def moto_server(monkeypatch, docker_host, registry, base_image):
    """A moto server (several processes share AWS) with boatyard's resources; the test process points at it."""
    from moto.server import ThreadedMotoServer

    from chalicelib.domain.settings import load_settings
    from chalicelib.stores.services import Services
    from devstack.resources import ensure_resources
    from devstack.services import free_port
    from tests.support.services import activated

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "DOCKER_HOST": docker_host,
        "BOATYARD_VISIBILITY_TIMEOUT_SECONDS": "5",
        "BOATYARD_HEARTBEAT_SECONDS": "1",
        "BOATYARD_LOG_FLUSH_SECONDS": "0.3",
        "BOATYARD_BUILD_NETWORK": "none",
        "BOATYARD_ALLOW_PRIVATE_REGISTRIES": "true",  # the test registry is on 127.0.0.1
        "BOATYARD_TABLE": "killtest-jobs",
        "BOATYARD_QUEUE_NAME": "killtest-jobs",
        "BOATYARD_BUCKET": "killtest-contexts",
    }
    monkeypatch.delenv("BOATYARD_QUEUE_URL", raising=False)
    worker_jobs.set_env(monkeypatch, **env)
    services = Services(load_settings())  # the test's stores, on the server
    ensure_resources(services.settings, services.clients)
    with activated(services):
        yield env
    server.stop()


def test_worker_killed_mid_build_leaves_no_job_stuck(
    moto_server, registry, base_image, docker_api, test_password, tmp_path
):
    from worker.job.loop import Worker

    image = worker_jobs.image_for(registry.host, "killed")
    job_id = worker_jobs.submit(
        image,
        # a step unique to this run: a finished earlier run leaves its layers as cache (private tags go noprune)
        dockerfile=f'FROM {base_image}\nRUN echo started {image.rsplit("-", 1)[1]} && sleep 8\nCMD ["echo", "survived"]\n',
        username=registry.username,
        password=test_password,
    )
    stderr = open(tmp_path / "worker1.log", "wb")
    first = subprocess.Popen(
        [sys.executable, "-m", "worker", "--poll-wait", "1"],
        cwd=REPO,
        env={**os.environ, **moto_server},
        stdout=subprocess.DEVNULL,
        stderr=stderr,
    )
    try:
        _wait_for(
            # the RUN step's own output (a line of its own), not the "Step 2/3 : RUN echo started" line: by then
            # the build container exists and its "Running in" line is in the log
            lambda: (
                stores().jobs.get_job(job_id).phase == Phase.BUILDING
                and re.search(r"(?m)^started ", worker_jobs.full_log(job_id)) is not None
            ),
            90,
            "the first worker to be mid-build",
        )
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
        stderr.close()
    killed_containers = _build_containers(job_id)
    assert stores().jobs.get_job(job_id).phase.is_live

    second = Worker(stores(), poll_wait_seconds=1, dlq_sweep_seconds=3600)
    try:
        worker_jobs.run_until_terminal(second, job_id, timeout=120)
    finally:
        second.shutdown(grace_seconds=5)
    job = stores().jobs.get_job(job_id)
    assert job.status_word == "Finished", worker_jobs.full_log(job_id)
    assert job.attempt == 2
    assert "attempt 2 of 3" in worker_jobs.full_log(job_id)
    worker_log = (tmp_path / "worker1.log").read_text()
    assert test_password not in worker_log
    _assert_containers_gone(docker_api, killed_containers[:1])
    assert pull_and_run(docker_api, registry, image) == "survived\n"


def test_sigterm_stops_an_idle_worker_promptly(moto_server):
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "--poll-wait", "2"],
        cwd=REPO,
        env={**os.environ, **moto_server},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    lines: list[str] = []
    started = threading.Event()

    def read_stderr() -> None:
        for raw in proc.stderr:
            lines.append(raw.decode())
            if "started:" in lines[-1]:
                started.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    try:
        # SIGTERM only once the worker says it runs: before its handlers exist the default action kills it
        assert started.wait(120), "".join(lines)[-2000:]
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(10)
    assert proc.returncode == 0, "".join(lines)[-2000:]
    assert any('"stop requested' in line for line in lines) and any("stopped" in line for line in lines)
    assert all(line.startswith("{") for line in lines), "stderr logging is structured JSON lines"


def test_sigterm_does_not_hang_on_a_trickling_download(moto_server, tmp_path):
    from tests.trickle import TrickleServer

    server = TrickleServer(interval=1.0, max_seconds=120)
    job_id = worker_jobs.submit("u/trickle", tar_url=server.url)
    log = open(tmp_path / "worker.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "--poll-wait", "1"],
        cwd=REPO,
        env={
            **os.environ,
            **moto_server,
            "BOATYARD_ALLOW_PRIVATE_URLS": "true",
            "BOATYARD_SHUTDOWN_GRACE_SECONDS": "1",
            "BOATYARD_VISIBILITY_TIMEOUT_SECONDS": "30",
        },
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        server.wait_connected(timeout=90, sent=2)  # the worker is stuck reading one byte a second
        assert stores().jobs.get_job(job_id).phase == Phase.FETCHING
        stopped = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        seconds = time.monotonic() - stopped
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
        server.close()
    assert proc.returncode == 0, (tmp_path / "worker.log").read_text()[-2000:]
    assert seconds < 20, f"the worker took {seconds:.0f} s to stop (grace 1 s)"
    assert server.gone, "the worker never closed the download"
    job = stores().jobs.get_job(job_id)
    assert job.phase.is_live and not job.lease_owner  # given back for another worker, not failed


def test_disk_budget_prunes_without_touching_tagged_images(worker_env, base_image, docker_api, monkeypatch):
    import io
    import uuid

    from worker.build.builder import Builder

    worker_jobs.set_env(monkeypatch, BOATYARD_DISK_BUDGET_BYTES=1)
    dockerfile = io.BytesIO(f"FROM {base_image}\nLABEL boatyard.test={uuid.uuid4().hex}\n".encode())
    built = [m for m in docker_api.build(fileobj=dockerfile, rm=True, decode=True) if "aux" in m]
    dangling = built[-1]["aux"]["ID"]  # an untagged image: what the budget may drop
    assert docker_api.images(all=True, quiet=True, filters={"dangling": True}).count(dangling) == 1
    Builder(stores().settings).keep_disk_budget(force=True)
    assert dangling not in docker_api.images(all=True, quiet=True)
    assert docker_api.images(name=base_image), "the base image (tagged) survives pruning"


def test_disk_budget_spares_the_step_images_of_a_build_still_running(worker_env, base_image, docker_api, monkeypatch):
    """A classic build's step images are untagged until it ends: pruning after one job must not break another."""
    import io
    import uuid

    from worker.build.builder import Builder

    worker_jobs.set_env(monkeypatch, BOATYARD_DISK_BUDGET_BYTES=1)
    builder = Builder(stores().settings)
    with builder.running_build():  # another slot's build started before the step image below
        time.sleep(1.1)
        dockerfile = io.BytesIO(f"FROM {base_image}\nLABEL boatyard.test={uuid.uuid4().hex}\n".encode())
        built = [m for m in docker_api.build(fileobj=dockerfile, rm=True, decode=True) if "aux" in m]
        step_image = built[-1]["aux"]["ID"]
        builder.keep_disk_budget(force=True)
        assert step_image in docker_api.images(all=True, quiet=True), "a running build's image was pruned"
    builder.keep_disk_budget(force=True)
    assert step_image not in docker_api.images(all=True, quiet=True), "once no build runs, dangling images go"


def test_password_printed_by_a_build_is_redacted(make_worker, registry, base_image, test_password):
    job_id = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "leak"),
        dockerfile=f"FROM {base_image}\nRUN echo token-{test_password}-end\n",
        username=registry.username,
        password=test_password,
    )
    worker_jobs.run_until_terminal(make_worker(), job_id)
    logs = worker_jobs.full_log(job_id)
    assert worker_jobs.status(job_id) == "Finished"
    assert test_password not in logs and "\ntoken-[redacted]-end\n" in logs
