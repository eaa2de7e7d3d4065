"""Job store leases and conditional writes, log chunks, sealing — against moto."""

import time

import pytest
from botocore.exceptions import ClientError

from chalicelib.domain.errors import JobNotFound, TransitionConflict
from chalicelib.domain.jobs import Job, Phase, SourceKind
from chalicelib.stores import jobs as jobstore
from chalicelib.stores import logs as logstore
from chalicelib.stores import sealing
from chalicelib.stores.jobs import ClaimOutcome, JobStore
from tests.support.services import reconfigure, stores


def _new_job(job_id="11111111-2222-4333-8444-555555555555"):
    return stores().jobs.create_job(Job(job_id, "user/image", SourceKind.DOCKERFILE, {"context_key": "k"}))


def test_claim_then_walk_to_finished(aws_env):
    job = _new_job()
    result = stores().jobs.claim(job.job_id, "w1", 60, 3)
    assert result.outcome == ClaimOutcome.CLAIMED and result.job.attempt == 1
    assert result.job.phase == Phase.FETCHING
    stores().jobs.transition(job.job_id, "w1", Phase.FETCHING, Phase.BUILDING)
    stores().jobs.transition(job.job_id, "w1", Phase.BUILDING, Phase.PUSHING)
    done = stores().jobs.transition(job.job_id, "w1", Phase.PUSHING, Phase.FINISHED, image_digest="sha256:abc")
    assert done.status_body()["Status"] == "Finished"
    assert done.status_body()["ImageDigest"] == "sha256:abc"


def test_duplicate_delivery_is_busy_and_cannot_move_the_job(aws_env):
    job = _new_job()
    assert stores().jobs.claim(job.job_id, "w1", 60, 3).outcome == ClaimOutcome.CLAIMED
    second = stores().jobs.claim(job.job_id, "w2", 60, 3)
    assert second.outcome == ClaimOutcome.BUSY
    with pytest.raises(TransitionConflict):
        stores().jobs.transition(job.job_id, "w2", Phase.FETCHING, Phase.BUILDING)
    with pytest.raises(TransitionConflict):
        stores().jobs.transition(job.job_id, "w1", Phase.BUILDING, Phase.PUSHING)  # wrong current phase
    assert stores().jobs.get_job(job.job_id).phase == Phase.FETCHING


def test_expired_lease_is_retried_then_exhausted(aws_env):
    job = _new_job()
    for attempt in (1, 2):
        claimed = stores().jobs.claim(job.job_id, f"w{attempt}", -1, 2)  # lease already expired
        assert claimed.outcome == ClaimOutcome.CLAIMED and claimed.job.attempt == attempt
    final = stores().jobs.claim(job.job_id, "w3", 60, 2)
    assert final.outcome == ClaimOutcome.EXHAUSTED
    assert final.job.phase == Phase.FAILED
    assert "interrupted 2 times" in final.job.status_body()["Status"]
    assert stores().jobs.claim(job.job_id, "w4", 60, 2).outcome == ClaimOutcome.TERMINAL


def test_release_gives_back_without_counting(aws_env):
    job = _new_job()
    stores().jobs.claim(job.job_id, "w1", 60, 3)
    assert stores().jobs.release_lease(job.job_id, "w1")
    again = stores().jobs.claim(job.job_id, "w2", 60, 3)
    assert again.outcome == ClaimOutcome.CLAIMED and again.job.attempt == 1


def test_unknown_job_is_not_found(aws_env):
    with pytest.raises(JobNotFound):
        stores().jobs.get_job("00000000-0000-4000-8000-000000000000")


