"""URLs as shown back to people (reasons, logs, API answers): never their user info or query.

A URL a user sent may carry a token in its user info (``https://user:token@host``) or its query
(a presigned ``?sig=``); only scheme, host, port and path are ever shown.
"""

from __future__ import annotations

import urllib.parse


def display_url(url: str) -> str:
    """``url`` without user info, query or fragment: scheme, host, port and path."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
