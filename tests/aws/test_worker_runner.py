"""The worker against moto (no Docker needed): claims, message handling, failures before the build, DLQ sweep."""

from __future__ import annotations

import tarfile
import threading
import time

import pytest

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.jobs import Phase
from chalicelib.stores.queue import JobMessage
from devstack import hostile
from tests.support import worker_jobs
from tests.support.archives import make_tar
from tests.support.probes import run_once
from tests.support.services import stores
from worker.job.loop import DLQ_REASON, Worker
from worker.job.runner import Outcome


@pytest.fixture
def env(aws_env, monkeypatch, archive_server):
    worker_jobs.set_env(
        monkeypatch,
        BOATYARD_GITHUB_ARCHIVE_BASE=archive_server.base_url,
        BOATYARD_ALLOW_PRIVATE_URLS="true",
        BOATYARD_ALLOW_PRIVATE_REGISTRIES="true",  # the test registry is on 127.0.0.1
        BOATYARD_VISIBILITY_TIMEOUT_SECONDS=30,
        BOATYARD_HEARTBEAT_SECONDS=1,
        DOCKER_HOST="unix:///nonexistent/docker.sock",  # these jobs must fail before any Docker call
    )
    return aws_env


@pytest.fixture
def worker(env):
    made = Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600)
    yield made
    made.shutdown(grace_seconds=2)


def _queue_counts() -> tuple[int, int]:
    attrs = stores().queue.attributes()
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def _one(worker: Worker):
    [result] = run_once(worker, wait_seconds=1)
    return result


def test_tar_url_refused_by_the_ssrf_guard(worker, archive_server, monkeypatch, test_password):
    worker_jobs.set_env(monkeypatch, BOATYARD_ALLOW_PRIVATE_URLS="false")
    worker = Worker(stores(), poll_wait_seconds=0)
    url = archive_server.add_file("guarded.tar.gz", make_tar({"Dockerfile": "FROM scratch\n"}))
    job_id = worker_jobs.submit("127.0.0.1:5000/t/x", tar_url=url, username="u", password=test_password)
    result = _one(worker)
    assert result.outcome == Outcome.FAILED
    status = worker_jobs.status(job_id)
    assert status.startswith("Failed: refused to download from 127.0.0.1: it resolves to 127.0.0.1, a loopback address")
    assert "/files/guarded.tar.gz" not in archive_server.requests
    assert worker_jobs.full_log(job_id).rstrip().endswith(status.replace("Failed: ", "[boatyard] Failed: "))
    assert _queue_counts() == (0, 0)


def test_missing_github_tag_says_so(worker, archive_server):
    archive_server.add_repo("octo", "exists", "v1", {"Dockerfile": "FROM scratch\n"})
    job_id = worker_jobs.submit("octo/exists", github=("octo", "exists", "v404"))
    assert _one(worker).outcome == Outcome.FAILED
    assert worker_jobs.status(job_id) == (
        "Failed: GitHub repository octo/exists or tag v404 not found; check them (a private repository needs a github_token)"
    )


def test_tar_url_404_fails_with_the_status(worker, archive_server):
    job_id = worker_jobs.submit("u/app", tar_url=f"{archive_server.base_url}/files/absent.tar.gz")
    _one(worker)
    assert worker_jobs.status(job_id) == (
        f"Failed: could not download {archive_server.base_url}/files/absent.tar.gz: the server answered HTTP 404 Not Found"
    )


@pytest.mark.parametrize(
    "files, reason",
    [
        ({"README": "no dockerfile"}, "Failed: no Dockerfile at the root of the archive"),
        (
            {"Dockerfile": "FROM x", "../escape": "x"},
            "Failed: the archive holds a path that leaves the build context ('../escape') in its name",
        ),
    ],
)
def test_bad_uploaded_archives_fail_with_a_reason(worker, files, reason):
    job_id = worker_jobs.submit("u/app", archive=make_tar(files))
    assert _one(worker).outcome == Outcome.FAILED
    assert worker_jobs.status(job_id) == reason
    job = stores().jobs.get_job(job_id)
    assert job.attempt == 1 and job.finished_at


