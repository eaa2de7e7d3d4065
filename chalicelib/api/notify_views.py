"""The body of ``GET /api/v1/{job_id}/notifications``: a job's subscriptions and every delivery attempt.

Owner-checked like the status: another owner's job answers exactly like an unknown one (404).
Secrets, tokens and receiver query strings are never shown.
"""

from __future__ import annotations

from typing import Any

from chalicelib.api.job_views import owned_job
from chalicelib.stores.apikeys import ANONYMOUS, Principal
from chalicelib.stores.services import Services


def notifications_body(services: Services, job_id: str, caller: Principal = ANONYMOUS) -> dict[str, Any]:
    """``{JobIdentifier, Subscriptions: [...], Attempts: [...], Truncated}``; attempts oldest first."""
    owned_job(services, job_id, caller)
    records, more = services.notifications.attempts(job_id)
    return {
        "JobIdentifier": job_id,
        "Subscriptions": [sub.describe() for sub in services.notifications.subscriptions(job_id)],
        "Attempts": [record.shown() for record in records],
        "Truncated": more,
    }
