"""Spot interruption watch: an IMDSv2 ``spot/instance-action`` notice starts the worker's graceful drain.

EC2 announces a spot interruption about two minutes ahead in the instance
metadata (``/latest/meta-data/spot/instance-action``: 404 until then, then
``{"action": "terminate"|"stop"|"hibernate", "time": "<UTC ISO 8601>"}``).
:class:`SpotWatcher` polls it (IMDSv2: a session token from ``PUT
/latest/api/token`` on every request) and calls ``on_notice`` once with a
:class:`SpotNotice`.  The worker then takes no new job and gives running
builds until ``time`` minus :data:`RELEASE_MARGIN_SECONDS`; builds that cannot
finish by then are given back to the queue and run again on another host
(attempt + 1, see ``worker/job/loop.py``).

The metadata endpoint comes from settings (``BOATYARD_IMDS_URL``) so tests
can use a fake one on 127.0.0.1; proxies from the environment are ignored
(metadata must never go through a proxy), and answers are read with a size
cap and a short timeout.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import requests

from chalicelib.domain.settings import Settings

log = logging.getLogger(__name__)

TOKEN_TTL_SECONDS = 21600
RELEASE_MARGIN_SECONDS = 30.0  # time a build needs to flush its log, release its lease and give its message back
MAX_ANSWER_BYTES = 4096
ACTIONS = frozenset({"terminate", "stop", "hibernate"})


@dataclasses.dataclass(frozen=True)
class SpotNotice:
    """A scheduled spot interruption."""

    action: str
    at: float  # epoch seconds

    def drain_seconds(self, now: float | None = None) -> float:
        """How long running builds may still run before they must be given back (never negative)."""
        now = time.time() if now is None else now
        return max(0.0, self.at - now - RELEASE_MARGIN_SECONDS)


def parse_notice(body: bytes) -> SpotNotice | None:
    """The notice in an ``instance-action`` answer, or None if it is not a valid one."""
    try:
        data = json.loads(body.decode("utf-8"))
        action, when = data["action"], data["time"]
        if action not in ACTIONS or not isinstance(when, str) or len(when) > 64:
            return None
        at = dt.datetime.fromisoformat(when.replace("Z", "+00:00"))
        if at.tzinfo is None:
            return None
        return SpotNotice(action, at.timestamp())
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None


class SpotWatcher:
    """Polls the instance metadata for a spot interruption notice in a daemon thread."""

    def __init__(
        self,
        imds_url: str,
        poll_seconds: float,
        on_notice: Callable[[SpotNotice], None],
        timeout_seconds: float = 2.0,
    ) -> None:
        self.base = imds_url.rstrip("/")
        self.poll_seconds = max(0.05, poll_seconds)
        self.on_notice = on_notice
        self.timeout = timeout_seconds
        self.notice: SpotNotice | None = None
        self._session = requests.Session()
        self._session.trust_env = False  # no HTTP(S)_PROXY for instance metadata
        self._token = ""
        self._token_expires = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing = False

    # --- metadata -------------------------------------------------------------------------

    def _read(self, response: requests.Response) -> bytes:
        body = response.raw.read(MAX_ANSWER_BYTES + 1, decode_content=True)
        response.close()
        if len(body) > MAX_ANSWER_BYTES:
            raise ValueError("instance metadata answer too large")
        return body

    def _session_token(self) -> str:
        if self._token and time.monotonic() < self._token_expires:
            return self._token
        response = self._session.put(
            f"{self.base}/latest/api/token",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
            timeout=self.timeout,
            stream=True,
        )
        if response.status_code != 200:
            response.close()
            raise ValueError(f"metadata token request answered HTTP {response.status_code}")
        self._token = self._read(response).decode("ascii", "replace").strip()
        self._token_expires = time.monotonic() + TOKEN_TTL_SECONDS - 60
        return self._token

    def check_once(self) -> SpotNotice | None:
        """Ask the metadata service once; the notice if one is scheduled."""
        for _ in range(2):  # a rejected (expired) token is renewed once
            response = self._session.get(
                f"{self.base}/latest/meta-data/spot/instance-action",
                headers={"X-aws-ec2-metadata-token": self._session_token()},
                timeout=self.timeout,
                allow_redirects=False,
                stream=True,
            )
            if response.status_code == 401:
                response.close()
                self._token = ""
                continue
            if response.status_code == 404:
                response.close()
                return None
            if response.status_code != 200:
                response.close()
                raise ValueError(f"spot/instance-action answered HTTP {response.status_code}")
            notice = parse_notice(self._read(response))
            if notice is None:
                log.warning("ignoring an instance-action answer that is not a spot interruption notice")
            return notice
        raise ValueError("the metadata service rejected a fresh token")

    # --- thread ---------------------------------------------------------------------------

    def start(self) -> SpotWatcher:
        """Poll in a daemon thread until a notice arrives or :meth:`stop`."""
        self._thread = threading.Thread(target=self._run, name="spot-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.timeout * 3 + 1)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                notice = self.check_once()
                if self._failing:
                    log.info("spot watch: instance metadata reachable again")
                self._failing = False
            except (requests.RequestException, ValueError) as exc:
                if not self._failing:  # one line per outage, not one per poll
                    log.warning("spot watch: instance metadata unavailable (%s); still polling", type(exc).__name__)
                self._failing = True
                notice = None
            if notice is not None:
                self.notice = notice
                log.warning(
                    "spot interruption notice: EC2 will %s this host in %.0f s; draining "
                    "(running builds get %.0f s, then go back to the queue for another host)",
                    notice.action,
                    max(0.0, notice.at - time.time()),
                    notice.drain_seconds(),
                )
                self.on_notice(notice)
                return
            self._stop.wait(self.poll_seconds)


def start_watch(request_stop: Callable[..., Any], settings: Settings) -> SpotWatcher | None:
    """If ``settings.spot_watch``: watch, and on a notice call ``request_stop(grace_seconds=..., interrupted=True)``.

    ``request_stop`` is :meth:`worker.job.loop.Worker.request_stop`, the SIGTERM path with a shorter grace.
    """
    if not settings.spot_watch:
        return None

    def on_notice(notice: SpotNotice) -> None:
        request_stop(grace_seconds=notice.drain_seconds(), interrupted=True)

    return SpotWatcher(settings.imds_url, settings.spot_poll_seconds, on_notice).start()
