"""Issue 12 on moto through chalice.test.Client: API keys, the authorizer, ownership, quotas, history."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib.domain.errors import TransitionConflict, Unauthorized
from chalicelib.domain.jobs import Phase
from chalicelib.stores import contexts
from tests.aws.api_helpers import answer
from tests.support.archives import make_tar
from tests.support.probes import live_count
from tests.support.services import reconfigure, stores

BUILD = {"image_name": "user/image:1", "dockerfile": "FROM busybox\n"}


def _h(token: str | None, **extra: str) -> dict[str, str]:
    headers = {"Content-Type": "application/json", **extra}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def submit(client, token, body=None):
    return client.http.post("/api/v1/build", headers=_h(token), body=json.dumps(body or BUILD))


def submit_ok(client, token, body=None) -> str:
    got = submit(client, token, body)
    assert got.status_code == 202, got.body
    return answer(got)["JobIdentifier"]


# --- the authorizer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Bearer by_0123456789abcdef_" + "A" * 43,
        "Basic dXNlcjpwYXNz",
        "by_not-a-key",
        "Bearer " + "x" * 5000,
    ],
)
def test_requests_without_a_valid_key_get_401_code_and_message(keys_client, owners, header):
    headers = {} if header is None else {"Authorization": header}
    for method, path in (
        ("GET", "/api/v1/jobs"),
        ("POST", "/api/v1/build"),
        ("POST", "/api/v1/uploads"),
        ("GET", "/api/v1/00000000-0000-4000-8000-000000000000/status"),
    ):
        got = keys_client.http.request(method, path, headers=headers)
        assert got.status_code == 401, (path, got.body)
        body = answer(got)
        assert body["Code"] == "Unauthorized" and body["Message"]
        assert "by_" not in got.body.decode()


def test_a_revoked_key_stops_working(keys_client, owners):
    record, token = stores().apikeys.create_key("team-c", "laptop")
    assert keys_client.http.get("/api/v1/jobs", headers=_h(token)).status_code == 200
    stores().apikeys.revoke_key(record.key_id)
    # the verdict is cached for auth_cache_seconds (1 s here), as API Gateway caches it deployed
    revoked_at = time.monotonic()
    while keys_client.http.get("/api/v1/jobs", headers=_h(token)).status_code != 401:
        assert time.monotonic() - revoked_at < 1 + 1.5, "the revoked key still works after the authorizer TTL"
        time.sleep(0.1)


def test_a_key_with_the_right_id_but_a_wrong_secret_is_refused(keys_client, owners):
    token = owners["a"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert keys_client.http.get("/api/v1/jobs", headers=_h(forged)).status_code == 401


def test_only_accepted_keys_are_cached_and_never_in_lambda(keys_client, owners, monkeypatch):
    from chalicelib.api import authn

    authenticator = authn.Authenticator(stores().apikeys, authn.cache_seconds(stores().settings))
    assert authenticator.authorize(f"Bearer {owners['a']}").owner == "team-a"
    assert len(authenticator._cache) == 1 and owners["a"] not in repr(authenticator._cache)  # keyed by the hash
    with pytest.raises(authn.AuthorizerRejected):
        authenticator.authorize("Bearer by_0123456789abcdef_" + "A" * 43)
    assert len(authenticator._cache) == 1
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "boatyard-api-authorizer")
    in_lambda = authn.Authenticator(stores().apikeys, authn.cache_seconds(stores().settings))
    assert in_lambda.authorize(f"Bearer {owners['a']}").owner == "team-a"
    assert in_lambda._cache == {}  # API Gateway caches deployed


def test_key_store_keeps_only_a_hash_and_records_use(keys_client, owners):
    record, token = stores().apikeys.create_key("team-d", "ci")
    assert token.startswith("by_") and len(token.split("_", 2)[2]) == 43  # 32 random bytes
    keys_client.http.get("/api/v1/jobs", headers=_h(token))
    [listed] = [k for k in stores().apikeys.list_keys() if k.key_id == record.key_id]
    assert listed.state == "active" and listed.last_used_at and listed.owner == "team-d"
    dump = json.dumps(stores().clients.client("dynamodb").scan(TableName=stores().settings.table_name)["Items"])
    for token_ in (token, *owners.values()):
        assert token_ not in dump and token_.split("_", 2)[2] not in dump


@pytest.mark.parametrize("owner", ["", "Team-A", "a" * 64, "-x", "a/b", "a b"])
def test_bad_owner_names_are_refused(aws_env, owner):
    from chalicelib.domain.errors import InvalidRequest

    with pytest.raises(InvalidRequest):
        stores().apikeys.create_key(owner)


def test_none_mode_is_open_and_everything_is_anonymous(client):
    job_id = answer(client.http.post("/api/v1/build", headers=_h(None), body=json.dumps(BUILD)))["JobIdentifier"]
    assert stores().jobs.get_job(job_id).owner == "anonymous"
    listed = answer(client.http.get("/api/v1/jobs"))["Jobs"]
    assert [j["JobIdentifier"] for j in listed] == [job_id]


# --- ownership ----------------------------------------------------------------------------------


def test_another_owners_job_is_404_exactly_like_an_unknown_one(keys_client, owners):
    job_id = submit_ok(keys_client, owners["a"])
    assert stores().jobs.get_job(job_id).owner == "team-a"
    unknown = "00000000-0000-4000-8000-000000000000"
    for method, suffix in (("GET", "status"), ("GET", "logs"), ("POST", "cancel")):
        mine = keys_client.http.request(method, f"/api/v1/{job_id}/{suffix}", headers=_h(owners["a"]))
        theirs = keys_client.http.request(method, f"/api/v1/{job_id}/{suffix}", headers=_h(owners["b"]))
        missing = keys_client.http.request(method, f"/api/v1/{unknown}/{suffix}", headers=_h(owners["b"]))
        assert mine.status_code == 200, (suffix, mine.body)
        assert theirs.status_code == missing.status_code == 404
        assert answer(theirs)["Message"].replace(job_id, "ID") == answer(missing)["Message"].replace(unknown, "ID")
    assert stores().jobs.get_job(job_id).phase == Phase.CANCELLED  # cancelled by its owner, not by b


def test_admin_key_sees_every_owner(keys_client, owners):
    job_id = submit_ok(keys_client, owners["a"])
    assert keys_client.http.get(f"/api/v1/{job_id}/status", headers=_h(owners["admin"])).status_code == 200
    listed = answer(keys_client.http.get("/api/v1/jobs?owner=team-a", headers=_h(owners["admin"])))
    assert [j["JobIdentifier"] for j in listed["Jobs"]] == [job_id]
    refused = keys_client.http.get("/api/v1/jobs?owner=team-a", headers=_h(owners["b"]))
    assert refused.status_code == 400 and "owner" in answer(refused)["Message"]


def test_upload_ids_are_bound_to_their_owner(keys_client, owners):
    created = answer(keys_client.http.post("/api/v1/uploads", headers=_h(owners["a"])))
    upload_id = created["UploadId"]
    stores().contexts.put_bytes(contexts.upload_key(upload_id), make_tar({"Dockerfile": "FROM busybox\n"}))
    body = {"image_name": "user/image:1", "upload_id": upload_id}
    theirs = submit(keys_client, owners["b"], body)
    assert theirs.status_code == 400
    assert answer(theirs)["Message"] == "upload_id: no upload with that id; upload the archive first"
    assert submit(keys_client, owners["a"], body).status_code == 202


# --- quotas -------------------------------------------------------------------------------------


def test_live_job_quota_429_then_a_slot_frees_when_a_job_ends(keys_client, owners):
    jobs = [submit_ok(keys_client, owners["a"]) for _ in range(5)]
    over = submit(keys_client, owners["a"])
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert answer(over)["Code"] == "TooManyRequests"
    assert live_count("team-a") == 5
    assert submit(keys_client, owners["b"]).status_code == 202  # another owner has its own slots
    assert keys_client.http.post(f"/api/v1/{jobs[0]}/cancel", headers=_h(owners["a"])).status_code == 200
    assert live_count("team-a") == 4
    assert submit(keys_client, owners["a"]).status_code == 202
    assert submit(keys_client, owners["a"]).status_code == 429


def test_a_refused_submission_creates_nothing(keys_client, owners):
    for _ in range(5):
        submit_ok(keys_client, owners["a"])
    before = stores().clients.client("dynamodb").scan(TableName=stores().settings.table_name, Select="COUNT")["Count"]
    objects = stores().clients.client("s3").list_objects_v2(Bucket=stores().settings.bucket_name).get("KeyCount", 0)
    messages = stores().queue.attributes()["ApproximateNumberOfMessages"]
    assert submit(keys_client, owners["a"]).status_code == 429
    assert (
        stores().clients.client("dynamodb").scan(TableName=stores().settings.table_name, Select="COUNT")["Count"]
        == before
    )
    assert (
        stores().clients.client("s3").list_objects_v2(Bucket=stores().settings.bucket_name).get("KeyCount", 0)
        == objects
    )
    assert stores().queue.attributes()["ApproximateNumberOfMessages"] == messages


def test_every_terminal_transition_releases_the_slot_exactly_once(keys_client, owners):
    finished, failed, swept = (submit_ok(keys_client, owners["a"]) for _ in range(3))
    assert live_count("team-a") == 3
    # the worker's path: claim, steps, finished
    stores().jobs.claim(finished, "w1", 60, 3)
    for a, b in ((Phase.FETCHING, Phase.BUILDING), (Phase.BUILDING, Phase.PUSHING), (Phase.PUSHING, Phase.FINISHED)):
        stores().jobs.transition(finished, "w1", a, b)
    assert live_count("team-a") == 2
    with pytest.raises(TransitionConflict):
        stores().jobs.transition(finished, "w1", Phase.PUSHING, Phase.FINISHED)
    stores().jobs.claim(failed, "w2", 60, 3)
    stores().jobs.fail(failed, "build failed", worker_id="w2")
    assert live_count("team-a") == 1
    for _ in range(2):  # a second end (cancel, a late worker) finds it terminal: no second release
        with pytest.raises(TransitionConflict):
            stores().jobs.fail(failed, "again")
    assert live_count("team-a") == 1
    job = stores().jobs.get_job(failed)
    assert not job.quota_slot and job.phase == Phase.FAILED


def test_a_job_failed_by_the_dead_letter_sweep_releases_its_slot(keys_client, owners, monkeypatch):
    from chalicelib.stores.queue import JobMessage
    from worker.job.loop import DLQ_REASON, Worker

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    stuck = submit_ok(keys_client, owners["a"])
    stores().jobs.claim(stuck, "dead-worker", -1, 3)  # live, its worker died
    stores().clients.client("sqs").send_message(
        QueueUrl=stores().queue.dead_letter_url(), MessageBody=JobMessage(stuck, 0, "").to_body()
    )
    assert live_count("team-a") == 1
    worker = Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600)
    try:
        assert worker.sweep_dead_letters() == 1
    finally:
        worker.shutdown(grace_seconds=1)
    assert stores().jobs.get_job(stuck).reason == DLQ_REASON
    assert live_count("team-a") == 0


def test_submissions_per_minute_quota(keys_client, owners, monkeypatch):
    monkeypatch.setenv("BOATYARD_QUOTA_SUBMISSIONS_PER_MINUTE", "3")
    reconfigure()
    if int(time.time()) % 60 > 55:  # stay inside one fixed window
        time.sleep(61 - int(time.time()) % 60)
    jobs = [submit_ok(keys_client, owners["a"]) for _ in range(3)]
    over = submit(keys_client, owners["a"])
    assert over.status_code == 429 and 1 <= int(over.headers["Retry-After"]) <= 60
    assert "minute" in answer(over)["Message"]
    assert live_count("team-a") == 3  # the refused one took no live slot
    assert len(jobs) == 3


def test_outstanding_upload_urls_are_capped(keys_client, owners):
    made = [keys_client.http.post("/api/v1/uploads", headers=_h(owners["a"])) for _ in range(3)]
    assert [m.status_code for m in made] == [200, 200, 200]
    over = keys_client.http.post("/api/v1/uploads", headers=_h(owners["a"]))
    assert over.status_code == 429 and int(over.headers["Retry-After"]) > 0
    assert keys_client.http.post("/api/v1/uploads", headers=_h(owners["b"])).status_code == 200
    # building one of them frees its place
    upload_id = answer(made[0])["UploadId"]
    stores().contexts.put_bytes(contexts.upload_key(upload_id), make_tar({"Dockerfile": "FROM busybox\n"}))
    submit_ok(keys_client, owners["a"], {"image_name": "user/image:1", "upload_id": upload_id})
    assert keys_client.http.post("/api/v1/uploads", headers=_h(owners["a"])).status_code == 200


# --- history ------------------------------------------------------------------------------------


def test_history_is_newest_first_paginated_and_per_owner(keys_client, owners):
    mine = []
    for n in range(5):
        mine.append(submit_ok(keys_client, owners["a"], {**BUILD, "image_name": f"user/image:{n}"}))
        time.sleep(0.002)
    other = submit_ok(keys_client, owners["b"])
    keys_client.http.post(f"/api/v1/{mine[1]}/cancel", headers=_h(owners["a"]))
    seen, cursor = [], None
    for _ in range(5):
        path = "/api/v1/jobs?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = answer(keys_client.http.get(path, headers=_h(owners["a"])))
        assert len(page["Jobs"]) <= 2
        seen.extend(j["JobIdentifier"] for j in page["Jobs"])
        cursor = page.get("Next")
        if not cursor:
            break
    assert seen == list(reversed(mine)) and other not in seen
    first = answer(keys_client.http.get("/api/v1/jobs?limit=1", headers=_h(owners["a"])))["Jobs"][0]
    assert set(first) >= {"JobIdentifier", "ImageName", "Phase", "Status", "CreatedAt", "UpdatedAt"}
    assert not {"Username", "Password", "Email"} & set(first)
    cancelled = answer(keys_client.http.get("/api/v1/jobs?state=cancelled", headers=_h(owners["a"])))["Jobs"]
    assert [j["JobIdentifier"] for j in cancelled] == [mine[1]]
    assert [
        j["JobIdentifier"] for j in answer(keys_client.http.get("/api/v1/jobs", headers=_h(owners["b"])))["Jobs"]
    ] == [other]


@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=x", "limit"),
        ("state=done", "state"),
        ("cursor=%%%", "cursor"),
        ("cursor=" + "A" * 500, "cursor"),
        ("colour=red", "colour"),
    ],
)
def test_bad_history_parameters_are_400_naming_the_field(keys_client, owners, query, field):
    got = keys_client.http.get(f"/api/v1/jobs?{query}", headers=_h(owners["a"]))
    assert got.status_code == 400 and answer(got)["Message"].startswith(field), got.body


def test_a_cursor_cannot_page_through_another_owners_jobs(keys_client, owners):
    for _ in range(3):
        submit_ok(keys_client, owners["a"])
    cursor = answer(keys_client.http.get("/api/v1/jobs?limit=1", headers=_h(owners["a"])))["Next"]
    got = keys_client.http.get(f"/api/v1/jobs?cursor={cursor}", headers=_h(owners["b"]))
    assert got.status_code == 400 and answer(got)["Message"].startswith("cursor")


# --- admin commands -----------------------------------------------------------------------------


def test_admin_commands_create_list_revoke(aws_env, capsys):
    from boatyard import admin

    assert admin.main(["keys", "create", "--owner", "team-a", "--label", "ci", "--json"]) == 0
    created = json.loads(capsys.readouterr().out)
    assert created["token"].startswith("by_") and created["owner"] == "team-a"
    assert admin.main(["keys", "list", "--json"]) == 0
    listed = capsys.readouterr().out
    assert created["key_id"] in listed and created["token"] not in listed
    assert admin.main(["keys", "revoke", created["key_id"]]) == 0
    assert "revoked" in capsys.readouterr().out
    with pytest.raises(Unauthorized):
        stores().apikeys.verify(created["token"])
    assert admin.main(["keys", "revoke", "0123456789abcdef"]) == 2
    assert "no key" in capsys.readouterr().err
    assert admin.main(["keys", "create", "--owner", "Bad Name"]) == 2


def test_keys_mode_answers_match_openapi(keys_client, owners):
    import yaml

    from tests.support.openapi import DOC_PATH, check_answer

    doc = yaml.safe_load(DOC_PATH.read_text())
    check_answer(doc, "/api/v1/jobs", "get", keys_client.http.get("/api/v1/jobs"))  # 401
    check_answer(
        doc, "/api/v1/build", "post", keys_client.http.post("/api/v1/build", headers=_h("by_nope"), body=b"{}")
    )
    for _ in range(5):
        submit_ok(keys_client, owners["a"])
    check_answer(doc, "/api/v1/build", "post", submit(keys_client, owners["a"]))  # 429
    check_answer(doc, "/api/v1/jobs", "get", keys_client.http.get("/api/v1/jobs?limit=2", headers=_h(owners["a"])))
    check_answer(doc, "/api/v1/jobs", "get", keys_client.http.get("/api/v1/jobs?limit=-1", headers=_h(owners["a"])))


def test_admin_tree_is_part_of_the_boatyard_command(aws_env, capsys):
    from boatyard import cli

    assert cli.main(["admin", "keys", "create", "--owner", "team-z", "--json"]) == 0
    token = json.loads(capsys.readouterr().out)["token"]
    assert cli.main(["admin", "keys", "list"]) == 0
    listed = capsys.readouterr().out
    assert "team-z" in listed and token not in listed


def test_a_release_that_meets_a_log_transaction_is_tried_again(keys_client, owners, monkeypatch):
    from botocore.exceptions import ClientError

    job_id = submit_ok(keys_client, owners["a"])
    ddb = stores().clients.client("dynamodb")
    real = ddb.transact_write_items
    calls = []

    def busy_once(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:  # a fenced log write held the job item: DynamoDB cancels with TransactionConflict
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "busy"},
                    "CancellationReasons": [{"Code": "TransactionConflict"}, {"Code": "None"}],
                },
                "TransactWriteItems",
            )
        return real(**kwargs)

    monkeypatch.setattr(ddb, "transact_write_items", busy_once)
    stores().jobs.fail(job_id, "it broke")
    assert len(calls) == 2 and live_count("team-a") == 0
    assert stores().jobs.get_job(job_id).phase == Phase.FAILED