def test_log_writer_batches_orders_and_caps(aws_env, monkeypatch):
    job = _new_job()
    monkeypatch.setenv("BOATYARD_LOG_CAP_BYTES", str(200_000))

    reconfigure()
    lines = [f"line {i:06d}\n" for i in range(30000)]  # 360,000 bytes
    with stores().logs.writer(job.job_id) as writer:
        for line in lines:
            writer.write(line)
    page = stores().logs.read_logs(job.job_id, 0, max_bytes=10**9)
    assert page.text.startswith("".join(lines[:1000]))
    assert page.text.endswith(logstore.truncation_marker(200_000))
    kept = page.text[: -len(logstore.truncation_marker(200_000))]
    assert len(kept.encode()) == 200_000 and "".join(lines).startswith(kept)
    # batched: far fewer requests than lines, ≤ 1 per 16 KB written
    assert writer.batch_calls <= 200_000 // (16 * 1024) + 2


def test_log_cursor_returns_only_newer_text(aws_env):
    job = _new_job()
    writer = stores().logs.writer(job.job_id)
    writer.write("first\n")
    writer.flush()
    page1 = stores().logs.read_logs(job.job_id, 0)
    writer.write("second\n")
    writer.close()
    page2 = stores().logs.read_logs(job.job_id, page1.next_cursor)
    assert (page1.text, page2.text) == ("first\n", "second\n")
    assert stores().logs.read_logs(job.job_id, page2.next_cursor).text == ""


def test_log_writer_flushes_on_age(aws_env, monkeypatch):
    job = _new_job()
    monkeypatch.setenv("BOATYARD_LOG_FLUSH_SECONDS", "0.2")

    reconfigure()
    writer = stores().logs.writer(job.job_id).start()
    writer.write("quiet line\n")
    deadline = time.time() + 5
    while time.time() < deadline and not stores().logs.read_logs(job.job_id).text:
        time.sleep(0.1)
    writer.close()
    assert stores().logs.read_logs(job.job_id).text == "quiet line\n"


def test_sealed_credentials_round_trip_and_hide_password(aws_env, test_password):
    creds = sealing.Credentials("tester", test_password, "t@example.com")
    sealed = stores().sealing.seal("job-1", creds)
    assert test_password not in sealed and test_password not in repr(creds)
    assert stores().sealing.unseal("job-1", sealed) == creds
    with pytest.raises(ClientError):  # KMS refuses: another encryption context
        stores().sealing.unseal("job-2", sealed)  # bound to its job by the encryption context


def test_a_lease_ending_in_the_claims_own_second_is_busy_not_exhausted(aws_env, monkeypatch):
    """A redelivery that arrives in the second the dead worker's lease ends must not fail the job.

    The claim's condition compares whole seconds (``lease_expires < int(now)``); before the fix the
    fallback compared with the fractional ``now`` and read "lease free, no attempts left" for a job
    on attempt 1 of 3, failing it as exhausted (seen as a random failure of the SIGKILL fault test).
    """
    job = _new_job()
    assert stores().jobs.claim(job.job_id, "w1", 60, 3).outcome == ClaimOutcome.CLAIMED
    lease_end = stores().jobs.get_job(job.job_id).lease_expires
    clock = iter([lease_end + 0.9])  # the claim's own reading; later readings are a second on
    monkeypatch.setattr(jobstore.time, "time", lambda: next(clock, lease_end + 1.1))
    second = stores().jobs.claim(job.job_id, "w2", 60, 3)
    assert second.outcome == ClaimOutcome.BUSY
    assert stores().jobs.get_job(job.job_id).phase == Phase.FETCHING
    monkeypatch.setattr(jobstore.time, "time", lambda: lease_end + 1.5)
    third = stores().jobs.claim(job.job_id, "w2", 60, 3)
    assert third.outcome == ClaimOutcome.CLAIMED and third.job.attempt == 2


def _fenced(job_id: str, owner: str, attempt: int) -> logstore.LogWriter:
    """The writer a worker makes for its claimed attempt (see worker/job/runner.py)."""
    return stores().logs.writer(job_id, fence=logstore.LogFence(owner, attempt))


