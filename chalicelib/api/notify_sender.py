"""The notification sender: one message of the notifications queue at a time.

Deployed it is the SQS Lambda ``send_notifications`` (``app.py``); in the local and
test stacks the same :func:`handle` is driven by :mod:`chalicelib.api.notify_poller`.

Two kinds of message:

* ``event`` (from :func:`chalicelib.stores.notifications.emit`): a job entered a phase.
  Each subscription that wants it gets a *delivery* (id derived from job, subscription,
  event and time, so a redelivered event message keeps its delivery ids) tried at once.
* ``delivery``: a retry.  A failed attempt that may succeed later (no answer, a timeout,
  5xx, 408, 429) is put back on the queue with the attempt count, the first attempt's
  time and ``not_before``; SQS delays at most 15 minutes, so a longer wait takes several
  hops.  The wait doubles from ``BOATYARD_NOTIFY_BACKOFF_BASE_SECONDS`` up to
  ``..._MAX_SECONDS``; nothing is tried after ``..._RETRY_WINDOW_SECONDS`` (24 h) since
  the first attempt.  Any other 4xx (and 3xx: redirects are not followed) is final.

Every attempt is recorded (:func:`chalicelib.stores.notifications.record_attempt`).
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from typing import Any

from chalicelib.domain import notify as rules
from chalicelib.stores import outbound
from chalicelib.stores.notifications import AttemptRecord, Subscription
from chalicelib.stores.services import Services

log = logging.getLogger(__name__)
_DELIVERY_NS = uuid.UUID("6f1d5d1e-7d3b-4c1e-9a57-3b0d6a0c1e14")
USER_AGENT = "boatyard-notifications/1"


def handle(services: Services, body: str) -> None:
    """Process one queue message (a poison message is logged and dropped).

    AWS errors propagate, so the queue delivers the message again.
    """
    try:
        message = json.loads(body)
        kind = message["kind"]
        str(message["job_id"])
    except (ValueError, TypeError, KeyError):
        log.error("notifications: dropped a message that is not a notification")
        return
    if kind == "event":
        _fan_out(services, message)
    elif kind == "delivery":
        _deliver(services, message)
    else:
        log.error("notifications: dropped a message of unknown kind %r", str(kind)[:40])


def _fan_out(services: Services, message: dict[str, Any]) -> None:
    job_id, event = str(message["job_id"]), str(message.get("event", ""))
    only = message.get("sub")
    for sub in services.notifications.subscriptions(job_id):
        if (only and sub.sub_id != only) or not sub.wants(event):
            continue
        delivery = {
            "kind": "delivery",
            "job_id": job_id,
            "sub": sub.sub_id,
            "event": event,
            "status": message.get("status") or {},
            "delivery_id": str(uuid.uuid5(_DELIVERY_NS, f"{job_id}/{sub.sub_id}/{event}/{message.get('at')}")),
            "attempt": 0,
            "first_at": time.time(),
            "not_before": 0,
        }
        try:
            _deliver(services, delivery, sub)
        except Exception as exc:  # noqa: BLE001 - one subscription's trouble must not stop the others
            log.warning(
                "job %s: delivery to subscription %s failed to run (%s); queued again",
                job_id,
                sub.sub_id,
                type(exc).__name__,
            )
            services.notifications.send_message(delivery, delay_seconds=1)


def _deliver(services: Services, message: dict[str, Any], sub: Subscription | None = None) -> None:
    settings = services.settings
    job_id, sub_id, event = str(message["job_id"]), str(message["sub"]), str(message["event"])
    now = time.time()
    not_before = float(message.get("not_before") or 0)
    if not_before > now + 0.5:  # a wait longer than one SQS delay: hop again
        services.notifications.send_message(message, delay_seconds=math.ceil(not_before - now))
        return
    sub = sub or services.notifications.subscription(job_id, sub_id)
    if sub is None:
        log.info("job %s: subscription %s is gone; delivery dropped", job_id, sub_id)
        return
    attempt = int(message.get("attempt", 0)) + 1
    delivery_id = str(message["delivery_id"])
    status = dict(message.get("status") or {})

    def record(
        outcome: str, answer: outbound.Answer | None = None, error: str | None = None, next_at: float | None = None
    ) -> None:
        services.notifications.record_attempt(
            AttemptRecord(
                job_id=job_id,
                sub_id=sub_id,
                delivery_id=delivery_id,
                event=event,
                attempt=attempt,
                outcome=outcome,
                status_code=answer.status if answer else None,
                error=error or (answer.error if answer else None),
                duration_ms=answer.duration_ms if answer else 0,
                next_attempt_at=_iso(next_at) if next_at is not None else None,
            )
        )

    if sub.kind == "github_status":
        if event not in rules.TERMINAL_EVENTS and sub.final_sent:
            record("superseded", error="the build has ended; its final status went out instead")
            return
        if event in rules.TERMINAL_EVENTS and not sub.final_sent:
            services.notifications.mark_final_sent(job_id, sub_id)
    secret = services.notifications.unseal_secret(job_id, sub.sealed)
    url, body, headers = _request(sub, event, status, delivery_id, secret)
    try:
        answer = outbound.post(
            url,
            body,
            headers,
            settings.notify_connect_timeout_seconds,
            settings.notify_read_timeout_seconds,
            settings.allow_loopback_notify_urls,
        )
    except outbound.Refused as exc:
        record("refused", error=str(exc))
        return
    if rules.delivered(answer.status):
        record("delivered", answer)
        return
    if not rules.retryable(answer.status):
        record("failed", answer)
        return
    first_at = float(message.get("first_at") or now)
    next_at = rules.next_attempt_at(
        attempt,
        first_at,
        time.time(),
        settings.notify_backoff_base_seconds,
        settings.notify_backoff_max_seconds,
        settings.notify_retry_window_seconds,
    )
    if next_at is None:
        record("gave-up", answer)
        return
    record("retrying", answer, next_at=next_at)
    again = {**message, "attempt": attempt, "first_at": first_at, "not_before": next_at}
    services.notifications.send_message(again, delay_seconds=math.ceil(max(0.0, next_at - time.time())))


def _request(
    sub: Subscription, event: str, status: dict[str, Any], delivery_id: str, secret: str
) -> tuple[str, bytes, dict[str, str]]:
    """URL, body and headers of one attempt (a fresh signature timestamp each time)."""
    common = {
        "User-Agent": USER_AGENT,
        "Content-Type": "application/json",
        rules.EVENT_HEADER: event,
        rules.DELIVERY_HEADER: delivery_id,
    }
    if sub.kind == "webhook":
        body = rules.payload(status, event, delivery_id)
        return sub.url, body, {**common, rules.SIGNATURE_HEADER: rules.signature_header(secret, body)}
    fields = rules.github_status(event, status)
    fields["context"] = sub.context
    if sub.target_url:
        fields["target_url"] = sub.target_url
    url = f"{sub.api_base}/repos/{sub.repo}/statuses/{sub.sha}"
    headers = {
        **common,
        "Authorization": f"Bearer {secret}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }
    return url, json.dumps(fields, separators=(",", ":")).encode("utf-8"), headers


def _iso(epoch: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(epoch, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
