"""One delivery, from claim to a terminal phase (or a clean hand-back).

:meth:`JobRunner.process` is the whole life of a job in this worker:

claim (lease + attempt) → ``fetching`` → sanitize the context → ``building``
→ docker build → ``pushing`` → push with the job's own credentials →
``finished`` with the digest; the message is deleted once the job is terminal.
Any failure writes its reason as the last log line, flushes the log, then
fails the job (as the lease holder).  A job never stays live when this
returns, except when its lease was lost (another worker owns it) or the worker
is shutting down (the lease is released and the message given back).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import logging
import os
import tempfile
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.stores import jobs as jobstore, logs as logstore, queue, sealing
from chalicelib.stores.aws_errors import aws_error_code
from chalicelib.domain.build_options import BuildOptions
from chalicelib.domain.errors import BuildFailed, ServiceUnavailable, TransitionConflict
from chalicelib.domain.jobs import Job, Phase
from chalicelib.stores.jobs import ClaimOutcome
from chalicelib.stores.queue import Delivery
from chalicelib.domain.image_ref import InvalidReference, parse_image_ref
from chalicelib.domain.registry_hosts import registry_refusal
from chalicelib.stores.sealing import Credentials
from chalicelib.domain.settings import Settings
from worker.job import metrics
from worker.build.builder import Builder
from worker.build.buildplan import plan_build
from worker.build.buildkit import BuildKitBuilder, BuildKitOptions
from worker.build.dockerfile_features import prepare_for_buildkit
from worker.build.engines import BUILDKIT, apply_dockerfile, choose_engine, owner_of
from worker.job.control import AbortKind, Aborted, JobControl, Watchdog
from worker.job.heartbeat import Heartbeat
from worker.build.images import private_tag, registry_auths
from worker.redact import SECRETS, RedactingSink, Redactor
from worker.sources import describe_source, fetch_context

log = logging.getLogger(__name__)

MAX_VISIBILITY_SECONDS = 43200


class Outcome(str, enum.Enum):
    """What processing a delivery ended in."""

    FINISHED = "finished"  # built and pushed; message deleted
    FAILED = "failed"  # failed with a reason; message deleted
    BUSY = "busy"  # another worker holds the job; message left (hidden until its lease ends)
    DONE_ALREADY = "done_already"  # terminal, exhausted or missing job; message deleted
    POISON = "poison"  # not a job message; left for the dead-letter queue
    RELEASED = "released"  # worker shutting down; lease released, message given back
    LOST = "lost"  # the lease was lost mid-job; the other owner finishes it


@dataclasses.dataclass
class ProcessResult:
    """The outcome of one delivery, with figures for tests and benchmarks."""

    outcome: Outcome
    job_id: str | None = None
    reason: str | None = None
    digest: str | None = None
    log_batch_calls: int = 0
    log_bytes: int = 0
    seconds: float = 0.0
    delivery: Delivery | None = None


def _parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _aws_failure(exc: ClientError) -> str:
    """A failure reason a person can act on for an AWS error that outlived the retries."""
    operation = getattr(exc, "operation_name", "a request")
    return (
        f"the build service could not complete {operation} ({aws_error_code(exc) or 'error'}); "
        "this is on our side, not in your build: submit the build again"
    )


def _unseal(job: Job, sealed: str) -> Credentials:
    try:
        return sealing.unseal(job.job_id, sealed)
    except (ClientError, BotoCoreError, ValueError, TypeError) as exc:
        log.warning("job %s: credentials could not be unsealed (%s)", job.job_id, type(exc).__name__)
        raise BuildFailed("could not decrypt the registry credentials of this job; submit the build again") from None


class JobRunner:
    """Runs deliveries for one worker identity."""

    def __init__(self, settings: Settings, worker_id: str, builder: Builder) -> None:
        self.settings = settings
        self.worker_id = worker_id
        self.builder = builder
        self.buildkit = BuildKitBuilder(settings)

    # --- the message --------------------------------------------------------------------

    def _delete(self, delivery: Delivery) -> None:
        try:
            queue.delete(delivery.receipt_handle)
        except ClientError as exc:  # e.g. the handle expired: the next delivery finds the job terminal
            log.warning("could not delete message %s: %s", delivery.message_id, aws_error_code(exc))

    def _hide(self, delivery: Delivery, seconds: int) -> None:
        try:
            queue.extend(delivery.receipt_handle, max(0, min(seconds, MAX_VISIBILITY_SECONDS)))
        except ClientError as exc:
            log.warning("could not change visibility of message %s: %s", delivery.message_id, aws_error_code(exc))

    # --- entry point --------------------------------------------------------------------

    def process(self, delivery: Delivery, control: JobControl | None = None) -> ProcessResult:
        """Handle one delivery; see the module doc."""
        started = time.monotonic()
        result = self._process(delivery, control or JobControl())
        result.delivery = delivery
        result.seconds = time.monotonic() - started
        log.info(
            "delivery %s: job %s %s%s",
            delivery.message_id,
            result.job_id,
            result.outcome.value,
            f" ({result.reason})" if result.reason else "",
        )
        return result

    def _process(self, delivery: Delivery, control: JobControl) -> ProcessResult:
        message = delivery.message
        if message is None:
            log.warning(
                "message %s is not a job message (received %d times); leaving it for the dead-letter queue",
                delivery.message_id,
                delivery.receive_count,
            )
            return ProcessResult(Outcome.POISON)
        lease = self.settings.visibility_timeout_seconds
        claim = jobstore.claim(message.job_id, self.worker_id, lease, self.settings.max_attempts)
        if claim.outcome == ClaimOutcome.BUSY:
            remaining = int((claim.job.lease_expires if claim.job else 0) - time.time()) + 1
            self._hide(delivery, max(remaining, 1))
            return ProcessResult(Outcome.BUSY, message.job_id)
        if claim.outcome != ClaimOutcome.CLAIMED:
            self._delete(delivery)
            reason = claim.job.reason if claim.job and claim.outcome == ClaimOutcome.EXHAUSTED else None
            return ProcessResult(Outcome.DONE_ALREADY, message.job_id, reason=reason)
        assert claim.job is not None
        timings = metrics.JobTimings(claim.job)
        result = self._run(claim.job, delivery, message.sealed_credentials, control, timings)
        if self.settings.metrics_enabled:
            metrics.emit(timings, result.outcome.value, result.reason, result.log_bytes, self.settings.stack_name)
        return result

    # --- a claimed job ------------------------------------------------------------------

    def _run(
        self, job: Job, delivery: Delivery, sealed: str, control: JobControl, timings: metrics.JobTimings
    ) -> ProcessResult:
        settings = self.settings
        heartbeat = Heartbeat(
            job.job_id, self.worker_id, delivery.receipt_handle, control, settings.heartbeat_seconds,
            settings.visibility_timeout_seconds,
        ).start()
        redactor = Redactor()
        writer: logstore.LogWriter | None = None
        sink: RedactingSink | None = None
        built_image: str | None = None
        used_docker = False
        try:
            try:
                credentials = _unseal(job, sealed)
                redactor = Redactor.for_pairs(
                    credentials.secret_pairs(), [*credentials.secrets.values(), credentials.ssh]
                )
                SECRETS.add(redactor)
            except BuildFailed:
                credentials = None
            previous = logstore.stored_bytes(job.job_id) if job.attempt > 1 else 0
            writer = logstore.LogWriter(
                job.job_id, settings, already_written=previous, redact=redactor,
                fence=logstore.LogFence(self.worker_id, job.attempt),  # a stale worker cannot touch a newer attempt's log
            ).start()
            sink = RedactingSink(writer.write, redactor)
            if credentials is None:
                raise BuildFailed("could not decrypt the registry credentials of this job; submit the build again")
            if job.attempt > 1:
                sink.line(
                    f"[boatyard] attempt {job.attempt} of {settings.max_attempts}: the previous worker stopped; starting again"
                )
            if job.attempt == 1 and time.time() - _parse_iso(job.created_at) > settings.queue_timeout_seconds:
                raise BuildFailed(
                    f"the job waited in the queue longer than {settings.queue_timeout_seconds} s; submit the build again"
                )
            try:  # the API's parser: a reserved (job-private) registry is refused here as there
                ref = parse_image_ref(job.image_name)
            except InvalidReference as exc:
                raise BuildFailed(f"{job.image_name!r} is not a valid image name: {exc}") from None
            refused = None if settings.allow_private_registries else registry_refusal(ref.domain)
            if refused:  # the API refuses these too; a message from elsewhere must not get past the worker
                raise BuildFailed(f"{refused}; builds push only to registries on public addresses")
            bases = {host: (auth["username"], auth["password"]) for host, auth in credentials.registry_auths.items()}
            auths = registry_auths(ref, credentials.username, credentials.password, extra=bases)  # the job's own only
            for name in BuildOptions.from_item(job.options).secret_looking_args():
                sink.line(
                    f"[boatyard] warning: the build arg {name} looks like a secret; build args are kept in the "
                    "pushed image's history (docker history shows them): do not pass secrets as build args"
                )
            os.makedirs(settings.work_dir, exist_ok=True)
            tag_digests: dict[str, str] = {}
            with tempfile.TemporaryFile(dir=settings.work_dir, prefix=f"ctx-{job.job_id[:8]}-") as context:
                sink.line(f"[boatyard] fetching the build context from {describe_source(job)}")
                timings.enter("fetch")
                deadline = min(settings.fetch_deadline_seconds, settings.build_timeout_seconds)
                with Watchdog(control, deadline, f"fetching the build context from {describe_source(job)} "
                              f"did not finish within {deadline:g} s; it was stopped"):
                    stats = fetch_context(
                        job, context, settings, control, credentials.source_token, credentials.source_user
                    )
                    timings.context_bytes = stats.compressed_bytes
                if job.commit and stats.commit and stats.commit != job.commit:
                    raise BuildFailed(
                        f"the archive the git host sent is of commit {stats.commit}, not the pushed commit {job.commit}"
                    )
                context.seek(0)
                control.check()
                plan = plan_build(job, ref, stats, settings)
                engine, id_prefix = self._choose_engine(job, credentials, context, sink)
                jobstore.transition(job.job_id, self.worker_id, Phase.FETCHING, Phase.BUILDING)
                timings.enter("build")
                used_docker = True
                with Watchdog(control, settings.build_timeout_seconds):
                    built_image = private_tag(job.job_id, job.attempt)  # never the user's name: see Builder.publish
                    if engine == BUILDKIT:
                        options = BuildKitOptions(credentials.secrets, credentials.ssh, id_prefix, auths)
                        with self.builder.running_build():
                            image_id = self.buildkit.build(context, built_image, sink.write, control, options, plan=plan)
                    else:
                        image_id = self.builder.build(
                            context, built_image, sink.write, control, registry_auths=auths, plan=plan
                        )
                    sink.flush()
                    jobstore.transition(job.job_id, self.worker_id, Phase.BUILDING, Phase.PUSHING)
                    timings.enter("push")
                    digest = self.builder.publish(image_id, ref, credentials, sink.write, control)
                    sink.line(f"[boatyard] pushed {ref.reference} ({digest})")
                    for tag in plan.extra_tags:  # the same image under the job's extra tags
                        extra = dataclasses.replace(ref, tag=tag)
                        tag_digests[tag] = self.builder.publish(image_id, extra, credentials, sink.write, control)
                        sink.line(f"[boatyard] pushed {extra.reference} ({tag_digests[tag]})")
                    timings.enter("done")
            # The job's private tag goes before Finished is announced: after Finished nothing here
            # touches an image name.  A client pulling the pushed name gets this very image id;
            # untagging its last other name under that pull deleted the image the pull had just
            # found on the host, and the pulled tag pointed at nothing (see docs/design-notes.md).
            self.builder.remove_image(built_image)
            built_image = None
            sink.flush()
            writer.close()
            jobstore.transition(
                job.job_id, self.worker_id, Phase.PUSHING, Phase.FINISHED, image_digest=digest, tag_digests=tag_digests,
                source_commit=stats.commit or None,
            )
            self._delete(delivery)
            return self._result(Outcome.FINISHED, job, writer, digest=digest)
        except BuildFailed as exc:
            return self._fail(job, redactor(exc.message), delivery, sink, writer)
        except Aborted as exc:
            heartbeat.stop()  # before the message is given back: a late beat would hide it again
            return self._aborted(job, exc, delivery, sink, writer)
        except TransitionConflict:
            self._drop_log(writer)
            log.warning("job %s: the job changed under this worker (lease lost or cancelled); leaving it", job.job_id)
            return self._result(Outcome.LOST, job, writer)
        except ServiceUnavailable as exc:  # the job store or log store gave up after its retries
            log.exception("job %s: storage unavailable", job.job_id)
            return self._fail(job, f"{exc.message}; submit the build again", delivery, sink, writer)
        except ClientError as exc:  # an AWS service failed past botocore's retries
            log.exception("job %s: AWS error", job.job_id)
            return self._fail(job, _aws_failure(exc), delivery, sink, writer)
        except Exception as exc:  # a bug or an outage: never leave the job live
            log.exception("job %s: unexpected error", job.job_id)
            return self._fail(
                job, f"internal error in the worker ({type(exc).__name__}); it has been logged", delivery, sink, writer
            )
        finally:
            heartbeat.stop()
            SECRETS.remove(redactor)
            if built_image:
                self.builder.remove_image(built_image)
            if used_docker:
                try:
                    self.builder.keep_disk_budget()
                except Exception:  # housekeeping must not change the job's outcome
                    log.exception("disk budget check failed")

    def _choose_engine(self, job: Job, credentials: Credentials, context: Any, sink: RedactingSink) -> tuple[str, str]:
        """The job's engine (logged) and its secret-id prefix; for BuildKit the context's Dockerfile is made ready."""
        wants = " and ".join(n for n, given in (("build secrets", credentials.secrets), ("an SSH key", credentials.ssh)) if given)
        choice = choose_engine(
            job.engine, context, self.settings, needs_buildkit_for=wants, modern_frontend=self.buildkit.modern_frontend
        )
        sink.line(f"[boatyard] engine: {choice.engine} ({choice.why})")
        if choice.engine == BUILDKIT and choice.dockerfile is not None:
            prepared = prepare_for_buildkit(choice.dockerfile, owner_of(job))
            for note in prepared.notes:
                sink.line(f"[boatyard] {note}")
            if prepared.changed:
                apply_dockerfile(context, prepared.text)
            return choice.engine, prepared.secret_prefix
        return choice.engine, ""

    def _result(self, outcome: Outcome, job: Job, writer: logstore.LogWriter | None, **kw: Any) -> ProcessResult:
        return ProcessResult(
            outcome,
            job.job_id,
            log_batch_calls=writer.batch_calls if writer else 0,
            log_bytes=writer.bytes_accepted if writer else 0,  # figures for benchmarks
            **kw,
        )

    def _close_log(self, sink: RedactingSink | None, writer: logstore.LogWriter | None, last_line: str | None = None) -> None:
        try:
            if sink is not None:
                if last_line:
                    sink.line(last_line)
                sink.flush()
            if writer is not None:
                writer.close()
        except TransitionConflict:  # the job is no longer ours: its log is not either
            self._drop_log(writer)
        except Exception:  # the job's phase matters more than its last log line
            log.exception("could not flush the log")

    @staticmethod
    def _drop_log(writer: logstore.LogWriter | None) -> None:
        """The lease is lost or the job ended elsewhere: drop the buffered log instead of flushing it."""
        if writer is not None:
            writer.abandon()

    def _fail(
        self,
        job: Job,
        reason: str,
        delivery: Delivery,
        sink: RedactingSink | None,
        writer: logstore.LogWriter | None,
    ) -> ProcessResult:
        self._close_log(sink, writer, f"[boatyard] Failed: {reason}")
        try:
            jobstore.fail(job.job_id, reason, worker_id=self.worker_id)
        except TransitionConflict:
            log.warning("job %s: could not record the failure: the lease is no longer ours", job.job_id)
            return self._result(Outcome.LOST, job, writer, reason=reason)
        self._delete(delivery)
        return self._result(Outcome.FAILED, job, writer, reason=reason)

    def _aborted(
        self,
        job: Job,
        exc: Aborted,
        delivery: Delivery,
        sink: RedactingSink | None,
        writer: logstore.LogWriter | None,
    ) -> ProcessResult:
        if exc.kind in (AbortKind.TIMEOUT, AbortKind.LIMIT):
            return self._fail(job, exc.message, delivery, sink, writer)
        if exc.kind in (AbortKind.SHUTDOWN, AbortKind.INTERRUPTED):
            self._close_log(sink, writer, f"[boatyard] {exc.message}; the build will start again on another worker")
            try:
                jobstore.release_lease(job.job_id, self.worker_id, count_attempt=exc.kind == AbortKind.INTERRUPTED)
            finally:
                self._hide(delivery, 0)
            return self._result(Outcome.RELEASED, job, writer)
        self._drop_log(writer)  # the lease was lost (or the job cancelled): nothing more goes into its log
        return self._result(Outcome.LOST, job, writer)
