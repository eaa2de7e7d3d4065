"""Building and pushing with the Docker daemon's low-level API (``docker.APIClient``).

Each job gets its own :class:`JobAPIClient`, so a job's streams can be cut by
its :class:`~worker.job.control.JobControl` and no credentials are ever cached on a
client another job uses (pushes pass ``auth_config`` per call; ``login()`` is
never called).  The context is the local sanitized tar (``custom_context``).
"""
from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import time
from typing import Any, BinaryIO, Callable, Iterable, Iterator

import docker
import docker.auth
import docker.errors
import requests
import urllib3

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.image_ref import ImageRef
from chalicelib.stores.sealing import Credentials
from chalicelib.domain.settings import Settings
from worker.build import limits
from worker.build.buildplan import BuildPlan
from worker.job.control import AbortKind, Aborted, JobControl
from worker.build.images import RegistryAuths
from worker.build.limits import RuntimeUnavailable
from worker.build.targetlock import target_lock

log = logging.getLogger(__name__)

_RUNNING_IN = re.compile(r"Running in ([0-9a-f]{12,64})")
_TRANSPORT_ERRORS = (requests.RequestException, urllib3.exceptions.HTTPError, OSError)
DISK_CHECK_INTERVAL_SECONDS = 60.0


class _JobAuthConfig(docker.auth.AuthConfig):
    """A job's registry auths, never "empty": docker-py reloads ``~/.docker/config.json`` into an empty one."""

    @property
    def is_empty(self) -> bool:
        return False


class JobAPIClient(docker.APIClient):
    """An APIClient for one job: its streams are registered with the job's control (so they can be cut),
    and the only registry credentials it ever sends are the job's own (``registry_auths``).

    docker-py's ``build()`` would otherwise send the worker user's whole Docker config
    (``X-Registry-Config``), and ``pull``/``push`` without ``auth_config`` would read it too.
    """

    def __init__(
        self, *args: Any, control: JobControl | None = None, registry_auths: RegistryAuths | None = None, **kwargs: Any
    ) -> None:
        self.control = control
        self.extra_build_params: dict[str, Any] = {}  # POST /build parameters docker-py has no argument for
        super().__init__(*args, **kwargs)
        self.registry_auths: RegistryAuths = {k: dict(v) for k, v in (registry_auths or {}).items()}
        self._auth_configs = _JobAuthConfig({"auths": self.registry_auths})

    def reload_config(self, dockercfg_path: str | None = None) -> None:
        """Never read the worker's Docker config."""

    def _set_auth_headers(self, headers: dict[str, str]) -> None:
        headers["X-Registry-Config"] = docker.auth.encode_header(self.registry_auths).decode("ascii")

    def _post(self, url: str, **kwargs: Any) -> Any:
        if self.extra_build_params and url.endswith("/build"):
            kwargs["params"] = {**(kwargs.get("params") or {}), **self.extra_build_params}
        return super()._post(url, **kwargs)  # type: ignore[misc]  # docker-py's private method, not in its stubs

    def _stream_helper(self, response: Any, decode: bool = False) -> Any:
        if self.control is not None:
            self.control.register(response)
        return super()._stream_helper(response, decode=decode)  # type: ignore[misc]  # as _post


def _error_of(message: dict[str, Any]) -> str | None:
    """Docker's error text in a stream message, if it is an error."""
    detail = message.get("errorDetail")
    if isinstance(detail, dict) and detail.get("message"):
        return str(detail["message"]).strip()
    if message.get("error"):
        return str(message["error"]).strip()
    return None


def _fail_on_error(message: dict[str, Any], write: Callable[[str], None]) -> None:
    """If a build or push stream message is Docker's error, write it to the log and fail the job with it."""
    error = _error_of(message)
    if error is not None:
        write(error + "\n")
        raise BuildFailed(error)


def _status_line(message: dict[str, Any]) -> str | None:
    """A pull/push status message as one log line; progress-bar updates are skipped."""
    status = message.get("status")
    if not status or message.get("progress"):
        return None
    return f"{message['id']}: {status}" if message.get("id") else str(status)


