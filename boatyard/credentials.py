"""Registry credentials for the push: ``--username`` + ``--password-stdin``, else the environment
(``BOATYARD_REGISTRY_USER`` / ``BOATYARD_REGISTRY_PASSWORD``), else the user's Docker config for that
registry (``~/.docker/config.json``: ``auths`` entries, ``credsStore`` / ``credHelpers`` through the
``docker-credential-*`` helpers, read with docker-py's ``docker.auth``).  Never printed."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping


@dataclasses.dataclass(frozen=True)
class RegistryCredentials:
    """A username and password for one registry, and where they came from."""

    username: str = ""
    password: str = ""
    source: str = "none"

    def __repr__(self) -> str:  # the password never shows, even in a traceback
        return f"RegistryCredentials(username={self.username!r}, source={self.source!r})"

    def fields(self) -> dict[str, str]:
        """The build request's ``username`` / ``password`` fields (none when anonymous)."""
        return {"username": self.username, "password": self.password} if self.password else {}


def registry_of(image: str) -> str:
    """The registry host of an image reference, by Docker's rule (distribution/reference's
    ``splitDockerDomain``, as the API reads ``image_name``): the first part when it holds a ``.`` or a
    ``:``, is ``localhost`` or has an uppercase letter; otherwise Docker Hub, ``docker.io``
    (also for its legacy name ``index.docker.io``)."""
    first, slash, _rest = image.split("@", 1)[0].partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return "docker.io"
    return "docker.io" if first == "index.docker.io" else first


def from_docker_config(registry: str, config_path: str | None = None) -> RegistryCredentials:
    """What ``docker push`` would use for ``registry``, from the Docker config and credential helpers."""
    from docker import auth
    from docker.errors import DockerException

    try:
        config = auth.load_config(config_path)
        entry = config.resolve_authconfig(registry) or {}
    except (DockerException, OSError, ValueError):
        return RegistryCredentials()
    username, password = entry.get("Username") or entry.get("username"), entry.get("Password") or entry.get("password")
    if username and password:
        return RegistryCredentials(username, password, "docker config")
    return RegistryCredentials()


def resolve(
    image: str,
    username: str | None = None,
    password: str | None = None,
    env: Mapping[str, str] | None = None,
    docker_config: str | None = None,
) -> RegistryCredentials:
    """The credentials to push ``image`` with: flags, then environment, then the Docker config."""
    env = os.environ if env is None else env
    if password:
        if not username:
            raise ValueError("--password-stdin needs --username")
        return RegistryCredentials(username, password, "flags")
    if env.get("BOATYARD_REGISTRY_PASSWORD"):
        user = username or env.get("BOATYARD_REGISTRY_USER", "")
        if not user:
            raise ValueError("BOATYARD_REGISTRY_PASSWORD is set but BOATYARD_REGISTRY_USER (or --username) is not")
        return RegistryCredentials(user, env["BOATYARD_REGISTRY_PASSWORD"], "environment")
    found = from_docker_config(registry_of(image), docker_config)
    if found.password and (not username or username == found.username):
        return found
    return RegistryCredentials()
