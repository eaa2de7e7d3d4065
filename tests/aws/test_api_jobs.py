"""GET /api/v1/{job_id}/status and /logs against moto: seed shapes, cursors, completeness, truncation, 404s."""

from __future__ import annotations

import uuid

import pytest

from chalicelib.domain.jobs import Phase
from tests.aws.api_helpers import answer
from tests.support.services import reconfigure, stores


def _write(job_id: str, *texts: str) -> None:
    writer = stores().logs.writer(job_id)
    for text in texts:
        writer.write(text)
        writer.flush()  # one chunk per text


def _status(client, job_id):
    response = client.http.get(f"/api/v1/{job_id}/status")
    assert response.status_code == 200, response.body
    return answer(response)


def test_status_walks_the_seed_words(client, job_id):
    body = _status(client, job_id)
    assert body["Status"] == "Building" and body["Phase"] == "queued"
    assert body["JobIdentifier"] == job_id and body["ImageName"] == "user/image:1" and body["Attempt"] == 0
    assert body["CreatedAt"].endswith("Z") and body["UpdatedAt"].endswith("Z")
    stores().jobs.claim(job_id, "w1", 60, 3)
    assert _status(client, job_id)["Status"] == "Building"
    stores().jobs.transition(job_id, "w1", Phase.FETCHING, Phase.BUILDING)
    stores().jobs.transition(job_id, "w1", Phase.BUILDING, Phase.PUSHING)
    assert _status(client, job_id)["Status"] == "Pushing"
    stores().jobs.transition(job_id, "w1", Phase.PUSHING, Phase.FINISHED, image_digest="sha256:" + "a" * 64)
    body = _status(client, job_id)
    assert (body["Status"], body["Phase"], body["Attempt"]) == ("Finished", "finished", 1)
    assert body["ImageDigest"] == "sha256:" + "a" * 64


def test_failed_status_reads_failed_colon_reason(client, job_id):
    stores().jobs.claim(job_id, "w1", 60, 3)
    reason = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    stores().jobs.fail(job_id, reason, worker_id="w1")
    body = _status(client, job_id)
    assert body["Status"] == f"Failed: {reason}" and body["Reason"] == reason


@pytest.mark.parametrize("path", ["status", "logs"])
@pytest.mark.parametrize("bad_id", [str(uuid.uuid4()), "not-a-uuid", "1234", "ef0c7a10-31a5-4140-6087-df97c2bebcb2x"])
def test_unknown_or_malformed_job_is_404(client, path, bad_id):
    response = client.http.get(f"/api/v1/{bad_id}/{path}")
    assert response.status_code == 404
    body = answer(response)
    assert set(body) == {"Code", "Message"} and body["Code"] == "NotFound"


def test_job_id_is_case_insensitive(client, job_id):
    assert _status(client, job_id.upper())["JobIdentifier"] == job_id


def test_logs_without_since_return_everything(client, job_id):
    _write(job_id, "Step 1/2 : FROM busybox\n", "Step 2/2 : CMD echo hi\n")
    response = client.http.get(f"/api/v1/{job_id}/logs")
    body = answer(response)
    assert body["Logs"] == "Step 1/2 : FROM busybox\nStep 2/2 : CMD echo hi\n"
    assert body["Next"] == "2" and body["Complete"] is False and body["Truncated"] is False


def test_logs_of_a_new_job_are_empty(client, job_id):
    assert answer(client.http.get(f"/api/v1/{job_id}/logs")) == {
        "Logs": "",
        "Next": "0",
        "Complete": False,
        "Truncated": False,
    }


def test_logs_since_cursor_return_only_newer_text(client, job_id):
    _write(job_id, "one\n")
    first = answer(client.http.get(f"/api/v1/{job_id}/logs?since=0"))
    assert (first["Logs"], first["Next"], first["Complete"]) == ("one\n", "1", False)
    empty = answer(client.http.get(f"/api/v1/{job_id}/logs?since={first['Next']}"))
    assert (empty["Logs"], empty["Next"], empty["Complete"]) == ("", "1", False)
    _write(job_id, "two\n", "three\n")
    later = answer(client.http.get(f"/api/v1/{job_id}/logs?since={first['Next']}"))
    assert (later["Logs"], later["Next"]) == ("two\nthree\n", "3")


def test_complete_only_when_terminal_and_read_to_the_end(client, job_id):
    _write(job_id, "building\n")
    stores().jobs.claim(job_id, "w1", 60, 3)
    stores().jobs.fail(job_id, "boom", worker_id="w1")
    partial = answer(client.http.get(f"/api/v1/{job_id}/logs?since=0"))
    assert partial["Complete"] is True and partial["Logs"] == "building\n"
    after = answer(client.http.get(f"/api/v1/{job_id}/logs?since={partial['Next']}"))
    assert after == {"Logs": "", "Next": partial["Next"], "Complete": True, "Truncated": False}


def test_phase_is_read_before_chunks(client, job_id, monkeypatch):
    """A job that ends while the chunks are read must not be reported Complete with its tail missing."""
    original = stores().logs.read_logs

    def finish_during_read(*args, **kwargs):
        page = original(*args, **kwargs)
        _write(job_id, "the last words\n")
        stores().jobs.claim(job_id, "w1", 60, 3)
        stores().jobs.fail(job_id, "ended", worker_id="w1")
        return page

    monkeypatch.setattr(stores().logs, "read_logs", finish_during_read)
    body = answer(client.http.get(f"/api/v1/{job_id}/logs?since=0"))
    assert body["Complete"] is False
    monkeypatch.setattr(stores().logs, "read_logs", original)
    rest = answer(client.http.get(f"/api/v1/{job_id}/logs?since={body['Next']}"))
    assert rest["Logs"] == "the last words\n" and rest["Complete"] is True


def test_long_log_is_cut_with_a_marker_and_the_rest_follows(client, job_id, monkeypatch):
    monkeypatch.setenv("BOATYARD_MAX_LOG_RESPONSE_BYTES", "100")
    reconfigure()
    lines = [f"line {i:03d} " + "x" * 40 + "\n" for i in range(6)]  # 50 bytes each, one chunk each
    _write(job_id, *lines)
    stores().jobs.claim(job_id, "w1", 60, 3)
    stores().jobs.fail(job_id, "done", worker_id="w1")
    body = answer(client.http.get(f"/api/v1/{job_id}/logs"))
    assert body["Truncated"] is True and body["Complete"] is False and body["Next"] == "2"
    assert body["Logs"].startswith(lines[0] + lines[1])
    assert f"GET /api/v1/{job_id}/logs?since=2" in body["Logs"].splitlines()[-1]
    collected, cursor = lines[0] + lines[1], body["Next"]
    for _ in range(10):
        page = answer(client.http.get(f"/api/v1/{job_id}/logs?since={cursor}"))
        assert "[boatyard]" not in page["Logs"]  # no marker inside a since-stream
        collected += page["Logs"]
        cursor = page["Next"]
        if page["Complete"]:
            break
    assert collected == "".join(lines) and cursor == "6"


@pytest.mark.parametrize("since", ["-1", "abc", "1.5", "", "99999999999", " 1"])
def test_bad_since_is_400_naming_since(client, job_id, since):
    response = client.http.get(f"/api/v1/{job_id}/logs?since={since}")
    assert response.status_code == 400, response.body
    body = answer(response)
    assert body["Code"] == "InvalidRequest" and body["Message"].startswith("since: ")
