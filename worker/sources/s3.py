"""The context stored in S3 by the API (a Dockerfile made into an archive, or an upload)."""
from __future__ import annotations

import io
import tarfile
from typing import BinaryIO, Callable

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.stores import contexts
from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.jobs import Job
from worker.context.archive import ContextLimits, ContextStats, Layout, sanitize
from worker.sources.stream import SafeStream


def context_key_of(job: Job) -> str:
    """Where the job's archive is: ``source["context_key"]``, else ``contexts/<job_id>.tar.gz``."""
    return job.source.get("context_key") or contexts.context_key(job.job_id)


def _inline_dockerfile(text: str) -> io.BytesIO:
    buffer = io.BytesIO()
    data = text.encode("utf-8")
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("Dockerfile")
        info.size, info.mode = len(data), 0o644
        tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    return buffer


def fetch(
    job: Job, dest: BinaryIO, limits: ContextLimits, check: Callable[[], None], layout: Layout = Layout()
) -> ContextStats:
    """Stream the job's archive from S3 through the sanitizer into ``dest``."""
    if "dockerfile" in job.source and "context_key" not in job.source:  # a small inline Dockerfile
        return sanitize(_inline_dockerfile(job.source["dockerfile"]), dest, limits, check=check)
    key = context_key_of(job)
    try:
        body = contexts.open_stream(key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in {"NoSuchKey", "404", "NotFound"}:
            raise BuildFailed(
                "the build context of this job is no longer stored (it may have expired); submit the build again"
            ) from None
        raise
    try:
        return sanitize(
            SafeStream(body, "reading the build context from storage", (BotoCoreError,)), dest, limits, check=check,
            context_path=layout.context_path, dockerfile_path=layout.dockerfile_path,
        )
    finally:
        body.close()
