"""The bench's own local stack: Docker daemon, a registry on 5060, the base image, moto + API + worker.

Everything runs on 127.0.0.1.  The registry is the bench's own (port 5060,
user ``bench``) so the tests' registry on 5050 is never touched.  Each scenario
gets a fresh :class:`BenchStack` (fresh processes, so peak-memory figures
belong to that scenario alone).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from pathlib import Path

from devstack import services
from devstack.services import STATE_DIR, Registry
from devstack.stack import LocalStack, StackConfig

BENCH_DIR = STATE_DIR / "bench"
REGISTRY_PORT = 5060
REGISTRY_USER = "bench"


@dataclasses.dataclass(frozen=True)
class Services:
    """What every scenario needs from outside the stack."""

    docker_host: str
    registry: Registry
    base_image: str

    @property
    def credentials(self) -> dict[str, str]:
        """The push credentials in the API's field names."""
        return {"username": self.registry.username, "password": self.registry.password, "email": "bench@example.com"}


def ensure_services(registry_port: int = REGISTRY_PORT) -> Services:
    """Start (if missing) dockerd, the bench registry and the FROM-scratch busybox base image."""
    docker_host = services.ensure_dockerd()
    registry = services.ensure_registry(registry_port, REGISTRY_USER)
    base_image = services.ensure_base_image(registry, docker_host)
    return Services(docker_host, registry, base_image)


def read_status_kb(pid: int, field: str) -> int:
    """A ``/proc/<pid>/status`` figure in KiB (VmHWM, VmRSS); 0 if the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (walks /proc's parent links)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    stack = list(children.get(pid, []))
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(children.get(child, []))
    return found


class BenchStack:
    """One local stack (moto server, ``chalice local``, one ``python -m worker``) on free ports."""

    def __init__(
        self, svc: Services, name: str, extra_env: dict[str, str] | None = None, build_network: str = ""
    ) -> None:
        self.svc = svc
        self.name = name
        self.work_dir = BENCH_DIR / "work" / name
        self.recording = BENCH_DIR / f"moto-recording-{name}.jsonl"
        env = {
            "DOCKER_HOST": svc.docker_host,
            "BOATYARD_WORK_DIR": str(self.work_dir),
            # moto's request recorder (off until a scenario switches it on): how DynamoDB writes are counted
            "MOTO_RECORDER_FILEPATH": str(self.recording),
            # RUN steps' network: the same mode the Docker CLI baseline gets (``--network``)
            "BOATYARD_BUILD_NETWORK": build_network,
        }
        env.update(extra_env or {})
        self.config = StackConfig(
            api_port=services.free_port(),
            moto_port=services.free_port(),
            workers=1,
            extra_env=env,
            log_dir=BENCH_DIR / "logs",
            name=f"bench-{name}",
        )
        self.stack = LocalStack(self.config)
        self._worker_seq = 1
        self._log_offsets: dict[str, int] = {}

    @property
    def api_url(self) -> str:
        """The API's base URL."""
        return self.stack.api_url

    @property
    def aws_endpoint(self) -> str:
        """The moto server's URL."""
        return self.stack.aws_endpoint

    def start(self) -> BenchStack:
        """Start every process; raises ServiceError with the failing process's log."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        try:
            self.stack.start(timeout=90)
            self.wait_worker_ready()
        except Exception:
            self.stack.stop()
            raise
        return self

    def wait_worker_ready(self, timeout: float = 60.0) -> None:
        """Wait until the newest worker logged that it started polling (so no figure includes its start-up)."""
        name = self.worker_names()[-1]
        path = self.log_path(name)
        offset = self._log_offsets.get(name, 0)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    if b" started: " in handle.read():
                        return
            except OSError:
                pass
            self.stack._check_alive()
            time.sleep(0.1)
        raise RuntimeError(f"worker {name} did not report being started within {timeout:.0f} s; see {path}")

    def stop(self) -> None:
        """Stop the processes this stack started."""
        self.stack.stop()
        self.recording.unlink(missing_ok=True)

    def __enter__(self) -> BenchStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- the worker -----------------------------------------------------------------------

    def worker_names(self) -> list[str]:
        """Names of the worker processes in ``stack.procs``."""
        return [n for n in self.stack.procs if n.startswith("worker")]

    def worker_pid(self) -> int:
        """The pid of the (single) worker process."""
        return self.stack.procs[self.worker_names()[0]].pid

    def api_pid(self) -> int:
        """The pid of ``chalice local``."""
        return self.stack.procs["api"].pid

    def moto_pid(self) -> int:
        """The pid of the moto server."""
        return self.stack.procs["moto"].pid

    def restart_worker(self, extra_env: dict[str, str], grace: float = 60.0) -> None:
        """Stop the worker (SIGTERM to the process group we started, SIGKILL after ``grace``), start a new one."""
        for name in self.worker_names():
            proc = self.stack.procs.pop(name)
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        self.stack.env.update(extra_env)
        self._worker_seq += 1
        name = f"worker{self._worker_seq}"
        path = self.log_path(name)
        self._log_offsets[name] = path.stat().st_size if path.exists() else 0
        self.stack.start_worker(name)
        self.wait_worker_ready()

    def check_alive(self) -> None:
        """Raise if a stack process died."""
        self.stack._check_alive()

    def peak_memory_kib(self, pid: int) -> tuple[int, int]:
        """(VmHWM of ``pid``, the largest VmHWM among its live descendants) in KiB."""
        own = read_status_kb(pid, "VmHWM")
        kids = [read_status_kb(child, "VmHWM") for child in descendants(pid)]
        return own, max(kids, default=0)

    def log_path(self, process: str) -> Path:
        """Where a process of this stack logs."""
        return self.config.log_dir / f"{self.config.name}-{process}.log"
