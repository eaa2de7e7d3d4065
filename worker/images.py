"""Image references: which registry an image name pushes to, and its repository and tag.

The seed's rule: a reference whose first component contains ``.`` or ``:``
(or is ``localhost``) names the registry; otherwise it is Docker Hub.
"""
from __future__ import annotations

import dataclasses

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
