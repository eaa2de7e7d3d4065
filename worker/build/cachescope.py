"""Keeping the classic builder's layer cache to one owner: an ``ARG`` after every ``FROM``.

The classic builder reuses a cached layer when the parent image and the
instruction match, whoever built it.  :func:`scope_classic` adds
``ARG BOATYARD_CACHE_SCOPE=<scope>`` right after every ``FROM`` instruction
(after its continuation lines).  That step's cache key holds the owner's
scope value, so every later layer of the stage descends from an image only
that owner's builds produce: another owner's build never reaches them, while
the same owner's repeated builds still hit the cache.  The value is a hash of
the owner (:func:`scope_value`); it needs no secrecy, since no Dockerfile can
put anything before the injected step (a later ``ARG``/``ENV`` of the same name
changes layers below an image that is already the owner's own).

Seen by the user: one extra step per stage in the log and in the image
history (``ARG BOATYARD_CACHE_SCOPE=...``), RUN steps' history entries start
with ``|1 BOATYARD_CACHE_SCOPE=...`` and RUN steps see that variable in their
environment; the image config (``Env``, ``Cmd``, labels) is unchanged.  Lines
after a ``FROM`` move down by one per ``FROM`` above them (parse errors name
the moved line).
"""
from __future__ import annotations

import hashlib

from worker.build.dockerfile_features import instructions_of

SCOPE_ARG = "BOATYARD_CACHE_SCOPE"


def scope_value(owner: str) -> str:
    """The owner's scope: a short hash, so the owner's name is not written into image histories."""
    return hashlib.sha256(b"boatyard-cache-scope\0" + owner.encode("utf-8")).hexdigest()[:16]


def scope_classic(text: str, owner: str) -> tuple[str, int]:
    """``text`` with ``ARG BOATYARD_CACHE_SCOPE=<scope>`` after each ``FROM``; and how many were added."""
    lines, found = instructions_of(text)
    after = [max(lines_of) for keyword, lines_of in found if keyword == "FROM"]
    line = f"ARG {SCOPE_ARG}={scope_value(owner)}"
    for index in reversed(after):
        lines.insert(index + 1, line)
    return "\n".join(lines), len(after)
