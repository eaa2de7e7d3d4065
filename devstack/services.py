"""Start (when missing) the real services boatyard's local stack and tests use.

* a Docker daemon (``dockerd``; started only when we are root and none answers)
* a Docker distribution registry (Debian ``docker-registry``) on 127.0.0.1 with
  htpasswd auth
* a base image built ``FROM scratch`` with Debian's static busybox, pushed to
  that registry, so no build ever pulls from the internet.

Every ``ensure_*`` function is idempotent and safe to call from several
processes at once (a file lock guards the start).
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = Path(os.environ.get("BOATYARD_DEV_DIR", REPO_ROOT / "var"))
# A registry's port is one per machine, so its state (password, htpasswd, data, log) is too:
# every checkout on the machine finds the same password for the registry already running.
REGISTRY_ROOT = Path(
    os.environ.get("BOATYARD_REGISTRY_DIR")
    or (STATE_DIR if "BOATYARD_DEV_DIR" in os.environ else Path.home() / ".local" / "state" / "boatyard")
)
DOCKER_SOCK = "/var/run/docker.sock"
BASE_REPOSITORY = "boatyard/busybox"


class ServiceError(RuntimeError):
    """A service the local stack or the tests need is missing and could not be started."""


@contextlib.contextmanager
def _locked(name: str, root: Path | None = None) -> Iterator[None]:
    root = root or STATE_DIR
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections at host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _spawn(argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "ab")
    return subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
    )


# --- Docker daemon ---------------------------------------------------------------------------


def docker_answers(base_url: str | None = None) -> bool:
    """True when a Docker daemon answers a ping."""
    import docker

    try:
        client = docker.APIClient(
            base_url=base_url or os.environ.get("DOCKER_HOST", f"unix://{DOCKER_SOCK}"), timeout=5
        )
        return bool(client.ping())
    except Exception:  # noqa: BLE001 - a probe: whatever fails, there is no daemon to use
        return False


DAEMON_JSON = Path("/etc/docker/daemon.json")
DOCKERD_PIDFILE = Path("/var/run/docker.pid")
_DOCKERD_ARGV = ["dockerd", "--host", f"unix://{DOCKER_SOCK}"]
# gVisor here must pass through to the network namespace Docker made for the container
RUNSC_RUNTIME_ARGS = ["--network=host"]


def sandboxed_daemon_config(current: dict, runsc: str | None) -> dict:
    """``current`` daemon.json content with gVisor's ``runsc`` registered and made the default runtime.

    Other keys are kept.  Without a ``runsc`` binary nothing changes.
    """
    if not runsc:
        return dict(current)
    config = dict(current)
    runtimes = dict(config.get("runtimes") or {})
    runtimes["runsc"] = {"path": runsc, "runtimeArgs": list(RUNSC_RUNTIME_ARGS)}
    config["runtimes"] = runtimes
    config["default-runtime"] = "runsc"
    return config


def write_daemon_config(path: Path = DAEMON_JSON, runsc: str | None = None) -> bool:
    """Register gVisor as dockerd's default runtime in ``path`` when ``runsc`` is installed; True if it changed."""
    runsc = runsc or shutil.which("runsc")
    try:
        current = json.loads(path.read_text()) if path.exists() else {}
    except ValueError as exc:
        raise ServiceError(f"{path} is not valid JSON ({exc}); fix or remove it") from None
    wanted = sandboxed_daemon_config(current, runsc)
    if wanted == current:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(wanted, indent=2) + "\n")
    tmp.replace(path)
    return True


def _devstack_dockerd_pid() -> int | None:
    """The pid of a running dockerd that this module started (its exact command line), else None."""
    try:
        pid = int(DOCKERD_PIDFILE.read_text().strip())
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    return pid if [a.decode() for a in argv if a] == _DOCKERD_ARGV else None


