"""POST /api/v1/build for every source, against moto: answers, stored job, S3 context, SQS message, no leaks."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from chalicelib.domain import archive_format
from chalicelib.domain.jobs import Phase, SourceKind
from chalicelib.stores import contexts, queue, sealing
from tests.aws.api_helpers import answer, assert_no_leak, post_json, post_multipart, queue_bodies, read_object
from tests.support.archives import make_tar, tar_members
from tests.support.services import stores

IMAGE = "registry.example.com:5000/team/image:1.0"


@pytest.fixture
def creds(test_password):
    return {"username": "builder", "password": test_password, "email": "b@example.com"}


def _job_id(response) -> str:
    assert response.status_code == 202, response.body
    body = answer(response)
    assert list(body) == ["JobIdentifier"]  # the seed's exact shape
    job_id = body["JobIdentifier"]
    assert uuid.UUID(job_id).version == 4 and str(uuid.UUID(job_id)) == job_id
    return job_id


def _only_message(job_id: str) -> queue.JobMessage:
    messages = [queue.JobMessage.from_body(b) for b in queue_bodies()]
    assert [m.job_id for m in messages] == [job_id]
    assert messages[0].attempt == 0
    return messages[0]


def test_dockerfile_becomes_a_tar_gz_context(client, creds, test_password, caplog):
    caplog.set_level(logging.DEBUG)
    dockerfile = "FROM busybox\nCMD echo hello\n"
    response = post_json(client, {"image_name": IMAGE, "dockerfile": dockerfile, **creds})
    job_id = _job_id(response)
    job = stores().jobs.get_job(job_id)
    assert job.source_kind == SourceKind.DOCKERFILE and job.phase == Phase.QUEUED
    assert job.source == {"context_key": f"contexts/{job_id}.tar.gz"}
    assert job.image_name == IMAGE
    stored = read_object(job.source["context_key"])
    assert stored[:2] == b"\x1f\x8b"
    assert tar_members(stored) == {"Dockerfile": dockerfile.encode()}
    message = _only_message(job_id)
    assert stores().sealing.unseal(job_id, message.sealed_credentials) == sealing.Credentials(**creds)
    assert_no_leak(test_password, response.body, caplog.text)


def test_tar_url_is_stored_as_given(client, creds, test_password):
    url = "https://archives.example.com/path/context.tar.gz?x=1"
    job_id = _job_id(post_json(client, {"image_name": "user/image", "tar_url": url, **creds}))
    job = stores().jobs.get_job(job_id)
    assert (job.source_kind, job.source) == (SourceKind.TAR_URL, {"tar_url": url})
    assert stores().sealing.unseal(job_id, _only_message(job_id).sealed_credentials).password == test_password
    assert_no_leak(test_password)


def test_github_source(client, creds, test_password):
    fields = {"github_username": "octo-user", "github_reponame": "my.repo_x", "github_tag": "v1.2.0"}
    job_id = _job_id(post_json(client, {"image_name": "user/image:v1", **fields, **creds}))
    job = stores().jobs.get_job(job_id)
    assert (job.source_kind, job.source) == (SourceKind.GITHUB, fields)
    assert job.status_body()["Status"] == "Building"
    assert_no_leak(test_password)


@pytest.mark.parametrize("compress", [True, False], ids=["tar.gz", "tar"])
def test_multipart_tarfile_goes_to_s3_as_is(client, creds, test_password, compress, caplog):
    caplog.set_level(logging.DEBUG)
    archive = make_tar({"Dockerfile": "FROM busybox\n", "note": "hi\n"}, gz=compress)
    response = post_multipart(
        client,
        {
            "TarFile": ("context.tar.gz", archive, "application/x-gzip"),
            "Json": (None, json.dumps({"image_name": "localhost:5000/me/img", **creds}), "application/json"),
        },
    )
    job_id = _job_id(response)
    job = stores().jobs.get_job(job_id)
    assert (job.source_kind, job.source) == (SourceKind.UPLOAD, {"context_key": f"contexts/{job_id}.tar.gz"})
    assert read_object(job.source["context_key"]) == archive  # byte for byte
    assert stores().sealing.unseal(job_id, _only_message(job_id).sealed_credentials).username == "builder"
    assert_no_leak(test_password, response.body, caplog.text)


def test_multipart_json_part_as_plain_field(client):
    """requests/curl send the Json part without a filename or content type."""
    archive = make_tar({"Dockerfile": "FROM busybox\n"})
    response = post_multipart(client, {"Json": json.dumps({"image_name": "a/b"}), "TarFile": ("c.tgz", archive)})
    assert stores().jobs.get_job(_job_id(response)).source_kind == SourceKind.UPLOAD


def test_upload_id_source(client, creds, test_password):
    created = answer(client.http.post("/api/v1/uploads"))
    upload_id = created["UploadId"]
    stores().contexts.put_bytes(contexts.upload_key(upload_id), make_tar({"Dockerfile": "FROM busybox\n"}, gz=False))
    job_id = _job_id(post_json(client, {"image_name": "user/image", "upload_id": upload_id, **creds}))
    job = stores().jobs.get_job(job_id)
    assert (job.source_kind, job.source) == (SourceKind.UPLOAD, {"context_key": f"uploads/{upload_id}"})
    assert_no_leak(test_password)


def test_without_credentials_nothing_is_sealed(client):
    job_id = _job_id(post_json(client, {"image_name": "user/image", "dockerfile": "FROM busybox"}))
    message = _only_message(job_id)
    assert message.sealed_credentials == ""
    assert stores().sealing.unseal(job_id, message.sealed_credentials) == sealing.Credentials()


def test_seed_blank_fields_and_unknown_fields_are_ignored(client):
    """The seed's page sent every tab's fields, blank ones included, and clients may send extras."""
    body = {
        "image_name": "user/image",
        "dockerfile": "",
        "tar_url": "https://example.com/a.tar",
        "github_username": "",
        "github_reponame": None,
        "github_tag": "",
        "email": "",
        "something_new": {"nested": True},
    }
    job_id = _job_id(post_json(client, body))
    assert stores().jobs.get_job(job_id).source == {"tar_url": "https://example.com/a.tar"}


def test_missing_content_type_is_read_as_json(client):
    response = client.http.post("/api/v1/build", body=json.dumps({"image_name": "u/i", "dockerfile": "FROM x"}))
    _job_id(response)


def test_answers_carry_cors_headers(client):
    response = post_json(client, {"image_name": "u/i", "dockerfile": "FROM x"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Content-Type" in response.headers["Access-Control-Allow-Headers"]
    error = post_json(client, {"dockerfile": "FROM x"})
    assert error.status_code == 400 and error.headers["Access-Control-Allow-Origin"] == "*"


def test_enqueue_failure_fails_the_job_and_answers_503(client, creds, test_password, monkeypatch, caplog):
    from botocore.exceptions import ClientError

    def broken_send(message):
        raise ClientError(
            {"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue", "Message": "gone"}}, "SendMessage"
        )

    monkeypatch.setattr(stores().queue, "send", broken_send)
    response = post_json(client, {"image_name": "u/i", "dockerfile": "FROM x", **creds})
    assert response.status_code == 503
    assert answer(response)["Code"] == "ServiceUnavailable"
    jobs = [j for j in _all_jobs()]
    assert len(jobs) == 1 and jobs[0].phase == Phase.FAILED
    assert "could not be queued" in jobs[0].status_body()["Status"]
    assert_no_leak(test_password, response.body, caplog.text)


def test_unexpected_error_is_a_bare_500(client, monkeypatch, caplog):
    def boom(*args, **kwargs):
        raise RuntimeError("secret internals /var/task/x.py")

    monkeypatch.setattr(archive_format, "dockerfile_context", boom)
    response = post_json(client, {"image_name": "u/i", "dockerfile": "FROM x"})
    assert response.status_code == 500
    assert answer(response) == {
        "Code": "InternalError",
        "Message": "The server failed to handle the request; it has been logged.",
    }
    assert b"secret internals" not in response.body and b"Traceback" not in response.body
    assert "secret internals" in caplog.text  # logged server-side


def _all_jobs():
    from chalicelib.domain.jobs import Job
    from chalicelib.stores import dynamo

    items = stores().clients.client("dynamodb").scan(TableName=stores().settings.table_name)["Items"]
    return [Job.from_item(dynamo.deserialize(i)) for i in items if i["sk"]["S"] == "job"]


@pytest.mark.parametrize("where", ["dynamodb", "s3-inside-tar.gz", "sqs"])
def test_the_leak_scan_finds_a_planted_secret(aws_env, test_password, where):
    """The scan the tests above rely on must be able to fail."""

    if where == "dynamodb":
        stores().clients.client("dynamodb").put_item(
            TableName=stores().settings.table_name,
            Item={"pk": {"S": "x"}, "sk": {"S": "job"}, "n": {"M": {"p": {"S": test_password}}}},
        )
    elif where == "s3-inside-tar.gz":
        stores().contexts.put_bytes("contexts/x.tar.gz", make_tar({"Dockerfile": f"ENV P={test_password}\n" * 50}))
    else:
        stores().queue.send(queue.JobMessage("x", 0, test_password))
    with pytest.raises(AssertionError, match="leaked"):
        assert_no_leak(test_password)
