"""Notifications through the API and the sender, on moto, with real HTTP receivers on 127.0.0.1 (issue 14)."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from botocore.exceptions import ClientError

from boatyard.webhooks import verify_signature
from chalicelib.api import notify_poller as poller
from chalicelib.domain.jobs import Phase
from chalicelib.stores import notifications
from tests.aws.api_helpers import answer, assert_no_leak, job_item, post_json, post_multipart
from tests.notify_receiver import Receiver
from tests.support.archives import make_tar
from tests.support.services import reconfigure, stores

SECRET = "receiver-secret-9f2c-canary-4417"
TOKEN = "ghp_notify-token-canary-5521"


@pytest.fixture
def notify_env(monkeypatch):
    """Loopback receivers allowed (the test setting), retries after 1 s and 2 s, a 1 s read timeout."""
    for name, value in {
        "BOATYARD_ALLOW_LOOPBACK_NOTIFY_URLS": "true",
        "BOATYARD_NOTIFY_BACKOFF_BASE_SECONDS": "1",
        "BOATYARD_NOTIFY_BACKOFF_MAX_SECONDS": "2",
        "BOATYARD_NOTIFY_READ_TIMEOUT_SECONDS": "1",
        "BOATYARD_NOTIFY_CONNECT_TIMEOUT_SECONDS": "1",
    }.items():
        monkeypatch.setenv(name, value)
    reconfigure()


@pytest.fixture
def api(notify_env, client):
    return client


@pytest.fixture
def receiver():
    with Receiver() as made:
        yield made


def _submit(api, url: str, **extra) -> str:
    body = {
        "image_name": "user/image:1",
        "dockerfile": "FROM busybox\n",
        "notify_url": url,
        "notify_secret": SECRET,
        **extra,
    }
    response = post_json(api, body)
    assert response.status_code == 202, response.body
    return answer(response)["JobIdentifier"]


def _run_to_finished(job_id: str) -> None:
    """What a worker does to a job (its phase changes through the job store), without Docker."""
    stores().jobs.claim(job_id, "w1", 60, 3)
    stores().jobs.transition(job_id, "w1", Phase.FETCHING, Phase.BUILDING)
    stores().jobs.transition(job_id, "w1", Phase.BUILDING, Phase.PUSHING)
    stores().jobs.transition(job_id, "w1", Phase.PUSHING, Phase.FINISHED, image_digest="sha256:" + "b" * 64)


def _pump() -> None:
    poller.poll_once(stores(), wait_seconds=0)
    time.sleep(0.1)


def _notifications(api, job_id: str) -> dict:
    response = api.http.get(f"/api/v1/{job_id}/notifications")
    assert response.status_code == 200, response.body
    return answer(response)


def test_a_finished_job_notifies_with_a_signed_verifiable_payload(api, receiver):
    job_id = _submit(api, receiver.url)
    item = job_item(job_id)
    assert set(item["notify_events"]["SS"]) == {"finished", "failed", "cancelled"}
    _run_to_finished(job_id)
    [got] = receiver.wait_for(1, 15, _pump)
    assert verify_signature(SECRET, got.headers["X-Boatyard-Signature-256"], got.body)
    assert not verify_signature("not-the-secret-at-all", got.headers["X-Boatyard-Signature-256"], got.body)
    body = json.loads(got.body)
    assert body["Event"] == "finished" and body["Status"] == "Finished" and body["JobIdentifier"] == job_id
    assert body["ImageName"] == "user/image:1" and body["ImageDigest"] == "sha256:" + "b" * 64
    assert got.headers["X-Boatyard-Event"] == "finished" and got.headers["X-Boatyard-Delivery"] == body["DeliveryId"]
    poller.drain(stores())
    assert len(receiver.requests) == 1  # building/pushing were not asked for
    shown = _notifications(api, job_id)
    [sub] = shown["Subscriptions"]
    assert (
        sub["Kind"] == "webhook" and sub["Url"] == receiver.url and sub["Events"] == ["finished", "failed", "cancelled"]
    )
    [attempt] = shown["Attempts"]
    assert attempt["Outcome"] == "delivered" and attempt["StatusCode"] == 200 and attempt["Attempt"] == 1
    assert attempt["Event"] == "finished" and attempt["DurationMs"] >= 0 and attempt["At"].endswith("Z")
    assert_no_leak(SECRET, json.dumps(shown))


def test_api_cancel_of_a_queued_job_notifies(api, receiver):
    job_id = _submit(api, receiver.url, notify_events=["Cancelled"])
    assert api.http.post(f"/api/v1/{job_id}/cancel").status_code == 200
    [got] = receiver.wait_for(1, 15, _pump)
    assert json.loads(got.body)["Status"] == "Cancelled"


def test_two_500s_then_delivered_with_backoff_and_every_attempt_recorded(api):
    with Receiver(["500", "500", "200"]) as receiver:
        job_id = _submit(api, receiver.url)
        assert api.http.post(f"/api/v1/{job_id}/cancel").status_code == 200
        got = receiver.wait_for(3, 30, _pump)
    assert all(verify_signature(SECRET, r.headers["X-Boatyard-Signature-256"], r.body) for r in got)
    assert len({r.headers["X-Boatyard-Delivery"] for r in got}) == 1  # one notification, tried three times
    assert got[1].at - got[0].at >= 0.9 and got[2].at - got[1].at >= 1.9  # 1 s, then 2 s
    attempts = _notifications(api, job_id)["Attempts"]
    assert [(a["Attempt"], a["Outcome"], a.get("StatusCode")) for a in attempts] == [
        (1, "retrying", 500),
        (2, "retrying", 500),
        (3, "delivered", 200),
    ]
    assert "NextAttemptAt" in attempts[0]


@pytest.mark.parametrize("code", ["410", "302"])
def test_a_4xx_is_final_and_redirects_are_not_followed(api, code):
    with Receiver([code]) as receiver:
        job_id = _submit(api, receiver.url)
        api.http.post(f"/api/v1/{job_id}/cancel")
        receiver.wait_for(1, 15, _pump)
        time.sleep(1.5)
        poller.drain(stores())
        assert len(receiver.requests) == 1
    [attempt] = _notifications(api, job_id)["Attempts"]
    assert attempt["Outcome"] == "failed" and attempt["StatusCode"] == int(code)


def test_a_hanging_receiver_is_a_recorded_timeout(api):
    with Receiver(["hang", "200"]) as receiver:
        job_id = _submit(api, receiver.url)
        started = time.monotonic()
        assert api.http.post(f"/api/v1/{job_id}/cancel").status_code == 200
        assert time.monotonic() - started < 5  # the cancel never waits for a receiver
        receiver.wait_for(2, 30, _pump)
    attempts = _notifications(api, job_id)["Attempts"]
    assert attempts[0]["Outcome"] == "retrying" and "no answer within 1 s" in attempts[0]["Error"]
    assert "StatusCode" not in attempts[0] and 900 <= attempts[0]["DurationMs"] < 5000


def test_the_secret_is_sealed_and_never_stored_or_shown(api, receiver):
    job_id = _submit(api, receiver.url)
    sub = stores().notifications.subscriptions(job_id)[0]
    assert sub.sealed and SECRET not in sub.sealed
    assert stores().notifications.unseal_secret(job_id, sub.sealed) == SECRET
    status = api.http.get(f"/api/v1/{job_id}/status").body
    assert_no_leak(SECRET, status, api.http.get(f"/api/v1/{job_id}/notifications").body)
    # the sealed secret opens only as a notification secret of this job: not as job credentials, not for another job

    with pytest.raises(ClientError):  # KMS: InvalidCiphertextException (the encryption context differs)
        stores().sealing.unseal(job_id, sub.sealed)
    with pytest.raises(ClientError):
        stores().notifications.unseal_secret(str(uuid.uuid4()), sub.sealed)


def test_multipart_json_part_takes_the_notify_fields(api, receiver):
    fields = {
        "image_name": "user/image:1",
        "notify_url": receiver.url,
        "notify_secret": SECRET,
        "notify_events": ["failed"],
    }
    response = post_multipart(
        api,
        {
            "TarFile": ("c.tgz", make_tar({"Dockerfile": "FROM busybox\n"}), "application/gzip"),
            "Json": json.dumps(fields),
        },
    )
    assert response.status_code == 202, response.body
    job_id = answer(response)["JobIdentifier"]
    assert stores().notifications.subscriptions(job_id)[0].events == ("failed",)


def test_the_upload_flow_takes_the_notify_fields(api, receiver):
    import requests

    created = answer(api.http.post("/api/v1/uploads"))
    posted = requests.post(
        created["Url"],
        data=created["Fields"],
        files={"file": ("c.tgz", make_tar({"Dockerfile": "FROM busybox\n"}))},
        timeout=10,
    )
    assert posted.status_code in (200, 201, 204), posted.text
    response = post_json(
        api,
        {
            "image_name": "user/image:1",
            "upload_id": created["UploadId"],
            "notify_url": receiver.url,
            "notify_secret": SECRET,
            "notify_events": "queued",
        },
    )
    assert response.status_code == 202, response.body
    [got] = receiver.wait_for(1, 15, _pump)  # queued: sent as soon as the subscription exists
    assert json.loads(got.body)["Event"] == "queued"


@pytest.mark.parametrize(
    "extra, field",
    [
        ({"notify_url": "http://hooks.example.com/x", "notify_secret": SECRET}, "notify_url"),
        ({"notify_url": "https://169.254.169.254/x", "notify_secret": SECRET}, "notify_url"),
        ({"notify_url": "https://10.0.0.8/x", "notify_secret": SECRET}, "notify_url"),
        ({"notify_url": "https://hooks.example.com/x"}, "notify_secret"),
        (
            {"notify_url": "https://hooks.example.com/x", "notify_secret": SECRET, "notify_events": ["never"]},
            "notify_events",
        ),
    ],
)
def test_bad_notify_fields_are_400_naming_the_field(client, extra, field):
    response = post_json(client, {"image_name": "user/image:1", "dockerfile": "FROM busybox\n", **extra})
    assert response.status_code == 400
    message = answer(response)["Message"]
    assert message.startswith(f"{field}:") and SECRET not in message


def test_a_job_without_subscriptions_sends_nothing(api):
    job_id = answer(post_json(api, {"image_name": "user/image:1", "dockerfile": "FROM busybox\n"}))["JobIdentifier"]
    _run_to_finished(job_id)
    assert poller.drain(stores()) == 0
    assert _notifications(api, job_id) == {
        "JobIdentifier": job_id,
        "Subscriptions": [],
        "Attempts": [],
        "Truncated": False,
    }


def test_a_broken_notifications_queue_never_fails_a_transition(api, receiver, monkeypatch):
    job_id = _submit(api, receiver.url)
    monkeypatch.setenv("BOATYARD_NOTIFY_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/missing")
    reconfigure()
    response = api.http.post(f"/api/v1/{job_id}/cancel")
    assert response.status_code == 200 and answer(response)["Status"] == "Cancelled"


def test_github_status_pending_then_success(api):
    with Receiver(["201"]) as github:
        job_id = answer(post_json(api, {"image_name": "user/image:1", "dockerfile": "FROM busybox\n"}))["JobIdentifier"]
        stores().notifications.subscribe(
            job_id,
            "anonymous",
            notifications.GithubStatusTarget(
                repo="octo/app",
                sha="a" * 40,
                token=TOKEN,
                target_url=f"https://boatyard.example/jobs/{job_id}",
                api_base=github.base_url,
            ),
        )
        _run_to_finished(job_id)
        got = github.wait_for(3, 20, _pump)  # queued, fetching (pending), finished (success)
    assert {r.path for r in got} == {f"/repos/octo/app/statuses/{'a' * 40}"}
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r in got)
    states = [json.loads(r.body)["state"] for r in got]
    assert states[0] == "pending" and states[-1] == "success" and sorted(states) == ["pending", "pending", "success"]
    final = json.loads(got[-1].body)
    assert final["target_url"] == f"https://boatyard.example/jobs/{job_id}" and final["context"] == "boatyard"
    shown = _notifications(api, job_id)
    assert shown["Subscriptions"][0]["Kind"] == "github_status"
    assert_no_leak(TOKEN, json.dumps(shown))


def test_a_late_pending_never_overwrites_the_final_github_status(api):
    with Receiver(["201"]) as github:
        job_id = answer(post_json(api, {"image_name": "user/image:1", "dockerfile": "FROM busybox\n"}))["JobIdentifier"]
        sub_id = stores().notifications.subscribe(
            job_id,
            "anonymous",
            notifications.GithubStatusTarget(repo="octo/app", sha="c" * 40, token=TOKEN, api_base=github.base_url),
        )
        api.http.post(f"/api/v1/{job_id}/cancel")
        github.wait_for(2, 20, _pump)
        late = notifications.event_message(stores().jobs.get_job(job_id))
        late.update({"event": "fetching", "sub": sub_id})
        stores().notifications.send_message(late)
        poller.drain(stores())
        assert [json.loads(r.body)["state"] for r in github.requests] == ["pending", "error"]
    assert _notifications(api, job_id)["Attempts"][-1]["Outcome"] == "superseded"


def test_the_sender_lambda_handles_queue_events(api, receiver):
    """app.send_notifications (the deployed SQS consumer) runs the same sender."""
    job_id = _submit(api, receiver.url)
    message = notifications.event_message(stores().jobs.fail(job_id, "boom"))
    sqs = stores().clients.client("sqs")
    sqs.purge_queue(QueueUrl=stores().notifications.queue_url())
    event = api.events.generate_sqs_event(
        message_bodies=[json.dumps(message)], queue_name=stores().settings.notify_queue_name
    )
    api.lambda_.invoke("send_notifications", event)
    [got] = receiver.wait_for(1, 5)
    assert json.loads(got.body)["Status"] == "Failed: boom"


def test_another_owners_notifications_are_404_like_an_unknown_job(keys_client, owners):
    headers = {"Authorization": f"Bearer {owners['a']}", "Content-Type": "application/json"}
    body = {
        "image_name": "user/image:1",
        "dockerfile": "FROM busybox\n",
        "notify_url": "https://hooks.example.com/x",
        "notify_secret": SECRET,
    }
    job_id = answer(keys_client.http.post("/api/v1/build", headers=headers, body=json.dumps(body)))["JobIdentifier"]
    mine = keys_client.http.get(f"/api/v1/{job_id}/notifications", headers={"Authorization": f"Bearer {owners['a']}"})
    assert mine.status_code == 200 and answer(mine)["Subscriptions"][0]["Url"] == "https://hooks.example.com/x"
    theirs = keys_client.http.get(f"/api/v1/{job_id}/notifications", headers={"Authorization": f"Bearer {owners['b']}"})
    unknown = keys_client.http.get(
        f"/api/v1/{uuid.uuid4()}/notifications", headers={"Authorization": f"Bearer {owners['b']}"}
    )
    assert theirs.status_code == unknown.status_code == 404
    assert answer(theirs)["Code"] == answer(unknown)["Code"] == "NotFound"
    assert keys_client.http.get(f"/api/v1/{job_id}/notifications").status_code == 401
