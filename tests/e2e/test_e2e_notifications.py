"""Notifications on the local stack with the real daemon (issue 14): a receiver on 127.0.0.1 gets signed,
verifiable payloads for a real build, also after answering 500 twice; a receiver that hangs does not slow a build."""

from __future__ import annotations

import json
import time

import pytest
import requests

from boatyard.webhooks import verify_signature
from tests.nonce import RUN_NONCE
from tests.notify_receiver import Receiver
from tests.support.http_jobs import credentials, unique_image, wait_terminal

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

SECRET = "e2e-notify-secret-7c41-canary"


def _submit(local_stack, name: str, **extra) -> str:
    body = {
        "image_name": unique_image(local_stack.registry.host, name),
        "dockerfile": f"FROM {local_stack.base_image}\nRUN : {RUN_NONCE}-{name} && echo hi > /n\n",
        **credentials(local_stack.registry),
        **extra,
    }
    answer = requests.post(f"{local_stack.api_url}/api/v1/build", json=body, timeout=30)
    assert answer.status_code == 202, answer.text
    return answer.json()["JobIdentifier"]


def _attempts(local_stack, job_id: str, until, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        body = requests.get(f"{local_stack.api_url}/api/v1/{job_id}/notifications", timeout=10).json()
        if until(body["Attempts"]) or time.monotonic() > deadline:
            return body["Attempts"]
        time.sleep(0.5)


def test_a_real_build_notifies_a_receiver_that_answered_500_twice(local_stack):
    with Receiver(["500", "500", "204"]) as receiver:
        job_id = _submit(local_stack, "notify", notify_url=receiver.url, notify_secret=SECRET)
        status = wait_terminal(local_stack.api_url, job_id)
        assert status["Status"] == "Finished", status
        got = receiver.wait_for(3, 60)  # finished: 500, 500, then 204
    for request in got:
        assert verify_signature(SECRET, request.headers["X-Boatyard-Signature-256"], request.body)
    assert len({r.headers["X-Boatyard-Delivery"] for r in got}) == 1  # one notification, three attempts
    final = json.loads(got[-1].body)
    assert final["Event"] == "finished" and final["Status"] == "Finished" and final["JobIdentifier"] == job_id
    assert final["ImageDigest"] == status["ImageDigest"] and final["ImageName"] == status["ImageName"]
    attempts = _attempts(local_stack, job_id, lambda a: len(a) >= 3)
    assert [(a["Attempt"], a["Outcome"], a.get("StatusCode")) for a in attempts] == [
        (1, "retrying", 500),
        (2, "retrying", 500),
        (3, "delivered", 204),
    ]


def test_a_hanging_receiver_does_not_slow_the_build(local_stack):
    with Receiver(["hang"]) as receiver:
        control = _submit(local_stack, "notify-control")
        hung = _submit(
            local_stack,
            "notify-hang",
            notify_url=receiver.url,
            notify_secret=SECRET,
            notify_events=["fetching", "building", "pushing", "finished"],
        )
        done = {job: wait_terminal(local_stack.api_url, job) for job in (control, hung)}
        assert all(d["Status"] == "Finished" for d in done.values()), done

        def took(job: str) -> float:
            import datetime as dt

            parse = lambda s: dt.datetime.fromisoformat(s.replace("Z", "+00:00"))  # noqa: E731 - a one-line parser local to this check
            return (parse(done[job]["FinishedAt"]) - parse(done[job]["StartedAt"])).total_seconds()

        # inline, four notifications to a receiver that never answers would add 4 x 3 s to the build
        assert took(hung) < took(control) + 8, (took(hung), took(control))
        attempts = _attempts(
            local_stack, hung, lambda a: any("no answer within 3 s" in (x.get("Error") or "") for x in a)
        )
        timed_out = [a for a in attempts if "no answer within 3 s" in (a.get("Error") or "")]
        assert timed_out and timed_out[0]["Outcome"] == "retrying" and timed_out[0]["DurationMs"] >= 2900
