"""Docker image references, per the grammar of distribution/reference.

::

    reference       := name [ ":" tag ] [ "@" digest ]
    name            := [domain "/"] path-component ["/" path-component]*
    domain          := host [":" port]          (first component with "." or ":", or "localhost")
    path-component  := [a-z0-9]+ (separator [a-z0-9]+)*
    separator       := "." | "_" | "__" | "-"+
    tag             := [\\w][\\w.-]{0,127}

A digest reference (``@sha256:...``) names content that already exists and
cannot be the target of a push, so :func:`parse_reference` refuses it.
"""
from __future__ import annotations

import dataclasses
import re

NAME_TOTAL_LENGTH_MAX = 255
RESERVED_REGISTRY = "boatyard.invalid"
"""The registry part of the local tags the worker builds jobs to (``.invalid`` is reserved by
RFC 2606, so no real registry has it); a job may not push to it, so no user name equals one."""

_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_DOMAIN_RE = re.compile(rf"{_HOST}(?::[0-9]+)?", re.ASCII)
_PATH_COMPONENT_RE = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", re.ASCII)
_TAG_RE = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST_RE = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}", re.ASCII)


class InvalidReference(ValueError):
    """An image reference that does not follow the grammar; ``str()`` says why."""


@dataclasses.dataclass(frozen=True)
class ImageReference:
    """A parsed, pushable image reference."""

    domain: str | None  # None means Docker Hub
    path: str
    tag: str | None

    @property
    def name(self) -> str:
        """The repository name without tag (``[domain/]path``)."""
        return f"{self.domain}/{self.path}" if self.domain else self.path

    def __str__(self) -> str:
        return f"{self.name}:{self.tag}" if self.tag else self.name


def is_reserved(domain: str) -> bool:
    """True for the build service's own registry name (any letter case, with or without a port)."""
    return domain.lower().partition(":")[0] == RESERVED_REGISTRY


def _is_domain(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_reference(text: str) -> ImageReference:
    """Parse ``text`` as a pushable image reference; raises :class:`InvalidReference`."""
    if not text:
        raise InvalidReference("is empty")
    if "@" in text:
        name_part, _, digest = text.partition("@")
        if _DIGEST_RE.fullmatch(digest):
            raise InvalidReference(
                "a digest reference (name@sha256:...) names an existing image and cannot be pushed; "
                "give a name with an optional :tag instead"
            )
        raise InvalidReference("'@' is only allowed before a digest, and digest references cannot be pushed")
    name, tag = text, None
    colon = text.rfind(":")
    if colon != -1 and "/" not in text[colon + 1 :]:
        name, tag = text[:colon], text[colon + 1 :]
        if not _TAG_RE.fullmatch(tag):
            raise InvalidReference(
                "the tag must be 1 to 128 characters of letters, digits, '_', '.' and '-', "
                "not starting with '.' or '-'"
            )
    if len(name) > NAME_TOTAL_LENGTH_MAX:
        raise InvalidReference(f"the repository name must be at most {NAME_TOTAL_LENGTH_MAX} characters")
    domain: str | None = None
    components = name.split("/")
    if len(components) > 1 and _is_domain(components[0]):
        domain = components.pop(0)
        if not _DOMAIN_RE.fullmatch(domain):
            raise InvalidReference(f"the registry {domain!r} is not a valid host[:port]")
        if is_reserved(domain):
            raise InvalidReference(f"the registry {domain!r} is reserved for the build service's own use")
    for component in components:
        if _PATH_COMPONENT_RE.fullmatch(component):
            continue
        if _PATH_COMPONENT_RE.fullmatch(component.lower()):
            raise InvalidReference("the repository name must be lowercase")
        raise InvalidReference(
            "each part of the repository path must be lowercase letters and digits, separated by "
            "'.', '_', '__' or dashes, e.g. user/image:tag or registry.example.com:5000/team/image:1.0"
        )
    return ImageReference(domain, "/".join(components), tag)
