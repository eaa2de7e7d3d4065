"""chalicelib/api/request_log.py: one JSON line per API request, with the route, status, latency and job id, never a secret."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from chalicelib.api import request_log
from tests.aws.api_helpers import answer, post_json


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.entries: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(record.getMessage()))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    request_log.log.addHandler(handler)
    yield handler
    request_log.log.removeHandler(handler)


def test_each_request_logs_route_status_latency_and_job_id(client, lines, test_password):
    job_id = answer(
        post_json(
            client,
            {"image_name": "user/image:1", "dockerfile": "FROM busybox\n", "username": "u", "password": test_password},
        )
    )["JobIdentifier"]
    client.http.get(f"/api/v1/{job_id}/status")
    client.http.get("/api/v1/not-a-job-id/status")
    client.http.get(f"/api/v1/{job_id}/logs?since=abc")
    submitted, status, bad, logs = lines.entries
    assert submitted["route"] == "/api/v1/build" and submitted["method"] == "POST"
    assert submitted["status"] == 202 and submitted["job_id"] == job_id
    assert status == {**status, "type": "request", "route": "/api/v1/{job_id}/status", "status": 200, "job_id": job_id}
    assert status["latency_ms"] >= 0
    assert bad["status"] == 404 and "job_id" not in bad  # a malformed id is not logged
    assert logs["route"] == "/api/v1/{job_id}/logs" and "since" not in json.dumps(logs)
    text = json.dumps(lines.entries)
    assert test_password not in text and '"u"' not in text


def test_upload_policies_and_signatures_are_never_logged(client, lines):
    body = answer(client.http.post("/api/v1/uploads", headers={"Content-Type": "application/json"}, body=b"{}"))
    (entry,) = lines.entries
    text = json.dumps(entry)
    for value in body.get("Fields", body.get("fields", {})).values():
        assert str(value) not in text
    assert set(entry) <= {"type", "method", "route", "status", "latency_ms", "job_id", "request_id"}


def test_hostile_job_ids_do_not_reach_the_log():
    class Request:
        method = "GET\nforged"
        context = {"resourcePath": "/api/v1/{job_id}/status"}
        uri_params = {"job_id": 'x\n{"type": "forged"}'}

    entry = request_log.request_entry(Request(), 400, 0.01, body={"JobIdentifier": "../../etc"})
    assert entry["method"] == "other" and "job_id" not in entry


def test_logging_is_configured_for_the_lambda_once(capsys):
    request_log.configure_logging()
    request_log.configure_logging()
    assert request_log.log.level == logging.INFO and request_log.log.propagate is False
    request_log.log.info('{"type":"request"}')
    assert capsys.readouterr().out.count('{"type":"request"}') == 1


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_api_logs_reach_the_lambda_runtime_handler_at_info(client, test_password):
    """The Lambda runtime's root logger has a handler and level WARNING: the API's INFO lines
    (a submission's ``job … submitted``) must still get through, under the module's name, without the password."""
    root = logging.getLogger()
    runtime, level = Records(), root.level
    root.addHandler(runtime)
    root.setLevel(logging.WARNING)
    try:
        request_log.configure_logging()  # what app.py does at import
        response = post_json(
            client, {"image_name": "u/app:1", "dockerfile": "FROM x\n", "username": "u", "password": test_password}
        )
    finally:
        root.removeHandler(runtime)
        root.setLevel(level)
    assert response.status_code == 202
    job_id = answer(response)["JobIdentifier"]
    submitted = [r for r in runtime.records if r.name == "chalicelib.api.submit" and r.levelno == logging.INFO]
    assert len(submitted) == 1 and job_id in submitted[0].getMessage()
    assert all(test_password not in r.getMessage() for r in runtime.records)
