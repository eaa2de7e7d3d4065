"""Follow a job: its log as it comes (``?since=`` cursors), then its final status and exit code."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from boatyard.api import Client

TERMINAL = ("Finished", "Failed", "Cancelled")
POLL_MIN_SECONDS = 0.1
POLL_MAX_SECONDS = 1.0
POLL_SLOWDOWN_PER_SECOND = 0.05
"""Polls start every 0.1 s and slow down by half each time nothing new arrives, up to a ceiling
that rises from 0.1 s by 0.05 s per second followed (1 s after 18 s); new log text brings them back
to the fastest.  A short build is seen ending within a fraction of a second, a long quiet one costs
one request a second."""
# C0 controls but tab/newline, DEL and C1 controls: a build's log is written by whoever wrote the
# Dockerfile, and escape sequences could rewrite the terminal (titles, clipboard, hidden text).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """``text`` without terminal control characters (``\\r\\n`` → ``\\n``; a lone ``\\r`` → ``\\n``)."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))


def is_terminal(status: dict[str, Any]) -> bool:
    """Whether the job has ended (the seed's ``Status`` words)."""
    return str(status.get("Status", "")).startswith(TERMINAL)


def exit_code(status: dict[str, Any]) -> int:
    """0 for Finished, 1 for Failed or Cancelled."""
    return 0 if str(status.get("Status", "")) == "Finished" else 1


def reason(status: dict[str, Any]) -> str:
    """Why a job did not finish, for stderr."""
    word = str(status.get("Status", ""))
    if word.startswith("Failed"):
        return clean(str(status.get("Reason") or word.partition(":")[2].strip() or "unknown error"))
    return clean(word)


def next_interval(interval: float, news: bool, elapsed: float) -> float:
    """The pause before the next poll (see ``POLL_SLOWDOWN_PER_SECOND``)."""
    ceiling = min(POLL_MAX_SECONDS, POLL_MIN_SECONDS + POLL_SLOWDOWN_PER_SECOND * elapsed)
    return POLL_MIN_SECONDS if news else min(interval * 1.5, ceiling)


def follow(
    client: Client, job_id: str, write: Callable[[str], None] | None, sleep: Callable[[float], None] = time.sleep
) -> dict[str, Any]:
    """Print the job's log through ``write`` (None: do not fetch it) until the job ends; its last status.

    Against boatyard the log is read with ``?since=`` cursors until ``Complete``; against the seed
    (no ``Next`` in the answer) the whole log is re-read and only its new tail printed, until the
    status is terminal.  Without ``write`` only the status is polled.
    """
    cursor = "0"
    printed = 0
    phase = None
    interval = POLL_MIN_SECONDS
    started = time.monotonic()
    while True:
        if write is None:
            status = client.status(job_id)
            if is_terminal(status):
                return status
            news, phase = status.get("Phase", status.get("Status")) != phase, status.get("Phase", status.get("Status"))
        else:
            page = client.logs(job_id, cursor)
            text = str(page.get("Logs") or "")
            if "Next" in page:
                if text:
                    write(clean(text))
                news = bool(text)
                cursor = str(page["Next"])
                if page.get("Complete"):
                    return client.status(job_id)
                if page.get("Truncated"):
                    continue  # more is waiting now: no pause
            else:  # the seed's API: the whole log every time
                news = len(text) > printed
                if news:
                    write(clean(text[printed:]))
                    printed = len(text)
                status = client.status(job_id)
                if is_terminal(status):
                    tail = str(client.logs(job_id).get("Logs") or "")
                    if len(tail) > printed:
                        write(clean(tail[printed:]))
                    return status
        interval = next_interval(interval, news, time.monotonic() - started)
        sleep(interval)
