"""What every URL-valued request field (``tar_url``, ``notify_url``) is checked for first, with the same messages.

:func:`url_parts` refuses a URL that is too long, holds whitespace or control characters, or does not parse
(a bad port included), and answers its parts; each field then checks scheme, host and credentials its own way.
Its own module because :mod:`chalicelib.api.validation` imports :mod:`chalicelib.api.notify_fields`.
"""

from __future__ import annotations

import urllib.parse

from chalicelib.domain import patterns
from chalicelib.domain.errors import InvalidRequest

MAX_URL_CHARS = 2048


def url_parts(url: str, field: str) -> urllib.parse.SplitResult:
    """``url`` split into its parts; a 400 naming ``field`` for the checks above."""
    if len(url) > MAX_URL_CHARS:
        raise InvalidRequest(f"must be at most {MAX_URL_CHARS} characters", field=field)
    if any(c.isspace() for c in url) or not patterns.matches(patterns.NO_CONTROL_CHARS, url):
        raise InvalidRequest("must not contain whitespace or control characters", field=field)
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise InvalidRequest("is not a valid URL", field=field) from None
    return parts
