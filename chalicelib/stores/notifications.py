"""Notification subscriptions, their queue and their delivery records (issue 14).

Items live in the jobs table beside their job (``pk`` = job id), so they expire with it:

* ``sk = "notify#sub#<id>"``: a subscription, :class:`WebhookTarget` or
  :class:`GithubStatusTarget`.  Its secret (webhook) or token (GitHub) is sealed with
  KMS under the encryption context ``{job_id, purpose: notify}``, so it can neither be
  read from the item nor be unsealed as (or swapped with) a job's registry credentials.
  No ``owner`` attribute: only job items carry one (the ``by-owner`` index).
* ``sk = "notify#att#<time>#<delivery>#<nn>"``: one delivery attempt (time, status
  code or error, duration, outcome), read back by ``GET /api/v1/{job}/notifications``.

The job item carries ``notify_events``, the union of its subscriptions' events.  When
the job store moves a job into one of those phases, :meth:`Notifications.emit` sends one message to
the notifications queue (nothing for a job without subscriptions); the sender
(:mod:`chalicelib.api.notify_sender`) does the rest.  Emission is best effort: it never
raises and gives up within seconds (:meth:`chalicelib.stores.aws.AwsClients.quick`).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import logging
import time
import uuid
from typing import Any

from chalicelib.domain import notify as rules
from chalicelib.domain.jobs import Job, now_iso, ttl_epoch
from chalicelib.domain.settings import Settings
from chalicelib.domain.urls import display_url
from chalicelib.stores import dynamo

log = logging.getLogger(__name__)

SUB_PREFIX = "notify#sub#"
ATTEMPT_PREFIX = "notify#att#"
MAX_SUBSCRIPTIONS = 10
MAX_ATTEMPTS_LISTED = 500


@dataclasses.dataclass(frozen=True)
class WebhookTarget:
    """An HTTPS receiver: every event in ``events`` is POSTed there, signed with ``secret``."""

    url: str
    secret: str = dataclasses.field(repr=False)
    events: tuple[str, ...] = rules.DEFAULT_EVENTS


@dataclasses.dataclass(frozen=True)
class GithubStatusTarget:
    """A GitHub commit status on ``repo`` (``owner/name``) at ``sha``: pending, then success/failure/error."""

    repo: str
    sha: str
    token: str = dataclasses.field(repr=False)
    target_url: str = ""  # the link GitHub shows next to the status (the job's page)
    api_base: str = ""  # "" = BOATYARD_GITHUB_API_BASE
    context: str = rules.GITHUB_CONTEXT


NotifyTarget = WebhookTarget | GithubStatusTarget


@dataclasses.dataclass(frozen=True)
class Subscription:
    """A stored subscription (secrets still sealed)."""

    job_id: str
    sub_id: str
    kind: str  # "webhook" | "github_status"
    events: tuple[str, ...]
    sealed: str
    url: str = ""
    repo: str = ""
    sha: str = ""
    target_url: str = ""
    api_base: str = ""
    context: str = rules.GITHUB_CONTEXT
    final_sent: bool = False  # a GitHub end state went out: a late "pending" must not overwrite it

    def wants(self, event: str) -> bool:
        """Whether this subscription asked for ``event``."""
        return event in self.events

    def describe(self) -> dict[str, Any]:
        """What the notifications answer shows of it: never the secret or token."""
        shown: dict[str, Any] = {"Id": self.sub_id, "Kind": self.kind, "Events": list(self.events)}
        if self.kind == "webhook":
            shown["Url"] = display_url(self.url)
        else:
            shown.update({"Repository": self.repo, "Commit": self.sha})
        return shown

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Subscription:
        """Rebuild from a DynamoDB item (deserialised)."""
        return cls(
            job_id=str(item["pk"]),
            sub_id=str(item["sk"])[len(SUB_PREFIX) :],
            kind=str(item["kind"]),
            events=tuple(str(e) for e in item.get("events") or ()),
            sealed=str(item.get("sealed") or ""),
            url=str(item.get("url") or ""),
            repo=str(item.get("repo") or ""),
            sha=str(item.get("sha") or ""),
            target_url=str(item.get("target_url") or ""),
            api_base=str(item.get("api_base") or ""),
            context=str(item.get("context") or rules.GITHUB_CONTEXT),
            final_sent=bool(item.get("final_sent", False)),
        )


# --- sealing -------------------------------------------------------------------------------------


def _context(job_id: str) -> dict[str, str]:
    return {"job_id": job_id, "purpose": "notify"}


# --- subscriptions -------------------------------------------------------------------------------


# --- attempts ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class AttemptRecord:
    """One delivery attempt, as stored and shown."""

    job_id: str
    sub_id: str
    delivery_id: str
    event: str
    attempt: int
    outcome: str  # delivered | retrying | failed | gave-up | refused | superseded
    at: str = dataclasses.field(default_factory=now_iso)
    status_code: int | None = None
    error: str | None = None
    duration_ms: int = 0
    next_attempt_at: str | None = None

    def shown(self) -> dict[str, Any]:
        """The record in ``GET /api/v1/{job}/notifications``."""
        body: dict[str, Any] = {
            "At": self.at,
            "SubscriptionId": self.sub_id,
            "DeliveryId": self.delivery_id,
            "Event": self.event,
            "Attempt": self.attempt,
            "Outcome": self.outcome,
            "DurationMs": self.duration_ms,
        }
        if self.status_code is not None:
            body["StatusCode"] = self.status_code
        if self.error:
            body["Error"] = self.error
        if self.next_attempt_at:
            body["NextAttemptAt"] = self.next_attempt_at
        return body


# --- the queue -----------------------------------------------------------------------------------


def event_message(job: Job, only: str | None = None) -> dict[str, Any]:
    """The message for "``job`` entered its current phase" (a snapshot of its status answer)."""
    message: dict[str, Any] = {
        "kind": "event",
        "job_id": job.job_id,
        "event": job.phase.value,
        "status": job.status_body(),
        "at": time.time(),
    }
    if only:
        message["sub"] = only
    return message


class Notifications:
    """Notification subscriptions, delivery attempts and the notifications queue."""

    def __init__(self, dynamodb: Any, kms: Any, quick_sqs: Any, sqs: Any, settings: Settings) -> None:
        self._dynamodb = dynamodb
        self._kms = kms
        self._quick_sqs = quick_sqs
        self._sqs = sqs
        self._settings = settings
        self._queue_url = ""

    def seal_secret(self, job_id: str, secret: str) -> str:
        """KMS-encrypt a subscription's secret or token for ``job_id`` (base64 ciphertext)."""
        answer = self._kms.encrypt(
            KeyId=self._settings.notify_kms_key_id,
            Plaintext=json.dumps({"secret": secret}).encode("utf-8"),
            EncryptionContext=_context(job_id),
        )
        return base64.b64encode(answer["CiphertextBlob"]).decode("ascii")

    def unseal_secret(self, job_id: str, sealed: str) -> str:
        """The plaintext of :meth:`seal_secret` (sender only; kept in memory for one delivery)."""
        answer = self._kms.decrypt(CiphertextBlob=base64.b64decode(sealed), EncryptionContext=_context(job_id))
        return str(json.loads(answer["Plaintext"])["secret"])

    def subscribe(self, job_id: str, owner: str, target: NotifyTarget) -> str:
        """Subscribe ``target`` to the job's events; call it at job creation, before the job is enqueued.

        Stores the subscription (secret sealed), adds its events to the job item's
        ``notify_events``, and, when the target wants ``queued`` (a GitHub status always
        does), queues that first notification at once.  Returns the subscription id.
        AWS errors propagate (the caller fails the job it could not set up).
        """
        settings = self._settings
        sub_id = uuid.uuid4().hex[:16]
        item: dict[str, Any] = {
            "pk": job_id,
            "sk": SUB_PREFIX + sub_id,
            "sub_owner": owner,
            "created_at": now_iso(),
            "expires_at": ttl_epoch(settings.job_ttl_days),
        }
        if isinstance(target, WebhookTarget):
            events = rules.parse_events(list(target.events))
            item.update(
                {
                    "kind": "webhook",
                    "url": target.url,
                    "events": list(events),
                    "sealed": self.seal_secret(job_id, target.secret),
                }
            )
        else:
            events = rules.GITHUB_EVENTS
            item.update(
                {
                    "kind": "github_status",
                    "repo": target.repo,
                    "sha": target.sha,
                    "events": list(events),
                    "target_url": target.target_url,
                    "api_base": (target.api_base or settings.github_api_base).rstrip("/"),
                    "context": target.context,
                    "sealed": self.seal_secret(job_id, target.token),
                }
            )
        ddb = self._dynamodb
        ddb.put_item(
            TableName=self._settings.table_name,
            Item=dynamo.serialize(item),
            ConditionExpression="attribute_not_exists(sk)",
        )
        answer = ddb.update_item(
            TableName=self._settings.table_name,
            Key=dynamo.job_key(job_id),
            UpdateExpression="ADD notify_events :events",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeValues={":events": {"SS": list(events)}},
            ReturnValues="ALL_NEW",
        )
        job = Job.from_item(dynamo.deserialize(answer["Attributes"]))
        if job.phase.value in events:
            self.send_event(job, only=sub_id)
        return sub_id

    def subscriptions(self, job_id: str) -> list[Subscription]:
        """The job's subscriptions (at most :data:`MAX_SUBSCRIPTIONS` are read)."""
        answer = self._dynamodb.query(
            TableName=self._settings.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :prefix)",
            ExpressionAttributeValues={":pk": {"S": job_id}, ":prefix": {"S": SUB_PREFIX}},
            ConsistentRead=True,
            Limit=MAX_SUBSCRIPTIONS,
        )
        return [Subscription.from_item(dynamo.deserialize(item)) for item in answer.get("Items", [])]

    def subscription(self, job_id: str, sub_id: str) -> Subscription | None:
        """One subscription, or None when it is gone (expired with its job)."""
        answer = self._dynamodb.get_item(
            TableName=self._settings.table_name,
            Key={"pk": {"S": job_id}, "sk": {"S": SUB_PREFIX + sub_id}},
            ConsistentRead=True,
        )
        item = answer.get("Item")
        return Subscription.from_item(dynamo.deserialize(item)) if item else None

    def mark_final_sent(self, job_id: str, sub_id: str) -> None:
        """Remember that a GitHub end state is going out, so a late retry of "pending" is dropped."""
        self._dynamodb.update_item(
            TableName=self._settings.table_name,
            Key={"pk": {"S": job_id}, "sk": {"S": SUB_PREFIX + sub_id}},
            UpdateExpression="SET final_sent = :yes",
            ConditionExpression="attribute_exists(sk)",
            ExpressionAttributeValues={":yes": {"BOOL": True}},
        )

    def record_attempt(self, record: AttemptRecord) -> None:
        """Store one attempt (its key sorts by time)."""
        item: dict[str, Any] = {
            "pk": record.job_id,
            "sk": f"{ATTEMPT_PREFIX}{record.at}#{record.delivery_id}#{record.attempt:04d}",
            "sub_id": record.sub_id,
            "delivery_id": record.delivery_id,
            "event": record.event,
            "attempt": record.attempt,
            "outcome": record.outcome,
            "at": record.at,
            "duration_ms": record.duration_ms,
            "expires_at": ttl_epoch(self._settings.job_ttl_days),
        }
        for key in ("status_code", "error", "next_attempt_at"):
            if getattr(record, key) is not None:
                item[key] = getattr(record, key)
        self._dynamodb.put_item(TableName=self._settings.table_name, Item=dynamo.serialize(item))

    def attempts(self, job_id: str, limit: int = MAX_ATTEMPTS_LISTED) -> tuple[list[AttemptRecord], bool]:
        """The job's attempts, oldest first, and whether there were more than ``limit``."""
        found: list[AttemptRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self._settings.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {":pk": {"S": job_id}, ":prefix": {"S": ATTEMPT_PREFIX}},
            "ConsistentRead": True,
        }
        while True:
            answer = self._dynamodb.query(**kwargs)
            for raw in answer.get("Items", []):
                if len(found) >= limit:
                    return found, True
                item = dynamo.deserialize(raw)
                found.append(
                    AttemptRecord(
                        job_id=job_id,
                        sub_id=str(item["sub_id"]),
                        delivery_id=str(item["delivery_id"]),
                        event=str(item["event"]),
                        attempt=int(item["attempt"]),
                        outcome=str(item["outcome"]),
                        at=str(item["at"]),
                        status_code=item.get("status_code"),
                        error=item.get("error"),
                        duration_ms=int(item.get("duration_ms", 0)),
                        next_attempt_at=item.get("next_attempt_at"),
                    )
                )
            if "LastEvaluatedKey" not in answer:
                return found, False
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def queue_url(self) -> str:
        """The notifications queue's URL (``BOATYARD_NOTIFY_QUEUE_URL``, or looked up by name once)."""
        if not self._queue_url:
            configured = self._settings.notify_queue_url
            name = self._settings.notify_queue_name
            self._queue_url = configured or str(self._sqs.get_queue_url(QueueName=name)["QueueUrl"])
        return self._queue_url

    def send_message(self, message: dict[str, Any], delay_seconds: int = 0, quick: bool = False) -> None:
        """Put one message on the notifications queue (``delay_seconds`` ≤ 900)."""
        client = self._quick_sqs if quick else self._sqs
        client.send_message(
            QueueUrl=self.queue_url(),
            MessageBody=json.dumps(message, separators=(",", ":")),
            DelaySeconds=max(0, min(rules.MAX_SQS_DELAY_SECONDS, int(delay_seconds))),
        )

    def send_event(self, job: Job, only: str | None = None) -> None:
        """Queue the event of ``job``'s current phase (for one subscription with ``only``)."""
        self.send_message(event_message(job, only), quick=True)

    def emit(self, job: Job | None) -> None:
        """After a phase change: queue a notification if a subscription of ``job`` wants this phase.

        Never raises and gives up within seconds: a notification must not fail or hold up a transition.
        """
        if job is None or not job.notify_events or job.phase.value not in job.notify_events:
            return
        try:
            self.send_event(job)
        except Exception as exc:  # noqa: BLE001 - best effort by design: log and let the transition stand
            log.warning(
                "job %s: could not queue the %s notification (%s)", job.job_id, job.phase.value, type(exc).__name__
            )