def test_expired_context_fails_clearly(worker):
    from chalicelib.stores import contexts

    job_id = worker_jobs.submit("u/app", dockerfile="FROM x\n")
    stores().contexts.delete(contexts.context_key(job_id))
    _one(worker)
    assert "no longer stored" in worker_jobs.status(job_id)


def test_poison_message_is_left_for_the_dead_letter_queue(worker):
    stores().clients.client("sqs").send_message(QueueUrl=stores().queue.queue_url(), MessageBody="{not json")
    result = _one(worker)
    assert result.outcome == Outcome.POISON
    assert _queue_counts() == (0, 1)  # not deleted: it comes back and finally goes to the DLQ


@pytest.mark.parametrize("state", ["finished", "missing"])
def test_messages_of_terminal_or_unknown_jobs_are_deleted(worker, state):
    if state == "missing":
        stores().queue.send(JobMessage("00000000-0000-4000-8000-000000000000", 0, ""))
    else:
        job_id = worker_jobs.submit("u/app", dockerfile="FROM x\n")
        stores().jobs.fail(job_id, "done elsewhere")
    assert _one(worker).outcome == Outcome.DONE_ALREADY
    assert _queue_counts() == (0, 0)


def test_busy_job_is_not_run_and_its_message_waits_for_the_lease(worker):
    job_id = worker_jobs.submit("u/app", dockerfile="FROM x\n")
    stores().jobs.claim(job_id, "other-worker", 30, 3)
    result = _one(worker)
    assert result.outcome == Outcome.BUSY
    assert _queue_counts() == (0, 1)
    job = stores().jobs.get_job(job_id)
    assert job.lease_owner == "other-worker" and job.attempt == 1


def test_job_queued_too_long_fails_on_claim(worker, monkeypatch):
    worker_jobs.set_env(monkeypatch, BOATYARD_QUEUE_TIMEOUT_SECONDS=1)
    worker = Worker(stores(), poll_wait_seconds=0)
    job_id = worker_jobs.submit("u/app", dockerfile="FROM x\n")
    time.sleep(1.5)
    assert _one(worker).outcome == Outcome.FAILED
    assert worker_jobs.status(job_id) == "Failed: the job waited in the queue longer than 1 s; submit the build again"
    assert _queue_counts() == (0, 0)


def test_redelivery_after_the_last_attempt_fails_the_job(worker):
    job_id = worker_jobs.submit("u/app", dockerfile="FROM x\n")
    for n in range(3):  # three workers died holding it (their leases expired)
        stores().jobs.claim(job_id, f"dead-{n}", -1, 3)
    result = _one(worker)
    assert result.outcome == Outcome.DONE_ALREADY
    assert worker_jobs.status(job_id).startswith("Failed: the build was interrupted 3 times")
    assert _queue_counts() == (0, 0)


