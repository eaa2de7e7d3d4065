"""API keys: minting, hashing, looking up and revoking, in the jobs table.

A token is ``by_<key id>_<secret>``: the prefix lets secret scanners match it,
the key id (16 hex digits, not secret) names the stored item, and the secret
is 32 random bytes (256 bits) in base64url.  Only the SHA-256 of the whole
token is stored (a 256-bit random secret needs no salt or slow hash); the
token itself is shown once, by :meth:`ApiKeys.create_key`, and never stored, logged
or returned again.

Item: ``pk = apikey#<key id>``, ``sk = apikey`` with ``key_owner``, ``label``,
``scope`` (``user`` or ``admin``), ``state`` (``active`` or ``revoked``),
``created_at``, ``last_used_at`` and ``token_sha256``.  The attribute is
``key_owner``, not ``owner``, so keys stay out of the jobs' owner index.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import InvalidRequest, Unauthorized
from chalicelib.domain.jobs import now_iso
from chalicelib.domain.settings import Settings
from chalicelib.stores import dynamo

TOKEN_PREFIX = "by_"
SCOPES = ("user", "admin")
ACTIVE = "active"
REVOKED = "revoked"
_TOKEN_RE = re.compile(r"by_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")
_KEY_ID_RE = re.compile(r"[0-9a-f]{16}")
OWNER_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,62}")
_LABEL_MAX = 100
LAST_USED_EVERY_SECONDS = 60
"""``last_used_at`` is rewritten at most this often per key (a write per request would cost every request)."""


@dataclasses.dataclass(frozen=True)
class ApiKey:
    """A stored key, without its hash: what ``list`` shows."""

    key_id: str
    owner: str
    label: str
    scope: str
    state: str
    created_at: str
    last_used_at: str | None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (never the token or its hash)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who a request comes from: what the authorizer hands to the routes."""

    owner: str
    scope: str = "user"
    key_id: str = ""

    @property
    def is_admin(self) -> bool:
        """Admin keys may see every owner's jobs."""
        return self.scope == "admin"


ANONYMOUS = Principal("anonymous", "user", "")
"""The caller in ``BOATYARD_AUTH=none`` mode: every job belongs to it."""


def _key(key_id: str) -> dict[str, Any]:
    return {"pk": {"S": f"apikey#{key_id}"}, "sk": {"S": "apikey"}}


