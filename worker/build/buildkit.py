"""Building with the Docker daemon's embedded BuildKit, through the Docker CLI.

Each build runs the CLI named by ``BOATYARD_DOCKER_CLI`` (the Debian
``docker.io`` package's ``/usr/bin/docker``: a 20.10 client that builds with
the daemon's BuildKit without buildx) as a subprocess in its own process
group, with:

- a private temporary directory (0700) holding the build's own ``DOCKER_CONFIG``
  whose ``config.json`` (0600) has only the job's registry auths (the operator's
  registry credentials are never visible to a build), the job's secret files
  (0600) and the image-id file; it is removed when the build ends;
- ``--pull``: bases are resolved fresh from their registry with those auths only,
  as the classic builder does, so a private base another job left on the host is
  not usable without credentials;
- an environment of only ``PATH``, ``HOME``, ``DOCKER_HOST``,
  ``DOCKER_CONFIG`` and ``DOCKER_BUILDKIT=1`` (no AWS credentials);
- the sanitized context tar on stdin (``docker build -``: streamed, never in memory);
- ``--progress=plain``, whose lines go to the job's log (the ``#N sha256:``
  lines are dropped); the failure reason is BuildKit's last error line.

A :class:`JobControl` abort (cancel, timeout, shutdown) kills the process
group; the daemon cancels a build whose client went away, so nothing of it
keeps running.  The image is tagged with the name it is given (the same
job-private tag the classic builder uses), so pushing stays with docker-py.
"""
from __future__ import annotations

import base64
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import tempfile
import threading
from typing import Any, BinaryIO, Callable, Mapping

import docker
import docker.errors

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.settings import Settings
from worker.job.control import JobControl

log = logging.getLogger(__name__)

_DIGEST_LINE = re.compile(r"^#\d+ sha256:[0-9a-f]{64}$")
_VERTEX_END = re.compile(r"^#(\d+) (DONE [0-9.]+s|CACHED|ERROR\b.*)$")
_REASON_PREFIXES = re.compile(
    r"^(?:error: |ERROR: )?(?:failed to solve(?: with frontend [\w.]+)?: )?(?:failed to create LLB definition: )?"
)
_KILL_WAIT_SECONDS = 30


@dataclasses.dataclass(frozen=True)
class BuildKitOptions:
    """What a BuildKit build needs beyond the context: secrets and an SSH key (never logged)."""

    secrets: Mapping[str, str] = dataclasses.field(default_factory=dict, repr=False)
    ssh_key: str = dataclasses.field(default="", repr=False)
    id_prefix: str = ""  # the owner's prefix of secret and SSH ids (worker.build.dockerfile_features.secret_prefix)
    registry_auths: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict, repr=False)  # the job's own


class _ProcessGroup:
    """A running CLI that :meth:`JobControl.abort` can stop: ``close()`` kills its whole process group."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._lock = threading.Lock()
        self._reaped = False

    def close(self) -> None:
        """Kill the process group (the CLI and anything it started); harmless once it has ended."""
        with self._lock:
            if self._reaped:
                return
            try:
                os.killpg(self._process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def reap(self) -> int:
        """Wait for the CLI (killing it if it lingers); returns its exit code."""
        try:
            code = self._process.wait(timeout=_KILL_WAIT_SECONDS)
        except subprocess.TimeoutExpired:
            self.close()
            code = self._process.wait()
        with self._lock:
            self._reaped = True
        return code


@dataclasses.dataclass
class ProgressLog:
    """Turns ``--progress=plain`` output into log lines, and remembers what the reason of a failure is."""

    write: Callable[[str], None]
    steps_done: int = 0
    steps_cached: int = 0
    last_lines: list[str] = dataclasses.field(default_factory=list)
    vertex_error: str = ""

    def feed(self, raw: bytes) -> None:
        """One line of the CLI's output."""
        line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
        if not line.strip() or _DIGEST_LINE.match(line):
            return
        end = _VERTEX_END.match(line)
        if end:
            word = end.group(2)
            if word.startswith("DONE"):
                self.steps_done += 1
            elif word == "CACHED":
                self.steps_cached += 1
            else:
                self.vertex_error = word[len("ERROR") :].lstrip(": ").strip()
        self.last_lines = (self.last_lines + [line])[-5:]
        self.write(line + "\n")

    def reason(self) -> str:
        """BuildKit's error line for a failed build."""
        for line in reversed(self.last_lines):
            text = line.strip()
            if text and not text.startswith(("#", "------", ">")):
                text = _REASON_PREFIXES.sub("", text, count=1).strip()
                if text:
                    return text
        return self.vertex_error or "the BuildKit build failed without an error message"

    def summary(self) -> str:
        """A closing line for the log."""
        return f"[boatyard] BuildKit: {self.steps_done} steps run, {self.steps_cached} cached"


