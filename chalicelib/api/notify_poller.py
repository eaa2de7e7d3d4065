"""The local and test stacks' stand-in for the SQS Lambda: poll the notifications queue, run the sender.

A small thread pool sends several notifications at once, so one receiver that hangs
(until its read timeout) does not hold up the others.  A message is deleted after
:func:`chalicelib.api.notify_sender.handle` returns; when it raises, the message comes
back after its visibility timeout, as with the Lambda.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import Any

from chalicelib.api import notify_sender as sender
from chalicelib.stores.services import Services

log = logging.getLogger(__name__)
VISIBILITY_SECONDS = 60


def _handle_and_delete(services: Services, raw: dict[str, Any]) -> None:
    try:
        sender.handle(services, raw["Body"])
    except Exception:
        log.exception("notifications: a message failed; it will be delivered again")
        return
    services.clients.client("sqs").delete_message(
        QueueUrl=services.notifications.queue_url(), ReceiptHandle=raw["ReceiptHandle"]
    )


def poll_once(
    services: Services, wait_seconds: int = 1, max_messages: int = 10, pool: concurrent.futures.Executor | None = None
) -> int:
    """Receive up to ``max_messages`` and handle them (in ``pool`` when given); returns how many arrived."""
    answer = services.clients.client("sqs").receive_message(
        QueueUrl=services.notifications.queue_url(),
        MaxNumberOfMessages=max(1, min(10, max_messages)),
        WaitTimeSeconds=wait_seconds,
        VisibilityTimeout=VISIBILITY_SECONDS,
    )
    messages = answer.get("Messages", [])
    if pool is None:
        for raw in messages:
            _handle_and_delete(services, raw)
    else:
        for future in [pool.submit(_handle_and_delete, services, raw) for raw in messages]:
            future.result()
    return len(messages)


def drain(services: Services, rounds: int = 20) -> int:
    """Handle what is on the queue now (tests): poll until an empty answer or ``rounds``; returns the count."""
    total = 0
    for _ in range(rounds):
        got = poll_once(services, wait_seconds=0)
        total += got
        if not got:
            break
    return total


def run(services: Services, stop: threading.Event, threads: int = 4, wait_seconds: int = 1) -> None:
    """Poll until ``stop`` is set; each message runs on one of ``threads`` threads."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="notify") as pool:
        inflight: set[concurrent.futures.Future[None]] = set()
        while not stop.is_set():
            inflight = {f for f in inflight if not f.done()}
            if len(inflight) >= threads:
                concurrent.futures.wait(inflight, timeout=1, return_when=concurrent.futures.FIRST_COMPLETED)
                continue
            try:
                answer = services.clients.client("sqs").receive_message(
                    QueueUrl=services.notifications.queue_url(),
                    MaxNumberOfMessages=threads - len(inflight),
                    WaitTimeSeconds=wait_seconds,
                    VisibilityTimeout=VISIBILITY_SECONDS,
                )
            except Exception as exc:  # noqa: BLE001 - the queue may come back (moto restarting, network)
                log.warning("notifications: receiving failed (%s)", type(exc).__name__)
                stop.wait(1)
                continue
            for raw in answer.get("Messages", []):
                inflight.add(pool.submit(_handle_and_delete, services, raw))
