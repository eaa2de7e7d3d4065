"""What one build may use on its host: the daemon's runtime, memory, CPU, processes and disk.

* :func:`check_runtime` — the worker refuses to start unless the Docker daemon's
  *default* runtime is the configured one (``runsc``, gVisor, on deployed hosts):
  the classic builder runs every ``RUN`` step with the daemon's default runtime
  and cannot be told otherwise per build.
* :func:`build_params` — the ``/build`` query parameters that cap each ``RUN``
  step's container (memory, memory+swap, CPU shares and quota, and an ``nproc``
  ulimit as the pids limit: dockerd 20.10 takes no pids limit per build).
* :func:`explain_failure` — a step killed by those limits fails with a reason
  that names the limit.
* :class:`DiskWatch` — the daemon cannot cap a build container's writable layer
  on overlay2 without project quotas, so the worker watches the running step's
  container size and stops the build when it passes ``max_image_bytes``;
  :func:`check_image_size` refuses a finished image larger than that.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any, Callable

import docker.errors

from chalicelib.domain.settings import Settings

log = logging.getLogger(__name__)

CPU_PERIOD_US = 100_000
MiB = 1024 * 1024
DISK_WATCH_SECONDS = 3.0
_KILLED = re.compile(r"returned a non-zero code: 137\b")


class RuntimeUnavailable(RuntimeError):
    """The Docker daemon cannot run builds with the configured runtime; the worker must not start."""


def check_runtime(info: dict[str, Any], wanted: str, docker_host: str = "") -> None:
    """Raise :class:`RuntimeUnavailable` unless ``docker info`` shows ``wanted`` registered and the default."""
    runtimes = sorted((info.get("Runtimes") or {}).keys())
    default = str(info.get("DefaultRuntime") or "")
    where = f"the Docker daemon at {docker_host}" if docker_host else "the Docker daemon"
    if wanted not in runtimes:
        raise RuntimeUnavailable(
            f"{where} has no runtime {wanted!r} (it has {', '.join(runtimes) or 'none'}). "
            f"Register it in /etc/docker/daemon.json (runsc: install gVisor, then "
            '"runtimes": {"runsc": {"path": "/usr/bin/runsc"}}, "default-runtime": "runsc") and reload dockerd '
            "(SIGHUP), or set BOATYARD_BUILD_RUNTIME=runc to build without the gVisor sandbox."
        )
    if default != wanted:
        raise RuntimeUnavailable(
            f"{where} runs containers with {default!r} by default, not {wanted!r}: the classic builder runs "
            f'every RUN step with the default runtime. Set "default-runtime": "{wanted}" in /etc/docker/daemon.json '
            "and reload dockerd (SIGHUP), or set BOATYARD_BUILD_RUNTIME to the daemon's default."
        )


def build_params(settings: Settings, plan: Any = None) -> dict[str, Any]:
    """Query parameters for the daemon's ``/build`` that cap every ``RUN`` step's container (0 = no cap).

    A job's own ``memory`` / ``cpus`` options (``plan``, a :class:`~worker.build.buildplan.BuildPlan`,
    bounded by the API) replace the settings' defaults for that build.
    """
    params: dict[str, Any] = {}
    if settings.build_memory_bytes > 0 and not getattr(plan, "memory", None):
        params["memory"] = settings.build_memory_bytes
        params["memswap"] = max(settings.build_memory_swap_bytes, settings.build_memory_bytes)
    if settings.build_cpu_shares > 0:
        params["cpushares"] = settings.build_cpu_shares
    if settings.build_cpus > 0 and not getattr(plan, "cpus", None):
        params["cpuperiod"] = CPU_PERIOD_US
        params["cpuquota"] = max(1000, int(settings.build_cpus * CPU_PERIOD_US))
    if settings.build_pids_limit > 0:
        limit = settings.build_pids_limit
        params["ulimits"] = json.dumps([{"Name": "nproc", "Soft": limit, "Hard": limit}])
    if plan is not None:
        params.update(plan.extra_params())
    return params


def explain_failure(message: str, settings: Settings) -> str:
    """Docker's error for a failed step, with the limit that most likely stopped it when it was killed."""
    if _KILLED.search(message) and settings.build_memory_bytes > 0:
        return (
            f"{message} (the step was killed; exit code 137 here almost always means it used more than the "
            f"build memory limit of {settings.build_memory_bytes // MiB} MiB)"
        )
    return message


def check_image_size(size: int, settings: Settings) -> str | None:
    """Why an image of ``size`` bytes is refused, or None when it is within ``max_image_bytes``."""
    if settings.max_image_bytes > 0 and size > settings.max_image_bytes:
        return (
            f"the built image is {size // MiB} MiB, over the limit of {settings.max_image_bytes // MiB} MiB "
            "per build (BOATYARD_MAX_IMAGE_BYTES)"
        )
    return None


class DiskWatch:
    """Stops a build whose running step has written more than ``max_image_bytes`` (checked every few seconds).

    ``containers`` is the job's list of step containers (the last one is running);
    ``stop`` is called once with the reason.
    """

    def __init__(
        self,
        api: Any,
        containers: list[str],
        settings: Settings,
        stop: Callable[[str], object],
        interval: float = DISK_WATCH_SECONDS,
    ) -> None:
        self._api = api
        self._containers = containers
        self._limit = settings.max_image_bytes
        self._stop_build = stop
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="disk-watch", daemon=True)

    def __enter__(self) -> "DiskWatch":
        if self._limit > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _run(self) -> None:
        while not self._done.wait(self._interval):
            if not self._containers:
                continue
            cid = self._containers[-1]
            try:
                found = self._api.containers(all=True, size=True, filters={"id": cid})
                size = int(found[0].get("SizeRw") or 0) if found else 0
            except (docker.errors.DockerException, OSError, ValueError):
                continue  # the daemon is busy or the step ended meanwhile
            if size > self._limit:
                self._stop_build(
                    f"a RUN step wrote {size // MiB} MiB, over the limit of {self._limit // MiB} MiB per build "
                    "(BOATYARD_MAX_IMAGE_BYTES)"
                )
                return