class Builder:
    """Docker operations for jobs: build, push, remove, and the disk budget."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._version: str | None = None
        self._disk_lock = threading.Lock()
        self._last_disk_check = 0.0
        self._running_since: dict[int, float] = {}  # build token -> wall-clock start, for safe pruning
        self._running_lock = threading.Lock()
        self._next_token = 0

    def client(self, control: JobControl | None = None, registry_auths: RegistryAuths | None = None) -> JobAPIClient:
        """A fresh client for one job (the API version is looked up once per worker); it sends only ``registry_auths``."""
        api = JobAPIClient(
            base_url=self.settings.docker_host,
            version=self._version or "auto",
            timeout=self.settings.build_timeout_seconds + 60,  # the watchdog, not the socket, ends slow builds
            control=control,
            registry_auths=registry_auths,
        )
        self._version = api.api_version
        return api

    def _consume(
        self, stream: Iterable[dict[str, Any]], control: JobControl, on_message: Callable[[dict[str, Any]], None]
    ) -> None:
        """Run through a decoded stream; an abort that cut it raises :class:`Aborted`."""
        try:
            for message in stream:
                control.check()
                on_message(message)
        except (Aborted, BuildFailed):
            raise
        except docker.errors.APIError as exc:
            control.check()
            raise BuildFailed(str(exc.explanation or exc).strip()) from None
        except _TRANSPORT_ERRORS as exc:
            control.check()
            raise BuildFailed(f"lost the connection to the Docker daemon ({type(exc).__name__})") from None
        control.check()

    def build(
        self,
        context: BinaryIO,
        image: str,
        write: Callable[[str], None],
        control: JobControl,
        registry_auths: RegistryAuths | None = None,
        plan: BuildPlan | None = None,
    ) -> str:
        """Build the tar in ``context`` as ``image`` (the job's private tag) with the job's ``plan`` (its
        options); returns the image id.

        Bases are pulled fresh (``pull``, unless the plan says otherwise) with ``registry_auths`` only,
        so a stale or shadowed local copy of a base is never used.  Docker's error → :class:`BuildFailed`.
        """
        with self.running_build():
            return self._build(context, image, write, control, registry_auths or {}, plan)

    @contextlib.contextmanager
    def running_build(self) -> Iterator[None]:
        """Mark a build as running on this host for as long as the block lasts (see :meth:`prune_filters`)."""
        with self._running_lock:
            token = self._next_token
            self._next_token += 1
            self._running_since[token] = time.time()
        try:
            yield
        finally:
            with self._running_lock:
                del self._running_since[token]

    def prune_filters(self) -> dict[str, Any]:
        """Filters for pruning dangling images that leave every running build's step images alone.

        A classic build's step images stay untagged ("dangling") until its last step, so
        while builds run here only images created before the oldest of them may go.
        """
        with self._running_lock:
            oldest = min(self._running_since.values(), default=None)
        if oldest is None:
            return {"dangling": True}
        return {"dangling": True, "until": str(int(oldest) - 1)}

    def check_runtime(self) -> None:
        """Raise :class:`~worker.build.limits.RuntimeUnavailable` unless the daemon's default runtime is the configured one."""
        api = self.client()
        try:
            info = api.info()
        except (docker.errors.DockerException, *_TRANSPORT_ERRORS) as exc:
            raise RuntimeUnavailable(f"cannot reach the Docker daemon at {self.settings.docker_host}: {exc}") from None
        finally:
            api.close()
        limits.check_runtime(info, self.settings.build_runtime, self.settings.docker_host)

    def _build(
        self,
        context: BinaryIO,
        image: str,
        write: Callable[[str], None],
        control: JobControl,
        registry_auths: RegistryAuths,
        plan: BuildPlan | None,
    ) -> str:
        api = self.client(control, registry_auths)
        api.extra_build_params = limits.build_params(self.settings, plan)  # the job's own options win
        image_id = ""

        def on_message(message: dict[str, Any]) -> None:
            nonlocal image_id
            _fail_on_error(message, write)
            text = message.get("stream")
            if text:
                write(text)
                for cid in _RUNNING_IN.findall(text):
                    control.containers.append(cid)
            line = _status_line(message)
            if line:
                write(line + "\n")
            aux = message.get("aux")
            if isinstance(aux, dict) and aux.get("ID"):
                image_id = str(aux["ID"])

        try:
            arguments: dict[str, Any] = dict(
                fileobj=context,
                custom_context=True,
                tag=image,
                decode=True,
                rm=True,
                forcerm=True,
                pull=True,
                timeout=self.settings.build_timeout_seconds + 60,
                use_config_proxy=False,
                network_mode=self.settings.build_network or None,
            )
            stream = api.build(**{**arguments, **(plan.build_kwargs() if plan else {})})
            self._contained(control, lambda: self._consume(stream, control, on_message))
            if not image_id:
                found = api.images(name=image, quiet=True)
                image_id = found[0] if found else ""
            if image_id:
                self._check_image_size(api, image, image_id)
        except docker.errors.APIError as exc:  # refused before streaming (e.g. a bad Dockerfile)
            control.check()
            message = str(exc.explanation or exc).strip()
            write(message + "\n")
            raise BuildFailed(message) from None
        except docker.errors.DockerException as exc:
            raise BuildFailed(str(exc).strip()) from None
        finally:
            if control.aborted:
                self.remove_containers(control.containers)
            api.close()
        if not image_id:
            raise BuildFailed("the Docker daemon finished the build without producing an image")
        return image_id

    def _contained(self, control: JobControl, consume: Callable[[], None]) -> None:
        """Run a build's stream under the disk watch; a step killed by a limit fails with the limit named."""
        watcher = self.client()
        stop = functools.partial(control.abort, AbortKind.LIMIT)
        try:
            with limits.DiskWatch(watcher, control.containers, self.settings, stop):
                consume()
        except BuildFailed as exc:
            raise BuildFailed(limits.explain_failure(exc.message, self.settings)) from None
        finally:
            watcher.close()

    def _check_image_size(self, api: JobAPIClient, image: str, image_id: str) -> None:
        """Remove the built image and fail when it is larger than a build may produce."""
        reason = limits.check_image_size(int(api.inspect_image(image_id).get("Size") or 0), self.settings)
        if reason:
            self.remove_image(image)
            raise BuildFailed(reason)

    def publish(
        self, image_id: str, ref: ImageRef, credentials: Credentials, write: Callable[[str], None], control: JobControl
    ) -> str:
        """Push the built image ``image_id`` as ``ref`` with the job's own credentials; returns the pushed digest.

        The user's name exists on the host only inside the per-name lock: tag → check it is
        ``image_id`` → push → check the daemon records the pushed digest for ``image_id`` →
        put the name back as it was (another image's tag is restored, ours removed).
        """
        name = ref.daemon_name
        with target_lock(name, self.settings.image_lock_dir, control):
            api = self.client(control)
            try:
                previous = self._image_id(api, ref.reference)
                api.tag(image_id, ref.repository, ref.tag, force=True)
                try:
                    if self._image_id(api, ref.reference) != image_id:
                        raise BuildFailed(f"{ref.reference} changed on the build host before the push; submit the build again")
                    digest = self._push(api, ref, credentials, write, control)
                    found = self._inspect(api, ref.reference)
                    pushed = any(str(d).endswith("@" + digest) for d in found.get("RepoDigests") or [])
                    if found.get("Id") != image_id or not pushed:
                        raise BuildFailed(f"the registry's digest for {ref.reference} is not the image this job built")
                    return digest
                finally:
                    self._restore_name(api, ref, image_id, previous)
            except docker.errors.APIError as exc:  # tag or inspect refused by the daemon
                control.check()
                raise BuildFailed(str(exc.explanation or exc).strip()) from None
            finally:
                api.close()

    @staticmethod
    def _inspect(api: JobAPIClient, name: str) -> dict[str, Any]:
        try:
            return dict(api.inspect_image(name))
        except docker.errors.NotFound:
            return {}

    def _image_id(self, api: JobAPIClient, name: str) -> str | None:
        return self._inspect(api, name).get("Id")

    def _restore_name(self, api: JobAPIClient, ref: ImageRef, image_id: str, previous: str | None) -> None:
        """After a push: the user's name goes back to the image it named before (if any), else it is removed."""
        if previous == image_id:
            return
        if previous:
            try:
                api.tag(previous, ref.repository, ref.tag, force=True)
                return
            except docker.errors.APIError:  # the old image is gone meanwhile: just remove our tag
                pass
        try:
            if self._image_id(api, ref.reference) == image_id:
                api.remove_image(ref.reference, noprune=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("could not remove the tag %s from the host: %s", ref.reference, exc.explanation)

    def _push(
        self, api: JobAPIClient, ref: ImageRef, credentials: Credentials, write: Callable[[str], None], control: JobControl
    ) -> str:
        auth: dict[str, str] = {}
        if credentials.present:
            auth = {"username": credentials.username, "password": credentials.password, "serveraddress": ref.auth_server}
        digest = ""

        def on_message(message: dict[str, Any]) -> None:
            nonlocal digest
            _fail_on_error(message, write)
            line = _status_line(message)
            if line:
                write(line + "\n")
            aux = message.get("aux")
            if isinstance(aux, dict) and aux.get("Digest"):
                digest = str(aux["Digest"])

        try:
            stream = api.push(ref.repository, tag=ref.tag, auth_config=auth, stream=True, decode=True)
            self._consume(stream, control, on_message)
        except docker.errors.APIError as exc:
            control.check()
            message = str(exc.explanation or exc).strip()
            write(message + "\n")
            raise BuildFailed(message) from None
        if not digest:
            raise BuildFailed("the registry did not report a digest for the pushed image")
        return digest

    def remove_image(self, image: str) -> None:
        """Remove a job's tag from the host; errors are logged.

        Never its untagged parents (``noprune``): a concurrent build may be using them as
        cache.  Dangling images go with the disk-budget pruning, which spares running builds.
        """
        api = self.client()
        try:
            api.remove_image(image, noprune=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as exc:
            log.warning("could not remove image %s from the host: %s", image, exc.explanation)
        finally:
            api.close()

    def remove_containers(self, container_ids: Iterable[str]) -> None:
        """Force-remove the build containers of an aborted build (the daemon usually already did)."""
        ids = list(dict.fromkeys(container_ids))
        if not ids:
            return
        api = self.client()
        try:
            for cid in ids:
                for _ in range(3):
                    try:
                        api.remove_container(cid, force=True)
                        break
                    except docker.errors.NotFound:
                        break
                    except docker.errors.APIError as exc:  # "removal already in progress": wait for the daemon
                        log.info("retrying removal of build container %s: %s", cid[:12], exc.explanation)
                        time.sleep(1)
        finally:
            api.close()

    def keep_disk_budget(self, force: bool = False) -> int:
        """Prune build cache and dangling images when Docker uses more than the disk budget; returns bytes freed."""
        with self._disk_lock:
            now = time.monotonic()
            if not force and now - self._last_disk_check < DISK_CHECK_INTERVAL_SECONDS:
                return 0
            self._last_disk_check = now
            api = self.client()
            try:
                usage = api.df()
                used = int(usage.get("LayersSize") or 0) + sum(int(c.get("Size") or 0) for c in usage.get("BuildCache") or [])
                if used <= self.settings.disk_budget_bytes:
                    return 0
                freed = int(api.prune_builds().get("SpaceReclaimed") or 0)
                freed += int(api.prune_images(filters=self.prune_filters()).get("SpaceReclaimed") or 0)
                log.info("docker used %d bytes (budget %d); pruned %d bytes", used, self.settings.disk_budget_bytes, freed)
                return freed
            except docker.errors.DockerException as exc:
                log.warning("could not check Docker's disk use: %s", exc)
                return 0
            finally:
                api.close()