def _private_file(path: str, content: str) -> None:
    """Create ``path`` readable by this user only and write ``content`` to it."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)


class BuildKitBuilder:
    """Builds jobs with ``docker build`` and BuildKit; see the module doc."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._modern: bool | None = None

    def modern_frontend(self) -> bool:
        """Whether the daemon's built-in Dockerfile frontend is 1.4+ (Docker 23 and later: heredocs, COPY --link).

        Asked once per worker; False when the daemon cannot be asked (the build will say why).
        """
        if self._modern is None:
            api: docker.APIClient | None = None
            try:
                api = docker.APIClient(base_url=self.settings.docker_host, version="auto", timeout=30)
                version = str(api.version().get("Version", ""))
                self._modern = int(version.split(".", 1)[0] or 0) >= 23
            except (docker.errors.DockerException, ValueError, OSError) as exc:
                log.warning("could not ask the Docker daemon its version: %s", exc)
                return False
            finally:
                if api is not None:
                    api.close()
        return self._modern

    def command(self, image: str, workdir: str, options: BuildKitOptions, plan: Any = None) -> list[str]:
        """The CLI's arguments for one build; secret and key files are written into ``workdir``.

        ``plan`` (a :class:`worker.build.buildplan.BuildPlan`) adds build args, the Dockerfile path, the target,
        ``--no-cache`` and labels; its memory/cpus limits are the classic builder's only (BuildKit ignores them).
        """
        argv = [self.settings.docker_cli, "build", "--progress=plain", "--iidfile", os.path.join(workdir, "iid"), "-t", image]
        if plan is None or plan.pull is not False:  # bases resolved fresh with the job's auths, like the classic pull
            argv.append("--pull")
        if plan is not None:
            for key, value in sorted(plan.buildargs.items()):
                argv += ["--build-arg", f"{key}={value}"]
            for key, value in sorted(plan.labels.items()):
                argv += ["--label", f"{key}={value}"]
            if plan.dockerfile and plan.dockerfile != "Dockerfile":
                argv += ["-f", plan.dockerfile]
            if plan.target:
                argv += ["--target", plan.target]
            if plan.nocache:
                argv.append("--no-cache")
            for ref in plan.cache_from:  # read from the registry with this build's DOCKER_CONFIG: the job's auths only
                argv += ["--cache-from", ref]
        if plan is None or "BUILDKIT_INLINE_CACHE" not in plan.buildargs:
            # the pushed image carries its cache metadata, so a later build elsewhere can name it in cache_from
            argv += ["--build-arg", "BUILDKIT_INLINE_CACHE=1"]
        if self.settings.build_network:
            argv += ["--network", self.settings.build_network]
        secrets_dir = os.path.join(workdir, "secrets")
        os.mkdir(secrets_dir, 0o700)
        for number, (secret_id, value) in enumerate(sorted(options.secrets.items())):
            path = os.path.join(secrets_dir, str(number))
            _private_file(path, value)
            argv += ["--secret", f"id={options.id_prefix}{secret_id},src={path}"]
        if options.ssh_key:
            path = os.path.join(secrets_dir, "ssh-key")
            _private_file(path, options.ssh_key if options.ssh_key.endswith("\n") else options.ssh_key + "\n")
            argv += ["--ssh", f"{options.id_prefix}default={path}"]
        return argv + ["-"]

    def environment(self, workdir: str, registry_auths: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
        """The CLI's whole environment, and its config dir with only the job's registry auths."""
        config = os.path.join(workdir, "config")
        os.mkdir(config, 0o700)
        auths = {
            key: {"auth": base64.b64encode(f"{auth.get('username', '')}:{auth.get('password', '')}".encode()).decode("ascii")}
            for key, auth in registry_auths.items()
        }
        _private_file(os.path.join(config, "config.json"), json.dumps({"auths": auths}))
        return {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": workdir,
            "DOCKER_HOST": self.settings.docker_host,
            "DOCKER_CONFIG": config,
            "DOCKER_BUILDKIT": "1",
        }

    def build(
        self,
        context: BinaryIO,
        image: str,
        write: Callable[[str], None],
        control: JobControl,
        options: BuildKitOptions | None = None,
        plan: Any = None,
    ) -> str:
        """Build the tar in ``context`` (read from its current position) as ``image``; returns the image id."""
        options = options or BuildKitOptions()
        os.makedirs(self.settings.work_dir, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.settings.work_dir, prefix="buildkit-") as workdir:
            os.chmod(workdir, 0o700)
            argv = self.command(image, workdir, options, plan)
            env = self.environment(workdir, options.registry_auths)
            progress = ProgressLog(write)
            control.check()
            # the CLI reads the file descriptor: put its offset where the Python file object is (a buffered
            # seek within the read buffer does not move it)
            context.flush()
            os.lseek(context.fileno(), context.tell(), os.SEEK_SET)
            try:
                process = subprocess.Popen(  # a fixed program and arguments, no shell
                    argv, stdin=context, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=workdir,
                    start_new_session=True,
                )
            except OSError as exc:
                raise BuildFailed(f"could not run the Docker CLI {self.settings.docker_cli} for BuildKit ({exc.strerror})") from None
            group = _ProcessGroup(process)
            control.register(group)
            read_all = False
            try:
                assert process.stdout is not None
                for raw in process.stdout:
                    progress.feed(raw)
                read_all = True
            finally:
                if control.aborted or not read_all:  # cut, or the log failed: stop the build
                    group.close()
                code = group.reap()
                control.unregister(group)
                if process.stdout is not None:
                    process.stdout.close()
            control.check()
            if code != 0:
                reason = progress.reason()
                raise BuildFailed(reason)
            write(progress.summary() + "\n")
            try:
                with open(os.path.join(workdir, "iid"), encoding="ascii") as handle:
                    image_id = handle.read().strip()
            except OSError:
                image_id = ""
        if not image_id:
            raise BuildFailed("BuildKit finished the build without producing an image")
        return image_id
