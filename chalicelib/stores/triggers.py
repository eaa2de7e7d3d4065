"""Build triggers in the jobs table: the trigger, its deliveries, its refs' newest builds, its recent builds.

Items (all in the trigger's partition ``pk = trigger#<id>``):

- ``sk = trigger``: the trigger (``trigger_owner``, ``created_at``, host, repository, rules, build
  options, ``sealed_secret`` and ``sealed_credentials``).  ``trigger_owner`` + ``created_at`` key the
  ``triggers-by-owner`` index (``GET /api/v1/triggers``); job items carry ``owner``, never
  ``trigger_owner``, so the two indexes never mix.
- ``sk = delivery#<sha256 of the host's delivery id>``: written with ``attribute_not_exists``; a
  redelivered id finds it and builds nothing new.  Expires after 7 days.
- ``sk = ref#<ref>``: the job of the newest push to that ref; a newer push reads it and swaps
  in its own with a write conditioned on the version it read, so of racing pushes each displaces
  exactly one job and exactly the last one stays.
- ``sk = build#<created_at>#<job id>``: the trigger's recent builds, newest first by a Query.

The webhook secret and the credentials (push credentials, git token, build secrets) are sealed with
the triggers' KMS key (``BOATYARD_TRIGGER_KMS_KEY_ID``) under the encryption context
``{"trigger_id": <id>, "part": "secret" | "credentials"}``; nothing else about them is stored.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import time
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import ServiceUnavailable
from chalicelib.domain.jobs import Job, now_iso, ttl_epoch
from chalicelib.domain.settings import Settings
from chalicelib.domain.trigger_rules import TriggerRules
from chalicelib.stores import dynamo
from chalicelib.stores.sealing import Credentials, credentials_from_json, sealed_json

OWNER_INDEX_NAME = "triggers-by-owner"
TRIGGER_SK = "trigger"
DELIVERY_KEEP_SECONDS = 7 * 86400
"""How long a delivery id is remembered (GitHub lets a delivery be redelivered for a few days)."""


@dataclasses.dataclass(frozen=True)
class Trigger:
    """A stored trigger (the sealed parts stay ciphertext here)."""

    trigger_id: str
    owner: str
    host: str  # github | gitlab | bitbucket
    repository: str  # owner/name (GitHub, Bitbucket) or the project path (GitLab)
    rules: TriggerRules
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # BuildOptions.to_item()
    engine: str = ""
    supersede: bool = True
    notify_url: str = ""
    label: str = ""
    created_at: str = dataclasses.field(default_factory=now_iso)
    has_git_token: bool = False
    has_push_credentials: bool = False
    sealed_secret: str = dataclasses.field(default="", repr=False)
    sealed_credentials: str = dataclasses.field(default="", repr=False)

    def view(self) -> dict[str, Any]:
        """The trigger as the API shows it: never the secret or a credential."""
        body: dict[str, Any] = {
            "TriggerId": self.trigger_id,
            "Host": self.host,
            "Repository": self.repository,
            "ImageTemplate": self.rules.image_template,
            "Supersede": self.supersede,
            "CreatedAt": self.created_at,
            "HasGitToken": self.has_git_token,
            "HasPushCredentials": self.has_push_credentials,
        }
        for name, value in (
            ("BranchRegex", self.rules.branch_regex),
            ("TagRegex", self.rules.tag_regex),
            ("DefaultBranchTag", self.rules.default_branch_tag),
            ("DefaultBranch", self.rules.default_branch),
            ("NotifyUrl", self.notify_url),
            ("Label", self.label),
            ("Engine", self.engine),
        ):
            if value:
                body[name] = value
        if self.rules.paths:
            body["Paths"] = list(self.rules.paths)
        if self.options:
            body["Options"] = dict(self.options)
        return body

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (resource-layer types)."""
        item: dict[str, Any] = {
            "pk": f"trigger#{self.trigger_id}",
            "sk": TRIGGER_SK,
            "trigger_owner": self.owner,
            "created_at": self.created_at,
            "host": self.host,
            "repository": self.repository,
            "image_template": self.rules.image_template,
            "supersede": self.supersede,
            "has_git_token": self.has_git_token,
            "has_push_credentials": self.has_push_credentials,
            "sealed_secret": self.sealed_secret,
        }
        optional = {
            "branch_regex": self.rules.branch_regex,
            "tag_regex": self.rules.tag_regex,
            "default_branch_tag": self.rules.default_branch_tag,
            "default_branch": self.rules.default_branch,
            "paths": list(self.rules.paths),
            "options": dict(self.options),
            "engine": self.engine,
            "notify_url": self.notify_url,
            "label": self.label,
            "sealed_credentials": self.sealed_credentials,
        }
        item.update({k: v for k, v in optional.items() if v})
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Trigger:
        """Rebuild a trigger from its item."""
        rules = TriggerRules(
            branch_regex=str(item.get("branch_regex") or ""),
            tag_regex=str(item.get("tag_regex") or ""),
            paths=tuple(str(p) for p in item.get("paths") or ()),
            image_template=str(item["image_template"]),
            default_branch_tag=str(item.get("default_branch_tag") or ""),
            default_branch=str(item.get("default_branch") or ""),
        )
        return cls(
            trigger_id=str(item["pk"]).split("#", 1)[1],
            owner=str(item["trigger_owner"]),
            host=str(item["host"]),
            repository=str(item["repository"]),
            rules=rules,
            options=dict(item.get("options") or {}),
            engine=str(item.get("engine") or ""),
            supersede=bool(item.get("supersede", True)),
            notify_url=str(item.get("notify_url") or ""),
            label=str(item.get("label") or ""),
            created_at=str(item["created_at"]),
            has_git_token=bool(item.get("has_git_token", False)),
            has_push_credentials=bool(item.get("has_push_credentials", False)),
            sealed_secret=str(item.get("sealed_secret") or ""),
            sealed_credentials=str(item.get("sealed_credentials") or ""),
        )


