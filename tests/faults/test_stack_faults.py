"""Process and service faults in a running local stack, over real HTTP: a worker SIGKILLed mid-build,
the registry down during the push, the Docker daemon killed and restarted mid-build.

Each job must end Finished or clearly ``Failed: ...`` within a bounded time (never a live phase
forever), and its message is not lost (the queue drains; a second worker picks the job up).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid

import pytest

from devstack.services import free_port
from tests.faults.helpers import job_items, queue_depth, worker_pid_of
from tests.nonce import RUN_NONCE
from tests.support import faults
from tests.support.canary import TEST_PASSWORD, TEST_REGISTRY_USER
from tests.support.http_jobs import credentials, logs, submit, wait_phase, wait_terminal
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.e2e]

SHORT_LEASE = {
    "BOATYARD_VISIBILITY_TIMEOUT_SECONDS": "6",
    "BOATYARD_HEARTBEAT_SECONDS": "2",
    "BOATYARD_WORKER_CONCURRENCY": "1",
}


def _drained(stack, timeout: float = 30) -> dict[str, int]:
    """The queues' depths once they are empty, or as they are after ``timeout``."""
    depth: dict[str, int] = {}

    def empty() -> bool:
        depth.update(queue_depth(stack.aws_endpoint))
        return not any(depth.values())

    try:
        wait_until(empty, timeout, "the queues to drain", interval=0.2)
    except AssertionError:
        pass  # the caller asserts on the depths, naming them
    return depth


def _wait_log(stack, job_id: str, needle: str, timeout: float = 60) -> None:
    """Wait until the job's log shows ``needle`` (a RUN step's first output: the step is running)."""
    wait_until(
        lambda: needle in logs(stack.api_url, job_id), timeout, f"{needle!r} in the log of {job_id}", interval=0.2
    )


def test_worker_sigkilled_mid_build_another_worker_finishes_the_job(make_stack, registry, base_image):
    stack = make_stack("sigkill", workers=2, env=SHORT_LEASE)
    image = f"{registry.host}/faults/sigkill:{uuid.uuid4().hex[:8]}"
    job_id = submit(
        stack.api_url,
        {
            "image_name": image,
            "dockerfile": f"FROM {base_image}\nRUN : {RUN_NONCE} && echo before-kill && sleep 8\nRUN echo after-kill\n",
            **credentials(registry),
        },
    )
    wait_phase(stack.api_url, job_id, {"building"}, timeout=60)
    _wait_log(stack, job_id, "before-kill")  # inside the RUN step's sleep
    owner = job_items(stack.aws_endpoint)[job_id].get("lease_owner")
    pid = worker_pid_of(owner)
    victim = next(name for name, proc in stack.procs.items() if proc.pid == pid)
    os.killpg(stack.procs[victim].pid, signal.SIGKILL)
    stack.procs[victim].wait(timeout=10)
    killed_at = time.monotonic()
    final = wait_terminal(stack.api_url, job_id, timeout=120)
    recovered = time.monotonic() - killed_at
    text = logs(stack.api_url, job_id)
    new_owner = job_items(stack.aws_endpoint)[job_id].get("lease_owner")
    depth = _drained(stack)
    line = faults.report(
        f"FAULT worker SIGKILL mid-build: {victim} (pid {pid}) killed in phase building -> {final['Status']!r}, "
        f"attempt {final.get('Attempt')}, by {'another worker' if worker_pid_of(new_owner) != pid else 'the same worker?'}, "
        f"{recovered:.0f} s after the kill; queues {depth}"
    )
    assert final["Status"] == "Finished", line
    assert final["Attempt"] == 2 and worker_pid_of(new_owner) != pid, line
    assert "attempt 2" in text and "after-kill" in text, text[-2000:]
    assert faults.registry_tags(registry, "faults/sigkill").count(image.rsplit(":", 1)[1]) == 1
    assert not any(depth.values()), line
    del stack.procs[victim]  # already dead; stop() must not signal a reused pid


