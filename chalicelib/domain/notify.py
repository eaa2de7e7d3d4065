"""Notifications as rules, without I/O: events, the signed payload, the retry schedule, GitHub states.

A subscriber asks for *events*: the job phases it wants to hear about (``queued``,
``fetching``, ``building``, ``pushing``, ``finished``, ``failed``, ``cancelled``; the
seed's Status words ``Building``/``Pushing``/``Finished``/``Failed``/``Cancelled`` are
accepted too, case-insensitively).  The default is the three ends.

Every webhook POST carries ``X-Boatyard-Signature-256: t=<unix seconds>,v1=<hex>``
where ``<hex>`` is HMAC-SHA256, keyed with the subscription's secret, of
``"<t>.<raw body>"`` (Stripe's scheme).  A receiver recomputes it, compares in
constant time, and refuses a ``t`` older than its tolerance (boatyard suggests
:data:`SIGNATURE_TOLERANCE_SECONDS`): a captured request cannot be replayed later,
and the timestamp cannot be changed without breaking the signature.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

SIGNATURE_HEADER = "X-Boatyard-Signature-256"
EVENT_HEADER = "X-Boatyard-Event"
DELIVERY_HEADER = "X-Boatyard-Delivery"
SIGNATURE_TOLERANCE_SECONDS = 300
"""How old a signed timestamp a receiver should accept (5 minutes, as Stripe)."""

EVENTS: tuple[str, ...] = ("queued", "fetching", "building", "pushing", "finished", "failed", "cancelled")
DEFAULT_EVENTS: tuple[str, ...] = ("finished", "failed", "cancelled")
TERMINAL_EVENTS = frozenset({"finished", "failed", "cancelled"})
GITHUB_EVENTS: tuple[str, ...] = ("queued", "fetching", "finished", "failed", "cancelled")
"""What a GitHub commit status follows: pending when queued and when the build starts, then the end."""
MAX_EVENTS_CHARS = 32


class EventsInvalid(ValueError):
    """``notify_events`` is not a list of known events (the message says which)."""


def parse_events(value: Any) -> tuple[str, ...]:
    """``notify_events`` → known phase names in lifecycle order; None/empty → :data:`DEFAULT_EVENTS`.

    Accepts a JSON list of strings or one comma-separated string.
    """
    if value is None or value == "" or value == []:
        return DEFAULT_EVENTS
    if isinstance(value, str):
        items: Iterable[Any] = value.split(",")
    elif isinstance(value, list):
        items = value
    else:
        raise EventsInvalid('must be a list of events such as ["finished", "failed"]')
    wanted = set()
    for item in items:
        if not isinstance(item, str) or len(item) > MAX_EVENTS_CHARS:
            raise EventsInvalid(f"each event must be one of {', '.join(EVENTS)}")
        name = item.strip().lower()
        if name not in EVENTS:
            raise EventsInvalid(f"{item[:MAX_EVENTS_CHARS]!r} is not an event; use {', '.join(EVENTS)}")
        wanted.add(name)
    if not wanted:
        raise EventsInvalid(f"name at least one event of {', '.join(EVENTS)}")
    return tuple(name for name in EVENTS if name in wanted)


def payload(status: Mapping[str, Any], event: str, delivery_id: str) -> bytes:
    """The body of a webhook POST: the job's status answer plus event, job id, image and digest (compact JSON)."""
    body: dict[str, Any] = dict(status)
    body["Event"] = event
    body["DeliveryId"] = delivery_id
    body["JobIdentifier"] = status.get("JobIdentifier")
    body["ImageName"] = status.get("ImageName")
    body["ImageDigest"] = status.get("ImageDigest")
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


def signature(secret: str, body: bytes, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret``."""
    message = str(int(timestamp)).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, body: bytes, timestamp: int | None = None) -> str:
    """The value of ``X-Boatyard-Signature-256``: ``t=<unix>,v1=<hex>``."""
    t = int(time.time() if timestamp is None else timestamp)
    return f"t={t},v1={signature(secret, body, t)}"


def verify_signature_header(
    secret: str, header: str, body: bytes, tolerance: float = SIGNATURE_TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """True when ``header`` signs ``body`` with ``secret`` and its timestamp is within ``tolerance`` of now."""
    fields: dict[str, list[str]] = {}
    for part in (header or "").split(","):
        key, _, val = part.strip().partition("=")
        fields.setdefault(key, []).append(val)
    stamps = fields.get("t") or []
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    t = int(stamps[0])
    current = time.time() if now is None else now
    if abs(current - t) > tolerance:
        return False
    expected = signature(secret, body, t)
    return any(hmac.compare_digest(expected, given) for given in fields.get("v1") or [])


# --- retries -------------------------------------------------------------------------------------

MAX_SQS_DELAY_SECONDS = 900
"""SQS's DelaySeconds ceiling; a longer wait is several hops (the message carries ``not_before``)."""


def retryable(status: int | None) -> bool:
    """Whether an attempt's outcome is worth another try: no answer (timeout, connection), 5xx, 408, 429."""
    if status is None:
        return True
    return status >= 500 or status in (408, 429)


def delivered(status: int | None) -> bool:
    """A 2xx answer: the receiver has it."""
    return status is not None and 200 <= status < 300


def backoff_delay(attempt: int, base: float, cap: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based): ``base · 2^(attempt-1)``, at most ``cap``."""
    if attempt < 1:
        return 0.0
    return float(min(cap, base * (2 ** min(attempt - 1, 40))))


def next_attempt_at(attempt: int, first_at: float, now: float, base: float, cap: float, window: float) -> float | None:
    """When to try again after failed attempt ``attempt``; None when that would be past ``first_at + window``."""
    at = now + backoff_delay(attempt, base, cap)
    return at if at <= first_at + window else None


def schedule(base: float, cap: float, window: float) -> list[float]:
    """Offsets (seconds after the first attempt) of every attempt a never-answering receiver gets."""
    offsets = [0.0]
    attempt = 1
    while True:
        at = next_attempt_at(attempt, 0.0, offsets[-1], base, cap, window)
        if at is None:
            return offsets
        offsets.append(at)
        attempt += 1


# --- GitHub commit statuses ----------------------------------------------------------------------

GITHUB_CONTEXT = "boatyard"


def github_status(event: str, status: Mapping[str, Any]) -> dict[str, str]:
    """The state and description of a commit status for a job event (target_url is added by the caller)."""
    if event == "finished":
        digest = str(status.get("ImageDigest") or "")
        return {
            "state": "success",
            "description": _clip(f"pushed {digest[:19]}" if digest else "image built and pushed"),
        }
    if event == "failed":
        return {"state": "failure", "description": _clip(str(status.get("Reason") or "the build failed"))}
    if event == "cancelled":
        return {"state": "error", "description": "the build was cancelled"}
    if event == "queued":
        return {"state": "pending", "description": "the build is queued"}
    return {"state": "pending", "description": "the build is running"}


def _clip(text: str, limit: int = 140) -> str:
    """GitHub keeps descriptions short (140 characters)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