def _key(trigger_id: str, sk: str = TRIGGER_SK) -> dict[str, Any]:
    return {"pk": {"S": f"trigger#{trigger_id}"}, "sk": {"S": sk}}


# ------------------------------------------------------------------ sealing


# ------------------------------------------------------------------ the trigger


# ------------------------------------------------------------------ deliveries


def _delivery_sk(delivery_id: str) -> str:
    return "delivery#" + hashlib.sha256(delivery_id.encode("utf-8")).hexdigest()[:40]


# ------------------------------------------------------------------ refs and builds


SWAP_TRIES = 20


class TriggerStore:
    """Triggers, their deliveries, per-ref newest builds and recent builds in the table; secrets sealed with the trigger key."""

    def __init__(self, dynamodb: Any, kms: Any, settings: Settings) -> None:
        self._dynamodb = dynamodb
        self._kms = kms
        self._settings = settings

    def _seal(self, trigger_id: str, part: str, plaintext: str) -> str:
        answer = self._kms.encrypt(
            KeyId=self._settings.trigger_kms_key_id,
            Plaintext=plaintext.encode("utf-8"),
            EncryptionContext={"trigger_id": trigger_id, "part": part},
        )
        return base64.b64encode(answer["CiphertextBlob"]).decode("ascii")

    def _unseal(self, trigger_id: str, part: str, sealed: str) -> bytes:
        answer = self._kms.decrypt(
            CiphertextBlob=base64.b64decode(sealed),
            EncryptionContext={"trigger_id": trigger_id, "part": part},
        )
        return bytes(answer["Plaintext"])

    def secret_of(self, trigger: Trigger) -> str:
        """The trigger's webhook secret, in memory only (to check a delivery's signature or sign a notification)."""
        return self._unseal(trigger.trigger_id, "secret", trigger.sealed_secret).decode("utf-8")

    def credentials_of(self, trigger: Trigger) -> Credentials:
        """The trigger's credentials, in memory only (to seal them again for one job)."""
        if not trigger.sealed_credentials:
            return Credentials()
        return credentials_from_json(self._unseal(trigger.trigger_id, "credentials", trigger.sealed_credentials))

    def create(self, trigger: Trigger, secret: str, credentials: Credentials) -> Trigger:
        """Seal the secret and credentials and store a new trigger; returns it (with the ciphertexts)."""
        sealed_credentials = (
            self._seal(trigger.trigger_id, "credentials", sealed_json(credentials)) if credentials.to_seal else ""
        )
        stored = dataclasses.replace(
            trigger,
            sealed_secret=self._seal(trigger.trigger_id, "secret", secret),
            sealed_credentials=sealed_credentials,
        )
        self._dynamodb.put_item(
            TableName=self._settings.table_name,
            Item=dynamo.serialize(stored.to_item()),
            ConditionExpression="attribute_not_exists(pk)",
        )
        return stored

    def find(self, trigger_id: str) -> Trigger | None:
        """The trigger with that id, or None."""
        item = self._dynamodb.get_item(
            TableName=self._settings.table_name, Key=_key(trigger_id), ConsistentRead=True
        ).get("Item")
        return Trigger.from_item(dynamo.deserialize(item)) if item else None

    def list_for(self, owner: str, limit: int = 100) -> list[Trigger]:
        """``owner``'s triggers, newest first (at most ``limit``)."""
        answer = self._dynamodb.query(
            TableName=self._settings.table_name,
            IndexName=OWNER_INDEX_NAME,
            KeyConditionExpression="trigger_owner = :owner",
            ExpressionAttributeValues={":owner": {"S": owner}},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [Trigger.from_item(dynamo.deserialize(item)) for item in answer.get("Items", [])]

    def count_for(self, owner: str) -> int:
        """How many triggers ``owner`` has."""
        answer = self._dynamodb.query(
            TableName=self._settings.table_name,
            IndexName=OWNER_INDEX_NAME,
            KeyConditionExpression="trigger_owner = :owner",
            ExpressionAttributeValues={":owner": {"S": owner}},
            Select="COUNT",
        )
        return int(answer.get("Count", 0))

    def delete(self, trigger_id: str, owner: str) -> bool:
        """Delete ``owner``'s trigger; False when there is none of theirs with that id.

        Its deliveries, refs and build links stay until their TTL; jobs it made stay in the owner's history.
        """
        try:
            self._dynamodb.delete_item(
                TableName=self._settings.table_name,
                Key=_key(trigger_id),
                ConditionExpression="trigger_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as exc:
            if dynamo.is_conditional_failure(exc):
                return False
            raise
        return True

    def claim_delivery(self, trigger_id: str, delivery_id: str) -> dict[str, Any] | None:
        """Remember a delivery id; None when it is new, else what the first delivery recorded (a redelivery)."""
        key = _key(trigger_id, _delivery_sk(delivery_id))
        item = {
            **key,
            **dynamo.serialize({"received_at": now_iso(), "expires_at": int(time.time()) + DELIVERY_KEEP_SECONDS}),
        }
        try:
            self._dynamodb.put_item(
                TableName=self._settings.table_name,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if dynamo.is_conditional_failure(exc):
                old: dict[str, Any] | None = exc.response.get("Item")  # type: ignore[assignment]  # the stubs' error shape has no Item; ALL_OLD adds it
                return dynamo.deserialize(old) if old else {"jobs": []}
            raise
        return None

    def record_delivery(self, trigger_id: str, delivery_id: str, job_ids: list[str]) -> None:
        """Note which jobs a delivery made (a redelivery answers with them)."""
        self._dynamodb.update_item(
            TableName=self._settings.table_name,
            Key=_key(trigger_id, _delivery_sk(delivery_id)),
            UpdateExpression="SET jobs = :jobs",
            ExpressionAttributeValues={":jobs": dynamo.value(job_ids)},
        )

    def release_delivery(self, trigger_id: str, delivery_id: str) -> None:
        """Forget a delivery whose builds could not be made, so the host's redelivery can make them."""
        self._dynamodb.delete_item(TableName=self._settings.table_name, Key=_key(trigger_id, _delivery_sk(delivery_id)))

    def swap_ref(self, trigger_id: str, ref: str, job_id: str, commit: str) -> str | None:
        """Make ``job_id`` the newest build of ``ref``; returns the job it displaced (None for the first).

        A read, then a write conditioned on the version read: of racing pushes each write
        displaces exactly the job it read, and exactly the last writer's job stays.
        """
        ddb = self._dynamodb
        key = _key(trigger_id, f"ref#{ref}")
        for _ in range(SWAP_TRIES):
            item = ddb.get_item(TableName=self._settings.table_name, Key=key, ConsistentRead=True).get("Item")
            current = dynamo.deserialize(item) if item else {}
            version = int(current.get("version", 0))
            try:
                ddb.update_item(
                    TableName=self._settings.table_name,
                    Key=key,
                    UpdateExpression="SET job_id = :job, #commit = :commit, updated_at = :now, expires_at = :ttl, "
                    "version = :next",
                    ConditionExpression="attribute_not_exists(pk) OR version = :version",
                    ExpressionAttributeNames={"#commit": "commit"},
                    ExpressionAttributeValues=dynamo.serialize(
                        {
                            ":job": job_id,
                            ":commit": commit,
                            ":now": now_iso(),
                            ":ttl": ttl_epoch(self._settings.job_ttl_days),
                            ":version": version,
                            ":next": version + 1,
                        }
                    ),
                )
            except ClientError as exc:
                if dynamo.is_conditional_failure(exc):
                    continue  # another push swapped in between: read again
                raise
            previous = current.get("job_id")
            return str(previous) if previous and previous != job_id else None
        raise ServiceUnavailable("too many pushes to one ref at once; deliver the push again")

    def link_build(self, trigger_id: str, job: Job) -> None:
        """List ``job`` among the trigger's builds."""
        item = {
            **_key(trigger_id, f"build#{job.created_at}#{job.job_id}"),
            **dynamo.serialize({"job_id": job.job_id, "expires_at": ttl_epoch(self._settings.job_ttl_days)}),
        }
        self._dynamodb.put_item(TableName=self._settings.table_name, Item=item)

    def recent_builds(self, trigger_id: str, limit: int = 10) -> list[Job]:
        """The trigger's newest builds (jobs as they are now), newest first."""
        ddb = self._dynamodb
        answer = ddb.query(
            TableName=self._settings.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :build)",
            ExpressionAttributeValues={":pk": {"S": f"trigger#{trigger_id}"}, ":build": {"S": "build#"}},
            ScanIndexForward=False,
            Limit=limit,
        )
        items: list[dict[str, Any]] = answer.get("Items", [])
        ids = [str(dynamo.deserialize(item)["job_id"]) for item in items]
        if not ids:
            return []
        keys = [dynamo.job_key(job_id) for job_id in ids]
        found: dict[str, Job] = {}
        request: dict[str, Any] = {self._settings.table_name: {"Keys": keys}}
        for _ in range(5):  # unprocessed keys (throttling) are asked for again a few times
            got = ddb.batch_get_item(RequestItems=request)
            for item in got.get("Responses", {}).get(self._settings.table_name, []):
                job = Job.from_item(dynamo.deserialize(item))
                found[job.job_id] = job
            request = got.get("UnprocessedKeys") or {}
            if not request:
                break
        return [found[job_id] for job_id in ids if job_id in found]
