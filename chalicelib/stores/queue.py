"""The job queue on SQS: one message per job ``{job_id, attempt, sealed_credentials}``."""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

from chalicelib.domain.settings import get_settings
from chalicelib.stores import aws


@dataclasses.dataclass(frozen=True)
class JobMessage:
    """The body of a job message.  ``sealed_credentials`` is KMS ciphertext (base64)."""

    job_id: str
    attempt: int
    sealed_credentials: str

    def to_body(self) -> str:
        """The JSON body sent to SQS."""
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_body(cls, body: str) -> JobMessage:
        """Parse a body; raises ValueError for anything that is not a job message."""
        data = json.loads(body)
        if not isinstance(data, dict) or not isinstance(data.get("job_id"), str):
            raise ValueError("not a job message")
        return cls(str(data["job_id"]), int(data.get("attempt", 0)), str(data.get("sealed_credentials", "")))


@dataclasses.dataclass(frozen=True)
class Delivery:
    """One received message: parsed (or None for a poison message) with its handle."""

    message: JobMessage | None
    receipt_handle: str
    receive_count: int
    message_id: str


@functools.lru_cache(maxsize=8)
def _url_for(name: str, configured: str) -> str:
    if configured:
        return configured
    url: str = aws.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]
    return url


def queue_url() -> str:
    """The job queue's URL (``BOATYARD_QUEUE_URL`` or looked up by name)."""
    settings = get_settings()
    return _url_for(settings.queue_name, settings.queue_url)


def dead_letter_url() -> str:
    """The dead-letter queue's URL, looked up by name."""
    return _url_for(get_settings().dlq_name, "")


def reset() -> None:
    """Forget looked-up queue URLs (tests)."""
    _url_for.cache_clear()


def send(message: JobMessage) -> str:
    """Enqueue a job; returns the SQS message id."""
    answer = aws.client("sqs").send_message(QueueUrl=queue_url(), MessageBody=message.to_body())
    return str(answer["MessageId"])


def receive(max_messages: int, wait_seconds: int, visibility_seconds: int, url: str | None = None) -> list[Delivery]:
    """Long-poll for up to ``max_messages`` (1..10) deliveries."""
    answer = aws.client("sqs").receive_message(
        QueueUrl=url or queue_url(),
        MaxNumberOfMessages=max(1, min(10, max_messages)),
        WaitTimeSeconds=wait_seconds,
        VisibilityTimeout=visibility_seconds,
        MessageSystemAttributeNames=["ApproximateReceiveCount"],
    )
    deliveries = []
    for raw in answer.get("Messages", []):
        try:
            message: JobMessage | None = JobMessage.from_body(raw["Body"])
        except (ValueError, TypeError, KeyError):
            message = None
        count = int(raw.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        deliveries.append(Delivery(message, raw["ReceiptHandle"], count, raw["MessageId"]))
    return deliveries


def extend(receipt_handle: str, seconds: int, url: str | None = None) -> None:
    """Heartbeat: keep a message invisible for ``seconds`` more (0 gives it back now)."""
    aws.client("sqs").change_message_visibility(
        QueueUrl=url or queue_url(), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
    )


def delete(receipt_handle: str, url: str | None = None) -> None:
    """Remove a message once its job is terminal."""
    aws.client("sqs").delete_message(QueueUrl=url or queue_url(), ReceiptHandle=receipt_handle)


def attributes() -> dict[str, Any]:
    """Queue depth figures (visible, in flight)."""
    answer = aws.client("sqs").get_queue_attributes(
        QueueUrl=queue_url(),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    found: dict[str, Any] = answer.get("Attributes", {})
    return found
