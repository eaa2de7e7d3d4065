"""One structured log line per API request (a Chalice HTTP middleware), and the API's logging set-up.

Each request writes one JSON object on stdout, which Lambda sends to the
API's log group (CloudWatch Logs Insights reads the fields)::

    {"type": "request", "method": "GET", "route": "/api/v1/{job_id}/status", "status": 200,
     "latency_ms": 12.3, "job_id": "…", "request_id": "…"}

``route`` is the route template, never the raw path; ``job_id`` is the path's
job id (only if it is a well-formed id) or the one a build submission
returned.  Headers, query strings and bodies are never logged, so no
registry password, upload policy or signature can reach the log.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_METHOD = re.compile(r"^[A-Z]{1,10}$")


class _StdoutHandler(logging.Handler):
    """Writes each record's message as one line to the current ``sys.stdout`` (Lambda's log stream)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(record.getMessage() + "\n")
            sys.stdout.flush()
        except Exception:  # noqa: BLE001 - logging must never fail a request
            self.handleError(record)


def configure_logging() -> None:
    """The API's logging, called once by app.py (in the Lambda as in the local stack).

    Request lines go at INFO to stdout as bare JSON, whatever level the Lambda runtime gives the root
    logger.  Every other ``chalicelib`` logger (named after its module) logs at INFO and up through the
    root logger's handler: in the Lambda the runtime's, which sends it to the API's log group; without
    one (tests, chalice local) Python's last-resort handler shows warnings and errors only.
    """
    if not any(isinstance(h, _StdoutHandler) for h in log.handlers):
        log.addHandler(_StdoutHandler())
    log.setLevel(logging.INFO)
    log.propagate = False  # the runtime's root handler would prefix the JSON with text
    logging.getLogger("chalicelib").setLevel(logging.INFO)


def _safe_job_id(value: Any) -> str | None:
    return value if isinstance(value, str) and _JOB_ID.match(value) else None


def request_entry(request: Any, status: int, seconds: float, body: Any = None) -> dict[str, Any]:
    """The log entry of one request (see the module doc)."""
    context = getattr(request, "context", None) or {}
    params = getattr(request, "uri_params", None) or {}
    method = str(getattr(request, "method", "") or "")
    entry: dict[str, Any] = {
        "type": "request",
        "method": method if _METHOD.match(method) else "other",
        "route": str(context.get("resourcePath") or "unknown")[:200],
        "status": int(status),
        "latency_ms": round(seconds * 1000, 1),
    }
    job_id = _safe_job_id(params.get("job_id"))
    if job_id is None and isinstance(body, dict):
        job_id = _safe_job_id(body.get("JobIdentifier"))
    if job_id:
        entry["job_id"] = job_id
    request_id = getattr(getattr(request, "lambda_context", None), "aws_request_id", None) or context.get("requestId")
    if isinstance(request_id, str) and len(request_id) <= 100:
        entry["request_id"] = request_id
    return entry


def log_requests(request: Any, get_response: Callable[[Any], Any]) -> Any:
    """Chalice HTTP middleware: answer, then log one line (a crash is logged as 500 and re-raised)."""
    started = time.perf_counter()
    status, body = 500, None
    try:
        response = get_response(request)
        status, body = response.status_code, response.body
        return response
    finally:
        try:
            log.info(
                json.dumps(request_entry(request, status, time.perf_counter() - started, body), separators=(",", ":"))
            )
        except Exception:  # noqa: BLE001 - logging must never fail a request
            pass
