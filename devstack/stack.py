"""The whole service on one machine: moto server, resources, ``chalice local`` (API + UI), workers, notifier.

Used by ``make run`` (``python -m devstack run``), by the end-to-end and
browser tests (the ``local_stack`` fixture) and by the benchmarks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from devstack import services
from devstack.services import REPO_ROOT, STATE_DIR, ServiceError

PROBE_ID = "00000000-0000-4000-8000-000000000000"


@dataclasses.dataclass
class StackConfig:
    """Ports, counts and extra settings of one local stack."""

    api_port: int = int(os.environ.get("BOATYARD_API_PORT", "8000"))
    moto_port: int = int(os.environ.get("BOATYARD_MOTO_PORT", "5001"))
    host: str = os.environ.get("BOATYARD_BIND_HOST", "127.0.0.1")
    workers: int = 1
    extra_env: dict[str, str] = dataclasses.field(default_factory=dict)
    log_dir: Path = STATE_DIR / "logs"
    name: str = "stack"
    # extra ``python -m worker`` options, e.g. ``["--poll-wait", "1"]``: a test stack stops within a second
    # instead of waiting out a 20 s long poll
    worker_args: list[str] = dataclasses.field(default_factory=list)


class LocalStack:
    """Starts and stops the processes of a local boatyard."""

    def __init__(self, config: StackConfig | None = None) -> None:
        self.config = config or StackConfig()
        self.procs: dict[str, subprocess.Popen] = {}
        self.resources: dict[str, str] = {}
        self.env = self._child_env()

    @property
    def api_url(self) -> str:
        """Where the API (and the UI, at ``/``) answers."""
        return f"http://{self.config.host}:{self.config.api_port}"

    @property
    def aws_endpoint(self) -> str:
        """The moto server's URL."""
        return f"http://{self.config.host}:{self.config.moto_port}"

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "AWS_ENDPOINT_URL": f"http://{self.config.host}:{self.config.moto_port}",
                "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", "testing"),
                "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", "testing"),
                "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
                "BOATYARD_SERVE_UI": "true",
                "PYTHONUNBUFFERED": "1",
                "PYTHONPATH": str(REPO_ROOT),
            }
        )
        # the local stack pushes to its registry on 127.0.0.1 (deployed stacks never set this)
        env.setdefault("BOATYARD_ALLOW_PRIVATE_REGISTRIES", "true")
        # ... and may notify receivers on this machine (http://127.0.0.1:...; deployed stacks never set this)
        env.setdefault("BOATYARD_ALLOW_LOOPBACK_NOTIFY_URLS", "true")
        env.pop("AWS_SESSION_TOKEN", None)
        env.pop("AWS_SECURITY_TOKEN", None)
        env.update(self.config.extra_env)
        return env

    def _log(self, name: str) -> Path:
        self.config.log_dir.mkdir(parents=True, exist_ok=True)
        return self.config.log_dir / f"{self.config.name}-{name}.log"

    def _start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self._log(name), "ab")
        proc = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.procs[name] = proc
        return proc

    def start(self, timeout: float = 60.0) -> LocalStack:
        """Start moto, create the resources, start the API and the workers; wait until they answer."""
        for port in (self.config.api_port, self.config.moto_port):
            if services.port_open(self.config.host, port):
                raise ServiceError(
                    f"port {port} on {self.config.host} is already in use; stop what uses it or set "
                    "BOATYARD_API_PORT / BOATYARD_MOTO_PORT"
                )
        python = sys.executable
        self._start(
            "moto", [python, "-m", "devstack.moto_atomic", "-H", self.config.host, "-p", str(self.config.moto_port)]
        )
        self._wait(lambda: services.port_open(self.config.host, self.config.moto_port), timeout, "moto server")
        answer = subprocess.run(
            [python, "-m", "devstack.bootstrap"],
            cwd=REPO_ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if answer.returncode != 0:
            raise ServiceError(f"creating the AWS resources on moto failed:\n{answer.stderr[-3000:]}")
        self.resources = json.loads(answer.stdout.strip().splitlines()[-1])
        self._start(
            "api",
            [
                python,
                "-m",
                "devstack.chalice_local",
                "local",
                "--host",
                self.config.host,
                "--port",
                str(self.config.api_port),
                "--stage",
                "local",
                "--no-autoreload",
            ],
        )
        self._wait(self._api_answers, timeout, "API (chalice local)")
        for index in range(self.config.workers):
            self._start(f"worker{index + 1}", [python, "-m", "worker", *self.config.worker_args])
        self._start("notifier", [python, "-m", "devstack.notifier"])  # the SQS Lambda's stand-in
        time.sleep(0.5)
        self._check_alive()
        return self

    def start_worker(self, name: str) -> subprocess.Popen:
        """Start one more worker process (tests of faults use this)."""
        return self._start(name, [sys.executable, "-m", "worker", *self.config.worker_args])

    def _api_answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.api_url}/api/v1/{PROBE_ID}/status", timeout=2)
            return True
        except urllib.error.HTTPError as err:
            return err.code in (401, 404)  # 401: BOATYARD_AUTH=keys and the probe carries no key
        except OSError:
            return False

    def _wait(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            self._check_alive()
            time.sleep(0.2)
        raise ServiceError(f"{what} did not answer within {timeout:.0f} s; logs in {self.config.log_dir}")

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = self._log(name).read_text(errors="replace")[-3000:]
                raise ServiceError(f"{name} exited with {proc.returncode}; its log ends:\n{tail}")

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM the workers and wait, then the API and moto; SIGKILL what outlives ``grace``."""
        workers = [n for n in self.procs if n.startswith("worker")]
        others = [n for n in self.procs if n not in workers]
        for group in (workers, others):
            for name in group:
                _signal(self.procs[name], signal.SIGTERM)
            deadline = time.monotonic() + grace
            for name in group:
                proc = self.procs[name]
                try:
                    proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
                except subprocess.TimeoutExpired:
                    _signal(proc, signal.SIGKILL)
                    proc.wait(timeout=5)
        self.procs.clear()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
