"""Stopping a running job from another thread: build timeout, lost lease, shutdown.

A :class:`JobControl` is shared by the job's thread, its heartbeat and the
worker.  :meth:`JobControl.abort` records why, then cuts the job's open
Docker streams (shutting the socket down makes the daemon cancel the build and
remove its container) and download sockets, so a blocked read returns at once.  Code that runs the
job calls :meth:`JobControl.check` between steps and raises :class:`Aborted`.
"""

from __future__ import annotations

import enum
import logging
import socket
import threading
from typing import Any

log = logging.getLogger(__name__)


class AbortKind(str, enum.Enum):
    """Why a job was stopped."""

    TIMEOUT = "timeout"  # the job fails: "timed out after N s"
    LEASE_LOST = "lease_lost"  # another worker owns the job now: leave it alone
    SHUTDOWN = "shutdown"  # the worker stops: give the job back for another worker
    INTERRUPTED = "interrupted"  # the host goes away (spot): give the job back; the attempt counts
    LIMIT = "limit"  # the build passed a resource limit (e.g. disk): the job fails with the reason


class Aborted(Exception):
    """Raised inside a job that was aborted."""

    def __init__(self, kind: AbortKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _socket_of(response: Any) -> socket.socket | None:
    """The socket itself, or the one under a streamed docker-py (requests) response, if it can be found."""
    if isinstance(response, socket.socket):
        return response
    try:
        raw = response.raw._fp.fp.raw  # http.client.HTTPResponse → BufferedReader → SocketIO
    except AttributeError:
        return None
    sock = getattr(raw, "_sock", raw)
    return sock if isinstance(sock, socket.socket) else None


class JobControl:
    """Abort state of one job, and the open streams to cut when it is aborted."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.kind: AbortKind | None = None
        self.message = ""
        self._responses: list[Any] = []
        self.containers: list[str] = []  # build containers seen in the output ("Running in <id>")

    @property
    def aborted(self) -> bool:
        """True once :meth:`abort` was called."""
        return self._event.is_set()

    def abort(self, kind: AbortKind, message: str) -> bool:
        """Stop the job (first reason wins); returns False if it was already aborted."""
        with self._lock:
            if self._event.is_set():
                return False
            self.kind, self.message = kind, message
            self._event.set()
            responses = list(self._responses)
        for response in responses:
            self._cut(response)
        return True

    def check(self) -> None:
        """Raise :class:`Aborted` if the job was aborted."""
        if self._event.is_set():
            assert self.kind is not None
            raise Aborted(self.kind, self.message)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the job was aborted meanwhile."""
        return self._event.wait(seconds)

    def register(self, response: Any) -> None:
        """Track a streamed response or a socket; it is cut at once if the job is already aborted."""
        with self._lock:
            if response not in self._responses:
                self._responses.append(response)
            aborted = self._event.is_set()
        if aborted:
            self._cut(response)

    def unregister(self, response: Any) -> None:
        """Forget a finished response."""
        with self._lock:
            if response in self._responses:
                self._responses.remove(response)

    @staticmethod
    def _cut(response: Any) -> None:
        sock = _socket_of(response)
        try:
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
            else:
                response.close()
        except OSError:
            pass


class Watchdog:
    """Aborts a job with :attr:`AbortKind.TIMEOUT` after ``seconds`` unless cancelled (``message``: the reason)."""

    def __init__(self, control: JobControl, seconds: float, message: str | None = None) -> None:
        reason = message or f"timed out after {seconds:g} s"
        self._timer = threading.Timer(seconds, control.abort, (AbortKind.TIMEOUT, reason))
        self._timer.daemon = True

    def __enter__(self) -> Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()
