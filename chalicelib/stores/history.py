"""``GET /api/v1/jobs``: the caller's jobs, newest first, from the ``by-owner`` index (owner + created_at).

The cursor is opaque to clients (base64url of the index position) but hostile
when it comes back: it is decoded strictly and must name the same owner, so
it can never page through someone else's jobs.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.jobs import Job, Phase
from chalicelib.domain.settings import Settings
from chalicelib.stores import dynamo
from chalicelib.stores.apikeys import OWNER_RE, Principal

INDEX_NAME = "by-owner"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_MAX_PAGES = 10  # a state filter may need several index pages to fill one answer
_JOB_ID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")


def history_entry(job: Job) -> dict[str, Any]:
    """One job of the history: identity, image, phase, times, digest (never credentials)."""
    entry: dict[str, Any] = {
        "JobIdentifier": job.job_id,
        "ImageName": job.image_name,
        "Phase": job.phase.value,
        "Status": job.status_word,
        "Source": job.source_kind.value,
        "CreatedAt": job.created_at,
        "UpdatedAt": job.updated_at,
    }
    for name, value in (
        ("FinishedAt", job.finished_at),
        ("ImageDigest", job.image_digest),
        ("TriggerId", job.trigger_id),
        ("Ref", job.ref),
        ("Commit", job.commit),
    ):
        if value:
            entry[name] = value
    return entry


def _encode_cursor(key: dict[str, Any]) -> str:
    plain = dynamo.deserialize(key)
    raw = json.dumps([plain["owner"], plain["created_at"], plain["pk"]], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, owner: str) -> dict[str, Any]:
    bad = InvalidRequest(
        "is not a cursor this endpoint returned (use the Next value of an earlier page)", field="cursor"
    )
    if len(cursor) > 400:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        value = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    if not (isinstance(value, list) and len(value) == 3 and all(isinstance(v, str) for v in value)):
        raise bad
    cursor_owner, created, job_id = value
    if cursor_owner != owner or not _TIME_RE.fullmatch(created) or not _JOB_ID_RE.fullmatch(job_id):
        raise bad
    return dynamo.serialize({"owner": owner, "created_at": created, "pk": job_id, "sk": "job"})


def parse_query(params: Mapping[str, str] | None, caller: Principal) -> tuple[str, int, str | None, str | None]:
    """``(owner, limit, cursor, state)`` from the query string; 400 naming the field."""
    params = params or {}
    unknown = sorted(set(params) - {"limit", "cursor", "state", "owner"})
    if unknown:
        raise InvalidRequest("is not a parameter of this endpoint (limit, cursor, state, owner)", field=unknown[0])
    raw_limit = params.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_LIMIT:
            raise InvalidRequest(f"must be a whole number from 1 to {MAX_LIMIT}", field="limit")
        limit = int(raw_limit)
    state = params.get("state")
    if state is not None and state not in {p.value for p in Phase}:
        raise InvalidRequest(f"must be one of {', '.join(p.value for p in Phase)}", field="state")
    owner = caller.owner
    if params.get("owner") is not None:
        if not caller.is_admin:
            raise InvalidRequest("only an admin key may list another owner's jobs", field="owner")
        if not OWNER_RE.fullmatch(params["owner"]):
            raise InvalidRequest("is not an owner name", field="owner")
        owner = params["owner"]
    return owner, limit, params.get("cursor"), state


class JobHistory:
    """An owner's jobs, newest first, from the table's by-owner index."""

    def __init__(self, dynamodb: Any, settings: Settings) -> None:
        self._dynamodb = dynamodb
        self._settings = settings

    def list_jobs(
        self, owner: str, limit: int = DEFAULT_LIMIT, cursor: str | None = None, state: str | None = None
    ) -> dict[str, Any]:
        """A page of ``owner``'s jobs, newest first: ``{"Jobs": [...], "Next": cursor or absent}``."""
        kwargs: dict[str, Any] = {
            "TableName": self._settings.table_name,
            "IndexName": INDEX_NAME,
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": {"S": owner}},
            "ScanIndexForward": False,
        }
        if state is not None:
            kwargs["FilterExpression"] = "#phase = :state"
            kwargs["ExpressionAttributeNames"]["#phase"] = "phase"
            kwargs["ExpressionAttributeValues"][":state"] = {"S": state}
        if cursor:
            kwargs["ExclusiveStartKey"] = _decode_cursor(cursor, owner)
        jobs: list[dict[str, Any]] = []
        last: dict[str, Any] | None = None
        ddb = self._dynamodb
        for _ in range(_MAX_PAGES):
            kwargs["Limit"] = limit - len(jobs)
            page = ddb.query(**kwargs)
            jobs.extend(history_entry(Job.from_item(dynamo.deserialize(item))) for item in page.get("Items", []))
            last = page.get("LastEvaluatedKey")
            if last is None or len(jobs) >= limit:
                break
            kwargs["ExclusiveStartKey"] = last
        body: dict[str, Any] = {"Jobs": jobs}
        if last is not None:
            body["Next"] = _encode_cursor(last)
        return body
