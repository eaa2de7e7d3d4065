"""Fixtures of the fault, load and bad-input tests: local stacks of their own, on free ports.

Every stack started here is scanned for the leak canary (the test registry's
password) in its moto server (DynamoDB, S3, SQS) and its log files just before it
stops; findings are recorded for ``test_zz_no_leaks``, which runs last.
"""
from __future__ import annotations

import time
from typing import Callable, Iterator

import pytest

from tests.support.probes import run_once
from tests.support import faults
from tests.conftest import TEST_PASSWORD

SESSION_STARTED = time.time()


@pytest.fixture(scope="session")
def faults_session_started() -> float:
    """When this test session started (leak findings recorded after it count)."""
    return SESSION_STARTED


def scan_stack(stack, secret: str = TEST_PASSWORD) -> list[str]:
    """Leak findings in a running stack's AWS state and in its processes' log files."""
    findings = faults.scan_aws(stack.aws_endpoint, secret)
    logs = sorted(stack.config.log_dir.glob(f"{stack.config.name}-*.log"))
    findings += faults.scan_files(logs, secret)
    return findings


@pytest.fixture
def make_stack(docker_host: str) -> Iterator[Callable[..., object]]:
    """Start a LocalStack with the given workers and settings; scanned for leaks and stopped at teardown."""
    from devstack.services import free_port
    from devstack.stack import LocalStack, StackConfig

    started: list[LocalStack] = []

    def start(name: str, workers: int, env: dict[str, str], docker: str | None = None) -> LocalStack:
        config = StackConfig(
            api_port=free_port(),
            moto_port=free_port(),
            workers=workers,
            name=f"faults-{name}",
            extra_env={
                "BOATYARD_ALLOW_PRIVATE_URLS": "true",
                "BOATYARD_LOG_FLUSH_SECONDS": "0.5",
                "DOCKER_HOST": docker or docker_host,
                **env,
            },
        )
        stack = LocalStack(config)
        started.append(stack)
        # fresh logs for this run, so the leak scan and the counts see only this run
        for log in config.log_dir.glob(f"{config.name}-*.log"):
            log.unlink()
        return stack.start()

    yield start
    for stack in started:
        try:
            if stack.procs:
                findings = scan_stack(stack)
                faults.record_leaks(f"stack {stack.config.name}", findings)
        finally:
            stack.stop()


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
            [("Json", ("build.json", json.dumps(body), "application/json")),
             ("TarFile", ("context.tar.gz", archive, "application/x-gzip"))]
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
        import uuid

        from chalicelib.stores import jobs as jobstore, queue, sealing
        from chalicelib.domain.jobs import Job, SourceKind

        job_id = str(uuid.uuid4())
        jobstore.create_job(Job(job_id, image_name, SourceKind(kind), dict(source)))
        sealed = sealing.seal(job_id, sealing.Credentials(username, password)) if password else ""
        queue.send(queue.JobMessage(job_id, 0, sealed))
        return job_id

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

    from app import app
    from chalicelib.domain.settings import get_settings
    from worker.job.loop import Worker

    made: list[tuple[InProcess, object]] = []

    def make(**env: str) -> InProcess:
        monkeypatch.setenv("BOATYARD_WORK_DIR", str(faults.STATE_DIR / "faults-work"))
        monkeypatch.setenv("BOATYARD_ALLOW_PRIVATE_REGISTRIES", "true")  # the test registry is on 127.0.0.1
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        get_settings.cache_clear()
        worker = Worker(get_settings(), poll_wait_seconds=0, dlq_sweep_seconds=3600)
        client = Client(app)
        harness = InProcess(client, worker)
        made.append((harness, client))
        return harness

    yield make
    for harness, _client in made:
        harness.worker.shutdown(grace_seconds=5)
    if made:
        faults.record_leaks("in-process moto", faults.scan_aws(None, TEST_PASSWORD))
    get_settings.cache_clear()
