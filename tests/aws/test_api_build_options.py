"""Build options through POST /api/v1/build (JSON, multipart Json part, upload flow) against moto:
stored on the job item, never in the message, refused with a 400 naming the field."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.build_options import BuildOptions
from chalicelib.stores import contexts
from tests.aws.api_helpers import (
    answer,
    job_item,
    post_json,
    post_multipart,
    queue_bodies,
    stored_text_everywhere,
)
from tests.support.archives import make_tar
from tests.support.services import stores

OPTIONS = {
    "build_args": {"VERSION": "1.2.3", "API_TOKEN": "not-really"},
    "dockerfile_path": "docker/Dockerfile",
    "context_path": "services/api",
    "target": "runtime",
    "no_cache": True,
    "pull": False,
    "labels": {"com.example.team": "api"},
    "tags": ["latest", "1.2"],
    "memory": "256m",
    "cpus": 1.5,
}
EXPECTED = {**OPTIONS, "memory": 256 * 1024**2}


def _stored_options(response) -> dict:
    assert response.status_code == 202, response.body
    job_id = answer(response)["JobIdentifier"]
    assert BuildOptions.from_item(stores().jobs.get_job(job_id).options) == BuildOptions.from_item(EXPECTED)
    return job_item(job_id)


def test_json_options_are_stored_on_the_job_item(client):
    item = _stored_options(post_json(client, {"image_name": "u/i", "tar_url": "https://e.com/a.tgz", **OPTIONS}))
    options = item["options"]["M"]
    assert options["build_args"]["M"]["VERSION"] == {"S": "1.2.3"}
    assert options["memory"] == {"N": str(256 * 1024**2)} and options["cpus"] == {"N": "1.5"}
    assert options["tags"] == {"L": [{"S": "latest"}, {"S": "1.2"}]}
    body = queue_bodies()[0]
    assert "VERSION" not in body and "runtime" not in body  # the message carries the job id, not the options


def test_multipart_json_part_takes_the_same_options(client):
    archive = make_tar({"services/api/docker/Dockerfile": "FROM busybox\n"})
    fields = json.dumps({"image_name": "u/i", **OPTIONS})
    _stored_options(post_multipart(client, {"TarFile": ("c.tgz", archive, "application/x-gzip"), "Json": fields}))


def test_upload_flow_takes_the_same_options(client):
    upload_id = answer(client.http.post("/api/v1/uploads"))["UploadId"]
    stores().contexts.put_bytes(contexts.upload_key(upload_id), make_tar({"Dockerfile": "FROM busybox\n"}))
    _stored_options(post_json(client, {"image_name": "u/i", "upload_id": upload_id, **OPTIONS}))


def test_no_options_store_no_options_field(client):
    response = post_json(client, {"image_name": "u/i", "dockerfile": "FROM busybox\n", "pull": None, "tags": []})
    assert response.status_code == 202, response.body
    assert "options" not in job_item(answer(response)["JobIdentifier"])


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"build_args": {"BAD NAME": "x"}}, "build_args"),
        ({"context_path": "../../etc"}, "context_path"),
        ({"dockerfile_path": "/Dockerfile"}, "dockerfile_path"),
        ({"target": "$(id)"}, "target"),
        ({"no_cache": "yes"}, "no_cache"),
        ({"pull": "no"}, "pull"),
        ({"labels": ["a=b"]}, "labels"),
        ({"tags": ["ok", "not ok"]}, "tags"),
        ({"memory": "64g"}, "memory"),
        ({"cpus": 64}, "cpus"),
    ],
)
@pytest.mark.parametrize("how", ["json", "multipart"])
def test_bad_option_is_400_naming_it_and_nothing_is_stored(client, fields, field, how):
    body = {"image_name": "u/i", **fields}
    if how == "json":
        response = post_json(client, {**body, "tar_url": "https://e.com/a.tgz"})
    else:
        archive = make_tar({"Dockerfile": "FROM busybox\n"})
        response = post_multipart(
            client, {"TarFile": ("c.tgz", archive, "application/x-gzip"), "Json": json.dumps(body)}
        )
    assert response.status_code == 400, response.body
    assert answer(response)["Message"].startswith(f"{field}: ")
    assert stored_text_everywhere() == []


def test_tag_digests_appear_in_the_status(client, job_id):
    from chalicelib.domain.jobs import Phase

    worker = "w-1"
    stores().jobs.claim(job_id, worker, 60, 3)
    for current, target in ((Phase.FETCHING, Phase.BUILDING), (Phase.BUILDING, Phase.PUSHING)):
        stores().jobs.transition(job_id, worker, current, target)
    stores().jobs.transition(
        job_id,
        worker,
        Phase.PUSHING,
        Phase.FINISHED,
        image_digest="sha256:" + "1" * 64,
        tag_digests={"latest": "sha256:" + "1" * 64},
    )
    status = answer(client.http.get(f"/api/v1/{job_id}/status"))
    assert status["TagDigests"] == {"latest": "sha256:" + "1" * 64}


def test_registry_auths_and_github_token_travel_sealed_only(client, test_password, caplog):
    import logging

    from chalicelib.stores import queue
    from tests.aws.api_helpers import assert_no_leak

    caplog.set_level(logging.DEBUG)
    token = "ghp_" + test_password.replace("!", "x")
    body = {
        "image_name": "u/i",
        "github_username": "octo",
        "github_reponame": "private",
        "github_tag": "main",
        "github_token": token,
        "registry_auths": {"ghcr.io": {"username": "base-user", "password": test_password}},
    }
    response = post_json(client, body)
    assert response.status_code == 202, response.body
    job_id = answer(response)["JobIdentifier"]
    message = queue.JobMessage.from_body(queue_bodies()[0])
    credentials = stores().sealing.unseal(job_id, message.sealed_credentials)
    assert credentials.source_token == token
    assert credentials.registry_auths == {"ghcr.io": {"username": "base-user", "password": test_password}}
    for secret in (token, test_password):
        assert_no_leak(secret, response.body, caplog.text, client.http.get(f"/api/v1/{job_id}/status").body)
