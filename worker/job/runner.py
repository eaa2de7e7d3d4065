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
from typing import Any, BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.build_options import BuildOptions
from chalicelib.domain.errors import BuildFailed, ServiceUnavailable, TransitionConflict
from chalicelib.domain.image_ref import ImageRef, InvalidReference, parse_image_ref
from chalicelib.domain.jobs import Job, Phase
from chalicelib.domain.registry_hosts import registry_refusal
from chalicelib.domain.settings import Settings
from chalicelib.stores.aws_errors import aws_error_code
from chalicelib.stores.jobs import ClaimOutcome
from chalicelib.stores.logs import LogFence, LogWriter
from chalicelib.stores.queue import Delivery
from chalicelib.stores.sealing import Credentials, Sealer
from chalicelib.stores.services import Services
from worker.build.builder import Builder
from worker.build.buildkit import BuildKitBuilder, BuildKitOptions
from worker.build.buildplan import BuildPlan, plan_build
from worker.build.cachescope import scope_classic
from worker.build.dockerfile_features import DockerfileRefused, prepare_for_buildkit
from worker.build.engines import BUILDKIT, apply_dockerfile, choose_engine, owner_of
from worker.build.images import private_tag, registry_auths
from worker.context.archive import ContextStats
from worker.job import metrics
from worker.job.control import Aborted, AbortKind, JobControl, Watchdog
from worker.job.heartbeat import Heartbeat
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


def _unseal(sealer: Sealer, job: Job, sealed: str) -> Credentials:
    try:
        return sealer.unseal(job.job_id, sealed)
    except (ClientError, BotoCoreError, ValueError, TypeError) as exc:
        log.warning("job %s: credentials could not be unsealed (%s)", job.job_id, type(exc).__name__)
        raise BuildFailed("could not decrypt the registry credentials of this job; submit the build again") from None


def _check_cache_from(refs: tuple[str, ...], settings: Settings) -> None:
    """``cache_from`` images as the API checks them (valid names, public registries): a message from elsewhere too."""
    for text in refs:
        try:
            cached = parse_image_ref(text)
        except InvalidReference as exc:
            raise BuildFailed(f"cache_from {text!r} is not a valid image name: {exc}") from None
        refused = None if settings.allow_private_registries else registry_refusal(cached.domain)
        if refused:
            raise BuildFailed(
                f"cache_from {text!r}: {refused}; cache images come only from registries on public addresses"
            )


class JobRunner:
    """Runs deliveries for one worker identity."""

    def __init__(self, services: Services, worker_id: str, builder: Builder) -> None:
        self.services = services
        settings = self.settings = services.settings
        self.worker_id = worker_id
        self.builder = builder
        self.buildkit = BuildKitBuilder(settings)

    # --- the message --------------------------------------------------------------------

    def delete(self, delivery: Delivery) -> None:
        try:
            self.services.queue.delete(delivery.receipt_handle)
        except ClientError as exc:  # e.g. the handle expired: the next delivery finds the job terminal
            log.warning("could not delete message %s: %s", delivery.message_id, aws_error_code(exc))

    def hide(self, delivery: Delivery, seconds: int) -> None:
        try:
            self.services.queue.extend(delivery.receipt_handle, max(0, min(seconds, MAX_VISIBILITY_SECONDS)))
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
        claim = self.services.jobs.claim(message.job_id, self.worker_id, lease, self.settings.max_attempts)
        if claim.outcome == ClaimOutcome.BUSY:
            remaining = int((claim.job.lease_expires if claim.job else 0) - time.time()) + 1
            self.hide(delivery, max(remaining, 1))
            return ProcessResult(Outcome.BUSY, message.job_id)
        if claim.outcome != ClaimOutcome.CLAIMED:
            self.delete(delivery)
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
        return JobAttempt(self, job, delivery, control, timings).execute(sealed)


class _NoLog:
    """The log of a job whose log writer is not open (yet): it records nothing.

    A failure before the writer opened (the log store unreachable) still ends the job,
    only without a last log line.
    """

    @property
    def batch_calls(self) -> int:
        """BatchWriteItem requests sent (a figure for benchmarks)."""
        return 0

    @property
    def bytes_accepted(self) -> int:
        """Bytes taken into the log (a figure for benchmarks)."""
        return 0

    def close(self, last_line: str | None = None) -> None:
        """Nothing to flush."""

    def drop(self) -> None:
        """Nothing to drop."""


