"""Helpers for the API tests: requests through chalice.test.Client, what the API stored, and the leak scan."""

from __future__ import annotations

import json
from typing import Any

from urllib3 import encode_multipart_formdata

from tests.support.faults import find_secret
from tests.support.services import stores

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


def read_object(key: str) -> bytes:
    """An S3 object of the contexts bucket."""
    return stores().clients.client("s3").get_object(Bucket=stores().settings.bucket_name, Key=key)["Body"].read()


def job_item(job_id: str) -> dict[str, Any]:
    """The raw DynamoDB job item."""
    return (
        stores()
        .clients.client("dynamodb")
        .get_item(TableName=stores().settings.table_name, Key={"pk": {"S": job_id}, "sk": {"S": "job"}})["Item"]
    )


def queue_bodies() -> list[str]:
    """The raw bodies of every message on the job queue (left visible for later readers)."""
    sqs = stores().clients.client("sqs")
    bodies: list[str] = []
    for _ in range(10):
        got = sqs.receive_message(QueueUrl=stores().queue.queue_url(), MaxNumberOfMessages=10, VisibilityTimeout=0)
        new = [m["Body"] for m in got.get("Messages", []) if m["Body"] not in bodies]
        if not new:
            break
        bodies.extend(new)
    return bodies


def stored_text_everywhere() -> list[bytes]:
    """Every DynamoDB item (as JSON), S3 object and raw SQS body, as bytes to search."""
    settings = stores().settings
    found: list[bytes] = []
    ddb = stores().clients.client("dynamodb")
    for page in ddb.get_paginator("scan").paginate(TableName=settings.table_name):
        found.extend(json.dumps(item).encode() for item in page["Items"])
    s3 = stores().clients.client("s3")
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=settings.bucket_name):
        for obj in page.get("Contents", []):
            found.append(read_object(obj["Key"]))
    found.extend(body.encode() for body in queue_bodies())
    return found


def assert_no_leak(secret: str, *also: bytes | str) -> None:
    """Fail if ``secret`` is in any stored record, object, queue body, or in ``also`` (answers, logs); archives
    are looked into (a compressed secret would hide) and JSON-escaped forms count (tests.support.faults.find_secret)."""
    blobs = stored_text_everywhere() + [a.encode() if isinstance(a, str) else a for a in also]
    assert blobs, "nothing was scanned"
    leaks = [(b[:200], where) for b in blobs for where in find_secret(b, secret)]
    assert not leaks, f"the secret leaked into: {leaks}"
