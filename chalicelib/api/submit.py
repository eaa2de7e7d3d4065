"""The submission service: a validated build request becomes a stored context, a job item and a queued message.

Order: create the job item (in ``keys`` mode in one transaction with the
owner's quota counters, so a refused submission creates nothing) → store the
context in S3 → store a ``notify_url`` subscription (its secret sealed) → seal the
credentials with KMS → send the SQS message.  If
storing, sealing or sending fails the job is marked failed (so nobody waits on
it, and its quota slot is freed) and :class:`ServiceUnavailable` is raised.
Credentials travel only inside the sealed SQS message.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.api import authn
from chalicelib.api.validation import BuildRequest
from chalicelib.domain import archive_format
from chalicelib.domain.errors import InvalidRequest, ServiceUnavailable, TransitionConflict
from chalicelib.domain.jobs import Job, SourceKind
from chalicelib.stores import contexts, notifications, queue, sealing
from chalicelib.stores.apikeys import ANONYMOUS, Principal
from chalicelib.stores.services import Services

log = logging.getLogger(__name__)

_AWS_ERRORS = (BotoCoreError, ClientError)
UPLOAD_KEEP_SECONDS = 2 * 86400
"""How long an upload id stays bound to its owner: as long as the bucket keeps ``uploads/`` (2 days)."""


def _source_of(
    services: Services, job_id: str, request: BuildRequest, archive: bytes | memoryview | None, owner: str
) -> dict[str, str]:
    """The job's ``source`` dict: where the worker will find the build context (nothing is written yet)."""
    if request.kind == SourceKind.DOCKERFILE or (request.kind == SourceKind.UPLOAD and archive is not None):
        return {"context_key": contexts.context_key(job_id)}
    if request.kind == SourceKind.UPLOAD:
        return {"context_key": check_upload(services, request.fields["upload_id"], owner)}
    if request.kind == SourceKind.TAR_URL:
        return {"tar_url": request.fields["tar_url"]}
    return dict(request.fields)  # a git host's fields (GitHub, GitLab, Bitbucket): names and ref, never tokens


def _store_context(services: Services, job_id: str, request: BuildRequest, archive: bytes | memoryview | None) -> None:
    """Put an inline build context (Dockerfile or multipart archive) where the worker finds it."""
    if request.kind == SourceKind.DOCKERFILE:
        services.contexts.put_bytes(
            contexts.context_key(job_id), archive_format.dockerfile_context(request.fields["dockerfile"])
        )
    elif request.kind == SourceKind.UPLOAD and archive is not None:
        # as uploaded (tar or tar.gz): the worker sniffs the format
        services.contexts.put_stream(contexts.context_key(job_id), io.BytesIO(archive))


def check_upload(services: Services, upload_id: str, owner: str = ANONYMOUS.owner) -> str:
    """The S3 key of a finished presigned upload of ``owner`` whose content is gzip or tar; 400 otherwise.

    With API keys an upload id is bound to the owner who asked for it: someone
    else's id answers exactly like an unknown one.
    """
    missing = InvalidRequest("no upload with that id; upload the archive first", field="upload_id")
    if authn.keys_required(services.settings) and services.quotas.upload_owner(upload_id) != owner:
        raise missing
    key = contexts.upload_key(upload_id)
    size = services.contexts.size_of(key)
    if size is None:
        raise missing
    head = services.contexts.read_head(key, archive_format.HEAD_BYTES) if size else b""
    if archive_format.detect_format(head) is None:
        raise InvalidRequest("the uploaded file is neither a gzip nor a tar archive", field="upload_id")
    return key


def _enqueue(services: Services, job: Job, credentials: sealing.Credentials) -> None:
    """Seal the credentials and send the job message; on failure fail the job and raise 503."""
    try:
        sealed = services.sealing.seal(job.job_id, credentials) if credentials.to_seal else ""
        services.queue.send(queue.JobMessage(job.job_id, 0, sealed))
    except _AWS_ERRORS as exc:
        log.error("job %s: could not seal or enqueue (%s)", job.job_id, type(exc).__name__)
        try:
            services.jobs.fail(
                job.job_id, "the build could not be queued (a backing service was unavailable); submit it again"
            )
        except (TransitionConflict, *_AWS_ERRORS):
            log.exception("job %s: could not mark the unqueued job failed", job.job_id)
        raise ServiceUnavailable("the build queue is unavailable; try again shortly") from None


