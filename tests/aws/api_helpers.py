"""Helpers for the API tests: requests through chalice.test.Client, and the credential-leak scan."""
from __future__ import annotations

import gzip
import io
import json
import tarfile
from typing import Any

from urllib3 import encode_multipart_formdata

from chalicelib.stores import aws
from chalicelib.domain.settings import get_settings

JSON_HEADERS = {"Content-Type": "application/json"}


def post_json(client: Any, body: Any, path: str = "/api/v1/build") -> Any:
    """POST ``body`` (serialised unless already bytes/str) as application/json."""
    raw = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.http.post(path, headers=JSON_HEADERS, body=raw)


def post_multipart(client: Any, fields: dict[str, Any], extra_headers: dict[str, str] | None = None) -> Any:
    """POST a multipart/form-data body built by urllib3 (``fields`` as urllib3 takes them)."""
    body, content_type = encode_multipart_formdata(fields)
    headers = {"Content-Type": content_type, **(extra_headers or {})}
    return client.http.post("/api/v1/build", headers=headers, body=body)


def answer(response: Any) -> dict[str, Any]:
    """The JSON body of a test-client response."""
    return json.loads(response.body)


def make_tar(files: dict[str, str], compress: bool = True) -> bytes:
    """A tar (or tar.gz) archive of text files."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue()) if compress else raw.getvalue()


def read_object(key: str) -> bytes:
    """An S3 object of the contexts bucket."""
    return aws.client("s3").get_object(Bucket=get_settings().bucket_name, Key=key)["Body"].read()


def tar_members(data: bytes) -> dict[str, bytes]:
    """The files of a tar or tar.gz archive."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def job_item(job_id: str) -> dict[str, Any]:
    """The raw DynamoDB job item."""
    return aws.client("dynamodb").get_item(
        TableName=get_settings().table_name, Key={"pk": {"S": job_id}, "sk": {"S": "job"}}
    )["Item"]


def queue_bodies() -> list[str]:
    """The raw bodies of every message on the job queue (left visible for later readers)."""
    from chalicelib.stores import queue

    sqs = aws.client("sqs")
    bodies: list[str] = []
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=queue.queue_url(), MaxNumberOfMessages=10, VisibilityTimeout=0)
        new = [m["Body"] for m in got.get("Messages", []) if m["Body"] not in bodies]
        if not new:
            break
        bodies.extend(new)
    return bodies


def _expand(data: bytes) -> list[bytes]:
    """The bytes of an object plus, for archives, what they contain (a compressed secret would hide)."""
    out = [data]
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
            out.append(data)
        except OSError:
            return out
    try:
        out.extend(tar_members(data).values())
    except tarfile.TarError:
        pass
    return out


def stored_text_everywhere() -> list[bytes]:
    """Every DynamoDB item, S3 object (and archive content) and raw SQS body, as bytes to search."""
    settings = get_settings()
    found: list[bytes] = []
    ddb = aws.client("dynamodb")
    for page in ddb.get_paginator("scan").paginate(TableName=settings.table_name):
        found.extend(json.dumps(item).encode() for item in page["Items"])
    s3 = aws.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket_name):
        for obj in page.get("Contents", []):
            found.extend(_expand(read_object(obj["Key"])))
    found.extend(body.encode() for body in queue_bodies())
    return found


def assert_no_leak(secret: str, *also: bytes | str) -> None:
    """Fail if ``secret`` is in any stored record, object, queue body, or in ``also`` (answers, logs)."""
    needle = secret.encode()
    blobs = stored_text_everywhere() + [a.encode() if isinstance(a, str) else a for a in also]
    assert blobs, "nothing was scanned"
    leaks = [b[:200] for b in blobs if needle in b]
    assert not leaks, f"the secret leaked into: {leaks}"
