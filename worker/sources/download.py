"""Reading a download so that a trickling server cannot hold a build slot.

``response.raw.read(n)`` waits until ``n`` bytes have arrived, and the socket's
timeout only bounds each ``recv``: one byte every 29 s kept a job alive for
days.  :func:`download` opens the URL through the SSRF guard with every
socket it opens (redirect hops included) registered with the job's
:class:`~worker.job.control.JobControl` from the moment it exists, so a timeout
(the fetch deadline), a cancel (lost lease) or a shutdown shuts it down and a
blocked connect, header or body read returns at once; the abort then wins over
the read error it caused.  :class:`Download` reads the body with ``read1`` (at
most one ``recv`` per call) and between chunks enforces a minimum throughput
(at least ``fetch_min_bytes_per_second`` over every window of
``fetch_timeout_seconds``).  The fetch deadline has one owner, the runner's
:class:`~worker.job.control.Watchdog` around the whole fetch: a second clock
here raced it and gave the same timeout two different reasons.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import requests
import urllib3

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.settings import Settings
from worker import netguard
from worker.job.control import JobControl

READ_SIZE = 64 * 1024
_TRANSPORT_ERRORS = (urllib3.exceptions.HTTPError, requests.RequestException, OSError)


class Download:
    """The decoded body of a streamed response as a readable stream, under the job's control."""

    def __init__(
        self,
        response: requests.Response,
        what: str,
        control: JobControl,
        settings: Settings,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._raw: Any = response.raw
        self._what = what
        self._control = control
        self._clock = clock
        self._min_rate = settings.fetch_min_bytes_per_second
        self._window = max(settings.fetch_timeout_seconds, 1.0)
        self._window_started = clock()
        self._window_bytes = 0
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes, after at most one ``recv``; b"" at the end."""
        self._control.check()
        size = READ_SIZE if size is None or size <= 0 else min(size, READ_SIZE)
        try:
            data: bytes = self._raw.read1(size, decode_content=True)
        except BuildFailed:
            raise
        except _TRANSPORT_ERRORS as exc:
            self._control.check()  # the socket was cut because the job was aborted: say why
            raise BuildFailed(f"{self._what} was interrupted ({netguard.describe_error(exc)}); try again") from None
        if not data:
            self._control.check()  # a cut socket can look like the end of the body
        self._pace(len(data))
        return data

    def _pace(self, received: int) -> None:
        now = self._clock()
        self.bytes_read += received
        self._window_bytes += received
        elapsed = now - self._window_started
        if elapsed < self._window:
            return
        if self._min_rate > 0 and self._window_bytes < self._min_rate * elapsed:
            raise BuildFailed(
                f"{self._what} is too slow: {self._window_bytes} bytes in {elapsed:.0f} s, "
                f"less than the minimum of {self._min_rate} bytes per second; it was stopped"
            )
        self._window_started, self._window_bytes = now, 0


@contextlib.contextmanager
def download(
    url: str,
    what: str,
    settings: Settings,
    max_bytes: int,
    control: JobControl,
    on_status: Callable[[requests.Response], None] | None = None,
    headers: dict[str, str] | None = None,
) -> Iterator[Download]:
    """Open ``url`` through the guard (see :func:`worker.netguard.open_url`) as a paced :class:`Download`.

    ``headers`` (e.g. a token) go to the first request only; requests drops an
    ``Authorization`` header on a redirect to another host.
    """
    sockets: list[socket.socket] = []

    def track(sock: socket.socket) -> None:
        sockets.append(sock)
        control.register(sock)  # cut at once if the job is already aborted

    try:
        try:
            response = netguard.open_url(
                url,
                settings.allow_private_urls,
                settings.fetch_timeout_seconds,
                max_bytes,
                on_status=on_status,
                headers=headers,
                on_socket=track,
            )
        except BuildFailed:
            control.check()  # a connect or header read cut by an abort: the abort is the reason
            raise
        with response:
            yield Download(response, what, control, settings)
    finally:
        for sock in sockets:
            control.unregister(sock)
