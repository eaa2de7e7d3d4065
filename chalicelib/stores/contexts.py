"""Build contexts in S3: ``contexts/<job_id>.tar.gz`` and presigned uploads ``uploads/<upload_id>``."""

from __future__ import annotations

from typing import IO, Any

from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ClientError

from chalicelib.domain.settings import MiB, Settings
from chalicelib.stores.aws_errors import NOT_FOUND_CODES, aws_error_code

# multipart upload in 8 MiB parts, a few at a time: memory stays ~ parts x threads
_TRANSFER = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB, max_concurrency=4)


def context_key(job_id: str) -> str:
    """Where the API puts a job's context."""
    return f"contexts/{job_id}.tar.gz"


def upload_key(upload_id: str) -> str:
    """Where a presigned upload lands."""
    return f"uploads/{upload_id}"


class ContextStore:
    """Build contexts and uploads in the contexts bucket (S3)."""

    def __init__(self, s3: Any, settings: Settings) -> None:
        self._s3 = s3
        self._settings = settings

    def put_stream(self, key: str, fileobj: IO[bytes]) -> None:
        """Stream a file object to S3 (multipart for large ones; never read whole)."""
        self._s3.upload_fileobj(fileobj, self._settings.bucket_name, key, Config=_TRANSFER)

    def put_bytes(self, key: str, data: bytes) -> None:
        """Store a small object."""
        self._s3.put_object(Bucket=self._settings.bucket_name, Key=key, Body=data)

    def open_stream(self, key: str) -> Any:
        """A streaming body (``.read(n)``, ``.iter_chunks()``) of an object."""
        return self._s3.get_object(Bucket=self._settings.bucket_name, Key=key)["Body"]

    def size_of(self, key: str) -> int | None:
        """The object's size, or None if it does not exist."""
        try:
            answer = self._s3.head_object(Bucket=self._settings.bucket_name, Key=key)
        except ClientError as exc:
            if aws_error_code(exc) in NOT_FOUND_CODES:
                return None
            raise
        return int(answer["ContentLength"])

    def read_head(self, key: str, count: int) -> bytes:
        """The first ``count`` bytes of an object."""
        answer = self._s3.get_object(Bucket=self._settings.bucket_name, Key=key, Range=f"bytes=0-{count - 1}")
        head: bytes = answer["Body"].read()
        return head

    def presigned_upload(self, upload_id: str, max_bytes: int, ttl_seconds: int) -> dict[str, Any]:
        """A presigned POST for ``uploads/<upload_id>`` limited to ``max_bytes``: ``{"url", "fields"}``."""
        post: dict[str, Any] = self._s3.generate_presigned_post(
            Bucket=self._settings.bucket_name,
            Key=upload_key(upload_id),
            Conditions=[["content-length-range", 1, max_bytes]],
            ExpiresIn=ttl_seconds,
        )
        return post

    def delete(self, key: str) -> None:
        """Remove an object (missing is fine)."""
        self._s3.delete_object(Bucket=self._settings.bucket_name, Key=key)
