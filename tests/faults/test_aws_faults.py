"""AWS faults injected around the worker: DynamoDB throttling and UnprocessedItems, SQS/KMS errors.

In process: API and worker against moto, real Docker builds pushed to the test registry.
Errors are injected with botocore ``before-call`` hooks on the shared clients (the caller sees
them as after botocore's own retries ran out).  For every scenario: while the fault is active
the job is terminal or its message is still queued (never lost); once the fault is gone the
job ends Finished or ``Failed: <clear reason>`` within a bounded time (never stuck live).
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from typing import Any

import pytest

from tests.nonce import RUN_NONCE
from tests.support.canary import TEST_PASSWORD
from tests.support.faults import inject_aws_errors, report
from tests.support.services import stores

pytestmark = [pytest.mark.docker, pytest.mark.slow]

VISIBILITY = 4  # short, so a message whose worker gave up comes back fast


@dataclasses.dataclass
class Scenario:
    name: str
    service: str
    operations: list[str]
    code: str = "ProvisionedThroughputExceededException"
    times: int | None = None  # None: for the whole faulty run
    unprocessed: bool = False
    expect: str = "finished-or-failed"  # or "finished"
    only: str | None = None  # inject only into calls whose request body contains this text


def _body_has(text: str):
    def predicate(params: dict) -> bool:
        body = params.get("body") or b""
        return text in (body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body))

    return predicate


SCENARIOS = [
    Scenario("log BatchWriteItem throttled throughout", "dynamodb", ["dynamodb.BatchWriteItem"]),
    Scenario(
        "log BatchWriteItem UnprocessedItems x3",
        "dynamodb",
        ["dynamodb.BatchWriteItem"],
        times=3,
        unprocessed=True,
        expect="finished",
    ),
    Scenario(
        "log BatchWriteItem UnprocessedItems throughout", "dynamodb", ["dynamodb.BatchWriteItem"], unprocessed=True
    ),
    Scenario("UpdateItem throttled throughout (claim, lease, transitions)", "dynamodb", ["dynamodb.UpdateItem"]),
    Scenario("UpdateItem throttled x2", "dynamodb", ["dynamodb.UpdateItem"], times=2),
    Scenario(
        "phase-transition UpdateItem throttled throughout (after the claim)",
        "dynamodb",
        ["dynamodb.UpdateItem"],
        only=":target",
    ),
    Scenario(
        "lease-renewal UpdateItem throttled throughout",
        "dynamodb",
        ["dynamodb.UpdateItem"],
        only="SET #expires = :until",
        expect="finished",
    ),
    Scenario("GetItem/Query throttled throughout", "dynamodb", ["dynamodb.GetItem", "dynamodb.Query"]),
    Scenario(
        "SQS ChangeMessageVisibility throttled (heartbeat)",
        "sqs",
        ["sqs.ChangeMessageVisibility"],
        code="ThrottlingException",
        expect="finished",
    ),
    Scenario("SQS DeleteMessage failing", "sqs", ["sqs.DeleteMessage"], code="ThrottlingException", expect="finished"),
    Scenario("KMS Decrypt throttled", "kms", ["kms.Decrypt"], code="ThrottlingException"),
]


def _queue_total(job_id: str) -> int:

    attrs = stores().queue.attributes()
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _run_until_terminal(harness, job_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = harness.status(job_id)
        if status["Phase"] in ("finished", "failed", "cancelled"):
            return status
        harness.run_queue(rounds=3)
        time.sleep(0.5)
    return harness.status(job_id)


def _clear(status: dict[str, Any]) -> bool:
    text = status["Status"]
    if text == "Finished":
        return True
    return (
        text.startswith("Failed: ")
        and len(text) > 20
        and "unknown error" not in text
        and "Traceback" not in text
        and TEST_PASSWORD not in text
    )


@pytest.fixture
def faulty(inproc, registry, base_image, docker_host):
    harness = inproc(
        BOATYARD_VISIBILITY_TIMEOUT_SECONDS=str(VISIBILITY),
        BOATYARD_HEARTBEAT_SECONDS="1",
        BOATYARD_LOG_FLUSH_SECONDS="0.2",
        BOATYARD_MAX_ATTEMPTS="3",
        DOCKER_HOST=docker_host,
    )
    harness.repository = f"faults/aws-{uuid.uuid4().hex[:8]}"
    return harness


def _submit(harness, registry, base_image, n: int) -> str:
    return harness.submit(
        {
            "image_name": f"{registry.host}/{harness.repository}:s{n}",
            "dockerfile": f"FROM {base_image}\nRUN : {RUN_NONCE} && echo aws-fault-{n} && sleep 2\n",
            "username": registry.username,
            "password": registry.password,
        }
    )


def test_aws_faults_never_lose_or_strand_a_job(faulty, registry, base_image):

    harness = faulty
    rows, problems, jobs = [], [], []
    for n, scenario in enumerate(SCENARIOS):
        job_id = _submit(harness, registry, base_image, n)
        jobs.append(job_id)
        client = stores().clients.client(scenario.service)
        with inject_aws_errors(
            client,
            scenario.operations,
            code=scenario.code,
            times=scenario.times,
            unprocessed=scenario.unprocessed,
            predicate=_body_has(scenario.only) if scenario.only else None,
        ) as stats:
            crashed = ""
            try:
                harness.run_queue(rounds=1)
            except Exception as exc:  # noqa: BLE001 - a crash of the runner is itself a finding below
                crashed = type(exc).__name__
        # right after the faulty run: the job is terminal, or its message is still in the queue
        during = harness.status(job_id)
        kept = during["Phase"] in ("finished", "failed", "cancelled") or _queue_total(job_id) > 0
        final = _run_until_terminal(harness, job_id, timeout=VISIBILITY * 3 * 3 + 30)
        terminal = final["Phase"] in ("finished", "failed", "cancelled")
        ok = kept and terminal and _clear(final) and (scenario.expect != "finished" or final["Status"] == "Finished")
        if final["Status"] == "Finished":
            log_text = harness.logs(job_id)
            ok = ok and f"aws-fault-{n}" in log_text and "Successfully built" in log_text
        rows.append(
            f"{scenario.name}: {stats.injected} injected -> {final['Status'][:70]!r} (attempt {final.get('Attempt')})"
        )
        if not ok:
            problems.append(
                f"{scenario.name}: message kept={kept}, crashed={crashed or 'no'}, final={final['Status']!r}, "
                f"phase={final['Phase']}"
            )
    finished = sum(1 for r in rows if "'Finished'" in r)
    line = report(
        f"AWS FAULTS: {len(SCENARIOS)} scenarios, {len(SCENARIOS) - len(problems)} ended Finished or clearly Failed "
        f"with the message never lost ({finished} Finished), {len(problems)} not"
    )
    for row in rows:
        report(f"  AWS FAULT {row}")
    assert not problems, line + "\n" + "\n".join(problems)
    # a message whose delete failed is still there: its next delivery finds the job over and deletes it
    before = {j: harness.status(j) for j in jobs}
    deadline = time.monotonic() + VISIBILITY * 4
    while _queue_total("") and time.monotonic() < deadline:
        harness.run_queue(rounds=2)
        time.sleep(0.5)
    assert _queue_total("") == 0, "messages left in the queue after every job ended"
    after = {j: harness.status(j) for j in jobs}
    assert [(a["Status"], a["Attempt"]) for a in after.values()] == [
        (b["Status"], b["Attempt"]) for b in before.values()
    ], "a redelivery changed a job that was already over"


def test_receive_throttling_only_delays_the_worker_loop(faulty, registry, base_image):
    """The poll loop backs off on SQS errors and picks the job up once SQS answers again."""

    harness = faulty
    job_id = _submit(harness, registry, base_image, 99)
    worker = harness.worker
    with inject_aws_errors(
        stores().clients.client("sqs"), ["sqs.ReceiveMessage"], code="ThrottlingException", times=3
    ) as stats:
        thread = threading.Thread(target=worker.run_forever, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline and harness.status(job_id)["Phase"] not in ("finished", "failed"):
                time.sleep(0.5)
        finally:
            worker.request_stop()
            thread.join(timeout=60)
    status = harness.status(job_id)
    report(f"AWS FAULTS: ReceiveMessage throttled x{stats.injected} -> loop backed off, job {status['Status']!r}")
    assert stats.injected == 3
    assert status["Status"] == "Finished", status
    assert not thread.is_alive()