def _reload_own_dockerd(host: str) -> None:
    """Bring a dockerd this module started up to the wanted runtimes: rewrite daemon.json and SIGHUP it.

    dockerd reloads ``runtimes`` and ``default-runtime`` on SIGHUP; running containers are untouched.
    A daemon started by anything else (systemd, an operator) is left alone.
    """
    if os.geteuid() != 0 or os.environ.get("DOCKER_HOST") or not shutil.which("runsc"):
        return
    pid = _devstack_dockerd_pid()
    if pid is None:
        return
    with _locked("dockerd"):
        if write_daemon_config():
            os.kill(pid, signal.SIGHUP)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _default_runtime(host) != "runsc":
                time.sleep(0.25)


def _default_runtime(host: str) -> str | None:
    import docker

    try:
        client = docker.APIClient(base_url=host, timeout=5)
        return str(client.info().get("DefaultRuntime") or "")
    except Exception:  # noqa: BLE001 - a probe: whatever fails, the runtime is unknown
        return None


def ensure_dockerd(timeout: float = 90.0) -> str:
    """The Docker host URL, after starting ``dockerd`` if none answers and we are root.

    When gVisor's ``runsc`` is installed, the daemon this starts has it as its default runtime
    (classic-builder RUN steps then run sandboxed); a daemon it started earlier without it is
    reconfigured and reloaded (SIGHUP), never restarted.
    """
    host = os.environ.get("DOCKER_HOST", f"unix://{DOCKER_SOCK}")
    if docker_answers(host):
        _reload_own_dockerd(host)
        return host
    with _locked("dockerd"):
        if docker_answers(host):
            return host
        if os.geteuid() != 0 or not shutil.which("dockerd") or os.environ.get("DOCKER_HOST"):
            raise ServiceError(
                f"No Docker daemon answers at {host}. Start one (as root: `dockerd &`, or "
                "`systemctl start docker`; Debian package docker.io), or set DOCKER_HOST."
            )
        if shutil.which("runsc"):
            write_daemon_config()
        log = STATE_DIR / "dockerd.log"
        proc = _spawn(list(_DOCKERD_ARGV), log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if docker_answers(host):
                return host
            if proc.poll() is not None:
                break
            time.sleep(0.5)
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise ServiceError(f"dockerd did not start (exit {proc.poll()}); its log {log} ends:\n{tail}")


# --- registry --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Registry:
    """A running registry with htpasswd auth."""

    host: str  # "127.0.0.1:5000": the image-name prefix
    username: str
    password: str = dataclasses.field(repr=False)

    @property
    def url(self) -> str:
        """Its HTTP base URL."""
        return f"http://{self.host}"

    @property
    def auth_config(self) -> dict[str, str]:
        """docker-py ``auth_config`` for pushes and pulls."""
        return {"username": self.username, "password": self.password}

    def get(self, path: str) -> tuple[int, bytes]:
        """An authenticated GET against the registry API."""
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            self.url + path,
            headers={
                "Authorization": f"Basic {token}",
                "Accept": "application/vnd.docker.distribution.manifest.v2+json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()


def registry_state_dir(port: int) -> Path:
    """Where the registry on 127.0.0.1:``port`` keeps its password, htpasswd, data, log and pid."""
    return REGISTRY_ROOT / f"registry-{port}"


def _registry_answers(registry: Registry) -> int | None:
    try:
        return registry.get("/v2/")[0]
    except OSError:
        return None


def ensure_registry(port: int | None = None, username: str | None = None, password: str | None = None) -> Registry:
    """A registry on 127.0.0.1:``port`` with htpasswd auth, started if none listens.

    Credentials come from the arguments, else ``BOATYARD_REGISTRY_USER`` /
    ``BOATYARD_REGISTRY_PASSWORD``, else a user ``boatyard`` with a password
    generated once and kept in ``registry_state_dir(port) / "password"``.
    """
    port = port or int(os.environ.get("BOATYARD_REGISTRY_PORT", "5000"))
    state = registry_state_dir(port)
    with _locked(f"registry-{port}", REGISTRY_ROOT):
        state.mkdir(parents=True, exist_ok=True)
        username = username or os.environ.get("BOATYARD_REGISTRY_USER") or "boatyard"
        password_file = state / "password"
        if password is None:
            password = os.environ.get("BOATYARD_REGISTRY_PASSWORD")
        if password is None:
            if not password_file.exists():
                password_file.write_text(secrets.token_urlsafe(18))
                password_file.chmod(0o600)
            password = password_file.read_text().strip()
        registry = Registry(f"127.0.0.1:{port}", username, password)
        if port_open("127.0.0.1", port):
            status = _registry_answers(registry)
            if status == 200:
                return registry
            raise ServiceError(
                f"Port {port} is taken by something that is not a registry accepting user {username!r} "
                f"(GET /v2/ answered {status}). Stop it, or set BOATYARD_REGISTRY_PORT."
            )
        binary = shutil.which("docker-registry") or shutil.which("registry")
        if not binary:
            raise ServiceError(
                "No registry program: install Debian's docker-registry (apt-get install docker-registry)."
            )
        _write_htpasswd(state / "htpasswd", username, password)
        config = state / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n"
            f"storage:\n  filesystem:\n    rootdirectory: {state / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: 127.0.0.1:{port}\n"
            f"auth:\n  htpasswd:\n    realm: boatyard\n    path: {state / 'htpasswd'}\n"
        )
        proc = _spawn([binary, "serve", str(config)], state / "registry.log")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if _registry_answers(registry) == 200:
                (state / "pid").write_text(str(proc.pid))
                return registry
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        raise ServiceError(f"the registry did not start; see {state / 'registry.log'}")


def _write_htpasswd(path: Path, username: str, password: str) -> None:
    htpasswd = shutil.which("htpasswd")
    if htpasswd:
        out = subprocess.run(
            [htpasswd, "-niB", username], input=password.encode(), capture_output=True, check=True
        ).stdout
        path.write_bytes(out)
    else:  # the registry also accepts bcrypt hashes made by the bcrypt module
        import bcrypt

        path.write_bytes(username.encode() + b":" + bcrypt.hashpw(password.encode(), bcrypt.gensalt()) + b"\n")
    path.chmod(0o600)


# --- base image ------------------------------------------------------------------------------


def ensure_base_image(registry: Registry, docker_host: str | None = None) -> str:
    """``<registry>/boatyard/busybox:latest``, built FROM scratch with static busybox, local and pushed."""
    import docker

    image = f"{registry.host}/{BASE_REPOSITORY}:latest"
    api = docker.APIClient(base_url=docker_host or ensure_dockerd(), timeout=300)
    with _locked("base-image"):
        pushed = registry.get(f"/v2/{BASE_REPOSITORY}/manifests/latest")[0] == 200
        local = bool(api.images(name=image))
        if pushed and local:
            return image
        if pushed and not local:
            for _ in api.pull(
                f"{registry.host}/{BASE_REPOSITORY}",
                tag="latest",
                auth_config=registry.auth_config,
                stream=True,
                decode=True,
            ):
                pass
            if api.images(name=image):
                return image
        busybox = shutil.which("busybox") or "/bin/busybox"
        if not Path(busybox).exists():
            raise ServiceError("No static busybox: install Debian's busybox-static (apt-get install busybox-static).")
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copy(busybox, Path(tmp) / "busybox")
            (Path(tmp) / "Dockerfile").write_text(
                'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n'
                'CMD ["/bin/sh"]\n'
            )
            errors = [c for c in api.build(path=tmp, tag=image, rm=True, decode=True) if "error" in c]
        if errors:
            raise ServiceError(f"building the base image failed: {errors[0]['error']}")
        pushes = list(
            api.push(
                f"{registry.host}/{BASE_REPOSITORY}",
                tag="latest",
                auth_config=registry.auth_config,
                stream=True,
                decode=True,
            )
        )
        failed = [p for p in pushes if "error" in p]
        if failed:
            raise ServiceError(f"pushing the base image failed: {failed[0]['error']}")
        return image
