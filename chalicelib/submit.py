"""The submission service: a validated build request becomes a stored context, a job item and a queued message.

Order (DESIGN.md): store the context in S3 → create the job item → seal the
credentials with KMS → send the SQS message.  If sealing or sending fails
the job is marked failed (so nobody waits on it) and :class:`ServiceUnavailable`
is raised.  Credentials travel only inside the sealed SQS message.
"""
from __future__ import annotations

import io
import logging
import uuid
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib import archives, contexts, jobstore, queue, sealing
from chalicelib.errors import InvalidRequest, ServiceUnavailable, TransitionConflict
from chalicelib.jobs import Job, SourceKind
from chalicelib.settings import get_settings
from chalicelib.validation import BuildRequest

log = logging.getLogger(__name__)

_AWS_ERRORS = (BotoCoreError, ClientError)


def _store_source(job_id: str, request: BuildRequest, archive: bytes | memoryview | None) -> dict[str, str]:
    """Put the build context where the worker finds it; returns the job's ``source`` dict."""
    if request.kind == SourceKind.DOCKERFILE:
        key = contexts.context_key(job_id)
        contexts.put_bytes(key, archives.dockerfile_context(request.fields["dockerfile"]))
        return {"context_key": key}
    if request.kind == SourceKind.UPLOAD and archive is not None:
        key = contexts.context_key(job_id)
        contexts.put_stream(key, io.BytesIO(archive))  # as uploaded (tar or tar.gz): the worker sniffs the format
        return {"context_key": key}
    if request.kind == SourceKind.UPLOAD:
        return {"context_key": check_upload(request.fields["upload_id"])}
    if request.kind == SourceKind.TAR_URL:
        return {"tar_url": request.fields["tar_url"]}
    return dict(request.fields)  # a git host's fields (GitHub, GitLab, Bitbucket): names and ref, never tokens


def check_upload(upload_id: str) -> str:
    """The S3 key of a finished presigned upload whose content is gzip or tar; 400 otherwise."""
    key = contexts.upload_key(upload_id)
    size = contexts.size_of(key)
    if size is None:
        raise InvalidRequest("no upload with that id; upload the archive first", field="upload_id")
    head = contexts.read_head(key, archives.HEAD_BYTES) if size else b""
    if archives.detect_format(head) is None:
        raise InvalidRequest("the uploaded file is neither a gzip nor a tar archive", field="upload_id")
    return key


def _enqueue(job: Job, credentials: sealing.Credentials) -> None:
    """Seal the credentials and send the job message; on failure fail the job and raise 503."""
    try:
        sealed = sealing.seal(job.job_id, credentials) if credentials.to_seal else ""
        queue.send(queue.JobMessage(job.job_id, 0, sealed))
    except _AWS_ERRORS as exc:
        log.error("job %s: could not seal or enqueue (%s)", job.job_id, type(exc).__name__)
        try:
            jobstore.fail(job.job_id, "the build could not be queued (a backing service was unavailable); submit it again")
        except (TransitionConflict, *_AWS_ERRORS):
            log.exception("job %s: could not mark the unqueued job failed", job.job_id)
        raise ServiceUnavailable("the build queue is unavailable; try again shortly") from None


def submit_build(request: BuildRequest, archive: bytes | memoryview | None = None) -> str:
    """Run a validated build request through the submission steps; returns the new job id."""
    job_id = str(uuid.uuid4())
    try:
        source = _store_source(job_id, request, archive)
        job = jobstore.create_job(Job(job_id, request.image_name, request.kind, source, options=request.options.to_item(), engine=request.engine))
    except _AWS_ERRORS as exc:
        log.error("job %s: storing the context or the job failed (%s)", job_id, type(exc).__name__)
        raise ServiceUnavailable("storage is unavailable; try again shortly") from None
    _enqueue(job, request.credentials)
    log.info("job %s submitted: image %s, source %s", job_id, request.image_name, request.kind.value)
    return job_id


def create_upload() -> dict[str, Any]:
    """A presigned S3 POST for one archive and the upload id to build it with later."""
    settings = get_settings()
    upload_id = str(uuid.uuid4())
    try:
        post = contexts.presigned_upload(upload_id, settings.max_upload_bytes, settings.upload_url_ttl_seconds)
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
