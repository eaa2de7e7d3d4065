"""Per-owner quotas as DynamoDB conditional counters (enforced in ``BOATYARD_AUTH=keys`` mode).

* live jobs: ``pk = owner#<owner>, sk = quota``, attribute ``live``.  A submission
  adds one in the same transaction that creates the job (condition ``live < N``),
  so two API instances can never both admit the N+1th job and a refused
  submission creates nothing.  The job carries ``quota_slot``; the one write that
  makes it terminal (:mod:`chalicelib.stores.jobs`) removes the flag and subtracts
  one in one transaction: released exactly once, whoever ends the job.
* submissions per minute: ``sk = rate#<epoch minute>``, attribute ``n``, in the same
  transaction (fixed one-minute windows; the item expires by TTL).
* outstanding upload URLs: ``sk = uploads``, a map upload id → expiry epoch,
  rewritten under an optimistic version check; expired and used ids drop out.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import QuotaExceeded
from chalicelib.domain.settings import Settings
from chalicelib.stores import dynamo

LIVE_RETRY_AFTER_SECONDS = 15
"""What ``Retry-After`` says when the live-job quota is full (a job's end cannot be predicted)."""


def quota_key(owner: str) -> dict[str, Any]:
    """The key of an owner's live-job counter item."""
    return {"pk": {"S": f"owner#{owner}"}, "sk": {"S": "quota"}}


# --- outstanding upload URLs -------------------------------------------------------------------


def _uploads_key(owner: str) -> dict[str, Any]:
    return {"pk": {"S": f"owner#{owner}"}, "sk": {"S": "uploads"}}


# --- upload ownership -------------------------------------------------------------------------


def _upload_owner_key(upload_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"upload#{upload_id}"}, "sk": {"S": "upload"}}


class Quotas:
    """Per-owner quotas: submissions per minute, live jobs, outstanding uploads (conditional writes)."""

    def __init__(self, dynamodb: Any, settings: Settings) -> None:
        self._dynamodb = dynamodb
        self._settings = settings

    def rate_update(self, owner: str, now: float | None = None) -> dict[str, Any]:
        """The transaction entry counting one submission in the current minute (fails at the limit)."""
        minute = int((now if now is not None else time.time()) // 60)
        return {
            "Update": {
                "TableName": self._settings.table_name,
                "Key": {"pk": {"S": f"owner#{owner}"}, "sk": {"S": f"rate#{minute}"}},
                "UpdateExpression": "ADD #n :one SET expires_at = :expires",
                "ConditionExpression": "attribute_not_exists(#n) OR #n < :max",
                "ExpressionAttributeNames": {"#n": "n"},
                "ExpressionAttributeValues": {
                    ":one": dynamo.value(1),
                    ":max": dynamo.value(self._settings.quota_submissions_per_minute),
                    ":expires": dynamo.value((minute + 2) * 60),
                },
            }
        }

    def slot_take(self, owner: str) -> dict[str, Any]:
        """The transaction entry taking one live-job slot (fails when all are taken)."""
        return {
            "Update": {
                "TableName": self._settings.table_name,
                "Key": quota_key(owner),
                "UpdateExpression": "ADD #live :one",
                "ConditionExpression": "attribute_not_exists(#live) OR #live < :max",
                "ExpressionAttributeNames": {"#live": "live"},
                "ExpressionAttributeValues": {
                    ":one": dynamo.value(1),
                    ":max": dynamo.value(self._settings.quota_live_jobs),
                },
            }
        }

    def slot_release(self, owner: str) -> dict[str, Any]:
        """The transaction entry giving one live-job slot back (unconditional: the job's flag guards it)."""
        return {
            "Update": {
                "TableName": self._settings.table_name,
                "Key": quota_key(owner),
                "UpdateExpression": "ADD #live :minus",
                "ExpressionAttributeNames": {"#live": "live"},
                "ExpressionAttributeValues": {":minus": dynamo.value(-1)},
            }
        }

    def refusal(self, index: int, now: float | None = None) -> QuotaExceeded:
        """The 429 for a submission transaction whose entry ``index`` (0 = rate, 1 = live slots) failed."""
        s = self._settings
        if index == 0:
            wait = 60 - int(now if now is not None else time.time()) % 60
            return QuotaExceeded(
                f"more than {s.quota_submissions_per_minute} submissions in one minute; try again in {wait} s", wait
            )
        return QuotaExceeded(
            f"{s.quota_live_jobs} of your jobs are already queued or running (the limit); "
            "submit again when one has ended, or cancel one",
            LIVE_RETRY_AFTER_SECONDS,
        )

    def reserve_upload(self, owner: str, upload_id: str, ttl_seconds: int, attempts: int = 8) -> None:
        """Count one more outstanding upload URL for ``owner``; 429 when the cap is reached."""
        ddb = self._dynamodb
        cap = self._settings.quota_outstanding_uploads
        for _ in range(attempts):
            now = int(time.time())
            item = ddb.get_item(TableName=self._settings.table_name, Key=_uploads_key(owner), ConsistentRead=True).get(
                "Item"
            )
            data = dynamo.deserialize(item) if item else {}
            version = int(data.get("version", 0))
            pending = {k: int(v) for k, v in (data.get("pending") or {}).items() if int(v) > now}
            if len(pending) >= cap:
                wait = min(pending.values()) - now
                raise QuotaExceeded(
                    f"{cap} upload URLs of yours are outstanding (the limit); use or let one expire first", wait
                )
            pending[upload_id] = now + ttl_seconds
            try:
                ddb.put_item(
                    TableName=self._settings.table_name,
                    Item={
                        **_uploads_key(owner),
                        **dynamo.serialize(
                            {"pending": pending, "version": version + 1, "expires_at": max(pending.values()) + 60}
                        ),
                    },
                    ConditionExpression="attribute_not_exists(#version) OR #version = :v",
                    ExpressionAttributeNames={"#version": "version"},
                    ExpressionAttributeValues={":v": dynamo.value(version)},
                )
                return
            except ClientError as exc:
                if not dynamo.is_conditional_failure(exc):
                    raise
        raise QuotaExceeded("too many upload URL requests at once; try again", 1)

    def upload_used(self, owner: str, upload_id: str) -> None:
        """An upload was built: it no longer counts as outstanding (best effort; expiry drops it anyway)."""
        try:
            self._dynamodb.update_item(
                TableName=self._settings.table_name,
                Key=_uploads_key(owner),
                UpdateExpression="REMOVE #pending.#id",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#pending": "pending", "#id": upload_id},
            )
        except ClientError:
            pass

    def bind_upload(self, owner: str, upload_id: str, keep_seconds: int) -> None:
        """Record that ``upload_id`` belongs to ``owner`` (kept as long as the uploaded object)."""
        self._dynamodb.put_item(
            TableName=self._settings.table_name,
            Item={
                **_upload_owner_key(upload_id),
                **dynamo.serialize({"upload_owner": owner, "expires_at": int(time.time()) + keep_seconds}),
            },
        )

    def upload_owner(self, upload_id: str) -> str | None:
        """Who asked for ``upload_id``, or None when nobody (in keys mode) did."""
        item = self._dynamodb.get_item(
            TableName=self._settings.table_name, Key=_upload_owner_key(upload_id), ConsistentRead=True
        ).get("Item")
        return str(dynamo.deserialize(item)["upload_owner"]) if item else None
