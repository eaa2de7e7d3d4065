"""The local stack's operational output (issue 19): the API logs one JSON line per request and the worker one
EMF metrics document per job, both for a real build over HTTP, with no secret and no job id as a dimension."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.support.emf import dimension_values, emf_problems
from tests.support.http_jobs import credentials, unique_image, wait_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _log_file(local_stack, name: str) -> Path:
    config = local_stack.stack.config
    return config.log_dir / f"{config.name}-{name}.log"


def _json_lines_naming(path: Path, needle: str, timeout: float = 30.0) -> list[dict]:
    """JSON lines of a log file that contain ``needle`` (the stacks of several runs share the file)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [
            json.loads(line)
            for line in path.read_text(errors="replace").splitlines()
            if needle in line and line.startswith("{")
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def test_a_build_over_http_leaves_a_request_line_and_an_emf_document(local_stack):
    image = unique_image(local_stack.registry.host, "operations")
    creds = credentials(local_stack.registry)
    body = {"image_name": image, "dockerfile": f"FROM {local_stack.base_image}\nRUN echo hi\n", **creds}
    answer = requests.post(f"{local_stack.api_url}/api/v1/build", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    job_id = answer.json()["JobIdentifier"]
    assert wait_terminal(local_stack.api_url, job_id)["Status"] == "Finished"

    requests_logged = _json_lines_naming(_log_file(local_stack, "api"), job_id)
    submitted = [r for r in requests_logged if r.get("type") == "request" and r["route"] == "/api/v1/build"]
    assert submitted and submitted[0]["status"] == 202 and submitted[0]["method"] == "POST"
    statuses = [r for r in requests_logged if r.get("route") == "/api/v1/{job_id}/status"]
    assert statuses and all(r["status"] == 200 and r["latency_ms"] >= 0 for r in statuses)

    (document,) = [
        d for d in _json_lines_naming(_log_file(local_stack, "worker1"), f'"JobId":"{job_id}"') if "_aws" in d
    ]
    assert emf_problems(document) == []
    dimensions = dimension_values(document)
    assert dimensions == {"Stack": "local", "Outcome": "finished", "Phase": "done", "ReasonClass": "none"}
    assert document["BuildSeconds"] > 0 and document["ContextBytes"] > 0 and document["JobsEnded"] == 1

    for line in (*requests_logged, document):
        text = json.dumps(line)
        assert creds["password"] not in text
        assert image not in json.dumps(dimension_values(line) if "_aws" in line else line)
