"""The job model, its phases, and the seed-compatible status words.

Lifecycle (DESIGN.md): ``queued → fetching → building → pushing → finished``,
and from any live phase to ``failed`` or ``cancelled``.  A retry after a dead
worker re-enters ``fetching`` with ``attempt + 1``: the attempt number, not the
phase, is what orders retries (see :mod:`chalicelib.stores.jobs`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import time
from typing import Any


class Phase(str, enum.Enum):
    """Where a job is.  Values are stored in DynamoDB and returned as ``Phase``."""

    QUEUED = "queued"
    FETCHING = "fetching"
    BUILDING = "building"
    PUSHING = "pushing"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_live(self) -> bool:
        """True while the job may still change."""
        return self in LIVE_PHASES

    @property
    def is_terminal(self) -> bool:
        """True once the job can never change again."""
        return not self.is_live


LIVE_PHASES: frozenset[Phase] = frozenset({Phase.QUEUED, Phase.FETCHING, Phase.BUILDING, Phase.PUSHING})

# The forward moves a worker makes; failed/cancelled are reachable from every live phase.
NEXT_PHASE: dict[Phase, Phase] = {
    Phase.QUEUED: Phase.FETCHING,
    Phase.FETCHING: Phase.BUILDING,
    Phase.BUILDING: Phase.PUSHING,
    Phase.PUSHING: Phase.FINISHED,
}


def can_transition(current: Phase, target: Phase) -> bool:
    """Whether ``current → target`` is a legal single step of the state machine."""
    if current.is_terminal:
        return False
    if target in (Phase.FAILED, Phase.CANCELLED):
        return True
    return NEXT_PHASE.get(current) == target


class SourceKind(str, enum.Enum):
    """Where a job's build context comes from."""

    DOCKERFILE = "dockerfile"
    TAR_URL = "tar_url"
    GITHUB = "github"
    UPLOAD = "upload"  # multipart TarFile or presigned upload; the archive is in S3
    GITLAB = "gitlab"
    BITBUCKET = "bitbucket"