def test_dead_letter_sweep_fails_live_jobs(worker):
    stuck = worker_jobs.submit("u/app", dockerfile="FROM x\n")
    stores().jobs.claim(stuck, "dead-worker", -1, 3)  # live, lease expired
    held = worker_jobs.submit("u/app2", dockerfile="FROM x\n")
    stores().jobs.claim(held, "live-worker", 60, 3)  # a worker holds it right now
    done = worker_jobs.submit("u/app3", dockerfile="FROM x\n")
    stores().jobs.fail(done, "already failed")
    dlq = stores().queue.dead_letter_url()
    sqs = stores().clients.client("sqs")
    for job_id in (stuck, held, done):
        sqs.send_message(QueueUrl=dlq, MessageBody=JobMessage(job_id, 0, "").to_body())
    assert worker.sweep_dead_letters() == 1
    assert worker_jobs.status(stuck) == f"Failed: {DLQ_REASON}"
    assert stores().jobs.get_job(held).phase == Phase.FETCHING  # left alone while its lease is live
    assert worker_jobs.status(done) == "Failed: already failed"
    left = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessagesNotVisible"])
    assert left["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "1"  # only the held job's message remains


def test_only_as_many_messages_as_free_slots_are_received(worker, monkeypatch):
    release = threading.Event()
    started: list[str] = []

    def slow_process(delivery, control=None):
        started.append(delivery.message.job_id)
        release.wait(20)

    monkeypatch.setattr(worker.runner, "process", slow_process)
    for i in range(3):
        worker_jobs.submit(f"u/app{i}", dockerfile="FROM x\n")
    first = worker.poll(wait_seconds=1)
    while len(first) < 2:
        first += worker.poll(wait_seconds=1)
    assert worker.free_slots() == 0
    assert worker.poll(wait_seconds=1) == []
    assert _queue_counts() == (1, 2)  # the third message stays available to other workers
    release.set()
    for future in first:
        future.result(timeout=10)
    assert worker.free_slots() == 2


@pytest.mark.parametrize(
    "archive, reason",
    [
        (
            lambda: hostile.extended_header_bomb(600),
            "Failed: the archive holds a GNU long-name header of 629145600 bytes; "
            "extended headers may be at most 65536 bytes",
        ),
        (
            lambda: hostile.extended_header_bomb(600, tarfile.XHDTYPE),
            "Failed: the archive holds a PAX header of 629145600 bytes; extended headers may be at most 65536 bytes",
        ),
        (
            lambda: hostile.bz2_bomb(64),
            "Failed: the archive is bzip2-compressed; only tar and tar.gz (gzip) archives are accepted",
        ),
    ],
    ids=["gnu-long-name-600MiB", "pax-600MiB", "bz2-bomb"],
)
def test_memory_bombs_fail_the_job_and_the_worker_goes_on(worker, archive, reason, monkeypatch):
    job_id = worker_jobs.submit("u/app", archive=archive())
    assert _one(worker).outcome == Outcome.FAILED
    assert worker_jobs.status(job_id) == reason
    assert worker_jobs.full_log(job_id).rstrip().endswith(reason.replace("Failed: ", "[boatyard] Failed: "))

    # the same worker takes the next job and its context gets through to the build step (no Docker here)
    def build(context, *_args, **_kw):
        raise BuildFailed(
            f"reached the build step with {sorted(set(tarfile.open(fileobj=context, mode='r:').getnames()))}"
        )  # names once: the worker appends its owner-scoped Dockerfile

    monkeypatch.setattr(worker.builder, "build", build)
    monkeypatch.setattr(worker.builder, "remove_image", lambda *_a, **_kw: None)
    good = worker_jobs.submit("u/app", archive=make_tar({"Dockerfile": "FROM scratch\n"}))
    assert _one(worker).outcome == Outcome.FAILED
    assert worker_jobs.status(good) == "Failed: reached the build step with ['Dockerfile']"


def test_a_trigger_job_whose_archive_is_of_another_commit_fails(worker, archive_server):
    """A trigger's job builds exactly the pushed commit: an archive naming another commit is refused."""

    pushed, served = "1" * 40, "2" * 40
    path = archive_server.add_commit("octo", "pinned", pushed, {"Dockerfile": "FROM scratch\n"})
    archive_server._blobs[path] = archive_server._blobs[
        archive_server.add_commit("octo", "other", served, {"Dockerfile": "FROM scratch\n"})
    ]
    job_id = worker_jobs.submit("octo/pinned", github=("octo", "pinned", pushed))
    stores().clients.client("dynamodb").update_item(
        TableName=stores().settings.table_name,
        Key={"pk": {"S": job_id}, "sk": {"S": "job"}},
        UpdateExpression="SET #c = :c, trigger_id = :t, #r = :r",
        ExpressionAttributeNames={"#c": "commit", "#r": "ref"},
        ExpressionAttributeValues={":c": {"S": pushed}, ":t": {"S": "t"}, ":r": {"S": "refs/heads/main"}},
    )
    assert _one(worker).outcome == Outcome.FAILED
    assert worker_jobs.status(job_id) == (
        f"Failed: the archive the git host sent is of commit {served}, not the pushed commit {pushed}"
    )
