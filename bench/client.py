"""A small HTTP client of boatyard's API v1, as a user's script would use it (bounded loops)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Any

import requests

TERMINAL = ("Finished", "Failed", "Cancelled")


class BenchError(RuntimeError):
    """A benchmark step could not be done (the figure would be meaningless)."""


def parse_ts(value: str | None) -> float | None:
    """An ISO 8601 timestamp from the API as epoch seconds."""
    if not value:
        return None
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclasses.dataclass
class Finished:
    """A job as last seen, and when (monotonic) the client saw it end."""

    job_id: str
    status: dict[str, Any]
    seen_at: float
    polls: int
    phases: dict[str, float] = dataclasses.field(default_factory=dict)  # phase -> monotonic time first seen

    def phase_seconds(self, phase: str, next_phase: str) -> float | None:
        """Seconds from when ``phase`` was first seen to when ``next_phase`` was (client polls; ± one interval)."""
        start, end = self.phases.get(phase), self.phases.get(next_phase)
        return None if start is None or end is None else end - start

    @property
    def ok(self) -> bool:
        """True if it ended Finished."""
        return self.status.get("Status") == "Finished"

    def span(self, start_field: str, end_field: str) -> float | None:
        """Seconds between two of the status timestamps (server clock)."""
        start, end = parse_ts(self.status.get(start_field)), parse_ts(self.status.get(end_field))
        return None if start is None or end is None else end - start


@dataclasses.dataclass
class LogRead:
    """The whole log of a job, read page by page with ``?since``."""

    text: str
    requests: int
    seconds: float
    complete: bool


class Client:
    """boatyard's API over real HTTP (one keep-alive session; not for sharing across threads)."""

    def __init__(self, api_url: str, timeout: float = 60.0) -> None:
        self.api_url = api_url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()

    def submit(self, body: dict[str, Any]) -> str:
        """POST /api/v1/build (JSON); returns the job id."""
        answer = self.session.post(f"{self.api_url}/api/v1/build", json=body, timeout=self.timeout)
        if answer.status_code != 202:
            raise BenchError(f"submit answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()["JobIdentifier"]

    def status(self, job_id: str) -> dict[str, Any]:
        """GET /api/v1/{id}/status."""
        answer = self.session.get(f"{self.api_url}/api/v1/{job_id}/status", timeout=self.timeout)
        if answer.status_code != 200:
            raise BenchError(f"status answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()

    def wait(self, job_id: str, interval: float = 0.1, timeout: float = 900.0) -> Finished:
        """Poll status every ``interval`` s until the job ends (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        polls = 0
        phases: dict[str, float] = {}
        while time.monotonic() < deadline:
            body = self.status(job_id)
            polls += 1
            phases.setdefault(str(body.get("Phase")), time.monotonic())
            if str(body.get("Status", "")).startswith(TERMINAL):
                return Finished(job_id, body, time.monotonic(), polls, phases)
            time.sleep(interval)
        raise BenchError(f"job {job_id} still live after {timeout:.0f} s")

    def logs(self, job_id: str, since: str | None = None) -> dict[str, Any]:
        """GET /api/v1/{id}/logs[?since=]."""
        params = {"since": since} if since is not None else None
        answer = self.session.get(f"{self.api_url}/api/v1/{job_id}/logs", params=params, timeout=self.timeout)
        if answer.status_code != 200:
            raise BenchError(f"logs answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()

    def read_all_logs(self, job_id: str, max_requests: int = 10_000, timeout: float = 300.0) -> LogRead:
        """Page through the log from cursor 0 with ``?since=<Next>`` until ``Complete`` (bounded)."""
        start = time.monotonic()
        parts: list[str] = []
        cursor = "0"
        count = 0
        complete = False
        while count < max_requests and time.monotonic() - start < timeout:
            body = self.logs(job_id, cursor)
            count += 1
            parts.append(body.get("Logs", ""))
            cursor = str(body.get("Next", cursor))
            if body.get("Complete"):
                complete = True
                break
        return LogRead("".join(parts), count, time.monotonic() - start, complete)

    def create_upload(self) -> dict[str, Any]:
        """POST /api/v1/uploads: the presigned POST."""
        answer = self.session.post(f"{self.api_url}/api/v1/uploads", timeout=self.timeout)
        if answer.status_code not in (200, 201):
            raise BenchError(f"uploads answered {answer.status_code}: {answer.text[:300]}")
        return answer.json()

    def close(self) -> None:
        """Close the session."""
        self.session.close()
