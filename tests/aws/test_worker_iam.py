"""The worker role in infra/resources.yaml allows every AWS call a worker really makes, and the calls need no more.

Every boto call of in-process workers (moto) is recorded while they run jobs to their end (finished, failed,
given back on a spot interruption), sweep the dead-letter queue and meet a poison message; each call's IAM
action must be in the worker role's policy.  So removing an action the worker needs (or a code change that
makes the worker call something new) fails here, not on a deployed host.
"""

from __future__ import annotations

import threading

import botocore.client
import pytest

from chalicelib.stores.queue import JobMessage
from tests.support import worker_jobs
from tests.support.fake_builders import QuickBuilder, UntilAbortedBuilder
from tests.support.infra import INFRA, check_template
from tests.support.probes import run_once
from tests.support.services import stores
from worker.job.loop import Worker

# API operations whose IAM action has another name (a transaction is authorized per item: TRANSACTION_ITEM_ACTIONS)
ACTION_OF = {
    "s3:HeadObject": "s3:GetObject",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjects": "s3:ListBucket",
}
TRANSACTION_ITEM_ACTIONS = {
    "Put": "dynamodb:PutItem",
    "Update": "dynamodb:UpdateItem",
    "Delete": "dynamodb:DeleteItem",
    "ConditionCheck": "dynamodb:ConditionCheckItem",
}


class Recorder:
    def __init__(self) -> None:
        self.on = False
        self.actions: set[str] = set()
        self._lock = threading.Lock()

    def wrap(self, original):
        recorder = self

        def _make_api_call(client, operation_name, api_params):
            if recorder.on:
                prefix = client.meta.service_model.signing_name or client.meta.service_model.endpoint_prefix
                action = f"{prefix}:{operation_name}"
                if action == "dynamodb:TransactWriteItems":
                    actions = {TRANSACTION_ITEM_ACTIONS[kind] for item in api_params["TransactItems"] for kind in item}
                else:
                    actions = {ACTION_OF.get(action, action)}
                with recorder._lock:
                    recorder.actions |= actions
            return original(client, operation_name, api_params)

        return _make_api_call


@pytest.fixture
def recorder(aws_env, monkeypatch):
    worker_jobs.set_env(
        monkeypatch,
        BOATYARD_VISIBILITY_TIMEOUT_SECONDS=30,
        BOATYARD_HEARTBEAT_SECONDS=1,
        BOATYARD_ALLOW_PRIVATE_REGISTRIES="true",  # the jobs name a 127.0.0.1 registry
        DOCKER_HOST="unix:///nonexistent/docker.sock",
    )
    made = Recorder()
    monkeypatch.setattr(
        botocore.client.BaseClient, "_make_api_call", made.wrap(botocore.client.BaseClient._make_api_call)
    )
    return made


def test_every_call_of_a_worker_is_allowed_by_its_role(recorder, test_password):
    finished = worker_jobs.submit(
        "127.0.0.1:5000/t/iam-ok", dockerfile="FROM scratch\n", username="u", password=test_password
    )
    bad_archive = worker_jobs.submit(
        "127.0.0.1:5000/t/iam-bad", archive=b"not a tar archive", username="u", password=test_password
    )
    sqs = stores().clients.client("sqs")
    sqs.send_message(QueueUrl=stores().queue.queue_url(), MessageBody="poison")
    stuck = worker_jobs.submit("127.0.0.1:5000/t/iam-dlq", dockerfile="FROM scratch\n", copies=0)
    stores().jobs.claim(stuck, "dead-worker", -1, 3)  # live, lease expired: the sweep fails it
    sqs.send_message(QueueUrl=stores().queue.dead_letter_url(), MessageBody=JobMessage(stuck, 0, "").to_body())

    recorder.on = True
    worker = Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600, builder=QuickBuilder())
    try:
        worker_jobs.run_until_terminal(worker, finished, timeout=60)
        worker_jobs.run_until_terminal(worker, bad_archive, timeout=60)
        run_once(worker, wait_seconds=0)
        assert worker.sweep_dead_letters() == 1
    finally:
        worker.shutdown(grace_seconds=5)

    # a build given back on a spot interruption (lease released, message made visible)
    recorder.on = False
    interrupted = worker_jobs.submit(
        "127.0.0.1:5000/t/iam-spot", dockerfile="FROM scratch\n", username="u", password=test_password
    )
    recorder.on = True
    builder = UntilAbortedBuilder()
    spot_worker = Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600, builder=builder)
    futures = spot_worker.poll(0)
    assert futures and builder.started.wait(30)
    spot_worker.request_stop(grace_seconds=0, interrupted=True)
    spot_worker.shutdown()
    recorder.on = False
    assert worker_jobs.status(interrupted) == "Building"  # given back, still live

    template = check_template.load_template(INFRA / "resources.yaml")
    allowed = check_template.actions_of(check_template.role_policy_documents(template, "WorkerRole"))
    assert recorder.actions <= allowed, recorder.actions - allowed
    # the recording saw the worker's real work (this test can fail)
    # log chunks: fenced transactions (a ConditionCheck on the job item + Updates creating new chunk keys)
    assert {"dynamodb:UpdateItem", "dynamodb:ConditionCheckItem", "kms:Decrypt", "s3:GetObject",
            "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"} <= recorder.actions  # fmt: skip
    assert "dynamodb:PutItem" not in recorder.actions and "s3:DeleteObject" not in recorder.actions
