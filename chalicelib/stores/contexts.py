"""Build contexts in S3: ``contexts/<job_id>.tar.gz`` and presigned uploads ``uploads/<upload_id>``."""

from __future__ import annotations

from typing import IO, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from chalicelib.domain.settings import MiB, get_settings
from chalicelib.stores import aws
from chalicelib.stores.aws_errors import NOT_FOUND_CODES, aws_error_code

# multipart upload in 8 MiB parts, a few at a time: memory stays ~ parts x threads
_TRANSFER = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)


def context_key(job_id: str) -> str:
    """Where the API puts a job's context."""
    return f"contexts/{job_id}.tar.gz"


def upload_key(upload_id: str) -> str:
    """Where a presigned upload lands."""
    return f"uploads/{upload_id}"


def put_stream(key: str, fileobj: IO[bytes]) -> None:
    """Stream a file object to S3 (multipart for large ones; never read whole)."""
    aws.client("s3").upload_fileobj(fileobj, get_settings().bucket_name, key, Config=_TRANSFER)


def put_bytes(key: str, data: bytes) -> None:
    """Store a small object."""
    aws.client("s3").put_object(Bucket=get_settings().bucket_name, Key=key, Body=data)


def open_stream(key: str) -> Any:
    """A streaming body (``.read(n)``, ``.iter_chunks()``) of an object."""
    return aws.client("s3").get_object(Bucket=get_settings().bucket_name, Key=key)["Body"]


def size_of(key: str) -> int | None:
    """The object's size, or None if it does not exist."""
    try:
        answer = aws.client("s3").head_object(Bucket=get_settings().bucket_name, Key=key)
    except ClientError as exc:
        if aws_error_code(exc) in NOT_FOUND_CODES:
            return None
        raise
    return int(answer["ContentLength"])


def read_head(key: str, count: int) -> bytes:
    """The first ``count`` bytes of an object."""
    answer = aws.client("s3").get_object(Bucket=get_settings().bucket_name, Key=key, Range=f"bytes=0-{count - 1}")
    head: bytes = answer["Body"].read()
    return head


def presigned_upload(upload_id: str, max_bytes: int, ttl_seconds: int) -> dict[str, Any]:
    """A presigned POST for ``uploads/<upload_id>`` limited to ``max_bytes``: ``{"url", "fields"}``."""
    post: dict[str, Any] = aws.client("s3").generate_presigned_post(
        Bucket=get_settings().bucket_name,
        Key=upload_key(upload_id),
        Conditions=[["content-length-range", 1, max_bytes]],
        ExpiresIn=ttl_seconds,
    )
    return post


def delete(key: str) -> None:
    """Remove an object (missing is fine)."""
    aws.client("s3").delete_object(Bucket=get_settings().bucket_name, Key=key)
