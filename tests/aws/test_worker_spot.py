"""Spot interruption (worker/job/spot.py): a fake IMDSv2 on 127.0.0.1 announces it, the worker drains like on SIGTERM.

AWS is moto in process; the builds are a fake builder that runs until aborted (no Docker needed), so the test
is about the drain: no new job taken, the running build given back with a clear log line, and run again by
another worker as attempt 2.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
from collections.abc import Iterator

import pytest

from chalicelib.domain.jobs import Phase
from tests.support import worker_jobs
from tests.support.fake_builders import QuickBuilder, UntilAbortedBuilder
from tests.support.services import stores
from worker.job import spot
from worker.job.loop import Worker


class FakeImds:
    """IMDSv2 as far as the spot watch uses it: token PUT, then instance-action with the token (404 until set)."""

    TOKEN = "fake-imds-token"

    def __init__(self) -> None:
        self.instance_action: bytes | None = None
        self.requests: list[tuple[str, str, bool]] = []  # method, path, had a valid token
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self, status: int, body: bytes = b"") -> None:
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self) -> None:
                fake.requests.append(("PUT", self.path, False))
                if self.path == "/latest/api/token" and self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
                    self._answer(200, FakeImds.TOKEN.encode())
                else:
                    self._answer(400)

            def do_GET(self) -> None:
                valid = self.headers.get("X-aws-ec2-metadata-token") == FakeImds.TOKEN
                fake.requests.append(("GET", self.path, valid))
                if not valid:
                    self._answer(401)  # IMDSv2 only, like the launch template's HttpTokens: required
                elif self.path == "/latest/meta-data/spot/instance-action" and fake.instance_action is not None:
                    self._answer(200, fake.instance_action)
                else:
                    self._answer(404)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def announce(self, seconds_ahead: float, action: str = "terminate") -> None:
        when = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=seconds_ahead)
        self.instance_action = json.dumps({"action": action, "time": when.strftime("%Y-%m-%dT%H:%M:%SZ")}).encode()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def imds() -> Iterator[FakeImds]:
    fake = FakeImds()
    yield fake
    fake.close()


@pytest.fixture
def env(aws_env, monkeypatch, imds):
    worker_jobs.set_env(
        monkeypatch,
        BOATYARD_VISIBILITY_TIMEOUT_SECONDS=30,
        BOATYARD_HEARTBEAT_SECONDS=1,
        BOATYARD_SHUTDOWN_GRACE_SECONDS=600,  # the SIGTERM grace: the spot notice must shorten it
        BOATYARD_SPOT_WATCH="true",
        BOATYARD_IMDS_URL=imds.url,
        BOATYARD_SPOT_POLL_SECONDS=0.1,
        BOATYARD_ALLOW_PRIVATE_REGISTRIES="true",  # the jobs name a 127.0.0.1 registry
        DOCKER_HOST="unix:///nonexistent/docker.sock",
    )
    return aws_env


def _wait_for(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting")


def test_a_spot_notice_drains_the_worker_and_the_build_runs_again_elsewhere(env, imds, test_password):
    job_id = worker_jobs.submit(
        "127.0.0.1:5000/t/spot", dockerfile="FROM scratch\n", username="u", password=test_password
    )
    builder = UntilAbortedBuilder()
    worker = Worker(stores(), poll_wait_seconds=1, dlq_sweep_seconds=3600, builder=builder)
    watcher = spot.start_watch(worker.request_stop, stores().settings)
    assert watcher is not None
    runner = threading.Thread(target=worker.run_forever, daemon=True)
    runner.start()
    try:
        assert builder.started.wait(60)
        assert stores().jobs.get_job(job_id).phase == Phase.BUILDING
        imds.announce(seconds_ahead=spot.RELEASE_MARGIN_SECONDS + 1)  # the build gets ~1 s, not the 600 s grace
        started = time.monotonic()
        runner.join(timeout=60)
        assert not runner.is_alive(), "the worker did not stop after the spot notice"
        assert time.monotonic() - started < 30
    finally:
        watcher.stop()
        worker.request_stop()
        runner.join(timeout=30)

    assert watcher.notice is not None and watcher.notice.action == "terminate"
    assert all(valid for method, _, valid in imds.requests if method == "GET")  # every read carried the token
    released = stores().jobs.get_job(job_id)
    assert released.phase == Phase.BUILDING and released.lease_owner is None  # given back, still live
    log_text = worker_jobs.full_log(job_id)
    assert (
        "[boatyard] this build host is being reclaimed by EC2 (spot interruption); "
        "the build will start again on another worker"
    ) in log_text
    assert test_password not in log_text

    # the message is visible again at once: another host runs it as attempt 2
    other = Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600, builder=QuickBuilder())
    try:
        worker_jobs.run_until_terminal(other, job_id, timeout=60)
    finally:
        other.shutdown(grace_seconds=5)
    finished = stores().jobs.get_job(job_id)
    assert finished.phase == Phase.FINISHED and finished.attempt == 2
    assert "[boatyard] attempt 2 of 3: the previous worker stopped; starting again" in worker_jobs.full_log(job_id)
    attributes = stores().queue.attributes()
    assert (attributes["ApproximateNumberOfMessages"], attributes["ApproximateNumberOfMessagesNotVisible"]) == (
        "0",
        "0",
    )


def test_a_notice_during_a_sigterm_drain_shortens_it(env, imds):
    builder = UntilAbortedBuilder()
    job_id = worker_jobs.submit("127.0.0.1:5000/t/spot2", dockerfile="FROM scratch\n")
    worker = Worker(stores(), poll_wait_seconds=1, dlq_sweep_seconds=3600, builder=builder)
    runner = threading.Thread(target=worker.run_forever, daemon=True)
    runner.start()
    assert builder.started.wait(60)
    worker.request_stop()  # SIGTERM: 600 s of grace
    time.sleep(1.5)
    assert runner.is_alive()  # still waiting for the build
    worker.request_stop(grace_seconds=0, interrupted=True)
    runner.join(timeout=30)
    assert not runner.is_alive()
    assert stores().jobs.get_job(job_id).lease_owner is None
    assert "spot interruption" in worker_jobs.full_log(job_id)


def test_the_watch_needs_a_token_ignores_proxies_and_bad_answers(imds, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # a dead proxy: metadata must not go through it
    monkeypatch.setenv("http_proxy", "http://127.0.0.1:9")
    notices = []
    watcher = spot.SpotWatcher(imds.url, 0.05, notices.append)
    assert watcher.check_once() is None  # 404: nothing scheduled
    imds.instance_action = b'{"action": "reboot-the-world", "time": "2026-01-01T00:00:00Z"}'
    assert watcher.check_once() is None
    imds.instance_action = b"not json"
    assert watcher.check_once() is None
    imds.instance_action = b'{"action": "terminate", "time": "2026-01-01T00:00:00"}'  # no time zone
    assert watcher.check_once() is None
    imds.instance_action = b"x" * (spot.MAX_ANSWER_BYTES + 10)
    with pytest.raises(ValueError):
        watcher.check_once()
    imds.announce(120, action="stop")
    notice = watcher.check_once()
    assert notice is not None and notice.action == "stop"
    assert 85 <= notice.drain_seconds() <= 90
    assert ("PUT", "/latest/api/token", False) in imds.requests
    watcher._token = "stale"  # an expired token is renewed once
    watcher._token_expires = time.monotonic() + 1000
    assert watcher.check_once() == notice


def test_an_unreachable_metadata_service_keeps_the_worker_running(monkeypatch):
    notices = []
    watcher = spot.SpotWatcher("http://127.0.0.1:9", 0.05, notices.append, timeout_seconds=0.5).start()
    time.sleep(0.5)
    watcher.stop()
    assert notices == [] and watcher.notice is None


def test_no_watch_unless_enabled(aws_env, monkeypatch):
    worker_jobs.set_env(monkeypatch, BOATYARD_SPOT_WATCH="false")
    assert spot.start_watch(lambda **_: None, stores().settings) is None
