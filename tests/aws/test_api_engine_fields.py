"""The engine, secrets and ssh fields of POST /api/v1/build: validated against the deployment, sealed, never stored."""

from __future__ import annotations

import json

import pytest

from chalicelib.stores import queue
from tests.aws.api_helpers import answer, assert_no_leak, post_json, post_multipart, queue_bodies
from tests.support.archives import make_tar
from tests.support.services import reconfigure, stores

IMAGE = "registry.example.com/team/image:1"
DOCKERFILE = "FROM busybox\nRUN --mount=type=secret,id=token cat /run/secrets/token\n"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ-canary-key\n-----END OPENSSH PRIVATE KEY-----\n"


def _error(response, field: str, *words: str) -> str:
    assert response.status_code == 400, response.body
    body = answer(response)
    assert body["Code"] == "InvalidRequest" and field in body["Message"], body
    for word in words:
        assert word in body["Message"], body["Message"]
    return body["Message"]


@pytest.fixture
def classic_only(monkeypatch):
    monkeypatch.setenv("BOATYARD_ALLOWED_ENGINES", "classic")
    reconfigure()
    yield
    reconfigure()


def test_secrets_and_key_are_sealed_and_never_stored(client, test_password):
    secret = "tok-Secret-canary-5521"
    body = {
        "image_name": IMAGE,
        "dockerfile": DOCKERFILE,
        "engine": "buildkit",
        "secrets": {"token": secret},
        "ssh": KEY,
        "username": "u",
        "password": test_password,
    }
    response = post_json(client, body)
    assert response.status_code == 202, response.body
    job_id = answer(response)["JobIdentifier"]
    job = stores().jobs.get_job(job_id)
    assert job.engine == "buildkit" and stores().jobs.get_job(job_id).status_body()["Engine"] == "buildkit"
    [message] = [queue.JobMessage.from_body(b) for b in queue_bodies()]
    unsealed = stores().sealing.unseal(job_id, message.sealed_credentials)
    assert unsealed.secrets == {"token": secret} and unsealed.ssh == KEY and unsealed.password == test_password
    assert secret not in repr(unsealed) and "canary-key" not in repr(unsealed)
    assert_no_leak(secret, response.body)
    assert_no_leak("canary-key", response.body)


def test_secrets_alone_are_sealed(client):
    response = post_json(client, {"image_name": IMAGE, "dockerfile": DOCKERFILE, "secrets": {"token": "only-this"}})
    job_id = answer(response)["JobIdentifier"]
    [message] = [queue.JobMessage.from_body(b) for b in queue_bodies()]
    assert message.sealed_credentials, "secrets travel sealed even without registry credentials"
    assert stores().sealing.unseal(job_id, message.sealed_credentials).secrets == {"token": "only-this"}
    assert stores().jobs.get_job(job_id).engine == ""


def test_engine_field_is_checked_against_the_deployment(client, classic_only):
    message = _error(
        post_json(client, {"image_name": IMAGE, "dockerfile": "FROM busybox\n", "engine": "buildkit"}),
        "engine",
        "classic",
    )
    assert "buildkit'" in message
    assert (
        post_json(client, {"image_name": IMAGE, "dockerfile": "FROM busybox\n", "engine": "classic"}).status_code == 202
    )
    _error(
        post_json(client, {"image_name": IMAGE, "dockerfile": DOCKERFILE, "secrets": {"token": "x"}}),
        "secrets",
        "does not allow",
    )
    _error(post_json(client, {"image_name": IMAGE, "dockerfile": DOCKERFILE, "ssh": KEY}), "ssh", "does not allow")
    _error(
        post_json(client, {"image_name": IMAGE, "dockerfile": DOCKERFILE, "cache_from": [IMAGE]}),
        "cache_from",
        "does not allow",
    )


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"engine": "kaniko"}, "engine"),
        ({"engine": 7}, "engine"),
        ({"engine": ["buildkit"]}, "engine"),
        ({"secrets": "token=abc"}, "secrets"),
        ({"secrets": ["abc"]}, "secrets"),
        ({"secrets": {"../etc/passwd": "x"}}, "secrets"),
        ({"secrets": {"id,src=/etc/shadow": "x"}}, "secrets"),
        ({"secrets": {"-flag": "x"}}, "secrets"),
        ({"secrets": {"a" * 65: "x"}}, "secrets"),
        ({"secrets": {"token": 5}}, "secrets"),
        ({"secrets": {"token": ""}}, "secrets"),
        ({"secrets": {"token": "a\x00b"}}, "secrets"),
        ({"secrets": {f"s{i}": "x" for i in range(17)}}, "secrets"),
        ({"secrets": {"big": "x" * 3073}}, "secrets"),
        ({"secrets": {"a": "x" * 3000, "b": "y" * 3000}}, "secrets"),  # too long to seal together
        ({"ssh": "not a key"}, "ssh"),
        ({"ssh": {"key": KEY}}, "ssh"),
        ({"ssh": KEY.replace("\nb3B", "\n\x01b3B")}, "ssh"),
        ({"ssh": KEY + "x" * 3500}, "ssh"),
        ({"engine": "classic", "secrets": {"token": "x"}}, "secrets"),
        ({"engine": "classic", "ssh": KEY}, "ssh"),
        ({"engine": "classic", "cache_from": ["u/app:cache"]}, "cache_from"),
    ],
)
def test_bad_engine_fields_are_400_naming_the_field(client, extra, field):
    response = post_json(client, {"image_name": IMAGE, "dockerfile": DOCKERFILE, **extra})
    message = _error(response, field)
    for value in (extra.get("secrets") or {}).values() if isinstance(extra.get("secrets"), dict) else ():
        if isinstance(value, str) and len(value) > 3:
            assert value[:40] not in message, "secret values are never echoed"
    assert queue_bodies() == [], "nothing was queued"


def test_multipart_json_part_carries_the_engine_fields(client):
    fields = {
        "TarFile": ("ctx.tar.gz", make_tar({"Dockerfile": DOCKERFILE})),
        "Json": json.dumps({"image_name": IMAGE, "engine": "buildkit", "secrets": {"token": "mp-secret"}}),
    }
    response = post_multipart(client, fields)
    assert response.status_code == 202, response.body
    job_id = answer(response)["JobIdentifier"]
    assert stores().jobs.get_job(job_id).engine == "buildkit"
    [message] = [queue.JobMessage.from_body(b) for b in queue_bodies()]
    assert stores().sealing.unseal(job_id, message.sealed_credentials).secrets == {"token": "mp-secret"}