def now_iso() -> str:
    """UTC now as ISO 8601 with milliseconds and a ``Z``."""
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclasses.dataclass
class Job:
    """A build job as stored (credentials are never part of it)."""

    job_id: str
    image_name: str
    source_kind: SourceKind
    source: dict[str, str]  # tar_url / github_* / context_key: never credentials
    phase: Phase = Phase.QUEUED
    attempt: int = 0
    created_at: str = dataclasses.field(default_factory=now_iso)
    updated_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    reason: str | None = None
    image_digest: str | None = None
    lease_owner: str | None = None
    lease_expires: float = 0.0
    expires_at: int = 0
    options: dict[str, Any] = dataclasses.field(
        default_factory=dict
    )  # chalicelib.domain.build_options, defaults left out
    tag_digests: dict[str, str] = dataclasses.field(default_factory=dict)  # extra tag -> pushed digest
    source_commit: str | None = None  # the commit the source archive says it was made from
    engine: str = ""  # the build engine the job asked for ("" = the deployment decides)
    owner: str = "anonymous"  # who submitted it (the API key's owner); jobs before keys belong to anonymous
    quota_slot: bool = False  # holds one of its owner's live-job slots until its terminal transition frees it
    trigger_id: str | None = None  # the build trigger whose webhook made the job (issue 14)
    ref: str | None = None  # the pushed ref it builds (refs/heads/main, refs/tags/v1)
    commit: str | None = None  # the pushed commit (the event's sha): the source is fetched at exactly this commit
    notify_events: frozenset[str] = (
        frozenset()
    )  # phases some notification subscription wants (chalicelib.stores.notifications)

    def __post_init__(self) -> None:
        if not self.updated_at:
            self.updated_at = self.created_at

    @property
    def status_word(self) -> str:
        """The seed's ``Status`` value: queued and fetching read ``Building``."""
        if self.phase in (Phase.QUEUED, Phase.FETCHING, Phase.BUILDING):
            return "Building"
        if self.phase == Phase.PUSHING:
            return "Pushing"
        if self.phase == Phase.FINISHED:
            return "Finished"
        if self.phase == Phase.CANCELLED:
            return "Cancelled"
        return f"Failed: {self.reason or 'unknown error'}"

    def status_body(self) -> dict[str, Any]:
        """The body of ``GET /api/v1/{id}/status``: the seed's ``Status`` plus extra fields."""
        body: dict[str, Any] = {
            "Status": self.status_word,
            "Phase": self.phase.value,
            "JobIdentifier": self.job_id,
            "ImageName": self.image_name,
            "Source": self.source_kind.value,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at,
            "Attempt": self.attempt,
        }
        if self.started_at:
            body["StartedAt"] = self.started_at
        if self.finished_at:
            body["FinishedAt"] = self.finished_at
        if self.image_digest:
            body["ImageDigest"] = self.image_digest
        if self.tag_digests:
            body["TagDigests"] = dict(self.tag_digests)
        if self.commit or self.source_commit:
            body["Commit"] = self.commit or self.source_commit
        if self.trigger_id:
            body["TriggerId"] = self.trigger_id
        if self.ref:
            body["Ref"] = self.ref
        if self.engine:
            body["Engine"] = self.engine
        if self.phase == Phase.FAILED:
            body["Reason"] = self.reason or "unknown error"
        return body

    def to_item(self) -> dict[str, Any]:
        """The DynamoDB item (resource-layer types) of this job."""
        item: dict[str, Any] = {
            "pk": self.job_id,
            "sk": "job",
            "phase": self.phase.value,
            "attempt": self.attempt,
            "image_name": self.image_name,
            "source_kind": self.source_kind.value,
            "source": dict(self.source),
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "lease_expires": int(self.lease_expires),
            "expires_at": self.expires_at,
            "owner": self.owner,
        }
        if self.engine:
            item["engine"] = self.engine
        if self.quota_slot:
            item["quota_slot"] = True
        if self.notify_events:
            item["notify_events"] = set(self.notify_events)
        for key in (
            "started_at",
            "finished_at",
            "reason",
            "image_digest",
            "lease_owner",
            "source_commit",
            "trigger_id",
            "ref",
            "commit",
        ):
            value = getattr(self, key)
            if value is not None:
                item[key] = value
        for key in ("options", "tag_digests"):
            if getattr(self, key):
                item[key] = dict(getattr(self, key))
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Job:
        """Rebuild a job from its DynamoDB item."""
        return cls(
            job_id=str(item["pk"]),
            image_name=str(item["image_name"]),
            source_kind=SourceKind(item["source_kind"]),
            source={str(k): str(v) for k, v in (item.get("source") or {}).items()},
            phase=Phase(item["phase"]),
            attempt=int(item.get("attempt", 0)),
            created_at=str(item["created_at"]),
            updated_at=str(item.get("updated_at") or item["created_at"]),
            started_at=item.get("started_at"),
            finished_at=item.get("finished_at"),
            reason=item.get("reason"),
            image_digest=item.get("image_digest"),
            lease_owner=item.get("lease_owner"),
            lease_expires=float(item.get("lease_expires", 0)),
            expires_at=int(item.get("expires_at", 0)),
            options=dict(item.get("options") or {}),
            tag_digests={str(k): str(v) for k, v in (item.get("tag_digests") or {}).items()},
            source_commit=item.get("source_commit"),
            engine=str(item.get("engine") or ""),
            owner=str(item.get("owner") or "anonymous"),
            quota_slot=bool(item.get("quota_slot", False)),
            trigger_id=item.get("trigger_id"),
            ref=item.get("ref"),
            commit=item.get("commit"),
            notify_events=frozenset(str(e) for e in item.get("notify_events") or ()),
        )


def ttl_epoch(days: int, now: float | None = None) -> int:
    """The DynamoDB TTL value ``days`` from now."""
    return int((now if now is not None else time.time()) + days * 86400)
