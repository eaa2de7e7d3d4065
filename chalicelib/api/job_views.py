"""The bodies of ``GET /api/v1/{job_id}/status``, ``…/logs`` and ``POST …/cancel``, for their owner only.

A job owned by someone else answers exactly like an unknown id (404, same
message): the API is no oracle for which job ids exist.  Admin keys see all.
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.errors import Conflict, JobNotFound, TransitionConflict
from chalicelib.domain.jobs import Job, Phase
from chalicelib.stores.apikeys import ANONYMOUS, Principal
from chalicelib.stores.services import Services

CANCEL_REASON = "cancelled by the user"


def owned_job(services: Services, job_id: str, caller: Principal) -> Job:
    """The job if ``caller`` may see it; :class:`JobNotFound` (as for an unknown id) otherwise."""
    job = services.jobs.find_job(job_id)
    if job is None or not (caller.is_admin or job.owner == caller.owner):
        raise JobNotFound(f"no job with identifier {job_id}")
    return job


def status_body(services: Services, job_id: str, caller: Principal = ANONYMOUS) -> dict[str, Any]:
    """The job's status (the seed's ``Status`` word plus extra fields); 404 if unknown or not the caller's."""
    return owned_job(services, job_id, caller).status_body()


def cancel(services: Services, job_id: str, caller: Principal = ANONYMOUS) -> dict[str, Any]:
    """Cancel a live job and return its status; 404 if unknown or not the caller's, 409 if it has already ended."""
    owned_job(services, job_id, caller)
    try:
        return services.jobs.fail(job_id, CANCEL_REASON, target=Phase.CANCELLED).status_body()
    except TransitionConflict:
        job = services.jobs.get_job(job_id)
        raise Conflict(
            f"job {job_id} has already ended ({job.status_word}); only a live job can be cancelled"
        ) from None


def continuation_marker(job_id: str, cursor: int) -> str:
    """The line that ends a cut-short log answer and says how to read the rest."""
    return (
        f"\n[boatyard] the log is longer than one answer; read the rest with GET /api/v1/{job_id}/logs?since={cursor}\n"
    )


def logs_body(services: Services, job_id: str, since: int | None, caller: Principal = ANONYMOUS) -> dict[str, Any]:
    """The job's log text (all of it, or what follows cursor ``since``), the next cursor and completeness.

    The job is read *before* the chunks: if it was already terminal then, no
    chunk can be written after the read, so ``Complete`` never hides a tail.
    """
    job = owned_job(services, job_id, caller)
    page = services.logs.read_logs(job_id, since or 0, services.settings.max_log_response_bytes)
    text = page.text
    if page.more and since is None:
        text += continuation_marker(job_id, page.next_cursor)
    return {
        "Logs": text,
        "Next": str(page.next_cursor),
        "Complete": job.phase.is_terminal and not page.more,
        "Truncated": page.more,
    }
