"""Trickling downloads cannot hold a build slot (issue 11, item 2): a real server on 127.0.0.1 sends one byte a
second; the worker (against moto) must fail the job at the fetch deadline or below the minimum rate, let a
cancel or a shutdown cut the download at once, and stop renewing the lease of an aborted job."""

from __future__ import annotations

import time

import pytest

from chalicelib.api import job_views
from chalicelib.domain.jobs import Phase
from tests.support import worker_jobs
from tests.support.probes import run_once
from tests.support.services import stores
from tests.trickle import TrickleServer
from worker.job.control import AbortKind, JobControl
from worker.job.heartbeat import Heartbeat
from worker.job.loop import Worker
from worker.job.runner import Outcome


@pytest.fixture
def env(aws_env, monkeypatch):
    worker_jobs.set_env(
        monkeypatch,
        BOATYARD_ALLOW_PRIVATE_URLS="true",
        BOATYARD_VISIBILITY_TIMEOUT_SECONDS=30,
        BOATYARD_HEARTBEAT_SECONDS=1,
        BOATYARD_FETCH_TIMEOUT_SECONDS=5,
        BOATYARD_FETCH_DEADLINE_SECONDS=60,
        BOATYARD_FETCH_MIN_BYTES_PER_SECOND=0,
        DOCKER_HOST="unix:///nonexistent/docker.sock",  # these jobs never reach Docker
    )
    return aws_env


@pytest.fixture
def trickle():
    servers: list[TrickleServer] = []

    def start(**kw) -> TrickleServer:
        servers.append(TrickleServer(**kw))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _worker() -> Worker:
    return Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600)


@pytest.mark.parametrize("headers", [False, True], ids=["body", "headers"])
def test_trickling_download_fails_at_the_fetch_deadline(env, monkeypatch, trickle, headers):
    worker_jobs.set_env(monkeypatch, BOATYARD_FETCH_DEADLINE_SECONDS=3)
    server = trickle(headers=headers, max_seconds=40)
    job_id = worker_jobs.submit("u/app", tar_url=server.url)
    worker = _worker()
    started = time.monotonic()
    [result] = run_once(worker, wait_seconds=1)
    seconds = time.monotonic() - started
    assert result.outcome == Outcome.FAILED
    assert worker_jobs.status(job_id) == (
        f"Failed: fetching the build context from the tarball at {server.url} did not finish within 3 s; it was stopped"
    )
    assert seconds < 15, seconds  # the deadline, not the server giving up after 40 s
    assert server.wait_gone(), "the worker did not close the connection"
    worker.shutdown(grace_seconds=1)


def test_download_below_the_minimum_rate_fails(env, monkeypatch, trickle):
    worker_jobs.set_env(monkeypatch, BOATYARD_FETCH_MIN_BYTES_PER_SECOND=100, BOATYARD_FETCH_TIMEOUT_SECONDS=2)
    server = trickle(max_seconds=40)
    job_id = worker_jobs.submit("u/app", tar_url=server.url)
    worker = _worker()
    started = time.monotonic()
    [result] = run_once(worker, wait_seconds=1)
    assert result.outcome == Outcome.FAILED
    status = worker_jobs.status(job_id)
    assert status.startswith(f"Failed: the download of {server.url} is too slow: ")
    assert status.endswith("less than the minimum of 100 bytes per second; it was stopped")
    assert time.monotonic() - started < 20
    worker.shutdown(grace_seconds=1)


def _start_fetching(server: TrickleServer) -> tuple[Worker, str, object]:
    job_id = worker_jobs.submit("u/app", tar_url=server.url)
    worker = _worker()
    [future] = worker.poll(wait_seconds=1)
    server.wait_connected(sent=2)
    assert stores().jobs.get_job(job_id).phase == Phase.FETCHING
    return worker, job_id, future


@pytest.mark.parametrize("headers", [False, True], ids=["body", "headers"])
def test_cancel_cuts_a_trickling_download(env, trickle, headers):
    server = trickle(headers=headers, max_seconds=60)
    worker, job_id, future = _start_fetching(server)
    cancelled = time.monotonic()
    assert job_views.cancel(stores(), job_id)["Status"] == "Cancelled"  # what POST /api/v1/{id}/cancel does
    result = future.result(timeout=15)  # the next heartbeat (1 s) sees the cancel and cuts the socket
    assert result.outcome == Outcome.LOST
    assert server.wait_gone() and server.gone[0] - cancelled < 10
    assert worker_jobs.status(job_id) == "Cancelled"
    worker.shutdown(grace_seconds=1)


@pytest.mark.parametrize("headers", [False, True], ids=["body", "headers"])
def test_shutdown_does_not_hang_on_a_trickling_download(env, trickle, headers):
    server = trickle(headers=headers, max_seconds=60)
    worker, job_id, future = _start_fetching(server)
    started = time.monotonic()
    worker.shutdown(grace_seconds=0)
    assert time.monotonic() - started < 10
    assert future.result(timeout=1).outcome == Outcome.RELEASED
    job = stores().jobs.get_job(job_id)
    assert job.phase.is_live and not job.lease_owner  # given back for another worker
    assert server.wait_gone()


def test_aborted_job_s_lease_is_not_renewed(env):
    job_id = worker_jobs.submit("u/app", dockerfile="FROM x\n")
    claim = stores().jobs.claim(job_id, "w1", 30, 3)
    control = JobControl()
    heartbeat = Heartbeat(
        stores().jobs, stores().queue, job_id, "w1", "receipt", control, interval=0.2, lease_seconds=30
    )
    assert heartbeat.beat()  # a live job's lease is renewed
    renewed = stores().jobs.get_job(job_id).lease_expires
    assert renewed >= claim.job.lease_expires
    control.abort(AbortKind.TIMEOUT, "timed out after 1 s")
    time.sleep(1.1)  # the stored expiry has a one-second resolution
    assert heartbeat.beat() is False
    assert stores().jobs.get_job(job_id).lease_expires == renewed
    heartbeat.start()
    time.sleep(0.6)
    assert not heartbeat._thread.is_alive()  # the beating thread ended by itself
    assert stores().jobs.get_job(job_id).lease_expires == renewed