def test_registry_down_during_push_fails_clearly_then_recovers(local_stack, base_image):
    """The registry pushed to is one of the test's own, stopped mid-build: the shared stack is not harmed by it."""
    own = faults.OwnRegistry(free_port(), "faults", TEST_PASSWORD)
    reg = own.start()
    stack = local_stack
    try:
        image = f"{reg.host}/faults/down:1"
        # the base lives on the test registry, not on the one pushed to: bases are pulled fresh, with the job's auths
        base_auths = {
            "registry_auths": {base_image.split("/")[0]: {"username": TEST_REGISTRY_USER, "password": TEST_PASSWORD}}
        }
        job_id = submit(
            stack.api_url,
            {
                "image_name": image,
                "dockerfile": f"FROM {base_image}\nRUN : {RUN_NONCE} && echo registry-down && sleep 4\n",
                **credentials(reg),
                **base_auths,
            },
        )
        wait_phase(stack.api_url, job_id, {"building"}, timeout=60)
        own.stop()
        final = wait_terminal(stack.api_url, job_id, timeout=180)
        text = logs(stack.api_url, job_id)
        reason = final["Status"]
        # the registry is back: the same build goes through
        own.start()
        again = submit(
            stack.api_url,
            {
                "image_name": f"{reg.host}/faults/down:2",
                "dockerfile": f"FROM {base_image}\nRUN echo registry-back\n",
                **credentials(reg),
                **base_auths,
            },
        )
        after = wait_terminal(stack.api_url, again, timeout=120)
        depth = _drained(stack)
        line = faults.report(
            f"FAULT registry down during push: -> {reason[:140]!r} (phases {final['_phases']}); "
            f"registry back -> {after['Status']!r}; queues {depth}"
        )
        assert reason.startswith("Failed: ") or reason == "Finished", line
        if reason.startswith("Failed: "):
            assert reg.host in reason or "connection refused" in reason.lower() or "registry" in reason.lower(), line
            assert "Successfully built" in text, text[-1500:]  # the build itself was done: the push failed
            assert reason.replace("Failed: ", "") in text, text[-1500:]
        assert TEST_PASSWORD not in reason + text
        assert after["Status"] == "Finished", line
        assert faults.registry_tags(reg, "faults/down") in (["2"], ["1", "2"]), line
        assert not any(depth.values()), line
    finally:
        own.stop()


@pytest.fixture
def private_dockerd(base_image, docker_host):
    why = faults.PrivateDockerd.available()
    if why:
        pytest.skip(why)
    daemon = faults.PrivateDockerd().start()
    try:
        daemon.load_image(base_image, docker_host)
        yield daemon
    finally:
        daemon.stop()


def _bridge_exists(name: str) -> bool:
    return subprocess.run(["ip", "link", "show", name], capture_output=True).returncode == 0


def test_docker_daemon_restarted_mid_build(make_stack, registry, base_image, private_dockerd):
    """The worker's daemon is killed (SIGKILL) and started again while a build runs (a daemon of its own,
    so the shared daemon other tests use is not disturbed)."""
    had_docker0 = _bridge_exists("docker0")
    stack = make_stack("dockerd-restart", workers=1, env=SHORT_LEASE, docker=private_dockerd.host)
    image = f"{registry.host}/faults/dockerd:{uuid.uuid4().hex[:8]}"
    job_id = submit(
        stack.api_url,
        {
            "image_name": image,
            "dockerfile": f"FROM {base_image}\nRUN : {RUN_NONCE} && echo before-restart && sleep 10\nRUN echo after-restart\n",
            **credentials(registry),
        },
    )
    wait_phase(stack.api_url, job_id, {"building"}, timeout=60)
    _wait_log(stack, job_id, "before-restart")  # inside the RUN step's sleep
    private_dockerd.restart()  # SIGKILL, then start again on the same data root
    final = wait_terminal(stack.api_url, job_id, timeout=180)
    text = logs(stack.api_url, job_id)
    again = submit(
        stack.api_url,
        {
            "image_name": f"{registry.host}/faults/dockerd:after-{uuid.uuid4().hex[:6]}",
            "dockerfile": f"FROM {base_image}\nRUN echo daemon-is-back\n",
            **credentials(registry),
        },
    )
    after = wait_terminal(stack.api_url, again, timeout=120)
    depth = _drained(stack)
    line = faults.report(
        f"FAULT Docker daemon killed+restarted mid-build: -> {final['Status'][:140]!r} (attempt {final.get('Attempt')}, "
        f"phases {final['_phases']}); next build -> {after['Status']!r}; queues {depth}"
    )
    assert final["Status"] == "Finished" or (
        final["Status"].startswith("Failed: ") and "docker" in final["Status"].lower()
    ), line
    if final["Status"].startswith("Failed: "):
        assert final["Status"].replace("Failed: ", "") in text, text[-1500:]
    assert after["Status"] == "Finished", line
    assert not any(depth.values()), line
    assert _bridge_exists("docker0") == had_docker0, "the private daemon touched the host's docker0 bridge"
