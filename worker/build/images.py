"""Image references: which registry an image name pushes to, and its repository and tag.

The seed's rule: a reference whose first component contains ``.`` or ``:``
(or is ``localhost``) names the registry; otherwise it is Docker Hub.  Also: the
local tags private to a job, the daemon's key for a name (per-name locks), and
the registry credentials a job's build may send.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
from typing import Dict, Mapping

from chalicelib.domain.image_ref import RESERVED_REGISTRY, is_reserved

DOCKER_HUB = "docker.io"
DOCKER_HUB_AUTH_ADDRESS = "https://index.docker.io/v1/"


@dataclasses.dataclass(frozen=True)
class ImageRef:
    """A parsed image name."""

    registry: str  # "docker.io" or "host[:port]"
    repository: str  # what ``docker push`` gets, without the tag (e.g. "127.0.0.1:5000/team/app")
    tag: str

    @property
    def reference(self) -> str:
        """``repository:tag``: the name the image is built and pushed as."""
        return f"{self.repository}:{self.tag}"

    @property
    def auth_server(self) -> str:
        """The ``serveraddress`` for the registry's credentials."""
        return DOCKER_HUB_AUTH_ADDRESS if self.registry == DOCKER_HUB else self.registry


def registry_of(image_name: str) -> str:
    """The registry an image name pushes to (``docker.io`` for Docker Hub)."""
    first, sep, _rest = image_name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return DOCKER_HUB


def parse_image(image_name: str) -> ImageRef:
    """Split ``[registry/]path[:tag]`` (tag defaults to ``latest``); raises ValueError if malformed."""
    name = image_name.strip()
    if not name or "@" in name or "://" in name or any(c.isspace() for c in name):
        raise ValueError(f"not an image reference: {image_name!r}")
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        repository, tag = name[:colon], name[colon + 1 :]
        if not tag:
            raise ValueError(f"empty tag in image reference {image_name!r}")
    else:
        repository, tag = name, "latest"
    if not repository or repository.endswith("/"):
        raise ValueError(f"not an image reference: {image_name!r}")
    return ImageRef(registry_of(repository), repository, tag)


# --- names private to a job -----------------------------------------------------------------

PRIVATE_REGISTRY = RESERVED_REGISTRY
"""The registry part of the tags jobs build to.  ``.invalid`` is reserved (RFC 2606), so it
is never a real registry; the API refuses it in ``image_name`` (``chalicelib.domain.image_ref``)
and the worker refuses it as a push target, so no user name can equal a job's private tag."""

_SAFE_COMPONENT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def is_private(registry: str) -> bool:
    """True for the registry of job-private tags (any letter case, any port)."""
    return is_reserved(registry)


def private_tag(job_id: str, attempt: int) -> str:
    """``boatyard.invalid/job/<job_id>:<attempt>``: the local tag one attempt of a job builds to."""
    component = job_id if _SAFE_COMPONENT.fullmatch(job_id) else hashlib.sha256(job_id.encode()).hexdigest()[:32]
    return f"{PRIVATE_REGISTRY}/job/{component}:{int(attempt)}"


def host_name(ref: ImageRef) -> str:
    """The name the daemon stores ``ref`` under (``busybox`` → ``docker.io/library/busybox:latest``).

    Different spellings of one Docker Hub name are one local tag, so per-name locks use this key.
    """
    repository = ref.repository
    if ref.registry in (DOCKER_HUB, "index.docker.io"):
        for prefix in ("docker.io/", "index.docker.io/"):
            if repository.startswith(prefix):
                repository = repository[len(prefix) :]
        if "/" not in repository:
            repository = "library/" + repository
        repository = f"{DOCKER_HUB}/{repository}"
    return f"{repository}:{ref.tag}"


# --- registry credentials a job's build may use ----------------------------------------------

RegistryAuths = Dict[str, Dict[str, str]]
"""``{server address: {"username", "password", "serveraddress"}}``: what a build's
``X-Registry-Config`` carries (Docker Hub's key is its index URL)."""


def auth_key(registry: str) -> str:
    """The ``X-Registry-Config`` key of a registry host (Docker Hub's is its index URL)."""
    host = registry.lower()
    if host in (DOCKER_HUB, "index.docker.io", "registry-1.docker.io", DOCKER_HUB_AUTH_ADDRESS):
        return DOCKER_HUB_AUTH_ADDRESS
    return registry


def registry_auths(
    push_ref: ImageRef,
    username: str,
    password: str,
    extra: Mapping[str, tuple[str, str]] | None = None,
) -> RegistryAuths:
    """The auths one job's build may use: ``extra`` (registry host → (username, password)),
    then the push registry's own credentials (they win for that host).  Nothing else:
    never the worker's own Docker config."""
    auths: RegistryAuths = {}
    for registry, (user, secret) in (extra or {}).items():
        if user or secret:
            key = auth_key(registry)
            auths[key] = {"username": user, "password": secret, "serveraddress": key}
    if username or password:
        key = auth_key(push_ref.registry)
        auths[key] = {"username": username, "password": password, "serveraddress": key}
    return auths
