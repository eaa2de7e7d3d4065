"""RUN steps run in gVisor on the real daemon, host probes fail, and the worker checks the daemon's runtime."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import worker_jobs
from tests.support.archives import make_tar
from tests.support.services import stores
from worker.build.builder import Builder
from worker.build.limits import RuntimeUnavailable

pytestmark = pytest.mark.docker

PROBE_SOURCE = Path(__file__).parent / "probes" / "ptrace_probe.c"

# Each probe prints a word in capitals only when it got through to something it must not reach.
PROBES = r"""
echo "kernel=$(uname -r)"
if mount -t tmpfs none /mnt 2>&1; then echo MOUNT-SUCCEEDED; fi
if mount -t proc proc /mnt 2>&1; then echo PROC-MOUNT-SUCCEEDED; fi
if ping -c 1 -W 2 127.0.0.1 2>&1; then echo RAW-SOCKET-SUCCEEDED; fi
if nsenter -t 1 -m -p true 2>&1; then echo NSENTER-SUCCEEDED; fi
echo "pid1=$(tr '\0' ' ' < /proc/1/cmdline)"
echo "pids=$(ls /proc | grep -c '^[0-9]')"
# the step's own BOATYARD_CACHE_SCOPE (the owner's cache-scope ARG, worker/build/cachescope.py) is not a host's
cat /proc/[0-9]*/cmdline /proc/[0-9]*/environ 2>/dev/null | tr '\0' '\n' \
  | grep -E '[d]ockerd|[c]ontainerd|[B]OATYARD_|[A]WS_' | grep -v '^BOATYARD_CACHE_SCOPE=' && echo HOST-PROCESS-VISIBLE
sleep 20 &
chmod 755 /probe && /probe
true
"""


@pytest.fixture(scope="module")
def ptrace_probe(tmp_path_factory) -> bytes:
    """A static binary that tries to ptrace-attach every process a build step can see."""
    gcc = shutil.which("gcc")
    assert gcc, "gcc is needed to build the ptrace probe (scripts/install-system-deps.sh installs it)"
    out = tmp_path_factory.mktemp("probe") / "probe"
    subprocess.run([gcc, "-static", "-O1", "-o", str(out), str(PROBE_SOURCE)], check=True, capture_output=True)
    return out.read_bytes()


def test_worker_checks_the_daemon_default_runtime(worker_env, docker_api):
    info = docker_api.info()
    assert info["DefaultRuntime"] == stores().settings.build_runtime == "runsc", (
        "devstack.services.ensure_dockerd makes gVisor the default runtime when runsc is installed"
    )
    Builder(stores().settings).check_runtime()  # the configured one: no error


@pytest.mark.parametrize(
    ("runtime", "expected"),
    [("runc", "runs containers with 'runsc' by default, not 'runc'"), ("nosuch", "has no runtime 'nosuch'")],
)
def test_worker_refuses_to_start_without_the_configured_runtime(worker_env, monkeypatch, runtime, expected):
    worker_jobs.set_env(monkeypatch, BOATYARD_BUILD_RUNTIME=runtime)
    with pytest.raises(RuntimeUnavailable, match=expected):
        Builder(stores().settings).check_runtime()
    proc = subprocess.run(
        [sys.executable, "-m", "worker"],
        env={**os.environ, "BOATYARD_BUILD_RUNTIME": runtime},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "refusing to start" in proc.stderr and expected in proc.stderr, proc.stderr


def test_run_steps_see_gvisor_and_host_probes_fail(make_worker, registry, base_image, ptrace_probe, test_password):
    image = worker_jobs.image_for(registry.host, "probes")
    archive = make_tar(
        {
            # a fresh argument: the step must run, never come from the layer cache
            "Dockerfile": f"FROM {base_image}\nCOPY probe /probe\nCOPY probes.sh /probes.sh\nRUN sh /probes.sh {uuid.uuid4().hex}\n",
            "probes.sh": PROBES,
            "probe": ptrace_probe,
        }
    )
    job_id = worker_jobs.submit(image, archive=archive, username=registry.username, password=test_password)
    worker_jobs.run_until_terminal(make_worker(), job_id)
    logs = worker_jobs.full_log(job_id)
    assert worker_jobs.status(job_id) == "Finished", logs
    assert "kernel=4.4.0" in logs, "the RUN step must see gVisor's kernel, not the host's"
    assert os.uname().release not in logs
    for escaped in (
        "MOUNT-SUCCEEDED",
        "PROC-MOUNT-SUCCEEDED",
        "RAW-SOCKET-SUCCEEDED",
        "NSENTER-SUCCEEDED",
        "HOST-PROCESS-VISIBLE",
    ):
        assert escaped not in logs, logs
    pid1 = logs.split("pid1=", 1)[1].splitlines()[0]
    assert "probes.sh" in pid1, f"PID 1 must be the step itself, not the host's init: {pid1!r}"
    pids = int(logs.split("pids=", 1)[1].split()[0])
    assert pids <= 5, f"the step sees {pids} processes; only its own should be visible"
    assert "ptrace-attached" not in logs, logs
    assert "ptrace-seen" in logs, "the ptrace probe must have run"
