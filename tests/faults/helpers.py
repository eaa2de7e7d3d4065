"""HTTP and counting helpers shared by the fault and load tests."""
from __future__ import annotations

import time
import uuid
from typing import Any

import requests

from tests.support import faults

TERMINAL_PREFIXES = ("Finished", "Failed", "Cancelled")


def credentials(registry) -> dict[str, str]:
    """The seed's credential fields for a registry."""
    return {"username": registry.username, "password": registry.password, "email": "faults@example.com"}


def submit(api_url: str, body: dict[str, Any], session: requests.Session | None = None) -> str:
    """POST a JSON build; returns the job id (asserts a 202)."""
    answer = (session or requests).post(f"{api_url}/api/v1/build", json=body, timeout=60)
    assert answer.status_code == 202, f"{answer.status_code}: {answer.text[:500]}"
    job_id = answer.json()["JobIdentifier"]
    uuid.UUID(job_id)
    return job_id


def status(api_url: str, job_id: str, session: requests.Session | None = None) -> dict[str, Any]:
    """The job's status answer."""
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
    """Poll until the job's Phase is one of ``phases`` (or it ended); returns the status."""
    def reached() -> dict[str, Any] | None:
        body = status(api_url, job_id)
        return body if body.get("Phase") in phases or body["Status"].startswith(TERMINAL_PREFIXES) else None

    return faults.wait_until(reached, timeout, 0.2, f"job {job_id} to reach {sorted(phases)}")


def wait_terminal(api_url: str, job_id: str, timeout: float) -> dict[str, Any]:
    """Poll until the job is terminal; AssertionError (a stuck job) after ``timeout``."""
    seen: list[str] = []

    def ended() -> dict[str, Any] | None:
        body = status(api_url, job_id)
        if not seen or seen[-1] != body.get("Phase"):
            seen.append(body.get("Phase"))
        if body["Status"].startswith(TERMINAL_PREFIXES):
            body["_phases"] = seen
            return body
        return None

    try:
        return faults.wait_until(ended, timeout, 0.5, f"job {job_id} to end")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; phases seen {seen}: the job is stuck in a live phase") from None


def queue_depth(endpoint: str, name_suffix: str = "") -> dict[str, int]:
    """Visible + in-flight messages of every queue on a moto server, by queue name."""
    sqs = faults._boto("sqs", endpoint)  # noqa: SLF001
    depth = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        depth[url.rsplit("/", 1)[-1]] = int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )
    return depth


def job_items(endpoint: str) -> dict[str, dict[str, Any]]:
    """Every job item on a stack's moto server, deserialised, by job id."""
    from chalicelib.stores import dynamo

    jobs = {}
    for _table, item in faults.scan_table_items(endpoint):
        if item.get("sk", {}).get("S") == "job":
            jobs[item["pk"]["S"]] = dynamo.deserialize(item)
    return jobs


def worker_pid_of(lease_owner: str | None) -> int | None:
    """The pid inside a worker id ``host:pid:uuid``."""
    if not lease_owner:
        return None
    parts = lease_owner.split(":")
    try:
        return int(parts[-2])
    except (IndexError, ValueError):
        return None


def elapsed(start: float) -> str:
    """Seconds since ``start`` (monotonic), for reports."""
    return f"{time.monotonic() - start:.0f} s"


def admin(stack, *args: str) -> str:
    """Run ``python -m boatyard.admin keys <args>`` against a stack's moto (as an operator would); its stdout."""
    import subprocess
    import sys

    from devstack.services import REPO_ROOT

    done = subprocess.run(
        [sys.executable, "-m", "boatyard.admin", "keys", *args],
        cwd=REPO_ROOT, env=stack.env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_key(stack, owner: str, label: str = "tests", admin_scope: bool = False) -> str:
    """A fresh API key for ``owner`` on a keys-mode stack (the token, shown once)."""
    import json

    out = admin(stack, "create", "--owner", owner, "--label", label, "--json", *(["--admin"] if admin_scope else []))
    return json.loads(out)["token"]
