"""Docker image references: the one parser the API and the worker share.

Per the grammar of distribution/reference (what ``docker tag``/``docker push``
and docker/cli use), restricted to what can be pushed::

    reference       := name [ ":" tag ]                 (no "@" digest: it names existing content)
    name            := [domain "/"] path-component ["/" path-component]*
    domain          := host [":" port]
    path-component  := [a-z0-9]+ (separator [a-z0-9]+)*
    separator       := "." | "_" | "__" | "-"+
    tag             := [\\w][\\w.-]{0,127}

Which first component names the registry is Docker's ``splitDockerDomain`` rule
(:func:`split_domain`): one that holds a ``.`` or a ``:``, is ``localhost``, or
has an uppercase letter (a path component never does, so ``Registry/app``
pushes to the host ``Registry``); otherwise the name is on Docker Hub.  A name
that is only 64 hexadecimal digits is an image ID, not a name (Docker refuses it
too), and the build service's own registry (:data:`RESERVED_REGISTRY`) is not a
user's to push to.

``ui/validate.js`` checks the same grammar in the browser; the corpus
``tests/unit/image_refs.json`` runs through both so they cannot drift.
"""

from __future__ import annotations

import dataclasses
import re

from chalicelib.domain.patterns import DOMAIN_COMPONENT, PATH_COMPONENT, TAG

NAME_TOTAL_LENGTH_MAX = 255
DEFAULT_TAG = "latest"
DOCKER_HUB = "docker.io"
DOCKER_HUB_AUTH_ADDRESS = "https://index.docker.io/v1/"
_DOCKER_HUB_NAMES = (DOCKER_HUB, "index.docker.io", "registry-1.docker.io", DOCKER_HUB_AUTH_ADDRESS)
RESERVED_REGISTRY = "boatyard.invalid"
"""The registry part of the local tags the worker builds jobs to (``.invalid`` is reserved by
RFC 2606, so no real registry has it); a job may not push to it, so no user name equals one."""

_HOST = rf"(?:{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN_RE = re.compile(rf"{_HOST}(?::[0-9]+)?", re.ASCII)
_PATH_COMPONENT_RE = re.compile(PATH_COMPONENT, re.ASCII)
_TAG_RE = re.compile(TAG, re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}", re.ASCII)
_IDENTIFIER_RE = re.compile(r"[a-f0-9]{64}", re.ASCII)


class InvalidReference(ValueError):
    """An image reference that does not follow the grammar; ``str()`` says why."""


@dataclasses.dataclass(frozen=True)
class ImageRef:
    """A parsed, pushable image reference (``tag`` is ``latest`` when none was written, as Docker reads it)."""

    domain: str | None  # the registry as written; None means Docker Hub
    path: str
    tag: str = DEFAULT_TAG

    @property
    def registry(self) -> str:
        """The registry the name pushes to: the domain as written, or ``docker.io``."""
        return self.domain or DOCKER_HUB

    @property
    def repository(self) -> str:
        """The name without the tag, as written (``[domain/]path``): what ``docker tag``/``docker push`` get."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    @property
    def reference(self) -> str:
        """``repository:tag``: the name the image is built and pushed as."""
        return f"{self.repository}:{self.tag}"

    @property
    def auth_server(self) -> str:
        """The ``serveraddress`` of the registry's credentials (Docker Hub's is its index URL)."""
        return auth_key(self.registry)

    @property
    def daemon_name(self) -> str:
        """The name the daemon stores the image under (``busybox`` → ``docker.io/library/busybox:latest``).

        Different spellings of one Docker Hub name are one local tag, so per-name locks use this key.
        """
        if self.domain is not None and self.domain not in _DOCKER_HUB_NAMES[:2]:
            return self.reference
        path = self.path if "/" in self.path else f"library/{self.path}"
        return f"{DOCKER_HUB}/{path}:{self.tag}"

    def __str__(self) -> str:
        return self.reference


def auth_key(registry: str) -> str:
    """The credentials key of a registry host (``X-Registry-Config``, ``serveraddress``): Docker Hub's is its index URL."""
    return DOCKER_HUB_AUTH_ADDRESS if registry.lower() in _DOCKER_HUB_NAMES else registry


def is_reserved(domain: str) -> bool:
    """True for the build service's own registry name (any letter case, with or without a port)."""
    return domain.lower().partition(":")[0] == RESERVED_REGISTRY


def split_domain(name: str) -> tuple[str | None, str]:
    """``(domain, rest)`` of a name by Docker's rule (``splitDockerDomain``); domain None means Docker Hub.

    The first ``/``-separated component is the registry when it holds a ``.`` or a ``:``,
    is ``localhost``, or has an uppercase letter; a single component never is.
    """
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        return first, rest
    return None, name


def _refuse_digest(text: str) -> None:
    """A reference with ``@``: refused, saying why (a digest names an existing image)."""
    _, _, digest = text.partition("@")
    if _DIGEST_RE.fullmatch(digest):
        raise InvalidReference(
            "a digest reference (name@sha256:...) names an existing image and cannot be pushed; "
            "give a name with an optional :tag instead"
        )
    raise InvalidReference("'@' is only allowed before a digest, and digest references cannot be pushed")


def _check_component(component: str) -> None:
    """One part of the repository path: lowercase alphanumerics and separators."""
    if _PATH_COMPONENT_RE.fullmatch(component):
        return
    if _PATH_COMPONENT_RE.fullmatch(component.lower()):
        raise InvalidReference("the repository name must be lowercase")
    raise InvalidReference(
        "each part of the repository path must be lowercase letters and digits, separated by "
        "'.', '_', '__' or dashes, e.g. user/image:tag or registry.example.com:5000/team/image:1.0"
    )


def parse_image_ref(text: str) -> ImageRef:
    """Parse ``text`` as a pushable image reference; raises :class:`InvalidReference` saying why not."""
    if not text:
        raise InvalidReference("is empty")
    if "@" in text:
        _refuse_digest(text)
    if _IDENTIFIER_RE.fullmatch(text):
        raise InvalidReference("64 hexadecimal digits are an image ID, not a name; give a name like user/image:tag")
    name, tag = text, DEFAULT_TAG
    colon = text.rfind(":")
    if colon != -1 and "/" not in text[colon + 1 :]:
        name, tag = text[:colon], text[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference(
                "the tag must be 1 to 128 characters of letters, digits, '_', '.' and '-', not starting with '.' or '-'"
            )
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"the repository name must be at most {NAME_TOTAL_LENGTH_MAX} characters")
    domain, path = split_domain(name)
    if domain is not None:
        if not _DOMAIN_RE.fullmatch(domain):
            raise InvalidReference(f"the registry {domain!r} is not a valid host[:port]")
        if is_reserved(domain):
            raise InvalidReference(f"the registry {domain!r} is reserved for the build service's own use")
    for component in path.split("/"):
        _check_component(component)
    return ImageRef(domain, path, tag)
