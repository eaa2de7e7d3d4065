"""Fixtures of the fault, load and bad-input tests: local stacks of their own, on free ports.

Every stack started here is scanned for the leak canary (the test registry's
password) in its moto server (DynamoDB, S3, SQS) and its log files just before it
stops; findings are recorded for ``tests/faults/test_no_leaks.py``, which runs after every other test
(marker ``after_all_tests``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support import faults, worker_jobs
from tests.support.canary import TEST_PASSWORD
from tests.support.probes import run_once
from tests.support.services import make_app, reconfigure, stores
from tests.support.stacks import start_stack, stop_stack


@pytest.fixture
def make_stack(docker_host: str) -> Iterator[Callable[..., object]]:
    """``make_stack(name, workers, env, docker=None)``: a stack of the test's own (``faults-<name>``), for a test
    that breaks it or needs other settings than the shared ``local_stack``; scanned for leaks and stopped after."""
    started: list = []

    def start(name: str, workers: int, env: dict[str, str], docker: str | None = None):
        stack = start_stack(f"faults-{name}", workers, env, docker_host=docker or docker_host)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stop_stack(stack)


class InProcess:
    """The API (chalice.test.Client) and a worker, in this process against moto's ``mock_aws``."""

    def __init__(self, client, worker) -> None:
        self.client = client
        self.worker = worker
        self.results: list = []

    def submit(self, body: dict) -> str:
        """POST a JSON build through the API; returns the job id."""
        import json

        answer = self.client.http.post(
            "/api/v1/build", headers={"Content-Type": "application/json"}, body=json.dumps(body)
        )
        assert answer.status_code == 202, answer.body
        return json.loads(answer.body)["JobIdentifier"]

    def submit_archive(self, body: dict, archive: bytes) -> str:
        """POST a multipart build (parts Json and TarFile); returns the job id."""
        import json

        from urllib3 import encode_multipart_formdata

        data, content_type = encode_multipart_formdata(
            [
                ("Json", ("build.json", json.dumps(body), "application/json")),
                ("TarFile", ("context.tar.gz", archive, "application/x-gzip")),
            ]
        )
        answer = self.client.http.post("/api/v1/build", headers={"Content-Type": content_type}, body=data)
        assert answer.status_code == 202, answer.body
        return json.loads(answer.body)["JobIdentifier"]

    def try_submit(self, body: dict) -> tuple[int, dict]:
        """POST a JSON build; returns (status code, answer body) without asserting."""
        import json

        answer = self.client.http.post(
            "/api/v1/build", headers={"Content-Type": "application/json"}, body=json.dumps(body)
        )
        return answer.status_code, json.loads(answer.body)

    def enqueue_direct(self, image_name: str, kind: str, source: dict, username: str = "", password: str = "") -> str:
        """Store a job and queue its message without the API's validation (what an older API or a
        hand-made message could leave): the worker's own defences must hold on their own."""
        return worker_jobs.submit(image_name, source=(kind, source), username=username, password=password)

    def status(self, job_id: str) -> dict:
        """The status answer of the API."""
        import json

        answer = self.client.http.get(f"/api/v1/{job_id}/status")
        assert answer.status_code == 200, answer.body
        return json.loads(answer.body)

    def logs(self, job_id: str) -> str:
        """The log text answer of the API."""
        import json

        return json.loads(self.client.http.get(f"/api/v1/{job_id}/logs").body)["Logs"]

    def run_queue(self, rounds: int = 20) -> list:
        """Let the worker take and run what is in the queue until a receive comes back empty."""
        done = []
        for _ in range(rounds):
            results = run_once(self.worker, 0)
            if not results:
                break
            done.extend(results)
        self.results.extend(done)
        return done


@pytest.fixture
def inproc(aws_env, monkeypatch) -> Iterator[Callable[..., InProcess]]:
    """A factory: ``inproc(BOATYARD_X="..")`` sets the settings, then gives API + worker in process (moto)."""
    from chalice.test import Client

    from worker.job.loop import Worker

    made: list[tuple[InProcess, object]] = []

    def make(**env: str) -> InProcess:
        monkeypatch.setenv("BOATYARD_WORK_DIR", str(faults.STATE_DIR / "faults-work"))
        monkeypatch.setenv("BOATYARD_ALLOW_PRIVATE_REGISTRIES", "true")  # the test registry is on 127.0.0.1
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        reconfigure()
        worker = Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600)
        client = Client(make_app())
        harness = InProcess(client, worker)
        made.append((harness, client))
        return harness

    yield make
    for harness, _client in made:
        harness.worker.shutdown(grace_seconds=5)
    if made:
        faults.record_leaks("in-process moto", faults.scan_aws(None, TEST_PASSWORD))
    reconfigure()
