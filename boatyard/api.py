"""The HTTP client of boatyard's public API (``/api/v1/...``): one ``requests`` session with retries.

Only idempotent calls are retried on any failure (GET, and ``cancel``, which
answers 409 once done); a build submission is retried only when the connection
could not be made, so a build is never submitted twice.  The API key goes only
to the API: the presigned S3 upload uses a session without it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

import requests
from requests.adapters import HTTPAdapter
from requests_toolbelt.multipart.encoder import (
    MultipartEncoder,
    MultipartEncoderMonitor,
)
from urllib3.util.retry import Retry

from boatyard import __version__
from boatyard.config import Config

USER_AGENT = f"boatyard-cli/{__version__}"
TIMEOUT = (10.0, 120.0)  # connect, read
UPLOAD_TIMEOUT = (10.0, 600.0)
RETRY_STATUSES = (429, 502, 503, 504)


class ApiError(Exception):
    """The API refused or failed a call; ``status`` 0 means it could not be reached."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status else "no answer"
        return f"{self.message} ({self.code}, {where})" if self.code else f"{self.message} ({where})"


class RouteMissing(ApiError):
    """The server has no such route (an older or seed-compatible API)."""


def _retry(methods: Iterable[str]) -> Retry:
    """Retries of idempotent ``methods`` (connection, read and 429/5xx); others only when no connection was made."""
    if not methods:
        return Retry(total=3, connect=3, read=0, status=0, other=0, backoff_factor=0.5)
    return Retry(
        total=5,
        connect=5,
        read=2,
        status=4,
        backoff_factor=0.5,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset(methods),
        respect_retry_after_header=True,
        raise_on_status=False,
    )


def _session(methods: Iterable[str]) -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    adapter = HTTPAdapter(max_retries=_retry(set(methods)))
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _error_from(answer: requests.Response) -> ApiError:
    """An :class:`ApiError` from a non-2xx answer.  Only the API's own ``{Code, Message}`` is shown:
    other bodies (a gateway's) may echo request headers, the API key among them."""
    try:
        body = answer.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("Message"), str):
        return ApiError(answer.status_code, str(body.get("Code", "")), body["Message"])
    # No boatyard error body: a route this server does not have (API Gateway and chalice local answer
    # 403 "Missing Authentication Token"; the seed answered 404 or 405).
    if answer.status_code in (403, 404, 405) and (body is None or (isinstance(body, dict) and "message" in body)):
        return RouteMissing(
            answer.status_code, "", f"the API has no {answer.request.method} {_path(answer.request.url or answer.url)}"
        )
    return ApiError(answer.status_code, "", f"the API answered {answer.reason or 'an error'}")


def _path(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).path


