"""A fake boatyard API for fast UI tests: serves ui/ and mimics the v1 endpoints.

It runs in a thread on 127.0.0.1 (no Docker, no AWS). Jobs do not move by
themselves: a test creates or receives a job and then drives it
(``set_phase``, ``add_log``), so every state the UI shows is one the test
asked for. It also plays S3 for presigned uploads, checking the rules a real
presigned POST enforces (every policy field present, ``file`` last, size limit).

Everything it answers follows /work/shared/DESIGN.md and the seed API:
errors are ``{"Code", "Message"}`` with the field name leading the Message.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

UI_DIR = Path(__file__).resolve().parents[2] / "ui"
TERMINAL = {"finished", "failed", "cancelled"}
IMAGE_NAME = re.compile(r"^[A-Za-z0-9.:_/-]+$")


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class FakeJob:
    job_id: str
    image_name: str
    source: str
    phase: str = "queued"
    attempt: int = 1
    created_at: str = field(default_factory=_now)
    updated_at: str = ""
    started_at: str | None = None
    finished_at: str | None = None
    reason: str | None = None
    digest: str | None = None
    chunks: list[str] = field(default_factory=list)

    def status_body(self) -> dict[str, Any]:
        word = {
            "pushing": "Pushing",
            "finished": "Finished",
            "cancelled": "Cancelled",
            "failed": f"Failed: {self.reason or 'unknown error'}",
        }.get(self.phase, "Building")
        body: dict[str, Any] = {
            "Status": word,
            "Phase": self.phase,
            "JobIdentifier": self.job_id,
            "ImageName": self.image_name,
            "CreatedAt": self.created_at,
            "UpdatedAt": self.updated_at or self.created_at,
            "Attempt": self.attempt,
        }
        if self.started_at:
            body["StartedAt"] = self.started_at
        if self.finished_at:
            body["FinishedAt"] = self.finished_at
        if self.digest:
            body["ImageDigest"] = self.digest
        if self.phase == "failed":
            body["Reason"] = self.reason or "unknown error"
        return body


@dataclass
class Upload:
    upload_id: str
    fields: dict[str, str]
    received: bool = False
    part_names: list[str] = field(default_factory=list)
    file_name: str = ""
    data: bytes = b""


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, str, bytes]]:
    """(name, filename, bytes) of each part of a multipart/form-data body, in order."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise ValueError("no boundary")
    delimiter = b"--" + match.group(1).encode()
    sections = body.split(delimiter)
    if len(sections) < 3 or not sections[-1].startswith(b"--"):
        raise ValueError("not a complete multipart body")
    parts = []
    for section in sections[1:-1]:
        if not section.startswith(b"\r\n") or not section.endswith(b"\r\n"):
            raise ValueError("bad part framing")
        head, sep, data = section[2:-2].partition(b"\r\n\r\n")
        if not sep:
            raise ValueError("part without headers")
        disposition = next(
            (
                line
                for line in head.decode("utf-8", "replace").split("\r\n")
                if line.lower().startswith("content-disposition:")
            ),
            "",
        )
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        parts.append((name.group(1) if name else "", filename.group(1) if filename else "", data))
    return parts


