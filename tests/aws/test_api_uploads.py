"""POST /api/v1/uploads: a presigned S3 POST that really accepts an archive, then a build with its upload_id."""

from __future__ import annotations

import base64
import json
import uuid

import requests

from chalicelib.stores import contexts
from tests.aws.api_helpers import answer, post_json, read_object
from tests.support.archives import make_tar
from tests.support.services import stores


def test_upload_answer_shape(client):
    response = client.http.post("/api/v1/uploads")
    assert response.status_code == 200
    body = answer(response)
    assert set(body) == {"UploadId", "Url", "Fields", "MaxBytes", "ExpiresIn"}
    assert str(uuid.UUID(body["UploadId"])) == body["UploadId"]
    settings = stores().settings
    assert body["MaxBytes"] == settings.max_upload_bytes and body["ExpiresIn"] == settings.upload_url_ttl_seconds
    assert body["Fields"]["key"] == f"uploads/{body['UploadId']}"
    policy = json.loads(base64.b64decode(body["Fields"]["policy"]))
    assert ["content-length-range", 1, settings.max_upload_bytes] in policy["conditions"]
    assert response.headers["Access-Control-Allow-Origin"] == "*"


def test_each_upload_gets_its_own_id(client):
    ids = {answer(client.http.post("/api/v1/uploads"))["UploadId"] for _ in range(3)}
    assert len(ids) == 3


def test_upload_accepts_a_json_body_too(client):
    """The UI may post {} (or metadata) with application/json; it is ignored."""
    assert post_json(client, {"filename": "ctx.tar.gz"}, path="/api/v1/uploads").status_code == 200


def test_presigned_post_then_build(client):
    created = answer(client.http.post("/api/v1/uploads"))
    archive = make_tar({"Dockerfile": "FROM busybox\n"})
    # moto intercepts requests' calls to AWS hosts inside mock_aws: this is the browser's upload
    posted = requests.post(created["Url"], data=created["Fields"], files={"file": ("ctx.tar.gz", archive)}, timeout=10)
    assert posted.status_code in (200, 201, 204), posted.text
    assert read_object(f"uploads/{created['UploadId']}") == archive
    response = post_json(client, {"image_name": "user/image", "upload_id": created["UploadId"].upper()})
    assert response.status_code == 202, response.body
    job = stores().jobs.get_job(answer(response)["JobIdentifier"])
    assert job.source == {"context_key": f"uploads/{created['UploadId']}"}


def test_empty_upload_is_not_an_archive(client):
    upload_id = answer(client.http.post("/api/v1/uploads"))["UploadId"]
    stores().contexts.put_bytes(contexts.upload_key(upload_id), b"")
    response = post_json(client, {"image_name": "user/image", "upload_id": upload_id})
    assert response.status_code == 400 and answer(response)["Message"].startswith("upload_id: ")
