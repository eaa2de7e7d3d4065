"""Issue 12 over real HTTP: a local stack in ``BOATYARD_AUTH=keys`` mode (chalice local runs the authorizer).

Keys are made with the operator's command (``python -m boatyard.admin keys create``)
against the stack's moto server.  The stack starts without a worker so the quota
burst is deterministic; a worker is started later and the slots free as its jobs end.
Every token is looked for in the stack's DynamoDB, S3, SQS and log files before it stops.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import time

import pytest
import requests

from tests.faults.helpers import admin, new_key
from tests.support.http_jobs import TERMINAL_PREFIXES
from tests.support.stacks import scan_stack, start_stack, stop_stack

pytestmark = [pytest.mark.docker, pytest.mark.e2e]

LIVE_QUOTA = 5
AUTH_TTL = 5
TOKENS: list[str] = []


@pytest.fixture(scope="module")
def keys_stack(docker_host):
    stack = start_stack(
        "faults-keys",
        workers=0,
        docker_host=docker_host,
        env={
            "BOATYARD_AUTH": "keys",
            "BOATYARD_AUTH_CACHE_SECONDS": str(AUTH_TTL),
            "BOATYARD_QUOTA_LIVE_JOBS": str(LIVE_QUOTA),
            "BOATYARD_QUOTA_SUBMISSIONS_PER_MINUTE": "1000",
            "BOATYARD_BUILD_NETWORK": "none",
            "BOATYARD_HEARTBEAT_SECONDS": "5",
        },
    )
    try:
        yield stack
    finally:
        # the tokens, and their secret parts, are secrets too: nowhere in AWS state or logs
        stop_stack(stack, secrets=tuple(TOKENS) + tuple(token.split("_", 2)[2] for token in TOKENS))


@pytest.fixture(scope="module")
def keys(keys_stack):
    made = {
        "a": new_key(keys_stack, "team-a"),
        "b": new_key(keys_stack, "team-b"),
        "admin": new_key(keys_stack, "ops", admin_scope=True),
    }
    TOKENS.extend(made.values())
    return made


def _s(token: str | None) -> requests.Session:
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    return session


def _build(stack, session, base_image: str, tag: str = "1") -> requests.Response:
    body = {"image_name": f"127.0.0.1:1/keys/app:{tag}", "dockerfile": f"FROM {base_image}\nRUN true\n"}
    return session.post(f"{stack.api_url}/api/v1/build", json=body, timeout=60)


def test_401_without_or_with_a_wrong_key_and_the_ui_stays_open(keys_stack, keys):
    url = keys_stack.api_url
    for session in (_s(None), _s("by_0123456789abcdef_" + "A" * 43), _s("not-a-key")):
        for method, path in (
            ("get", "/api/v1/jobs"),
            ("post", "/api/v1/build"),
            ("post", "/api/v1/uploads"),
            ("get", "/api/v1/00000000-0000-4000-8000-000000000000/status"),
        ):
            got = getattr(session, method)(url + path, timeout=30)
            assert got.status_code == 401, (path, got.text)
            assert set(got.json()) == {"Code", "Message"} and got.json()["Code"] == "Unauthorized"
    assert requests.get(url + "/", timeout=30).status_code == 200  # the UI's page needs no key
    assert _s(keys["a"]).get(url + "/api/v1/jobs", timeout=30).status_code == 200


def test_two_owners_see_only_their_own_jobs_and_uploads(keys_stack, keys, base_image):
    url = keys_stack.api_url
    a, b = _s(keys["a"]), _s(keys["b"])
    got = _build(keys_stack, a, base_image, "own")
    assert got.status_code == 202, got.text
    job_id = got.json()["JobIdentifier"]
    unknown = "00000000-0000-4000-8000-000000000000"
    for method, suffix in (("get", "status"), ("get", "logs"), ("post", "cancel")):
        theirs = getattr(b, method)(f"{url}/api/v1/{job_id}/{suffix}", timeout=30)
        missing = getattr(b, method)(f"{url}/api/v1/{unknown}/{suffix}", timeout=30)
        assert theirs.status_code == missing.status_code == 404
        assert theirs.json()["Message"].replace(job_id, "X") == missing.json()["Message"].replace(unknown, "X")
    assert a.get(f"{url}/api/v1/{job_id}/status", timeout=30).status_code == 200
    assert job_id in [j["JobIdentifier"] for j in a.get(f"{url}/api/v1/jobs", timeout=30).json()["Jobs"]]
    assert job_id not in [j["JobIdentifier"] for j in b.get(f"{url}/api/v1/jobs", timeout=30).json()["Jobs"]]
    assert job_id in [
        j["JobIdentifier"] for j in _s(keys["admin"]).get(f"{url}/api/v1/jobs?owner=team-a", timeout=30).json()["Jobs"]
    ]
    upload_id = a.post(f"{url}/api/v1/uploads", timeout=30).json()["UploadId"]
    used = b.post(f"{url}/api/v1/build", json={"image_name": "u/i", "upload_id": upload_id}, timeout=30)
    assert used.status_code == 400 and "no upload with that id" in used.json()["Message"]
    assert a.post(f"{url}/api/v1/{job_id}/cancel", timeout=30).status_code == 200  # frees team-a's slot


def test_a_revoked_key_stops_working_within_the_authorizer_ttl(keys_stack, keys):
    token = new_key(keys_stack, "team-c", "to-revoke")
    TOKENS.append(token)
    session = _s(token)
    assert session.get(f"{keys_stack.api_url}/api/v1/jobs", timeout=30).status_code == 200
    key_id = token.split("_")[1]
    admin(keys_stack, "revoke", key_id)
    revoked_at = time.monotonic()
    while session.get(f"{keys_stack.api_url}/api/v1/jobs", timeout=30).status_code != 401:
        assert time.monotonic() - revoked_at < AUTH_TTL + 2, "the revoked key still works after the authorizer TTL"
        time.sleep(0.2)
    assert "revoked" in admin(keys_stack, "list")
    assert token not in admin(keys_stack, "list", "--json")


def test_quota_admits_exactly_n_of_20_concurrent_submissions_then_frees_slots(keys_stack, base_image):
    token = new_key(keys_stack, "team-q")
    TOKENS.append(token)
    url = keys_stack.api_url

    def one(n: int) -> requests.Response:
        return _build(keys_stack, _s(token), base_image, f"q{n}")

    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(one, range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [202] * LIVE_QUOTA + [429] * (20 - LIVE_QUOTA), codes
    for refused in (a for a in answers if a.status_code == 429):
        assert int(refused.headers["Retry-After"]) >= 1 and refused.json()["Code"] == "TooManyRequests"
    admitted = [a.json()["JobIdentifier"] for a in answers if a.status_code == 202]
    listed = _s(token).get(f"{url}/api/v1/jobs?limit=100", timeout=30).json()["Jobs"]
    assert sorted(j["JobIdentifier"] for j in listed) == sorted(admitted)  # the refused ones created nothing
    # a worker runs them; as each ends its slot frees
    keys_stack.start_worker("worker-keys")
    deadline = time.monotonic() + 240
    while True:
        states = [_s(token).get(f"{url}/api/v1/{j}/status", timeout=30).json()["Status"] for j in admitted]
        if all(s.startswith(TERMINAL_PREFIXES) for s in states):
            break
        assert time.monotonic() < deadline, states
        time.sleep(1)
    # stop the worker (gracefully) so the next jobs stay live and the limit is visible again
    worker = keys_stack.procs.pop("worker-keys")
    os.killpg(worker.pid, signal.SIGTERM)
    worker.wait(timeout=120)
    again = [one(100 + n) for n in range(LIVE_QUOTA)]
    assert [a.status_code for a in again] == [202] * LIVE_QUOTA
    assert one(200).status_code == 429
    for answer in again:  # leave nothing running for the next tests
        _s(token).post(f"{url}/api/v1/{answer.json()['JobIdentifier']}/cancel", timeout=30)


def test_tokens_are_never_in_answers(keys_stack, keys):
    url = keys_stack.api_url
    for token in keys.values():
        session = _s(token)
        for path in ("/api/v1/jobs", "/api/v1/jobs?limit=100"):
            text = session.get(url + path, timeout=30).text
            assert token not in text and token.split("_", 2)[2] not in text
    for token in TOKENS:
        findings = scan_stack(keys_stack, token) + scan_stack(keys_stack, token.split("_", 2)[2])
        assert not findings, findings