class _Handler(BaseHTTPRequestHandler):
    """The fake API's HTTP handler; each :class:`FakeApi` serves a subclass bound to it."""

    fake: FakeApi

    server_version = "fake-boatyard/1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _error(self, status: int, code: str, message: str) -> None:
        self._json(status, {"Code": code, "Message": message})

    def _record(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        with self.fake.lock:
            self.fake.requests.append(
                {
                    "method": self.command,
                    "path": parts.path,
                    "query": query,
                    "at": time.monotonic(),
                    "authorization": self.headers.get("Authorization"),
                }
            )
        return parts.path, query

    def _authorized(self) -> bool:
        """Like the keys-mode API: without the key, 401 {Code, Message} and nothing else happens."""
        if self.fake.required_key is None or self.headers.get("Authorization") == f"Bearer {self.fake.required_key}":
            return True
        self._error(401, "Unauthorized", "send a valid API key as 'Authorization: Bearer <key>'")
        return False

    def _history(self) -> None:
        with self.fake.lock:
            jobs = sorted(self.fake.jobs.values(), key=lambda j: j.created_at, reverse=True)
            listed = [
                {k: v for k, v in j.status_body().items() if k != "Attempt" and k != "Reason"} | {"Source": j.source}
                for j in jobs
            ]
        self._json(200, {"Jobs": listed[:25]})

    def do_OPTIONS(self) -> None:  # CORS preflight, for a UI on another origin
        self.send_response(204)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "Content-Type, Accept, Authorization")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        path, query = urlsplit(self.path).path, None
        api = re.search(r"/api/v1/([^/]+)/(status|logs)$", path)
        if api:
            path, query = self._record()
            if self._authorized():
                self._job_read(api.group(1), api.group(2), query)
            return
        if path.endswith("/api/v1/jobs"):
            self._record()
            if self._authorized():
                self._history()
            return
        self._static(path)

    do_HEAD = do_GET

    def do_POST(self) -> None:
        path, _ = self._record()
        if path.startswith("/api/") and not self._authorized():
            return
        if path.endswith("/api/v1/build"):
            self._build()
        elif path.endswith("/api/v1/uploads"):
            self._new_upload()
        elif path.startswith("/fake-s3/"):
            self._s3_post()
        else:
            self._error(404, "NotFound", f"no route {path}")

    # static files, like `chalice local` serving ui/
    def _static(self, path: str) -> None:
        name = "index.html" if path in ("/", "") else path.lstrip("/")
        target = (UI_DIR / name).resolve()
        if UI_DIR not in target.parents or not target.is_file():
            self._error(404, "NotFound", f"no file {path}")
            return
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        if target.suffix == ".js":
            ctype = "text/javascript"
        self._send(200, target.read_bytes(), ctype + ("; charset=utf-8" if ctype.startswith("text/") else ""))

    def _body_json(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if "application/json" not in (self.headers.get("Content-Type") or ""):
            raise ValueError("Content-Type must be application/json")
        return json.loads(raw or b"{}")

    def _build(self) -> None:
        try:
            body = self._body_json()
        except ValueError as err:
            self._error(415, "UnsupportedMediaType", str(err))
            return
        if self.fake.refusals:
            status, data = self.fake.refusals.pop(0)
            self._json(status, data)
            return
        image = str(body.get("image_name") or "")
        if not image:
            self._error(400, "InvalidField", "image_name: required")
            return
        if not IMAGE_NAME.match(image):
            self._error(400, "InvalidField", "image_name: not a valid image reference")
            return
        sources = [s for s in ("dockerfile", "tar_url", "github_username", "upload_id") if body.get(s)]
        if len(sources) != 1:
            self._error(400, "InvalidField", "source: give exactly one of dockerfile, tar_url, github_*, upload_id")
            return
        source = sources[0]
        if source == "upload_id":
            upload = self.fake.uploads.get(str(body["upload_id"]))
            if upload is None or not upload.received:
                self._error(400, "InvalidField", "upload_id: no archive was uploaded with this id")
                return
        job_id = self.fake.create_job(image, {"github_username": "github", "upload_id": "upload"}.get(source, source))
        with self.fake.lock:
            self.fake.builds.append({**body, "_job_id": job_id})
        self._json(202, {"JobIdentifier": job_id})

    def _job_read(self, job_id: str, what: str, query: dict[str, list[str]]) -> None:
        # The request was recorded by this thread just before; under the lock it is ours to annotate.
        with self.fake.lock:
            job = self.fake.jobs.get(job_id)
            if job is None:
                self._error(404, "NotFound", f"job_id: no job {job_id}")
                return
            if what == "status":
                self._json(200, job.status_body())
                return
            since = (query.get("since") or [""])[0]
            start = 0
            if since:
                match = re.fullmatch(r"(\d+)", since)
                if not match or int(match.group(1)) > len(job.chunks):
                    self._error(400, "InvalidField", "since: not a cursor this job gave out")
                    return
                start = int(match.group(1))
            text = "".join(job.chunks[start:])
            complete = job.phase in TERMINAL
            self.fake.requests[-1]["next"] = str(len(job.chunks))  # so tests can check the UI follows it
            self._json(200, {"Logs": text, "Next": str(len(job.chunks)), "Complete": complete})

    def _new_upload(self) -> None:
        try:
            self._body_json()
        except ValueError as err:
            self._error(415, "UnsupportedMediaType", str(err))
            return
        upload_id = str(uuid.uuid4())
        fields = {
            "key": f"uploads/{upload_id}.tar.gz",
            "x-amz-algorithm": "AWS4-HMAC-SHA256",
            "x-amz-credential": "testing/20250101/us-east-1/s3/aws4_request",
            "x-amz-date": "20250101T000000Z",
            "policy": "eyJmYWtlIjogdHJ1ZX0=",
            "x-amz-signature": uuid.uuid4().hex,
        }
        with self.fake.lock:
            self.fake.uploads[upload_id] = Upload(upload_id, fields)
        self._json(
            200,
            {
                "UploadId": upload_id,
                "Url": f"{self.fake.url}/fake-s3/boatyard-contexts",
                "Fields": fields,
                "MaxBytes": self.fake.max_bytes,
                "ExpiresIn": 900,
            },
        )

    def _s3_error(self, status: int, code: str, message: str) -> None:
        body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>{message}</Message></Error>"
        self._send(status, body.encode(), "application/xml")

    def _s3_post(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        ctype = self.headers.get("Content-Type") or ""
        if not ctype.startswith("multipart/form-data"):
            self._s3_error(400, "InvalidArgument", "POST requires multipart/form-data")
            return
        chunks, left = [], length
        while left > 0:
            step = min(left, self.fake.s3_chunk or left)
            data = self.rfile.read(step)
            if not data:
                break
            chunks.append(data)
            left -= len(data)
            if self.fake.s3_delay:
                time.sleep(self.fake.s3_delay)
        raw = b"".join(chunks)
        try:
            parts = parse_multipart(ctype, raw)
        except ValueError as err:
            self._s3_error(400, "MalformedPOSTRequest", str(err))
            return
        names = [n for n, _, _ in parts]
        key = next((d.decode() for n, _, d in parts if n == "key"), None)
        upload = next((u for u in self.fake.uploads.values() if u.fields["key"] == key), None)
        if upload is None:
            self._s3_error(403, "AccessDenied", "no policy for this key")
            return
        upload.part_names = names
        # S3 rules: the file is the last field; every signed field must be there, unchanged.
        if not names or names[-1] != "file":
            self._s3_error(400, "InvalidArgument", "the file must be the last field")
            return
        values = {n: d.decode() for n, _, d in parts if n != "file"}
        if any(values.get(k) != v for k, v in upload.fields.items()):
            self._s3_error(403, "AccessDenied", "a policy field is missing or changed")
            return
        _, file_name, data = parts[-1]
        if len(data) > self.fake.max_bytes:
            self._s3_error(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
            return
        upload.data = data
        upload.file_name = file_name
        upload.received = True
        self._send(204, b"", "text/plain")


class FakeApi:
    """The fake service. ``url`` is where the UI is served; ``stop()`` when done."""

    def __init__(self, max_bytes: int = 512 * 1024 * 1024, s3_chunk: int = 0, s3_delay: float = 0.0) -> None:
        self.max_bytes = max_bytes
        self.s3_chunk = s3_chunk  # read the upload body this many bytes at a time...
        self.s3_delay = s3_delay  # ...sleeping this long between reads (visible progress)
        self.lock = threading.Lock()
        self.jobs: dict[str, FakeJob] = {}
        self.builds: list[dict[str, Any]] = []  # every accepted POST /build body, as sent
        self.uploads: dict[str, Upload] = {}
        self.requests: list[dict[str, Any]] = []  # method, path, query of every API/S3 request
        self.refusals: list[tuple[int, dict[str, str]]] = []  # queued answers for the next POST /build
        self.required_key: str | None = None  # set: every API route needs "Authorization: Bearer <it>" (401 otherwise)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-api", daemon=True)
        self._thread.start()
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- what tests use to drive jobs -------------------------------------------------

    def create_job(self, image_name: str = "example/app:1.0", source: str = "dockerfile") -> str:
        job = FakeJob(job_id=str(uuid.uuid4()), image_name=image_name, source=source)
        with self.lock:
            self.jobs[job.job_id] = job
        return job.job_id

    def set_phase(self, job_id: str, phase: str, *, reason: str | None = None, digest: str | None = None) -> None:
        with self.lock:
            job = self.jobs[job_id]
            job.phase = phase
            job.updated_at = _now()
            if phase != "queued" and not job.started_at:
                job.started_at = job.updated_at
            if phase in TERMINAL:
                job.finished_at = job.updated_at
            if reason is not None:
                job.reason = reason
            if digest is not None:
                job.digest = digest

    def add_log(self, job_id: str, text: str) -> None:
        with self.lock:
            self.jobs[job_id].chunks.append(text)

    def refuse_next_build(self, status: int, code: str, message: str) -> None:
        self.refusals.append((status, {"Code": code, "Message": message}))

    def wait_for_build(self, count: int = 1, timeout: float = 10.0) -> str:
        """Waits until ``count`` builds were accepted; returns the id of the last one."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.builds) >= count:
                    return self.builds[count - 1]["_job_id"]
            time.sleep(0.02)
        raise AssertionError(f"the UI did not submit build #{count} within {timeout}s")

    def api_requests(self, path_part: str, method: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if path_part in r["path"] and (method is None or r["method"] == method)]

    # -- HTTP ---------------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        return type("Handler", (_Handler,), {"fake": self})


if __name__ == "__main__":  # `python tests/browser/fake_api.py`: click around by hand
    fake = FakeApi()
    job = fake.create_job("127.0.0.1:5000/demo/app:1.0")
    fake.add_log(job, "Step 1/2 : FROM busybox\n")
    print(f"{fake.url}/#job={job}")
    threading.Event().wait()
