"""A hostile HTTP server for download tests: it answers one byte every ``interval`` seconds.

Runs in a thread on 127.0.0.1 (the tests allow private addresses).  With
``headers=True`` even the status line and headers trickle; otherwise it
sends its headers at once (declaring ``declared`` bytes) and then trickles the
body.  It stops on its own after ``max_seconds`` and records when each client
went away, so a test can tell "the worker cut the socket" from "the server
gave up".
"""

from __future__ import annotations

import socket
import threading
import time


class TrickleServer:
    """One byte every ``interval`` seconds to every client, for at most ``max_seconds``."""

    def __init__(
        self, interval: float = 1.0, max_seconds: float = 60.0, headers: bool = False, declared: int = 10 * 1024 * 1024
    ) -> None:
        self.interval = interval
        self.max_seconds = max_seconds
        self.trickle_headers = headers
        self.declared = declared
        self.connected: list[float] = []  # monotonic time of each accepted connection
        self.gone: list[float] = []  # monotonic time each client closed its side
        self.bytes_sent = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(8)
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/slow.tar.gz"
        self._acceptor = threading.Thread(target=self._accept, daemon=True)
        self._acceptor.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connected.append(time.monotonic())
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        started = time.monotonic()
        with conn:
            conn.settimeout(5)
            try:
                conn.recv(65536)  # the request
            except OSError:
                return
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Length: {self.declared}\r\nContent-Type: application/gzip\r\n\r\n".encode()
            )
            pending = head if self.trickle_headers else b""
            if not self.trickle_headers:
                conn.sendall(head)
            body = b"\x1f\x8b"  # a gzip start, then zeros: never a whole archive
            while not self._stop.is_set() and time.monotonic() - started < self.max_seconds:
                byte = pending[:1] if pending else (body[:1] or b"\0")
                if pending:
                    pending = pending[1:]
                else:
                    body = body[1:]
                try:
                    conn.sendall(byte)
                    self.bytes_sent += 1
                    conn.settimeout(self.interval)
                    if conn.recv(1) == b"":  # the client closed its side
                        self.gone.append(time.monotonic())
                        return
                except TimeoutError:
                    continue
                except OSError:
                    self.gone.append(time.monotonic())
                    return

    def wait_connected(self, timeout: float = 30.0, sent: int = 1) -> None:
        """Wait until a client is connected and has been sent ``sent`` bytes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connected and self.bytes_sent >= sent:
                return
            time.sleep(0.05)
        raise AssertionError(f"no client got {sent} bytes within {timeout} s")

    def wait_gone(self, timeout: float = 15.0) -> bool:
        """Wait until a client closed its side; the server notices at its next byte (``interval`` later)."""
        deadline = time.monotonic() + timeout
        while not self.gone and time.monotonic() < deadline:
            time.sleep(0.05)
        return bool(self.gone)

    def close(self) -> None:
        """Stop serving (clients still connected are dropped)."""
        self._stop.set()
        # wake the accept() first and wait for its thread, then free the descriptor: closing it under a
        # thread still inside accept() lets that thread take a connection meant for whichever socket
        # reuses the number next (an "IncompleteRead(0 bytes read, 10485760 more expected)" from this
        # server, seen once per full run in an unrelated test's download)
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._acceptor.join(5)
        self._listener.close()