def token_hash(token: str) -> str:
    """The stored form of a token: hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_owner(owner: str) -> str:
    """An owner name: lowercase letters, digits, ``.``, ``_``, ``-``; 1-63 characters."""
    if not isinstance(owner, str) or not OWNER_RE.fullmatch(owner):
        raise InvalidRequest("must be 1-63 of a-z, 0-9, '.', '_', '-', starting with a letter or digit", field="owner")
    return owner


def _check_label(label: str) -> str:
    if len(label) > _LABEL_MAX or any(not ch.isprintable() for ch in label):
        raise InvalidRequest(f"must be at most {_LABEL_MAX} printable characters", field="label")
    return label


def _record(item: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id=str(item["pk"]).split("#", 1)[1],
        owner=str(item["key_owner"]),
        label=str(item.get("label", "")),
        scope=str(item.get("scope", "user")),
        state=str(item.get("state", REVOKED)),
        created_at=str(item.get("created_at", "")),
        last_used_at=item.get("last_used_at"),
    )


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer <token>`` header; :class:`Unauthorized` otherwise."""
    scheme, _, token = (header or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    return token.strip()


class ApiKeys:
    """API keys in the table: create, list, revoke, and verify a bearer token."""

    def __init__(self, dynamodb: Any, settings: Settings) -> None:
        self._dynamodb = dynamodb
        self._settings = settings

    def create_key(self, owner: str, label: str = "", scope: str = "user") -> tuple[ApiKey, str]:
        """Mint a key for ``owner``; returns the stored record and the token (shown once, never stored)."""
        check_owner(owner)
        _check_label(label)
        if scope not in SCOPES:
            raise InvalidRequest(f"must be one of {', '.join(SCOPES)}", field="scope")
        key_id = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        record = ApiKey(key_id, owner, label, scope, ACTIVE, now_iso(), None)
        item = {
            "key_owner": owner,
            "label": label,
            "scope": scope,
            "state": ACTIVE,
            "created_at": record.created_at,
            "token_sha256": token_hash(token),
        }
        self._dynamodb.put_item(
            TableName=self._settings.table_name,
            Item={**_key(key_id), **dynamo.serialize(item)},
            ConditionExpression="attribute_not_exists(pk)",
        )
        return record, token

    def list_keys(self) -> list[ApiKey]:
        """Every key (active and revoked), oldest first.  An operator's command: a scan is fine."""
        ddb = self._dynamodb
        found: list[ApiKey] = []
        kwargs: dict[str, Any] = {
            "TableName": self._settings.table_name,
            "FilterExpression": "sk = :sk",
            "ExpressionAttributeValues": {":sk": {"S": "apikey"}},
        }
        while True:
            page = ddb.scan(**kwargs)
            found.extend(_record(dynamo.deserialize(item)) for item in page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return sorted(found, key=lambda k: k.created_at)

    def revoke_key(self, key_id: str) -> ApiKey:
        """Mark a key revoked (kept for the record); raises :class:`InvalidRequest` for an unknown id."""
        if not _KEY_ID_RE.fullmatch(key_id or ""):
            raise InvalidRequest("is not a key id (16 hex digits, as `keys list` shows)", field="key_id")
        try:
            answer = self._dynamodb.update_item(
                TableName=self._settings.table_name,
                Key=_key(key_id),
                UpdateExpression="SET #state = :revoked, revoked_at = :ts",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={":revoked": {"S": REVOKED}, ":ts": {"S": now_iso()}},
                ReturnValues="ALL_NEW",
            )
        except ClientError as exc:
            if dynamo.is_conditional_failure(exc):
                raise InvalidRequest("no key with that id", field="key_id") from None
            raise
        return _record(dynamo.deserialize(answer["Attributes"]))

    def verify(self, token: str) -> Principal:
        """The principal of an active key; :class:`Unauthorized` for anything else (one message for all)."""
        rejected = Unauthorized("the API key is missing, invalid or revoked")
        match = _TOKEN_RE.fullmatch(token)
        if match is None:
            raise rejected
        key_id = match.group(1)
        ddb = self._dynamodb
        table = self._settings.table_name
        item = ddb.get_item(TableName=table, Key=_key(key_id), ConsistentRead=True).get("Item")
        if item is None:
            raise rejected
        data = dynamo.deserialize(item)
        if not hmac.compare_digest(str(data.get("token_sha256", "")), token_hash(token)) or data.get("state") != ACTIVE:
            raise rejected
        self._touch(key_id, data.get("last_used_at"))
        return Principal(str(data["key_owner"]), str(data.get("scope", "user")), key_id)

    def _touch(self, key_id: str, last_used: str | None) -> None:
        """Record the use, at most once a minute per key; losing the race or failing is harmless."""
        import datetime as dt

        now = dt.datetime.now(dt.timezone.utc)
        cutoff = (
            (now - dt.timedelta(seconds=LAST_USED_EVERY_SECONDS))
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z")
        )
        if last_used and last_used > cutoff:
            return
        try:
            self._dynamodb.update_item(
                TableName=self._settings.table_name,
                Key=_key(key_id),
                UpdateExpression="SET last_used_at = :now",
                ConditionExpression="attribute_not_exists(last_used_at) OR last_used_at < :cutoff",
                ExpressionAttributeValues={":now": {"S": now_iso()}, ":cutoff": {"S": cutoff}},
            )
        except ClientError:
            pass
