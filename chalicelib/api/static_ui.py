"""The static web UI served by the API itself, for the local stack only (``BOATYARD_SERVE_UI``).

Only plain file names (``[A-Za-z0-9._-]+``) that exist directly in ``ui_dir``
are served: no sub-folders, no path traversal, no dot-files.
"""

from __future__ import annotations

import dataclasses
import os
import re

from chalicelib.domain.errors import NotFound
from chalicelib.domain.settings import Settings

_NAME_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", re.ASCII)

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".ico": "image/x-icon",
}
BINARY_TYPES = ("image/png", "image/jpeg", "image/gif", "image/x-icon")
"""Content types answered as bytes (they must be in the app's ``binary_types``)."""


class AssetNotFound(NotFound):
    """No such UI file, or the UI is not served here (404)."""


@dataclasses.dataclass(frozen=True)
class Asset:
    """A file to answer with: its body and content type."""

    body: bytes | str
    content_type: str


def load_asset(name: str, settings: Settings) -> Asset:
    """The UI file ``name`` (``index.html`` for the root) or :class:`AssetNotFound`."""
    if not settings.serve_ui:
        raise AssetNotFound("no such resource (the web UI is not served by this API)")
    if not _NAME_RE.fullmatch(name or ""):
        raise AssetNotFound("no such file")
    content_type = CONTENT_TYPES.get(os.path.splitext(name)[1].lower())
    path = os.path.join(settings.ui_dir, name)
    if content_type is None or not os.path.isfile(path):
        raise AssetNotFound("no such file")
    with open(path, "rb") as handle:
        data = handle.read()
    if content_type.split(";")[0] in BINARY_TYPES:
        return Asset(data, content_type)
    return Asset(data.decode("utf-8", errors="replace"), content_type)
