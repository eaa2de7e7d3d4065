"""Bad input: a corpus of malformed requests, each answered with the right 4xx JSON error and no stored job.

In process: moto's ``mock_aws`` and ``chalice.test.Client``.  After every request the
DynamoDB table, the contexts bucket and the job queue are checked: a refused request
must leave nothing behind.  The password of every request is the leak canary; no
answer may echo it.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any

import pytest
from chalice.test import Client
from urllib3 import encode_multipart_formdata

from devstack.archive_server import make_tar_gz
from tests.support.canary import TEST_PASSWORD
from tests.support.faults import report
from tests.support.services import api_client, reconfigure, stores

IMAGE = "registry.example.com:5000/team/image:1.0"
MAX_INLINE = 256 * 1024  # a small request limit for this module, so 413 needs no huge bodies
CREDS = {"username": "builder", "password": TEST_PASSWORD, "email": "b@example.com"}
GOOD_DOCKERFILE = "FROM busybox\nCMD echo hi\n"
GOOD_TAR = make_tar_gz({"Dockerfile": GOOD_DOCKERFILE})


@dataclasses.dataclass
class Case:
    """One malformed request and the status it must get."""

    name: str
    status: int
    method: str = "POST"
    path: str = "/api/v1/build"
    headers: dict[str, str] = dataclasses.field(default_factory=lambda: {"Content-Type": "application/json"})
    body: bytes | str | None = None


def _json_case(name: str, status: int, body: Any, **extra: Any) -> Case:
    return Case(name, status, body=json.dumps(body), **extra)


def _build(**fields: Any) -> dict[str, Any]:
    """A build request: the given fields plus credentials (None values are dropped)."""
    out = {"image_name": IMAGE, **CREDS, **fields}
    return {k: v for k, v in out.items() if v is not _DROP}


_DROP = object()


def _multipart(fields: list[tuple[str, Any]], boundary: str | None = None) -> tuple[dict[str, str], bytes]:
    body, content_type = encode_multipart_formdata(fields, boundary=boundary)
    return {"Content-Type": content_type}, body


def _mp_case(name: str, status: int, fields: list[tuple[str, Any]]) -> Case:
    headers, body = _multipart(fields)
    return Case(name, status, headers=headers, body=body)


def _json_part(doc: Any) -> tuple[str, str | bytes, str]:
    return ("json.json", json.dumps(doc) if not isinstance(doc, (bytes, str)) else doc, "application/json")


def _tar_part(data: bytes) -> tuple[str, bytes, str]:
    return ("context.tar.gz", data, "application/x-gzip")


def corpus() -> list[Case]:
    """At least 50 malformed requests across JSON, fields, content types, multipart, sizes and ids."""
    cases: list[Case] = []
    add = cases.append
    # --- JSON syntax ---------------------------------------------------------------------
    add(Case("empty body", 400, body=b""))
    add(Case("whitespace body", 400, body=b"  \n\t "))
    add(Case("truncated JSON", 400, body=b'{"image_name": "a/b", "dockerfile": "FROM x'))
    add(Case("JSON array", 400, body=b"[]"))
    add(Case("JSON string", 400, body=b'"FROM busybox"'))
    add(Case("JSON null", 400, body=b"null"))
    add(Case("JSON number", 400, body=b"12345"))
    add(Case("not UTF-8", 400, body=b'{"image_name": "\xff\xfe", "dockerfile": "FROM x"}'))
    add(Case("NaN as image name", 400, body=b'{"image_name": NaN, "dockerfile": "FROM x"}'))
    add(Case("deeply nested JSON", 400, body=b"[" * 100_000 + b"]" * 100_000))
    add(Case("trailing garbage", 400, body=b'{"image_name": "a/b", "dockerfile": "FROM x"} trailing'))
    add(Case("single-quoted pseudo JSON", 400, body=b"{'image_name': 'a/b', 'dockerfile': 'FROM x'}"))
    add(
        Case(
            "UTF-8 BOM before JSON", 400, body=b"\xef\xbb\xbf" + json.dumps(_build(dockerfile=GOOD_DOCKERFILE)).encode()
        )
    )
    add(Case("lone surrogate escape in JSON", 400, body=b'{"image_name": "a/b\\ud800", "dockerfile": "FROM x"}'))
    add(
        Case(
            "JSON integer of 5,000 digits",
            400,
            body=b'{"image_name": "a/b", "dockerfile": "FROM x", "n": ' + b"9" * 5000 + b"}",
        )
    )
    add(
        Case(
            "JSON integer of 4,301 digits as image_name",
            400,
            body=b'{"image_name": -' + b"1" * 4301 + b', "dockerfile": "FROM x"}',
        )
    )
    # --- image_name --------------------------------------------------------------------------
    bad_names: list[tuple[str, Any]] = [
        ("missing image_name", _DROP),
        ("empty image_name", ""),
        ("null image_name", None),
        ("numeric image_name", 5),
        ("list image_name", ["a/b"]),
        ("object image_name", {"name": "a/b"}),
        ("uppercase image_name", "User/Image:1"),
        ("image_name with a space", "user/my image"),
        ("digest image_name", "user/image@sha256:" + "a" * 64),
        ("empty tag", "user/image:"),
        ("tag of 129 characters", "user/image:" + "t" * 129),
        ("repository of 300 characters", "user/" + "a" * 300),
        ("non-ASCII image_name", "\u00fcser/image"),
        ("emoji image_name", "user/\U0001f433:latest"),
        ("NUL in image_name", "user/image\x00:latest"),
        ("newline in image_name", "user/image\n:latest"),
        ("right-to-left override in image_name", "user/\u202eimage"),
        ("leading dash", "-user/image"),
        ("URL as image_name", "http://registry.example.com/user/image"),
        ("double slash", "user//image"),
        ("dot-dot path", "../../etc/passwd"),
        ("tag starting with a dot", "user/image:.hidden"),
        ("bad registry port", "registry.example.com:port/team/image"),
    ]
    for name, value in bad_names:
        request = _build(dockerfile=GOOD_DOCKERFILE)
        if value is _DROP:
            request.pop("image_name")
        else:
            request["image_name"] = value
        add(_json_case(name, 400, request))
    # --- sources -----------------------------------------------------------------------------
    add(_json_case("no source", 400, _build()))
    add(_json_case("all sources blank", 400, _build(dockerfile="", tar_url=None, upload_id="")))
    add(
        _json_case(
            "dockerfile and tar_url", 400, _build(dockerfile=GOOD_DOCKERFILE, tar_url="https://example.com/a.tar.gz")
        )
    )
    add(
        _json_case(
            "dockerfile and GitHub",
            400,
            _build(dockerfile=GOOD_DOCKERFILE, github_username="octo", github_reponame="repo", github_tag="v1"),
        )
    )
    add(
        _json_case(
            "tar_url and upload_id", 400, _build(tar_url="https://example.com/a.tgz", upload_id=str(uuid.uuid4()))
        )
    )
    add(_json_case("blank dockerfile", 400, _build(dockerfile="   \n\t")))
    add(_json_case("numeric dockerfile", 400, _build(dockerfile=42)))
    add(_json_case("list dockerfile", 400, _build(dockerfile=["FROM busybox"])))
    add(_json_case("dockerfile over the size limit", 413, _build(dockerfile="FROM busybox\n" + "RUN true\n" * 29_000)))
    for name, url in [
        ("ftp tar_url", "ftp://example.com/a.tar.gz"),
        ("file tar_url", "file:///etc/passwd"),
        ("javascript tar_url", "javascript:alert(1)"),
        ("relative tar_url", "/archive.tar.gz"),
        ("tar_url without host", "http:///archive.tar.gz"),
        ("tar_url with credentials", "https://user:secret@example.com/a.tar.gz"),
        ("tar_url of 3000 characters", "https://example.com/" + "a" * 3000),
        ("tar_url with a space", "https://example.com/a b.tar.gz"),
        ("tar_url with a control character", "https://example.com/a\x01.tar.gz"),
        ("tar_url with a bad port", "https://example.com:99999/a.tar.gz"),
        ("numeric tar_url", 12345),
    ]:
        add(_json_case(name, 400, _build(tar_url=url)))
    github_cases: list[tuple[str, dict[str, Any]]] = [
        ("GitHub user only", {"github_username": "octo"}),
        ("GitHub without tag", {"github_username": "octo", "github_reponame": "repo"}),
        ("GitHub user with a space", {"github_username": "bad user", "github_reponame": "r", "github_tag": "v1"}),
        ("GitHub user with a leading dash", {"github_username": "-octo", "github_reponame": "r", "github_tag": "v1"}),
        ("GitHub user of 40 characters", {"github_username": "a" * 40, "github_reponame": "r", "github_tag": "v1"}),
        ("GitHub repo '..'", {"github_username": "octo", "github_reponame": "..", "github_tag": "v1"}),
        ("GitHub repo with a slash", {"github_username": "octo", "github_reponame": "a/b", "github_tag": "v1"}),
        ("GitHub tag with '..'", {"github_username": "octo", "github_reponame": "r", "github_tag": "v1..2"}),
        (
            "GitHub tag with a control character",
            {"github_username": "octo", "github_reponame": "r", "github_tag": "v1\x1b"},
        ),
        ("GitHub tag ending in .lock", {"github_username": "octo", "github_reponame": "r", "github_tag": "v1.lock"}),
        ("GitHub tag of 300 characters", {"github_username": "octo", "github_reponame": "r", "github_tag": "v" * 300}),
        ("GitHub tag with a colon", {"github_username": "octo", "github_reponame": "r", "github_tag": "refs:heads"}),
        ("numeric GitHub tag", {"github_username": "octo", "github_reponame": "r", "github_tag": 1}),
    ]
    for name, fields in github_cases:
        add(_json_case(name, 400, _build(**fields)))
    add(_json_case("upload_id not a uuid", 400, _build(upload_id="not-an-upload")))
    add(_json_case("upload_id that was never uploaded", 400, _build(upload_id=str(uuid.uuid4()))))
    add(_json_case("upload_id path traversal", 400, _build(upload_id="../contexts/x")))
    # --- credentials (the password must never be echoed) -----------------------------------
    add(_json_case("username is a list", 400, _build(dockerfile=GOOD_DOCKERFILE, username=["a"])))
    add(_json_case("password is a number", 400, _build(dockerfile=GOOD_DOCKERFILE, password=1234)))
    add(
        _json_case(
            "password with a control character",
            400,
            _build(dockerfile=GOOD_DOCKERFILE, password=TEST_PASSWORD + "\x07"),
        )
    )
    add(
        _json_case("password of 2000 characters", 400, _build(dockerfile=GOOD_DOCKERFILE, password=TEST_PASSWORD * 100))
    )
    add(_json_case("username of 100 KB", 400, _build(dockerfile=GOOD_DOCKERFILE, username="u" * 100_000)))
    add(
        _json_case(
            "email of 1000 characters", 400, _build(dockerfile=GOOD_DOCKERFILE, email="e" * 990 + "@example.com")
        )
    )
    add(_json_case("username with a newline", 400, _build(dockerfile=GOOD_DOCKERFILE, username="bob\nadmin")))
    # --- content types -----------------------------------------------------------------------
    good = json.dumps(_build(dockerfile=GOOD_DOCKERFILE))
    # any non-multipart body is read as JSON (the seed's relaxed mode): 415 only for a body that is not JSON
    for content_type, body in (
        ("text/plain", b"image_name: user/image"),
        ("application/xml", b"<build><image_name>user/image</image_name></build>"),
        ("application/x-www-form-urlencoded", b"image_name=user%2Fimage&dockerfile=FROM+busybox"),
        ("application/x-gzip", GOOD_TAR),
        ("application/octet-stream", b"\x00\x01\x02 not json"),
        ("image/png", b"\x89PNG\r\n\x1a\n"),
    ):
        add(Case(f"Content-Type {content_type}", 415, headers={"Content-Type": content_type}, body=body))
    add(
        Case(
            "Content-Type +json with a broken body",
            400,
            headers={"Content-Type": "application/json-patch+json"},
            body=b'[{"op": ',
        )
    )
    # --- multipart ---------------------------------------------------------------------------
    add(
        Case(
            "multipart without boundary",
            400,
            headers={"Content-Type": "multipart/form-data"},
            body=b"--x\r\n\r\n--x--\r\n",
        )
    )
    headers, body = _multipart(
        [("Json", _json_part(_build())), ("TarFile", _tar_part(GOOD_TAR))], boundary="realboundary"
    )
    add(
        Case(
            "multipart boundary mismatch",
            400,
            headers={"Content-Type": "multipart/form-data; boundary=otherboundary"},
            body=body,
        )
    )
    add(Case("multipart truncated", 400, headers=headers, body=body[: len(body) - 40]))
    add(_mp_case("multipart without Json", 400, [("TarFile", _tar_part(GOOD_TAR))]))
    add(_mp_case("multipart without TarFile", 400, [("Json", _json_part(_build()))]))
    add(
        _mp_case(
            "multipart TarFile not an archive",
            400,
            [("Json", _json_part(_build())), ("TarFile", _tar_part(b"hello, not a tar" * 64))],
        )
    )
    add(_mp_case("multipart empty TarFile", 400, [("Json", _json_part(_build())), ("TarFile", _tar_part(b""))]))
    add(_mp_case("multipart Json not JSON", 400, [("Json", _json_part("{not json")), ("TarFile", _tar_part(GOOD_TAR))]))
    add(_mp_case("multipart Json an array", 400, [("Json", _json_part([1, 2])), ("TarFile", _tar_part(GOOD_TAR))]))
    add(
        _mp_case(
            "multipart Json with an integer of 5,000 digits",
            400,
            [("Json", _json_part('{"image_name": "a/b", "n": ' + "7" * 5000 + "}")), ("TarFile", _tar_part(GOOD_TAR))],
        )
    )
    add(
        _mp_case(
            "multipart Json without image_name",
            400,
            [("Json", _json_part({**CREDS})), ("TarFile", _tar_part(GOOD_TAR))],
        )
    )
    add(
        _mp_case(
            "multipart with a second source",
            400,
            [("Json", _json_part(_build(dockerfile=GOOD_DOCKERFILE))), ("TarFile", _tar_part(GOOD_TAR))],
        )
    )
    add(
        _mp_case(
            "multipart extra part",
            400,
            [("Json", _json_part(_build())), ("TarFile", _tar_part(GOOD_TAR)), ("Extra", "x")],
        )
    )
    add(
        _mp_case(
            "multipart duplicate TarFile",
            400,
            [("Json", _json_part(_build())), ("TarFile", _tar_part(GOOD_TAR)), ("TarFile", _tar_part(GOOD_TAR))],
        )
    )
    add(
        Case(
            "multipart part without Content-Disposition",
            400,
            headers={"Content-Type": "multipart/form-data; boundary=b0"},
            body=b"--b0\r\nContent-Type: application/json\r\n\r\n{}\r\n--b0--\r\n",
        )
    )
    add(
        Case("multipart garbage", 400, headers={"Content-Type": "multipart/form-data; boundary=b0"}, body=b"\x00" * 512)
    )
    # --- sizes -------------------------------------------------------------------------------
    add(
        Case(
            "JSON body over the request limit",
            413,
            body=json.dumps(_build(dockerfile="FROM x\n", padding="p" * (MAX_INLINE + 10))),
        )
    )
    add(
        _mp_case(
            "multipart body over the request limit",
            413,
            [("Json", _json_part(_build())), ("TarFile", _tar_part(b"\x1f\x8b" + b"z" * (MAX_INLINE + 10)))],
        )
    )
    add(
        Case(
            "declared Content-Length over the limit",
            413,
            headers={"Content-Type": "application/json", "Content-Length": str(50 * 1024**3)},
            body=good,
        )
    )
    add(_json_case("10000 unknown fields and no image", 400, {f"field{i}": i for i in range(10_000)}))
    # --- job ids -----------------------------------------------------------------------------
    job = str(uuid.uuid4())
    for name, path, status in [
        ("status of a non-uuid id", "/api/v1/not-a-uuid/status", 404),
        ("status of an unknown uuid", f"/api/v1/{job}/status", 404),
        ("logs of an unknown uuid", f"/api/v1/{job}/logs", 404),
        ("status of an unknown upper-case uuid", f"/api/v1/{job.upper()}/status", 404),
        ("status of a uuid with a suffix", f"/api/v1/{job}x/status", 404),
        ("status of an SQL injection id", "/api/v1/%27%20OR%201%3D1--/status", 404),
        ("status of a percent-encoded NUL id", "/api/v1/%00/status", 404),
        ("status of a non-ASCII id", "/api/v1/%C3%BC%C3%BC/status", 404),
        ("status of a 5000-character id", "/api/v1/" + "a" * 5000 + "/status", 404),
        ("logs of a path-traversal id", "/api/v1/..%2F..%2Fetc/logs", 404),
        ("logs with a negative cursor", f"/api/v1/{job}/logs?since=-1", 400),
        ("logs with a text cursor", f"/api/v1/{job}/logs?since=abc", 400),
        ("logs with an 11-digit cursor", f"/api/v1/{job}/logs?since=99999999999", 400),
    ]:
        add(Case(name, status, method="GET", path=path, headers={}, body=None))
    return cases


CORPUS = corpus()


@pytest.fixture
def api(aws_env, monkeypatch):
    """The API in process against moto, with a small request limit."""

    monkeypatch.setenv("BOATYARD_MAX_INLINE_BYTES", str(MAX_INLINE))
    reconfigure()
    with api_client() as client:
        yield client
    reconfigure()


def _stored() -> dict[str, int]:
    """How many DynamoDB items, S3 objects and queued messages exist."""

    settings = stores().settings
    items = stores().clients.client("dynamodb").scan(TableName=settings.table_name, Select="COUNT")["Count"]
    objects = stores().clients.client("s3").list_objects_v2(Bucket=settings.bucket_name).get("KeyCount", 0)
    attrs = (
        stores()
        .clients.client("sqs")
        .get_queue_attributes(
            QueueUrl=stores().queue.queue_url(),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
    )
    messages = int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
    return {"items": items, "objects": objects, "messages": messages}


def _send(client: Client, case: Case) -> Any:
    if case.method == "GET":
        return client.http.get(case.path, headers=case.headers)
    return client.http.post(case.path, headers=case.headers, body=case.body)


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 50
    assert len({c.name for c in CORPUS}) == len(CORPUS), "case names must be unique"


def test_malformed_requests_get_the_right_4xx_and_store_nothing(api):
    wrong: list[str] = []
    counts = {400: 0, 404: 0, 413: 0, 415: 0}
    for case in CORPUS:
        response = _send(api, case)
        text = response.body.decode("utf-8", "replace") if isinstance(response.body, bytes) else str(response.body)
        problems = []
        if response.status_code != case.status:
            problems.append(f"status {response.status_code}, expected {case.status}")
        try:
            body = json.loads(text)
        except ValueError:
            body = None
        if not (
            isinstance(body, dict)
            and set(body) == {"Code", "Message"}
            and all(isinstance(v, str) and v for v in body.values())
        ):
            problems.append(f"body is not {{Code, Message}}: {text[:200]!r}")
        content_type = {k.lower(): v for k, v in response.headers.items()}.get("content-type", "")
        if not content_type.startswith("application/json"):
            problems.append(f"Content-Type {content_type!r}")
        if TEST_PASSWORD in text:
            problems.append("the answer echoes the password")
        if "Traceback" in text or 'File "' in text:
            problems.append("the answer holds a stack trace")
        stored = _stored()
        if any(stored.values()):
            problems.append(f"left something stored: {stored}")
        if problems:
            wrong.append(f"{case.name}: {'; '.join(problems)}")
        else:
            counts[case.status] += 1
    line = report(
        f"BAD INPUT: {len(CORPUS)} malformed requests, {len(CORPUS) - len(wrong)} answered with the right 4xx JSON "
        f"({', '.join(f'{k}: {v}' for k, v in counts.items())}), {len(wrong)} wrong, "
        f"{sum(_stored().values())} stored records"
    )
    assert not wrong, line + "\n" + "\n".join(wrong)
    # the check above can fail: a good request right after the corpus is stored
    accepted = api.http.post(
        "/api/v1/build",
        headers={"Content-Type": "application/json"},
        body=json.dumps(_build(dockerfile=GOOD_DOCKERFILE)),
    )
    assert accepted.status_code == 202, accepted.body
    assert _stored()["items"] == 1 and _stored()["messages"] == 1
