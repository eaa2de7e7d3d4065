"""The bodies of ``GET /api/v1/{job_id}/status`` and ``GET /api/v1/{job_id}/logs``."""
from __future__ import annotations

from typing import Any

from chalicelib import jobstore, logstore
from chalicelib.errors import TransitionConflict
from chalicelib.jobs import Phase
from chalicelib.settings import get_settings

CANCEL_REASON = "cancelled by the user"


def status_body(job_id: str) -> dict[str, Any]:
    """The job's status (the seed's ``Status`` word plus extra fields); 404 if unknown."""
    return jobstore.get_job(job_id).status_body()


def cancel(job_id: str) -> dict[str, Any]:
    """Cancel a live job and return its status; 404 if unknown, 409 if it has already ended."""
    try:
        return jobstore.fail(job_id, CANCEL_REASON, target=Phase.CANCELLED).status_body()
    except TransitionConflict:
        job = jobstore.get_job(job_id)  # raises JobNotFound for an unknown id
        raise TransitionConflict(f"job {job_id} has already ended ({job.status_word}); only a live job can be cancelled")


def continuation_marker(job_id: str, cursor: int) -> str:
    """The line that ends a cut-short log answer and says how to read the rest."""
    return (
        f"\n[boatyard] the log is longer than one answer; read the rest with "
        f"GET /api/v1/{job_id}/logs?since={cursor}\n"
    )


def logs_body(job_id: str, since: int | None) -> dict[str, Any]:
    """The job's log text (all of it, or what follows cursor ``since``), the next cursor and completeness.

    The job is read *before* the chunks: if it was already terminal then, no
    chunk can be written after the read, so ``Complete`` never hides a tail.
    """
    job = jobstore.get_job(job_id)
    page = logstore.read_logs(job_id, since or 0, get_settings().max_log_response_bytes)
    text = page.text
    if page.more and since is None:
        text += continuation_marker(job_id, page.next_cursor)
    return {
        "Logs": text,
        "Next": str(page.next_cursor),
        "Complete": job.phase.is_terminal and not page.more,
        "Truncated": page.more,
    }
