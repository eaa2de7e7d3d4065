"""The context stored in S3 by the API (a Dockerfile made into an archive, or an upload)."""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.jobs import Job
from chalicelib.stores import contexts
from chalicelib.stores.aws_errors import NOT_FOUND_CODES, aws_error_code
from chalicelib.stores.contexts import ContextStore
from worker.context.archive import ContextLimits, ContextStats, Layout, sanitize
from worker.sources.stream import SafeStream


def context_key_of(job: Job) -> str:
    """Where the job's archive is: ``source["context_key"]``, else ``contexts/<job_id>.tar.gz``."""
    return job.source.get("context_key") or contexts.context_key(job.job_id)


def fetch(
    store: ContextStore,
    job: Job,
    dest: BinaryIO,
    limits: ContextLimits,
    check: Callable[[], None],
    layout: Layout = Layout(),
) -> ContextStats:
    """Stream the job's archive from S3 through the sanitizer into ``dest``."""
    key = context_key_of(job)
    try:
        body = store.open_stream(key)
    except ClientError as exc:
        if aws_error_code(exc) in NOT_FOUND_CODES:
            raise BuildFailed(
                "the build context of this job is no longer stored (it may have expired); submit the build again"
            ) from None
        raise
    try:
        return sanitize(
            SafeStream(body, "reading the build context from storage", (BotoCoreError,)),
            dest,
            limits,
            check=check,
            context_path=layout.context_path,
            dockerfile_path=layout.dockerfile_path,
        )
    finally:
        body.close()