class Client:
    """Calls of boatyard's v1 API against ``config.api``, sending ``config.token`` as a Bearer key."""

    def __init__(self, config: Config) -> None:
        self.base = config.api
        self.session = _session({"GET", "HEAD"})
        self.writes = _session(set())  # submissions: retried only when no connection was made
        self.idempotent_posts = _session({"POST"})
        self.uploads = _session(set())  # to S3: no API key on this one
        if config.token:
            for session in (self.session, self.writes, self.idempotent_posts):
                session.headers["Authorization"] = f"Bearer {config.token}"

    def close(self) -> None:
        """Close the connections."""
        for session in (self.session, self.writes, self.idempotent_posts, self.uploads):
            session.close()

    def _call(self, session: requests.Session, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        url = f"{self.base}{path}"
        try:
            answer = session.request(
                method, url, timeout=kwargs.pop("timeout", TIMEOUT), allow_redirects=False, **kwargs
            )
        except requests.RequestException as exc:
            raise ApiError(0, "", f"cannot reach the API at {self.base}: {type(exc).__name__}") from None
        if not 200 <= answer.status_code < 300:
            raise _error_from(answer)
        try:
            body = answer.json()
        except ValueError:
            raise ApiError(answer.status_code, "", f"the API's answer to {method} {path} is not JSON") from None
        if not isinstance(body, dict):
            raise ApiError(answer.status_code, "", f"the API's answer to {method} {path} is not a JSON object")
        return body

    # --- builds -------------------------------------------------------------------------------------------
    def submit(self, fields: dict[str, Any]) -> str:
        """``POST /api/v1/build`` with a JSON body; the new job id."""
        return _job_id(self._call(self.writes, "POST", "/api/v1/build", json=fields))

    def submit_archive(self, fields: dict[str, Any], archive: BinaryIO, size: int) -> str:
        """``POST /api/v1/build`` as multipart (parts ``Json`` and ``TarFile``), streamed from ``archive``."""
        encoder = MultipartEncoder(
            fields=[
                ("Json", ("build.json", json.dumps(fields), "application/json")),
                ("TarFile", ("context.tar.gz", archive, "application/x-gzip")),
            ]
        )
        return _job_id(
            self._call(
                self.writes,
                "POST",
                "/api/v1/build",
                data=encoder,
                headers={"Content-Type": encoder.content_type},
                timeout=UPLOAD_TIMEOUT,
            )
        )

    def create_upload(self) -> dict[str, Any]:
        """``POST /api/v1/uploads``: a presigned S3 POST (``Url``, ``Fields``, ``MaxBytes``) and an ``UploadId``."""
        body = self._call(self.writes, "POST", "/api/v1/uploads")
        if not isinstance(body.get("Url"), str) or not isinstance(body.get("Fields"), dict) or not body.get("UploadId"):
            raise ApiError(200, "", "the API's upload answer lacks Url, Fields or UploadId")
        return body

    def upload(self, grant: dict[str, Any], archive: BinaryIO, on_bytes: Callable[[int], None]) -> None:
        """Post ``archive`` to the presigned URL (the fields first, then ``file``), streamed from disk;
        ``on_bytes`` is called with the bytes sent so far."""
        fields: list[tuple[str, Any]] = [(str(k), str(v)) for k, v in grant["Fields"].items()]
        fields.append(("file", ("context.tar.gz", archive, "application/gzip")))
        encoder = MultipartEncoder(fields=fields)
        monitor = MultipartEncoderMonitor(encoder, lambda m: on_bytes(m.bytes_read))
        try:
            answer = self.uploads.post(
                grant["Url"],
                data=monitor,
                headers={"Content-Type": monitor.content_type},
                timeout=UPLOAD_TIMEOUT,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise ApiError(0, "", f"the upload to storage failed: {type(exc).__name__}") from None
        if not 200 <= answer.status_code < 300:
            code = _s3_code(answer.text)
            raise ApiError(answer.status_code, code, "the storage service refused the upload")

    # --- jobs ---------------------------------------------------------------------------------------------
    def status(self, job_id: str) -> dict[str, Any]:
        """``GET /api/v1/<job>/status``."""
        return self._call(self.session, "GET", f"/api/v1/{_quote(job_id)}/status")

    def logs(self, job_id: str, since: str | None = None) -> dict[str, Any]:
        """``GET /api/v1/<job>/logs[?since=]``: ``Logs``, ``Next``, ``Complete`` (the last two absent on the seed)."""
        params = {"since": since} if since else None
        return self._call(self.session, "GET", f"/api/v1/{_quote(job_id)}/logs", params=params)

    def cancel(self, job_id: str) -> dict[str, Any]:
        """``POST /api/v1/<job>/cancel``: the job's status, now Cancelled (409 once it has ended)."""
        return self._call(self.idempotent_posts, "POST", f"/api/v1/{_quote(job_id)}/cancel")

    def jobs(self, limit: int | None = None, cursor: str | None = None, state: str | None = None) -> dict[str, Any]:
        """``GET /api/v1/jobs`` (the build history; :class:`RouteMissing` where the server has none)."""
        params = {k: v for k, v in {"limit": limit, "cursor": cursor, "state": state}.items() if v not in (None, "")}
        return self._call(self.session, "GET", "/api/v1/jobs", params=params or None)


def _job_id(body: dict[str, Any]) -> str:
    job_id = body.get("JobIdentifier")
    if not isinstance(job_id, str) or not job_id:
        raise ApiError(200, "", "the API's answer has no JobIdentifier")
    return job_id


def _quote(job_id: str) -> str:
    from urllib.parse import quote

    return quote(job_id, safe="")


def _s3_code(text: str) -> str:
    """The ``<Code>`` of an S3 XML error (only that: the rest may echo the policy)."""
    import re

    found = re.search(r"<Code>([A-Za-z0-9]{1,64})</Code>", text or "")
    return found.group(1) if found else ""
