"""The names and credentials of one job's images: its private local tags and the registry auths its build may send.

Parsing an image name (which registry it pushes to, its repository and tag, the
daemon's key for it) is :mod:`chalicelib.domain.image_ref`'s, shared with the API.
"""
from __future__ import annotations

import hashlib
import re
from typing import Dict, Mapping

from chalicelib.domain.image_ref import RESERVED_REGISTRY, ImageRef, auth_key

# --- names private to a job -----------------------------------------------------------------

PRIVATE_REGISTRY = RESERVED_REGISTRY
"""The registry part of the tags jobs build to.  ``.invalid`` is reserved (RFC 2606), so it
is never a real registry; :func:`chalicelib.domain.image_ref.parse_image_ref` refuses it, in the API
and in the worker, so no user name can equal a job's private tag."""

_SAFE_COMPONENT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def private_tag(job_id: str, attempt: int) -> str:
    """``boatyard.invalid/job/<job_id>:<attempt>``: the local tag one attempt of a job builds to."""
    component = job_id if _SAFE_COMPONENT.fullmatch(job_id) else hashlib.sha256(job_id.encode()).hexdigest()[:32]
    return f"{PRIVATE_REGISTRY}/job/{component}:{int(attempt)}"


# --- registry credentials a job's build may use ----------------------------------------------

RegistryAuths = Dict[str, Dict[str, str]]
"""``{server address: {"username", "password", "serveraddress"}}``: what a build's
``X-Registry-Config`` carries (Docker Hub's key is its index URL)."""


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
