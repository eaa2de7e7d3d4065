"""The job store: job items in DynamoDB, every phase change a conditional write.

Concurrency rules (DESIGN.md "Job lifecycle"):

* :meth:`JobStore.claim` gives one worker a lease on a live job whose lease is free or
  expired, and counts the attempt.  A duplicate delivery finds the lease held
  and backs off; a redelivery after a dead worker finds it expired and retries.
* every later write by that worker is conditioned on ``lease_owner`` and on the
  phase it leaves, so a worker that lost its lease can never move the job.
* a job admitted under a live-job quota (:mod:`chalicelib.stores.quotas`) carries
  ``quota_slot``; the write that makes it terminal (:meth:`~JobStore.transition` to an end,
  :meth:`~JobStore.fail`: worker, DLQ sweep, timeout, cancel) removes the flag and gives the
  slot back in one transaction, so the slot is released exactly once.
* every phase change (claim, :meth:`~JobStore.transition`, :meth:`~JobStore.fail`) of a job with notification
  subscriptions queues its notification after the write (:meth:`Notifications.emit`: best
  effort, bounded, never raises), the API's cancel included.
"""

from __future__ import annotations

import dataclasses
import enum
import time
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.errors import JobNotFound, TransitionConflict
from chalicelib.domain.jobs import LIVE_PHASES, Job, Phase, can_transition, now_iso, ttl_epoch
from chalicelib.domain.settings import Settings
from chalicelib.stores import dynamo
from chalicelib.stores.aws_errors import aws_error_code, cancellation_codes
from chalicelib.stores.notifications import Notifications
from chalicelib.stores.quotas import Quotas

_LIVE_VALUES = [p.value for p in sorted(LIVE_PHASES, key=lambda p: p.value)]
_NAMES = {
    "#phase": "phase",
    "#attempt": "attempt",
    "#owner": "lease_owner",
    "#expires": "lease_expires",
    "#updated": "updated_at",
}


CONFLICT_TRIES = 6


def _live_condition(values: dict[str, Any]) -> str:
    names = []
    for i, phase in enumerate(_LIVE_VALUES):
        values[f":live{i}"] = dynamo.value(phase)
        names.append(f":live{i}")
    return f"#phase IN ({', '.join(names)})"


def _failed_entries(exc: ClientError) -> list[int]:
    """Indexes of a cancelled transaction's entries whose condition failed (empty for other errors)."""
    return [i for i, code in enumerate(cancellation_codes(exc)) if code == "ConditionalCheckFailed"]


def _conflicted(exc: ClientError) -> bool:
    """True when a transaction was cancelled because another transaction held one of its items."""
    return "TransactionConflict" in cancellation_codes(exc)


class ClaimOutcome(str, enum.Enum):
    """What :meth:`JobStore.claim` found."""

    CLAIMED = "claimed"  # this worker now holds the lease; run the job
    BUSY = "busy"  # another worker holds a live lease: leave the message alone
    TERMINAL = "terminal"  # the job is over: delete the message
    EXHAUSTED = "exhausted"  # attempts used up: the job was failed, delete the message
    MISSING = "missing"  # no such job (expired, or a bad message): delete it


@dataclasses.dataclass
class ClaimResult:
    """The outcome of a claim and the job as it stood after it."""

    outcome: ClaimOutcome
    job: Job | None


