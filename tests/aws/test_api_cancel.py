"""POST /api/v1/{job_id}/cancel: a live job ends Cancelled; an ended one answers 409; the worker can no longer move it."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.domain.errors import TransitionConflict
from chalicelib.domain.jobs import Phase
from tests.aws.api_helpers import answer
from tests.support.services import stores


def test_cancel_a_queued_job(client, job_id):
    response = client.http.post(f"/api/v1/{job_id}/cancel")
    assert response.status_code == 200, response.body
    assert answer(response)["Status"] == "Cancelled"
    assert answer(client.http.get(f"/api/v1/{job_id}/status"))["Phase"] == "cancelled"


def test_cancel_a_running_job_fences_its_worker(client, job_id):
    stores().jobs.claim(job_id, "w1", 60, 3)
    stores().jobs.transition(job_id, "w1", Phase.FETCHING, Phase.BUILDING)
    assert client.http.post(f"/api/v1/{job_id}/cancel").status_code == 200
    assert not stores().jobs.renew_lease(job_id, "w1", 60)  # the heartbeat sees it and stops the build
    with pytest.raises(TransitionConflict):
        stores().jobs.transition(job_id, "w1", Phase.BUILDING, Phase.PUSHING)
    assert answer(client.http.get(f"/api/v1/{job_id}/status"))["Status"] == "Cancelled"


def test_cancel_an_ended_job_is_409_and_changes_nothing(client, job_id):
    stores().jobs.claim(job_id, "w1", 60, 3)
    stores().jobs.fail(job_id, "boom", worker_id="w1")
    response = client.http.post(f"/api/v1/{job_id}/cancel")
    assert response.status_code == 409
    body = answer(response)
    assert body["Code"] == "Conflict" and "already ended (Failed: boom)" in body["Message"]
    assert answer(client.http.get(f"/api/v1/{job_id}/status"))["Status"] == "Failed: boom"


@pytest.mark.parametrize("bad_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_cancel_unknown_job_is_404(client, bad_id):
    response = client.http.post(f"/api/v1/{bad_id}/cancel")
    assert response.status_code == 404
    assert answer(response)["Code"] == "NotFound"
