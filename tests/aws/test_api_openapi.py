"""Real answers (through chalice.test.Client on moto) match the response schemas of openapi.yaml."""

from __future__ import annotations

import uuid

import pytest
import yaml

from chalicelib.domain.jobs import Phase
from tests.aws.api_helpers import answer, post_json
from tests.support.openapi import DOC_PATH, check_answer, schema_validator
from tests.support.services import stores


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load(DOC_PATH.read_text())


def test_answers_match_their_schemas(client, doc):
    build, status, logs = "/api/v1/build", "/api/v1/{job_id}/status", "/api/v1/{job_id}/logs"
    accepted = post_json(client, {"image_name": "u/i", "dockerfile": "FROM x"})
    check_answer(doc, build, "post", accepted)
    job_id = answer(accepted)["JobIdentifier"]
    check_answer(doc, build, "post", post_json(client, {"image_name": "u/i"}))  # 400
    check_answer(doc, build, "post", client.http.post(build, headers={"Content-Type": "text/plain"}, body=b"x"))  # 415
    check_answer(doc, build, "post", post_json(client, {"image_name": "u/i", "dockerfile": "#" * 300000}))  # 413
    check_answer(doc, "/api/v1/uploads", "post", client.http.post("/api/v1/uploads"))
    check_answer(doc, status, "get", client.http.get(f"/api/v1/{job_id}/status"))
    check_answer(doc, status, "get", client.http.get(f"/api/v1/{uuid.uuid4()}/status"))  # 404
    writer = stores().logs.writer(job_id)
    writer.write("Step 1/1 : FROM x\n")
    writer.flush()
    check_answer(doc, logs, "get", client.http.get(f"/api/v1/{job_id}/logs"))
    check_answer(doc, logs, "get", client.http.get(f"/api/v1/{job_id}/logs?since=1"))
    check_answer(doc, logs, "get", client.http.get(f"/api/v1/{job_id}/logs?since=-1"))  # 400
    check_answer(doc, logs, "get", client.http.get("/api/v1/not-a-job/logs"))  # 404
    stores().jobs.claim(job_id, "w", 60, 3)
    stores().jobs.transition(job_id, "w", Phase.FETCHING, Phase.BUILDING)
    stores().jobs.transition(job_id, "w", Phase.BUILDING, Phase.PUSHING)
    stores().jobs.transition(job_id, "w", Phase.PUSHING, Phase.FINISHED, image_digest="sha256:" + "b" * 64)
    check_answer(doc, status, "get", client.http.get(f"/api/v1/{job_id}/status"))
    failed = answer(post_json(client, {"image_name": "u/i", "dockerfile": "FROM x"}))["JobIdentifier"]
    stores().jobs.fail(failed, "it broke")
    check_answer(doc, status, "get", client.http.get(f"/api/v1/{failed}/status"))


def test_the_status_schema_refuses_a_wrong_word(doc):
    validator = schema_validator(doc, "JobStatus")
    good = {
        "Status": "Failed: x",
        "Phase": "failed",
        "JobIdentifier": str(uuid.uuid4()),
        "ImageName": "u/i",
        "Source": "github",
        "CreatedAt": "2026-01-01T00:00:00.000Z",
        "UpdatedAt": "2026-01-01T00:00:00.000Z",
        "Attempt": 1,
    }
    assert validator.is_valid(good)
    assert not validator.is_valid({**good, "Status": "Done"})
    assert not validator.is_valid({**good, "Phase": "waiting"})