class JobStore:
    """Job items in the table; every phase change a conditional write (see the module doc)."""

    def __init__(self, dynamodb: Any, settings: Settings, notifications: Notifications, quotas: Quotas) -> None:
        self._dynamodb = dynamodb
        self._settings = settings
        self._notifications = notifications
        self._quotas = quotas

    def _update_item(self, **kwargs: Any) -> dict[str, Any]:
        """``UpdateItem`` on a job item, tried again while a log transaction holds the item.

        The worker's fenced log writes (``chalicelib.stores.logs``) check the job item inside a
        transaction; a plain write that meets one is refused with ``TransactionConflictException``
        and changed nothing, so trying it again is safe.
        """
        client = self._dynamodb
        delay = 0.02
        for tries_left in range(CONFLICT_TRIES - 1, -1, -1):
            try:
                answer: dict[str, Any] = client.update_item(**kwargs)
                return answer
            except ClientError as exc:
                if tries_left == 0 or aws_error_code(exc) != "TransactionConflictException":
                    raise
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def create_job(self, job: Job, with_quota: bool = False) -> Job:
        """Store a new job; fails if the id exists (a uuid4 clash is a bug, not a retry).

        With ``with_quota`` the job is created in one transaction with its owner's
        per-minute count and a live-job slot; over either limit nothing is written
        and :class:`~chalicelib.domain.errors.QuotaExceeded` is raised.
        """
        settings = self._settings
        if not job.expires_at:
            job.expires_at = ttl_epoch(settings.job_ttl_days)
        if not with_quota:
            self._dynamodb.put_item(
                TableName=self._settings.table_name,
                Item=dynamo.serialize(job.to_item()),
                ConditionExpression="attribute_not_exists(pk)",
            )
            return job
        job.quota_slot = True
        now = time.time()
        put = {
            "Put": {
                "TableName": self._settings.table_name,
                "Item": dynamo.serialize(job.to_item()),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }
        try:
            self._dynamodb.transact_write_items(
                TransactItems=[self._quotas.rate_update(job.owner, now), self._quotas.slot_take(job.owner), put]
            )
        except ClientError as exc:
            failed = _failed_entries(exc)
            if failed and failed[0] in (0, 1):
                raise self._quotas.refusal(failed[0], now) from None
            raise
        return job

    def _end_job(
        self, job_id: str, update: str, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> Job | None:
        """The write that makes a job terminal; gives its quota slot back if it holds one.

        Returns the job after the write, or None when ``condition`` failed.  The
        slot flag can only be removed by this write, and this write needs a live
        phase, so reading the flag first is race-free: at most one writer wins.
        """
        key = dynamo.job_key(job_id)
        current = self.find_job(job_id)
        if current is not None and current.quota_slot:
            values = {**values, ":slot": {"BOOL": True}}
            items = [
                {
                    "Update": {
                        "TableName": self._settings.table_name,
                        "Key": key,
                        "UpdateExpression": f"{update} REMOVE quota_slot",
                        "ConditionExpression": f"{condition} AND quota_slot = :slot",
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": values,
                    }
                },
                self._quotas.slot_release(current.owner),
            ]
            delay = 0.02
            for tries_left in range(CONFLICT_TRIES - 1, -1, -1):
                try:
                    self._dynamodb.transact_write_items(TransactItems=items)
                    return self.find_job(job_id)
                except ClientError as exc:
                    if 0 in _failed_entries(exc):
                        return None
                    if tries_left == 0 or not _conflicted(exc):
                        raise
                time.sleep(delay)  # a fenced log write held the job item: nothing changed, try again
                delay *= 2
            raise AssertionError("unreachable")
        return self._update_job(job_id, update, condition, names, values)

    def find_job(self, job_id: str, consistent: bool = True) -> Job | None:
        """The job with that id, or None."""
        answer = self._dynamodb.get_item(
            TableName=self._settings.table_name,
            Key=dynamo.job_key(job_id),
            ConsistentRead=consistent,
        )
        item = answer.get("Item")
        return Job.from_item(dynamo.deserialize(item)) if item else None

    def get_job(self, job_id: str, consistent: bool = True) -> Job:
        """The job with that id; raises :class:`JobNotFound`."""
        job = self.find_job(job_id, consistent)
        if job is None:
            raise JobNotFound(f"no job with identifier {job_id}")
        return job

    def claim(self, job_id: str, worker_id: str, lease_seconds: float, max_attempts: int) -> ClaimResult:
        """Take the lease on a live job for one more attempt (see module doc)."""
        now = time.time()
        values: dict[str, Any] = {
            ":now": dynamo.value(int(now)),
            ":max": dynamo.value(max_attempts),
            ":one": dynamo.value(1),
            ":me": dynamo.value(worker_id),
            ":until": dynamo.value(int(now + lease_seconds)),
            ":fetching": dynamo.value(Phase.FETCHING.value),
            ":ts": dynamo.value(now_iso()),
        }
        condition = f"{_live_condition(values)} AND #expires < :now AND #attempt < :max"
        try:
            answer = self._update_item(
                TableName=self._settings.table_name,
                Key=dynamo.job_key(job_id),
                UpdateExpression=(
                    "SET #phase = :fetching, #attempt = #attempt + :one, #owner = :me, "
                    "#expires = :until, #updated = :ts, started_at = if_not_exists(started_at, :ts)"
                ),
                ConditionExpression=f"attribute_exists(pk) AND {condition}",
                ExpressionAttributeNames=_NAMES,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
            )
            claimed = Job.from_item(dynamo.deserialize(answer["Attributes"]))
            self._notifications.emit(claimed)
            return ClaimResult(ClaimOutcome.CLAIMED, claimed)
        except ClientError as exc:
            if not dynamo.is_conditional_failure(exc):
                raise
        job = self.find_job(job_id)
        if job is None:
            return ClaimResult(ClaimOutcome.MISSING, None)
        if job.phase.is_terminal:
            return ClaimResult(ClaimOutcome.TERMINAL, job)
        # The condition compares whole seconds: a lease that ends in this very second is
        # still held, and a job with attempts left that failed the condition anyway (a
        # concurrent claim or renewal) is busy, never exhausted.
        if job.lease_expires >= int(now) or job.attempt < max_attempts:
            return ClaimResult(ClaimOutcome.BUSY, job)
        # live, lease free, but no attempts left: the last worker died.
        reason = (
            f"the build was interrupted {job.attempt} times (its worker stopped responding); "
            "giving up. Submit the build again; if it keeps failing, check that it fits the "
            "build timeout and the worker's resources"
        )
        try:
            failed = self.fail(job_id, reason, expect_expired_lease=True)
            return ClaimResult(ClaimOutcome.EXHAUSTED, failed)
        except TransitionConflict:
            again = self.find_job(job_id)
            outcome = ClaimOutcome.TERMINAL if again and again.phase.is_terminal else ClaimOutcome.BUSY
            return ClaimResult(outcome, again)

    def _update_live_as_owner(self, job_id: str, worker_id: str, update: str, values: dict[str, Any]) -> bool:
        """Apply ``update`` if ``worker_id`` holds the lease on the live job; False if it does not."""
        values = {":me": dynamo.value(worker_id), **values}
        condition = f"#owner = :me AND {_live_condition(values)}"
        names = {k: v for k, v in _NAMES.items() if k in update or k in condition}
        return self._conditional_update(job_id, update, condition, names, values) is not None

    def renew_lease(self, job_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Extend this worker's lease; False if the lease was lost or the job is over."""
        return self._update_live_as_owner(
            job_id, worker_id, "SET #expires = :until", {":until": dynamo.value(int(time.time() + lease_seconds))}
        )

    def release_lease(self, job_id: str, worker_id: str, count_attempt: bool = False) -> bool:
        """Give the job back unfinished: the lease ends now.

        A graceful shutdown does not count the attempt; an interruption of the host (``count_attempt``,
        e.g. spot) does, so a build that never fits between interruptions still ends after its attempts.
        """
        if count_attempt:
            return self._update_live_as_owner(
                job_id,
                worker_id,
                "SET #expires = :zero, #updated = :ts REMOVE #owner",
                {":zero": dynamo.value(0), ":ts": dynamo.value(now_iso())},
            )
        return self._update_live_as_owner(
            job_id,
            worker_id,
            "SET #expires = :zero, #attempt = #attempt - :one, #updated = :ts REMOVE #owner",
            {":zero": dynamo.value(0), ":one": dynamo.value(1), ":ts": dynamo.value(now_iso())},
        )

    def transition(
        self,
        job_id: str,
        worker_id: str,
        current: Phase,
        target: Phase,
        reason: str | None = None,
        image_digest: str | None = None,
        tag_digests: dict[str, str] | None = None,
        source_commit: str | None = None,
    ) -> Job:
        """Move a job one step, as the lease holder, from the phase it must be in now.

        Raises :class:`TransitionConflict` when the stored phase or lease differs.
        """
        if not can_transition(current, target):
            raise TransitionConflict(f"illegal transition {current.value} -> {target.value}")
        ts = now_iso()
        values: dict[str, Any] = {
            ":current": dynamo.value(current.value),
            ":target": dynamo.value(target.value),
            ":me": dynamo.value(worker_id),
            ":ts": dynamo.value(ts),
        }
        sets = ["#phase = :target", "#updated = :ts"]
        if target.is_terminal:
            sets.append("finished_at = :ts")
        if reason is not None:
            values[":reason"] = dynamo.value(reason)
            sets.append("reason = :reason")
        if image_digest is not None:
            values[":digest"] = dynamo.value(image_digest)
            sets.append("image_digest = :digest")
        if tag_digests:
            values[":tags"] = dynamo.value(dict(tag_digests))
            sets.append("tag_digests = :tags")
        if source_commit:
            values[":commit"] = dynamo.value(source_commit)
            sets.append("source_commit = :commit")
        names = {k: _NAMES[k] for k in ("#phase", "#updated", "#owner")}
        condition = "#phase = :current AND #owner = :me"
        update = "SET " + ", ".join(sets)
        if target.is_terminal:
            job = self._end_job(job_id, update, condition, names, values)
        else:
            job = self._update_job(job_id, update, condition, names, values)
        if job is None:
            raise TransitionConflict(f"job {job_id} is no longer {current.value} under lease {worker_id}")
        self._notifications.emit(job)
        return job

    def _update_job(
        self, job_id: str, update: str, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> Job | None:
        """A conditional write of a job that stays live; None when ``condition`` failed."""
        answer = self._conditional_update(job_id, update, condition, names, values, ReturnValues="ALL_NEW")
        return None if answer is None else Job.from_item(dynamo.deserialize(answer["Attributes"]))

    def _conditional_update(
        self,
        job_id: str,
        update: str,
        condition: str,
        names: dict[str, str],
        values: dict[str, Any],
        **extra: Any,
    ) -> dict[str, Any] | None:
        """``UpdateItem`` on the job item if ``condition`` holds: DynamoDB's answer, or None when it did not."""
        try:
            return self._update_item(
                TableName=self._settings.table_name,
                Key=dynamo.job_key(job_id),
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                **extra,
            )
        except ClientError as exc:
            if dynamo.is_conditional_failure(exc):
                return None
            raise

    def fail(
        self,
        job_id: str,
        reason: str,
        worker_id: str | None = None,
        expect_expired_lease: bool = False,
        target: Phase = Phase.FAILED,
    ) -> Job:
        """Move a live job to ``failed`` (or ``cancelled``) with a reason.

        With ``worker_id`` only the lease holder may do it; with
        ``expect_expired_lease`` only while nobody holds a live lease; with
        neither, any live job (the API before enqueueing, or a reaper).
        Raises :class:`TransitionConflict` if the job is not live (or the lease
        condition fails).
        """
        now = time.time()
        ts = now_iso()
        values: dict[str, Any] = {
            ":target": dynamo.value(target.value),
            ":reason": dynamo.value(reason),
            ":ts": dynamo.value(ts),
        }
        condition = _live_condition(values)
        names = {k: _NAMES[k] for k in ("#phase", "#updated")}
        if worker_id is not None:
            values[":me"] = dynamo.value(worker_id)
            condition += " AND #owner = :me"
            names["#owner"] = "lease_owner"
        if expect_expired_lease:
            values[":now"] = dynamo.value(int(now))
            condition += " AND #expires < :now"
            names["#expires"] = "lease_expires"
        job = self._end_job(
            job_id,
            "SET #phase = :target, reason = :reason, #updated = :ts, finished_at = :ts",
            f"attribute_exists(pk) AND {condition}",
            names,
            values,
        )
        if job is None:
            raise TransitionConflict(f"job {job_id} is not live (or its lease is held)")
        self._notifications.emit(job)
        return job
