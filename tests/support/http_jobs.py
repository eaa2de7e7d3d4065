"""Jobs over real HTTP against a running stack (the local stack or one a test started), as a client sees them.

One of each: :func:`submit`, :func:`status`, :func:`logs` (every page), :func:`wait_phase`,
:func:`wait_terminal` (the one wait-until-ended), :func:`credentials` and :func:`unique_image`.
"""

from __future__ import annotations

import uuid
from typing import Any

import requests

from tests.support.waiting import wait_until

TERMINAL_PREFIXES = ("Finished", "Failed", "Cancelled")
POLL_SECONDS = 0.2  # a status read is a cheap GET; polling fast ends each wait soon after the job does


def credentials(registry, email: str = "tester@example.com") -> dict[str, str]:
    """The seed's credential fields (username, password, email) for a registry."""
    return {"username": registry.username, "password": registry.password, "email": email}


def unique_image(registry_host: str, name: str, group: str = "e2e") -> str:
    """A fresh image reference ``<registry>/<group>/<name>:<random tag>`` in the test registry."""
    return f"{registry_host}/{group}/{name}:{uuid.uuid4().hex[:10]}"


def submit(api_url: str, body: dict[str, Any], session: requests.Session | None = None) -> str:
    """POST a JSON build; returns the job id (asserts a 202 and a UUID)."""
    answer = (session or requests).post(f"{api_url}/api/v1/build", json=body, timeout=60)
    assert answer.status_code == 202, f"{answer.status_code}: {answer.text[:500]}"
    job_id = answer.json()["JobIdentifier"]
    uuid.UUID(job_id)
    return job_id


def status(api_url: str, job_id: str, session: requests.Session | None = None) -> dict[str, Any]:
    """The job's status answer (raises on a non-2xx)."""
    answer = (session or requests).get(f"{api_url}/api/v1/{job_id}/status", timeout=30)
    answer.raise_for_status()
    return answer.json()


def logs(api_url: str, job_id: str, session: requests.Session | None = None) -> str:
    """All of the job's log text (reads page after page with the ``since`` cursor)."""
    text, since = "", "0"
    for _ in range(1000):
        answer = (session or requests).get(f"{api_url}/api/v1/{job_id}/logs", params={"since": since}, timeout=30)
        answer.raise_for_status()
        body = answer.json()
        text += body["Logs"]
        if not body.get("Truncated"):
            return text
        since = body["Next"]
    return text


def wait_phase(api_url: str, job_id: str, phases: set[str], timeout: float) -> dict[str, Any]:
    """Poll until the job's Phase is one of ``phases`` (or it ended); returns the status answer."""

    def reached() -> dict[str, Any] | None:
        body = status(api_url, job_id)
        return body if body.get("Phase") in phases or body["Status"].startswith(TERMINAL_PREFIXES) else None

    return wait_until(reached, timeout, f"job {job_id} to reach {sorted(phases)}", interval=POLL_SECONDS)


def wait_terminal(
    api_url: str, job_id: str, timeout: float = 240.0, session: requests.Session | None = None
) -> dict[str, Any]:
    """Poll the status until the job ends; returns the last answer.

    The answer carries two extra keys for assertions: ``_seen`` (the distinct ``Status`` words in
    the order seen) and ``_phases`` (likewise for ``Phase``).  AssertionError, naming what was seen,
    when the job is still live after ``timeout`` seconds (a stuck job).
    """
    seen: list[str] = []
    phases: list[str | None] = []

    def ended() -> dict[str, Any] | None:
        body = status(api_url, job_id, session)
        if not seen or seen[-1] != body["Status"]:
            seen.append(body["Status"])
        if not phases or phases[-1] != body.get("Phase"):
            phases.append(body.get("Phase"))
        if body["Status"].startswith(TERMINAL_PREFIXES):
            body["_seen"], body["_phases"] = seen, phases
            return body
        return None

    try:
        return wait_until(ended, timeout, f"job {job_id} to end", interval=POLL_SECONDS)
    except AssertionError as exc:
        raise AssertionError(
            f"{exc}; statuses seen {seen}, phases {phases}: the job is stuck in a live phase"
        ) from None