def test_a_stale_worker_cannot_overwrite_a_newer_attempts_log(aws_env):
    """Issue 11 item 4: the first attempt's worker lost its lease but still flushes; its chunks must not land."""
    job = _new_job()
    assert stores().jobs.claim(job.job_id, "w1", -1, 3).job.attempt == 1  # a lease that has already run out
    stale = _fenced(job.job_id, "w1", 1)
    stale.write("attempt 1 starts\n")
    stale.flush()
    assert stores().jobs.claim(job.job_id, "w2", 60, 3).job.attempt == 2
    fresh = _fenced(job.job_id, "w2", 2)
    fresh.write("attempt 2 starts\n")
    fresh.flush()
    stale.write("stale output from attempt 1\n")  # same next sequence number as attempt 2's chunk
    with pytest.raises(TransitionConflict):
        stale.flush()
    stale.write("more stale output\n")  # dropped: this writer is done
    stale.close()
    fresh.write("attempt 2 goes on\n")
    fresh.close()
    text = stores().logs.read_logs(job.job_id, 0).text
    assert text == "attempt 1 starts\nattempt 2 starts\nattempt 2 goes on\n"
    assert [c.seq for c in stores().logs.iter_chunks(job.job_id, 0)] == [1, 2, 3]  # the DESIGN layout: log#<seq>


def test_no_writer_extends_a_log_once_the_job_is_over(aws_env):
    job = _new_job()
    stores().jobs.claim(job.job_id, "w1", 60, 3)
    writer = _fenced(job.job_id, "w1", 1).start()
    writer.write("building\n")
    writer.flush()
    stores().jobs.fail(
        job.job_id, "cancelled by the user", target=Phase.CANCELLED
    )  # the API now calls the log Complete
    writer.write("still running after the cancel\n")
    with pytest.raises(TransitionConflict):
        writer.flush()
    writer.abandon()
    assert stores().logs.read_logs(job.job_id, 0).text == "building\n"


def test_abandon_drops_the_buffer_without_writing(aws_env):
    job = _new_job()
    stores().jobs.claim(job.job_id, "w1", 60, 3)
    writer = _fenced(job.job_id, "w1", 1).start()
    writer.write("buffered, never flushed\n")
    writer.abandon()
    writer.write("after abandon\n")
    writer.close()
    assert stores().logs.read_logs(job.job_id, 0).text == ""
    assert writer.batch_calls == 0


def test_a_log_transaction_holding_the_job_item_does_not_fail_a_transition(aws_env, monkeypatch):
    """A plain write that meets a log transaction is refused with TransactionConflictException: tried again."""
    from botocore.exceptions import ClientError

    job = _new_job()
    stores().jobs.claim(job.job_id, "w1", 60, 3)
    real = stores().clients.client("dynamodb")
    refusals = [2]

    class Busy:
        def __getattr__(self, name):
            return getattr(real, name)

        def update_item(self, **kwargs):
            if refusals[0]:
                refusals[0] -= 1
                raise ClientError({"Error": {"Code": "TransactionConflictException", "Message": "busy"}}, "UpdateItem")
            return real.update_item(**kwargs)

    busy = JobStore(Busy(), stores().settings, stores().notifications, stores().quotas)
    assert busy.transition(job.job_id, "w1", Phase.FETCHING, Phase.BUILDING).phase == Phase.BUILDING
    assert refusals == [0]


def test_concurrent_claims_of_one_job_admit_exactly_one(aws_env):
    """Four threads of a worker claim the same job at once (a duplicate delivery): one wins.

    DynamoDB applies a conditional update atomically; the test stack must too (devstack.moto_atomic),
    or a duplicate delivery is built twice at attempt 1 and the tests flake under load.
    """
    import threading
    import uuid

    for _ in range(20):
        job = _new_job(str(uuid.uuid4()))
        outcomes: list[str] = []
        threads = [
            threading.Thread(
                target=lambda w=w, job=job, outcomes=outcomes: outcomes.append(
                    stores().jobs.claim(job.job_id, f"w{w}", 60, 3).outcome.value
                )
            )
            for w in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(outcomes) == ["busy", "busy", "busy", "claimed"]
        assert stores().jobs.get_job(job.job_id).attempt == 1