def _fail_unstored(services: Services, job_id: str, what: str = "the build context could not be stored") -> None:
    """The context (or ``what`` else) could not be stored: end the job (freeing its quota slot) so nobody waits on it."""
    try:
        services.jobs.fail(job_id, f"{what} (a backing service was unavailable); submit it again")
    except (TransitionConflict, *_AWS_ERRORS):
        log.exception("job %s: could not mark the job without a context failed", job_id)


def submit_build(
    services: Services,
    request: BuildRequest,
    archive: bytes | memoryview | None = None,
    caller: Principal = ANONYMOUS,
    origin: Mapping[str, str] | None = None,
    before_enqueue: Callable[[Job], None] | None = None,
) -> str:
    """Run a validated build request through the submission steps for ``caller``; returns the new job id.

    ``origin`` (``trigger_id``, ``ref``, ``commit``) marks a build a trigger's webhook made;
    ``before_enqueue`` runs once the job is stored and before its message is sent (notification
    subscriptions).  If it fails, the job is failed like one that could not be queued.
    """
    job_id = str(uuid.uuid4())
    origin = origin or {}
    try:
        source = _source_of(services, job_id, request, archive, caller.owner)
        job = Job(
            job_id,
            request.image_name,
            request.kind,
            source,
            options=request.options.to_item(),
            engine=request.engine,
            owner=caller.owner,
            trigger_id=origin.get("trigger_id"),
            ref=origin.get("ref"),
            commit=origin.get("commit"),
        )
        services.jobs.create_job(job, with_quota=authn.keys_required(services.settings))
    except _AWS_ERRORS as exc:
        log.error("job %s: storing the job failed (%s)", job_id, type(exc).__name__)
        raise ServiceUnavailable("storage is unavailable; try again shortly") from None
    try:
        _store_context(services, job_id, request, archive)
        if request.notify is not None:
            notify = request.notify
            services.notifications.subscribe(
                job_id, caller.owner, notifications.WebhookTarget(notify.url, notify.secret, notify.events)
            )
    except _AWS_ERRORS as exc:
        log.error("job %s: storing the context or its subscription failed (%s)", job_id, type(exc).__name__)
        _fail_unstored(services, job_id)
        raise ServiceUnavailable("storage is unavailable; try again shortly") from None
    if before_enqueue is not None:
        try:
            before_enqueue(job)
        except _AWS_ERRORS as exc:
            log.error("job %s: subscribing its notifications failed (%s)", job_id, type(exc).__name__)
            _fail_unstored(services, job_id, "its notifications could not be stored")
            raise ServiceUnavailable("storage is unavailable; try again shortly") from None
    _enqueue(services, job, request.credentials)
    if request.kind == SourceKind.UPLOAD and archive is None and authn.keys_required(services.settings):
        services.quotas.upload_used(caller.owner, request.fields["upload_id"])
    log.info(
        "job %s submitted by %s: image %s, source %s", job_id, caller.owner, request.image_name, request.kind.value
    )
    return job_id


def create_upload(services: Services, caller: Principal = ANONYMOUS) -> dict[str, Any]:
    """A presigned S3 POST for one archive and the upload id (bound to ``caller``) to build it with later."""
    settings = services.settings
    upload_id = str(uuid.uuid4())
    try:
        if authn.keys_required(services.settings):
            services.quotas.reserve_upload(caller.owner, upload_id, settings.upload_url_ttl_seconds)
            services.quotas.bind_upload(caller.owner, upload_id, UPLOAD_KEEP_SECONDS)
        post = services.contexts.presigned_upload(upload_id, settings.max_upload_bytes, settings.upload_url_ttl_seconds)
    except _AWS_ERRORS as exc:
        log.error("presigning upload %s failed (%s)", upload_id, type(exc).__name__)
        raise ServiceUnavailable("uploads are unavailable; try again shortly") from None
    return {
        "UploadId": upload_id,
        "Url": post["url"],
        "Fields": dict(post["fields"]),
        "MaxBytes": settings.max_upload_bytes,
        "ExpiresIn": settings.upload_url_ttl_seconds,
    }