class _JobLog(_NoLog):
    """The log of one attempt: a redacting sink in front of the attempt's fenced :class:`LogWriter`."""

    def __init__(self, writer: LogWriter, redactor: Redactor) -> None:
        self.writer = writer
        self.sink = RedactingSink(writer.write, redactor)

    @property
    def batch_calls(self) -> int:
        return self.writer.batch_calls

    @property
    def bytes_accepted(self) -> int:
        return self.writer.bytes_accepted

    def line(self, text: str) -> None:
        """One line of boatyard's own."""
        self.sink.line(text)

    def finish(self) -> None:
        """Flush everything before the job's terminal write (raises a failed write)."""
        self.sink.flush()
        self.writer.close()

    def close(self, last_line: str | None = None) -> None:
        """Write ``last_line`` and flush; never raises (the job's phase matters more than its last line)."""
        try:
            if last_line:
                self.sink.line(last_line)
            self.finish()
        except TransitionConflict:  # the job is no longer ours: its log is not either
            self.drop()
        except Exception:  # the job's phase matters more than its last log line
            log.exception("could not flush the log")

    def drop(self) -> None:
        """The lease is lost or the job ended elsewhere: drop the buffered log instead of flushing it."""
        self.writer.abandon()


class JobAttempt:
    """One claimed attempt of a job in this worker: its heartbeat, redactor, log and image tag.

    :meth:`execute` runs the steps in order: :meth:`prepare` (unseal the credentials, open the
    log, refuse a job that waited too long), :meth:`run` (check the target, fetch, build, push,
    finish) and :meth:`clean_up` (stop the heartbeat, forget the secrets, remove the image).
    Every failure on the way ends in :meth:`fail`, :meth:`aborted` or :meth:`lost`, which read
    the attempt's own state; nothing is passed along as ``None``.
    """

    def __init__(
        self, runner: JobRunner, job: Job, delivery: Delivery, control: JobControl, timings: metrics.JobTimings
    ) -> None:
        self.runner = runner
        self.services = runner.services
        self.settings = runner.settings
        self.worker_id = runner.worker_id
        self.job = job
        self.delivery = delivery
        self.control = control
        self.timings = timings
        self.heartbeat = Heartbeat(
            self.services.jobs,
            self.services.queue,
            job.job_id,
            self.worker_id,
            delivery.receipt_handle,
            control,
            self.settings.heartbeat_seconds,
            self.settings.visibility_timeout_seconds,
        )
        self.redactor = Redactor()  # replaced by the job's own once its credentials are unsealed
        self.log: _NoLog = _NoLog()  # the job's log once prepare opened it
        self.image_tag = private_tag(job.job_id, job.attempt)  # never the user's name: see Builder.publish
        self.used_docker = False
        self.tagged = False  # the private tag may be on the host

    # --- the steps ------------------------------------------------------------------------

    def execute(self, sealed: str) -> ProcessResult:
        """Prepare, run and clean up; every failure ends the job (or hands it back)."""
        job = self.job
        self.heartbeat.start()
        try:
            credentials, job_log = self.prepare(sealed)
            return self.run(credentials, job_log)
        except BuildFailed as exc:
            return self.fail(self.redactor(exc.message))
        except Aborted as exc:
            self.heartbeat.stop()  # before the message is given back: a late beat would hide it again
            return self.aborted(exc)
        except TransitionConflict:
            log.warning("job %s: the job changed under this worker (lease lost or cancelled); leaving it", job.job_id)
            return self.lost()
        except ServiceUnavailable as exc:  # the job store or log store gave up after its retries
            log.exception("job %s: storage unavailable", job.job_id)
            return self.fail(f"{exc.message}; submit the build again")
        except ClientError as exc:  # an AWS service failed past botocore's retries
            log.exception("job %s: AWS error", job.job_id)
            return self.fail(_aws_failure(exc))
        except Exception as exc:  # a bug or an outage: never leave the job live
            log.exception("job %s: unexpected error", job.job_id)
            return self.fail(f"internal error in the worker ({type(exc).__name__}); it has been logged")
        finally:
            self.clean_up()

    def prepare(self, sealed: str) -> tuple[Credentials, _JobLog]:
        """Unseal the credentials and open the log; a job that cannot start fails with its reason in the log."""
        job, settings = self.job, self.settings
        credentials = self._unseal(sealed)
        previous = self.services.logs.stored_bytes(job.job_id) if job.attempt > 1 else 0
        writer = self.services.logs.writer(
            job.job_id,
            already_written=previous,
            redact=self.redactor,
            fence=LogFence(self.worker_id, job.attempt),  # a stale worker cannot touch a newer attempt's log
        ).start()
        job_log = _JobLog(writer, self.redactor)
        self.log = job_log
        if credentials is None:
            raise BuildFailed("could not decrypt the registry credentials of this job; submit the build again")
        if job.attempt > 1:
            job_log.line(
                f"[boatyard] attempt {job.attempt} of {settings.max_attempts}: the previous worker stopped; "
                "starting again"
            )
        if job.attempt == 1 and time.time() - _parse_iso(job.created_at) > settings.queue_timeout_seconds:
            raise BuildFailed(
                f"the job waited in the queue longer than {settings.queue_timeout_seconds} s; submit the build again"
            )
        return credentials, job_log

    def run(self, credentials: Credentials, job_log: _JobLog) -> ProcessResult:
        """Check the target, fetch the context, build, push and record the job as finished."""
        job, settings = self.job, self.settings
        ref, auths = self._target(credentials, job_log)
        os.makedirs(settings.work_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=settings.work_dir, prefix=f"ctx-{job.job_id[:8]}-") as context:
            stats = self._fetch(context, credentials, job_log)
            plan = plan_build(job, ref, stats, settings)
            engine, id_prefix, plan = self._choose_engine(credentials, context, job_log, plan)
            self.services.jobs.transition(job.job_id, self.worker_id, Phase.FETCHING, Phase.BUILDING)
            self.timings.enter("build")
            self.used_docker = self.tagged = True
            with Watchdog(self.control, settings.build_timeout_seconds):
                options = None
                if engine == BUILDKIT:
                    options = BuildKitOptions(credentials.secrets, credentials.ssh, id_prefix, auths)
                image_id = self._build(context, plan, auths, options, job_log)
                digest, tag_digests = self._push(image_id, ref, plan, credentials, job_log)
        # The job's private tag goes before Finished is announced: after Finished nothing here
        # touches an image name.  A client pulling the pushed name gets this very image id;
        # untagging its last other name under that pull deleted the image the pull had just
        # found on the host, and the pulled tag pointed at nothing (see docs/design-notes.md).
        self._untag()
        job_log.finish()
        self.services.jobs.transition(
            job.job_id,
            self.worker_id,
            Phase.PUSHING,
            Phase.FINISHED,
            image_digest=digest,
            tag_digests=tag_digests,
            source_commit=stats.commit or None,
        )
        self.runner.delete(self.delivery)
        return self._result(Outcome.FINISHED, digest=digest)

    def clean_up(self) -> None:
        """Stop the heartbeat, forget the job's secrets and remove its image from the host."""
        self.heartbeat.stop()
        SECRETS.remove(self.redactor)
        if not self.used_docker:
            return
        self._untag()
        try:
            self.runner.builder.keep_disk_budget()
        except Exception:  # housekeeping must not change the job's outcome
            log.exception("disk budget check failed")

    def _untag(self) -> None:
        """Remove the job's private tag from the host (once)."""
        if self.tagged:
            self.runner.builder.remove_image(self.image_tag)
            self.tagged = False

    # --- the parts of run -----------------------------------------------------------------

    def _unseal(self, sealed: str) -> Credentials | None:
        """The job's credentials (their redactor registered), or None when they cannot be unsealed."""
        try:
            credentials = _unseal(self.services.sealing, self.job, sealed)
        except BuildFailed:
            return None  # the job fails once its log is open, so the reason reaches the log
        self.redactor = Redactor.for_pairs(credentials.secret_pairs(), [*credentials.secrets.values(), credentials.ssh])
        SECRETS.add(self.redactor)
        return credentials

    def _target(self, credentials: Credentials, job_log: _JobLog) -> tuple[ImageRef, dict[str, Any]]:
        """The image to push and the registry auths of this job alone; refuses a target the API would have."""
        job, settings = self.job, self.settings
        try:  # the API's parser: a reserved (job-private) registry is refused here as there
            ref = parse_image_ref(job.image_name)
        except InvalidReference as exc:
            raise BuildFailed(f"{job.image_name!r} is not a valid image name: {exc}") from None
        refused = None if settings.allow_private_registries else registry_refusal(ref.domain)
        if refused:  # the API refuses these too; a message from elsewhere must not get past the worker
            raise BuildFailed(f"{refused}; builds push only to registries on public addresses")
        _check_cache_from(BuildOptions.from_item(job.options).cache_from, settings)
        bases = {host: (auth["username"], auth["password"]) for host, auth in credentials.registry_auths.items()}
        auths = registry_auths(ref, credentials.username, credentials.password, extra=bases)  # the job's own only
        for name in BuildOptions.from_item(job.options).secret_looking_args():
            job_log.line(
                f"[boatyard] warning: the build arg {name} looks like a secret; build args are kept in the "
                "pushed image's history (docker history shows them): do not pass secrets as build args"
            )
        return ref, auths

    def _fetch(self, context: BinaryIO, credentials: Credentials, job_log: _JobLog) -> ContextStats:
        """Fetch and sanitize the build context into ``context`` (rewound), within the fetch deadline."""
        job, settings = self.job, self.settings
        job_log.line(f"[boatyard] fetching the build context from {describe_source(job)}")
        self.timings.enter("fetch")
        deadline = min(settings.fetch_deadline_seconds, settings.build_timeout_seconds)
        with Watchdog(
            self.control,
            deadline,
            f"fetching the build context from {describe_source(job)} "
            f"did not finish within {deadline:g} s; it was stopped",
        ):
            stats = fetch_context(
                job, context, self.services, self.control, credentials.source_token, credentials.source_user
            )
            self.timings.context_bytes = stats.compressed_bytes
        if job.commit and stats.commit and stats.commit != job.commit:
            raise BuildFailed(
                f"the archive the git host sent is of commit {stats.commit}, not the pushed commit {job.commit}"
            )
        context.seek(0)
        self.control.check()
        return stats

    def _choose_engine(
        self, credentials: Credentials, context: BinaryIO, job_log: _JobLog, plan: BuildPlan
    ) -> tuple[str, str, BuildPlan]:
        """The job's engine (logged), its secret-id prefix and its plan; the context's Dockerfile is rewritten
        so that the build's layer cache (and, for BuildKit, its cache, secret and SSH mounts) is the owner's own.

        No layer another owner built is ever reused: BuildKit RUN steps get the owner's scope mount, classic
        stages an owner ``ARG`` after each ``FROM`` (:mod:`worker.build.cachescope`); a Dockerfile that cannot
        be read here (too large, not found) is built without the layer cache.
        """
        buildkit = self.runner.buildkit
        needs = (
            ("build secrets", credentials.secrets),
            ("an SSH key", credentials.ssh),
            ("cache_from images", plan.cache_from),
        )
        wants = " and ".join(name for name, given in needs if given)
        choice = choose_engine(
            self.job.engine,
            context,
            self.settings,
            needs_buildkit_for=wants,
            modern_frontend=buildkit.modern_frontend,
            dockerfile_path=plan.dockerfile,
        )
        job_log.line(f"[boatyard] engine: {choice.engine} ({choice.why})")
        owner = owner_of(self.job)
        if choice.dockerfile is None:
            job_log.line(
                f"[boatyard] {choice.dockerfile_path} could not be read before the build: building without the layer "
                "cache (no layer of another build is reused)"
            )
            return choice.engine, "", dataclasses.replace(plan, nocache=True)
        if choice.engine == BUILDKIT:
            try:
                prepared = prepare_for_buildkit(choice.dockerfile, owner)
            except DockerfileRefused as exc:
                raise BuildFailed(f"{choice.dockerfile_path} {exc}") from None
            for note in prepared.notes:
                job_log.line(f"[boatyard] {note}")
            if prepared.changed:
                apply_dockerfile(context, prepared.text, choice.dockerfile_path)
            return choice.engine, prepared.secret_prefix, plan
        text, added = scope_classic(choice.dockerfile, owner)
        if added:
            job_log.line(
                f"[boatyard] layer cache kept to this owner: `ARG BOATYARD_CACHE_SCOPE` added after each FROM ({added}); "
                "it shows in the image history"
            )
            apply_dockerfile(context, text, choice.dockerfile_path)
        return choice.engine, "", plan

    def _build(
        self,
        context: BinaryIO,
        plan: BuildPlan,
        auths: dict[str, Any],
        options: BuildKitOptions | None,
        job_log: _JobLog,
    ) -> str:
        """Build the context under the job's private tag (BuildKit when ``options`` are given); the image id."""
        builder, sink = self.runner.builder, job_log.sink
        if options is not None:
            with builder.running_build():
                buildkit = self.runner.buildkit
                image_id = buildkit.build(context, self.image_tag, sink.write, self.control, options, plan=plan)
        else:
            image_id = builder.build(context, self.image_tag, sink.write, self.control, registry_auths=auths, plan=plan)
        sink.flush()
        return image_id

    def _push(
        self, image_id: str, ref: ImageRef, plan: BuildPlan, credentials: Credentials, job_log: _JobLog
    ) -> tuple[str, dict[str, str]]:
        """Push the image under the job's name, then under its extra tags; the digests."""
        job, builder, sink = self.job, self.runner.builder, job_log.sink
        self.services.jobs.transition(job.job_id, self.worker_id, Phase.BUILDING, Phase.PUSHING)
        self.timings.enter("push")
        digest = builder.publish(image_id, ref, credentials, sink.write, self.control)
        sink.line(f"[boatyard] pushed {ref.reference} ({digest})")
        tag_digests: dict[str, str] = {}
        for tag in plan.extra_tags:  # the same image under the job's extra tags
            extra = dataclasses.replace(ref, tag=tag)
            tag_digests[tag] = builder.publish(image_id, extra, credentials, sink.write, self.control)
            sink.line(f"[boatyard] pushed {extra.reference} ({tag_digests[tag]})")
        self.timings.enter("done")
        return digest, tag_digests

    # --- the endings ----------------------------------------------------------------------

    def _result(self, outcome: Outcome, **kw: Any) -> ProcessResult:
        return ProcessResult(
            outcome, self.job.job_id, log_batch_calls=self.log.batch_calls, log_bytes=self.log.bytes_accepted, **kw
        )

    def fail(self, reason: str) -> ProcessResult:
        """Write the reason as the last log line, then fail the job as the lease holder."""
        self.log.close(f"[boatyard] Failed: {reason}")
        try:
            self.services.jobs.fail(self.job.job_id, reason, worker_id=self.worker_id)
        except TransitionConflict:
            log.warning("job %s: could not record the failure: the lease is no longer ours", self.job.job_id)
            return self._result(Outcome.LOST, reason=reason)
        self.runner.delete(self.delivery)
        return self._result(Outcome.FAILED, reason=reason)

    def aborted(self, exc: Aborted) -> ProcessResult:
        """A timeout or limit fails the job; a shutdown or interruption hands it back; a lost lease leaves it."""
        if exc.kind in (AbortKind.TIMEOUT, AbortKind.LIMIT):
            return self.fail(exc.message)
        if exc.kind in (AbortKind.SHUTDOWN, AbortKind.INTERRUPTED):
            self.log.close(f"[boatyard] {exc.message}; the build will start again on another worker")
            try:
                self.services.jobs.release_lease(
                    self.job.job_id, self.worker_id, count_attempt=exc.kind == AbortKind.INTERRUPTED
                )
            finally:
                self.runner.hide(self.delivery, 0)
            return self._result(Outcome.RELEASED)
        return self.lost()  # the lease was lost (or the job cancelled)

    def lost(self) -> ProcessResult:
        """The job is another worker's now (or ended elsewhere): nothing more goes into its log."""
        self.log.drop()
        return self._result(Outcome.LOST)
