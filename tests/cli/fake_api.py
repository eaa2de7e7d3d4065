"""A small scripted API on a real socket, for what the local stack cannot show: the seed's API (no
``/uploads``, no log cursors), where the API key goes, and a build that never ends."""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JOB_ID = "5d0c3c5e-0000-4000-8000-000000000001"


@dataclasses.dataclass
class Seen:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Handler(BaseHTTPRequestHandler):
    """The fake's HTTP handler; each :class:`FakeApi` serves a subclass bound to it."""

    fake: FakeApi

    def log_message(self, *args: Any) -> None:
        pass

    def _answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _record(self) -> Seen:
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length))
        self.fake.seen.append(seen)
        return seen

    def do_POST(self) -> None:
        self._record()
        if self.path == "/api/v1/uploads" and not self.fake.seed:
            self._answer(
                200,
                {
                    "UploadId": "u-1",
                    "Url": f"{self.fake.url}/storage",
                    "Fields": {"key": "uploads/u-1"},
                    "MaxBytes": 1 << 30,
                    "ExpiresIn": 3600,
                },
            )
        elif self.path == "/storage" and self.fake.storage_failures > 0:
            self.fake.storage_failures -= 1
            self._answer(503, None)
        elif self.path == "/storage":
            self._answer(204, None)
        elif self.path == "/api/v1/build":
            self._answer(202, {"JobIdentifier": JOB_ID})
        elif self.path == f"/api/v1/{JOB_ID}/cancel":
            self.fake.cancelled = True
            self._answer(200, {"Status": "Cancelled", "Phase": "cancelled"})
        else:
            self._answer(404, {"message": "Not Found"} if not self.fake.seed else None)

    def do_GET(self) -> None:
        self._record()
        self.fake.ticks += 1
        if self.path == f"/api/v1/{JOB_ID}/status":
            self._answer(200, {"Status": self.fake.state()})
        elif self.path.startswith(f"/api/v1/{JOB_ID}/logs"):
            lines = ["Step 1/2 : FROM busybox\n"] + (["Step 2/2 : CMD x\n"] if self.fake.ticks >= 2 else [])
            if self.fake.seed:
                self._answer(200, {"Logs": "".join(lines)})
            else:
                since = int(self.path.partition("since=")[2] or 0)
                terminal = self.fake.state() != "Building"
                self._answer(200, {"Logs": "".join(lines[since:]), "Next": str(len(lines)), "Complete": terminal})
        else:
            self._answer(404, None)


class FakeApi:
    """``with FakeApi(seed=True) as api: ... api.url ... api.seen``.

    ``seed``: no ``/api/v1/uploads`` (404) and logs without ``Next``; otherwise uploads are granted to
    ``/storage`` on this same server (which answers 503 to the first ``storage_failures`` posts).
    ``final``: the Status the job reaches on the third status or log read (None: it stays Building
    until cancelled).
    """

    def __init__(self, seed: bool = False, final: str | None = "Finished", storage_failures: int = 0) -> None:
        self.seed = seed
        self.storage_failures = storage_failures
        self.final = final
        self.seen: list[Seen] = []
        self.ticks = 0  # status and log reads so far: the job moves on with them
        self.cancelled = False
        handler: type[_Handler] = type("Handler", (_Handler,), {"fake": self})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def state(self) -> str:
        """The job's Status word now."""
        if self.cancelled:
            return "Cancelled"
        return self.final if self.final is not None and self.ticks >= 3 else "Building"

    def requests_to(self, path: str) -> list[Seen]:
        """What was received at ``path`` (any method)."""
        return [s for s in self.seen if s.path.split("?")[0] == path]


def multipart_parts(seen: Seen) -> dict[str, bytes]:
    """The parts of a multipart/form-data request, by name."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + seen.headers["content-type"].encode() + b"\r\n\r\n" + seen.body
    )
    parts = {}
    for part in message.iter_parts():
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes), "a form field is a leaf part"
        parts[str(part.get_param("name", header="content-disposition"))] = payload
    return parts
