"""A notification receiver on 127.0.0.1 for tests: records every POST and answers from a script.

``Receiver(["500", "500", "200"])`` answers 500 twice then 200 (the last answer repeats);
``"hang"`` accepts the request and never answers (until the test ends).  Each request is
kept with its headers and raw body, so tests can verify the signature themselves.
"""

from __future__ import annotations

import dataclasses
import http.server
import threading
import time
from collections.abc import Callable


@dataclasses.dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float


class Receiver:
    """An HTTP server in a thread; ``url`` is where it listens."""

    def __init__(self, script: list[str] | None = None) -> None:
        self.script = list(script or ["200"])
        self.requests: list[Received] = []
        self._release = threading.Event()
        self._lock = threading.Lock()
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with owner._lock:
                    answer = owner.script[min(len(owner.requests), len(owner.script) - 1)]
                    owner.requests.append(
                        Received(self.path, {k: v for k, v in self.headers.items()}, body, time.time())
                    )
                if answer == "hang":
                    owner._release.wait(120)
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The receiver's URL (plain http on loopback: allowed only with BOATYARD_ALLOW_LOOPBACK_NOTIFY_URLS)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    @property
    def base_url(self) -> str:
        """The server's root (for a fake GitHub API)."""
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Receiver:
        """Start serving."""
        self.thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests and stop."""
        self._release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float, pump: Callable[[], object] | None = None) -> list[Received]:
        """Wait until ``count`` requests arrived (calling ``pump`` between looks); returns them."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.requests) >= count:
                    return list(self.requests)
            if pump is not None:
                pump()
            else:
                time.sleep(0.1)
        raise AssertionError(f"the receiver got {len(self.requests)} requests, not {count}, within {timeout} s")

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
