"""Verify boatyard's notification signatures in a receiver (``pip install`` this package, or copy the function).

Every notification POST carries::

    X-Boatyard-Signature-256: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>" keyed with your secret>
    X-Boatyard-Event: finished            (the job phase the notification is about)
    X-Boatyard-Delivery: <uuid>           (the same for every retry of one notification: deduplicate on it)

Check the signature over the *raw* body bytes, before parsing them, and refuse timestamps
older than the tolerance (5 minutes), which stops a captured request from being replayed::

    from boatyard.webhooks import verify_signature

    if not verify_signature(secret, request.headers.get("X-Boatyard-Signature-256", ""), request.get_data()):
        abort(400)
"""

from __future__ import annotations

import hashlib
import hmac
import time

DEFAULT_TOLERANCE_SECONDS = 300


def verify_signature(
    secret: str, header: str, body: bytes, tolerance: float = DEFAULT_TOLERANCE_SECONDS, now: float | None = None
) -> bool:
    """True when ``header`` is a valid boatyard signature of ``body`` made with ``secret`` within ``tolerance`` s."""
    stamps: list[str] = []
    signatures: list[str] = []
    for part in (header or "").split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            stamps.append(value)
        elif key == "v1":
            signatures.append(value)
    if len(stamps) != 1 or not stamps[0].isdigit() or not signatures:
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = hmac.new(
        secret.encode("utf-8"), stamps[0].encode("ascii") + b"." + bytes(body), hashlib.sha256
    ).hexdigest()
    return any(hmac.compare_digest(expected, given) for given in signatures)
