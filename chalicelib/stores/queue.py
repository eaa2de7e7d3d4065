"""The job queue on SQS: one message per job ``{job_id, attempt, sealed_credentials}``."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from chalicelib.domain.settings import Settings


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


class JobQueue:
    """The job queue and its dead-letter queue (SQS); queue URLs are looked up once per instance."""

    def __init__(self, sqs: Any, settings: Settings) -> None:
        self._sqs = sqs
        self._settings = settings
        self._urls: dict[str, str] = {}

    def _url_for(self, name: str, configured: str) -> str:
        if configured:
            return configured
        if name not in self._urls:
            self._urls[name] = str(self._sqs.get_queue_url(QueueName=name)["QueueUrl"])
        return self._urls[name]

    def queue_url(self) -> str:
        """The job queue's URL (``BOATYARD_QUEUE_URL`` or looked up by name)."""
        settings = self._settings
        return self._url_for(settings.queue_name, settings.queue_url)

    def dead_letter_url(self) -> str:
        """The dead-letter queue's URL, looked up by name."""
        return self._url_for(self._settings.dlq_name, "")

    def send(self, message: JobMessage) -> str:
        """Enqueue a job; returns the SQS message id."""
        answer = self._sqs.send_message(QueueUrl=self.queue_url(), MessageBody=message.to_body())
        return str(answer["MessageId"])

    def receive(
        self, max_messages: int, wait_seconds: int, visibility_seconds: int, url: str | None = None
    ) -> list[Delivery]:
        """Long-poll for up to ``max_messages`` (1..10) deliveries."""
        answer = self._sqs.receive_message(
            QueueUrl=url or self.queue_url(),
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

    def extend(self, receipt_handle: str, seconds: int, url: str | None = None) -> None:
        """Heartbeat: keep a message invisible for ``seconds`` more (0 gives it back now)."""
        self._sqs.change_message_visibility(
            QueueUrl=url or self.queue_url(), ReceiptHandle=receipt_handle, VisibilityTimeout=seconds
        )

    def delete(self, receipt_handle: str, url: str | None = None) -> None:
        """Remove a message once its job is terminal."""
        self._sqs.delete_message(QueueUrl=url or self.queue_url(), ReceiptHandle=receipt_handle)

    def attributes(self) -> dict[str, Any]:
        """Queue depth figures (visible, in flight)."""
        answer = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url(),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        found: dict[str, Any] = answer.get("Attributes", {})
        return found
