"""The build request's notification fields: ``notify_url``, ``notify_secret``, ``notify_events``.

``notify_url`` must be an ``https://`` URL whose host is not this machine or a
private, link-local (cloud metadata), CGNAT or other non-public address written as a
literal (names are resolved and checked again when sending, and the address is pinned).
``BOATYARD_ALLOW_LOOPBACK_NOTIFY_URLS`` (test and local stacks only) lets ``http://``
and loopback receivers (``127.0.0.1``, ``::1``, ``localhost``) through.
``notify_secret`` (16 to 256 characters) is required with it: every payload is signed,
so a receiver can tell boatyard's POSTs from anyone else's; it is sealed and never
echoed.  ``notify_events`` defaults to finished, failed and cancelled.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping
from typing import Any

from chalicelib.api.url_fields import url_parts
from chalicelib.domain import notify as rules
from chalicelib.domain import patterns
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.registry_hosts import registry_refusal
from chalicelib.domain.settings import Settings

MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 256
FIELDS = ("notify_url", "notify_secret", "notify_events")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


@dataclasses.dataclass(frozen=True)
class NotifyRequest:
    """A validated per-job subscription (the secret is plaintext here, in memory only)."""

    url: str
    secret: str = dataclasses.field(repr=False)
    events: tuple[str, ...] = rules.DEFAULT_EVENTS


def _given(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name)
    return value is not None and value != "" and value != []


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise InvalidRequest("must be a string", field=name)
    return value


def _is_loopback_host(host: str) -> bool:
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_loopback)


def validate_notify_url(url: str, settings: Settings) -> str:
    """An https URL to a public host (see the module doc); a 400 naming ``notify_url`` otherwise."""
    parts = url_parts(url, "notify_url")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise InvalidRequest("must name a host", field="notify_url")
    if "@" in parts.netloc:
        raise InvalidRequest(
            "must not contain credentials (user:password@); notifications are signed instead", field="notify_url"
        )
    loopback_ok = settings.allow_loopback_notify_urls and _is_loopback_host(host)
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and loopback_ok):
        raise InvalidRequest("must be an https:// URL", field="notify_url")
    if not patterns.matches(patterns.TAR_URL, url):
        raise InvalidRequest(
            "must be a plain-ASCII https URL: a host name, an optional port up to 65535, then a path "
            "(percent-encode anything else)",
            field="notify_url",
        )
    if not loopback_ok:
        reason = registry_refusal(host)
        if reason:
            reason = reason.replace("registry host", "host", 1)
            raise InvalidRequest(f"{reason}; notifications go only to public internet addresses", field="notify_url")
    return url


def validate_notify_fields(data: Mapping[str, Any], settings: Settings) -> NotifyRequest | None:
    """The three fields together: None when no ``notify_url`` is given (and then neither of the others)."""
    if not _given(data, "notify_url"):
        for other in ("notify_secret", "notify_events"):
            if _given(data, other):
                raise InvalidRequest("is only used with notify_url; give notify_url too", field=other)
        return None
    url = validate_notify_url(_text(data, "notify_url"), settings)
    if not _given(data, "notify_secret"):
        raise InvalidRequest(
            f"is required with notify_url: {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters that sign each "
            "notification (X-Boatyard-Signature-256), so the receiver can check it came from boatyard",
            field="notify_secret",
        )
    secret = _text(data, "notify_secret")
    if not MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS or not patterns.matches(
        patterns.NO_CONTROL_CHARS, secret
    ):
        raise InvalidRequest(
            f"must be {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters without control characters",
            field="notify_secret",
        )
    try:
        events = rules.parse_events(data.get("notify_events"))
    except rules.EventsInvalid as exc:
        raise InvalidRequest(str(exc), field="notify_events") from None
    return NotifyRequest(url, secret, events)
