"""A tarball from a URL the user gave, fetched through the SSRF guard."""
from __future__ import annotations

from typing import Any, BinaryIO, Callable

import requests
import urllib3

from chalicelib.settings import Settings
from worker import netguard
from worker.archive import ContextLimits, ContextStats, Layout, sanitize
from worker.sources.stream import SafeStream

_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, requests.RequestException)


def download_stream(response: requests.Response, what: str) -> SafeStream:
    """The decoded body of a streamed response as a readable stream."""
    raw: Any = response.raw
    return SafeStream(raw, what, _TRANSPORT_ERRORS, read=lambda n: raw.read(n, decode_content=True))


def fetch(
    url: str,
    dest: BinaryIO,
    limits: ContextLimits,
    settings: Settings,
    check: Callable[[], None],
    layout: Layout = Layout(),
) -> ContextStats:
    """Download ``url`` (tar or tar.gz) through the guard, sanitizing it into ``dest``."""
    response = netguard.open_url(url, settings.allow_private_urls, settings.fetch_timeout_seconds, limits.max_bytes)
    with response:
        return sanitize(
            download_stream(response, f"the download of {netguard.describe_url(url)}"), dest, limits, check=check,
            context_path=layout.context_path, dockerfile_path=layout.dockerfile_path,
        )
