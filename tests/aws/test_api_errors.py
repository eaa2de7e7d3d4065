"""Every class of bad input to POST /api/v1/build: the status, the JSON error shape, the field named, nothing stored."""

from __future__ import annotations

import json

import pytest

from tests.aws.api_helpers import (
    answer,
    assert_no_leak,
    job_item,
    post_json,
    post_multipart,
    queue_bodies,
    stored_text_everywhere,
)
from tests.support.archives import make_tar
from tests.support.services import reconfigure, stores

OK = {"image_name": "user/image", "dockerfile": "FROM busybox\n"}
ARCHIVE = make_tar({"Dockerfile": "FROM busybox\n"})


def _error(response, status: int, code: str, *words: str) -> str:
    assert response.status_code == status, response.body
    body = answer(response)
    assert set(body) == {"Code", "Message"}
    assert body["Code"] == code
    for word in words:
        assert word in body["Message"], body["Message"]
    return body["Message"]


def _nothing_stored() -> None:
    blobs = stored_text_everywhere()
    assert blobs == [], f"a rejected request left something behind: {blobs[:3]}"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"dockerfile": "FROM x"}, "image_name"),
        ({"image_name": "", "dockerfile": "FROM x"}, "image_name"),
        ({"image_name": 5, "dockerfile": "FROM x"}, "image_name"),
        ({"image_name": "User/Image", "dockerfile": "FROM x"}, "image_name"),
        ({"image_name": "user/image@sha256:" + "a" * 64, "dockerfile": "FROM x"}, "image_name"),
        ({"image_name": "user/image:-bad", "dockerfile": "FROM x"}, "image_name"),
        ({"image_name": "user/image"}, "source"),
        ({"image_name": "u/i", "dockerfile": "FROM x", "tar_url": "https://e.com/a.tar"}, "source"),
        ({"image_name": "u/i", "dockerfile": "FROM x", "github_username": "octo"}, "source"),
        ({"image_name": "u/i", "dockerfile": "   \n"}, "dockerfile"),
        ({"image_name": "u/i", "dockerfile": ["FROM x"]}, "dockerfile"),
        ({"image_name": "u/i", "tar_url": "ftp://e.com/a.tar"}, "tar_url"),
        ({"image_name": "u/i", "tar_url": "https:///a.tar"}, "tar_url"),
        ({"image_name": "u/i", "tar_url": "https://e.com/a b.tar"}, "tar_url"),
        ({"image_name": "u/i", "tar_url": "https://e.com/" + "a" * 2100}, "tar_url"),
        ({"image_name": "u/i", "tar_url": "https://user:pw@e.com/a.tar"}, "tar_url"),
        ({"image_name": "u/i", "github_username": "octo", "github_reponame": "r"}, "github_tag"),
        (
            {"image_name": "u/i", "github_username": "-octo", "github_reponame": "r", "github_tag": "v1"},
            "github_username",
        ),
        (
            {"image_name": "u/i", "github_username": "octo", "github_reponame": "..", "github_tag": "v1"},
            "github_reponame",
        ),
        ({"image_name": "u/i", "github_username": "octo", "github_reponame": "r", "github_tag": "v1..2"}, "github_tag"),
        ({"image_name": "u/i", "github_username": "octo", "github_reponame": "r", "github_tag": "a b"}, "github_tag"),
        ({"image_name": "u/i", "upload_id": "../../etc/passwd"}, "upload_id"),
        ({**OK, "username": 12}, "username"),
        ({**OK, "username": "a\nb"}, "username"),
        ({**OK, "password": "x" * 1025}, "password"),
        ({**OK, "email": ["a@b"]}, "email"),
    ],
)
def test_invalid_field_is_400_naming_it(client, body, field):
    message = _error(post_json(client, body), 400, "InvalidRequest", field)
    assert message.startswith(f"{field}: ")
    _nothing_stored()


def test_bad_password_is_never_echoed(client):
    secret = "pw\x01-not-to-be-echoed"
    response = post_json(client, {**OK, "password": secret})
    _error(response, 400, "InvalidRequest", "password")
    assert b"not-to-be-echoed" not in response.body


def test_digest_reference_says_it_cannot_be_pushed(client):
    body = {"image_name": "user/image@sha256:" + "0" * 64, "dockerfile": "FROM x"}
    _error(post_json(client, body), 400, "InvalidRequest", "image_name", "cannot be pushed")


def test_no_source_lists_all_sources(client):
    _error(
        post_json(client, {"image_name": "u/i"}),
        400,
        "InvalidRequest",
        "dockerfile",
        "tar_url",
        "github_username",
        "upload_id",
    )


def test_two_sources_are_named(client):
    body = {"image_name": "u/i", "tar_url": "https://e.com/a.tar", "upload_id": "0" * 8 + "-0000-4000-8000-" + "0" * 12}
    _error(post_json(client, body), 400, "InvalidRequest", "tar_url", "upload_id")


@pytest.mark.parametrize("raw", [b"{not json", b'{"image_name": "u/i",}', b"\xff\xfe{}"])
def test_malformed_json_is_400(client, raw):
    _error(post_json(client, raw), 400, "InvalidRequest", "JSON" if raw[0] != 0xFF else "UTF-8")


@pytest.mark.parametrize("where", ["image_name", "unknown field", "top level"])
def test_json_integer_over_the_digit_limit_is_400(client, where):
    huge = "9" * 5000  # Python refuses to turn more than 4,300 digits into an int (ValueError, was a 500)
    raw = {
        "image_name": '{"image_name": ' + huge + ', "dockerfile": "FROM x"}',
        "unknown field": '{"image_name": "u/i", "dockerfile": "FROM x", "n": ' + huge + "}",
        "top level": huge,
    }[where]
    _error(post_json(client, raw.encode()), 400, "InvalidRequest", "the request body", "number too long")
    _nothing_stored()


def test_json_part_integer_over_the_digit_limit_is_400(client):
    doc = '{"image_name": "u/i", "n": -%s}' % ("1" * 4400)
    response = post_multipart(
        client,
        {
            "Json": ("build.json", doc, "application/json"),
            "TarFile": ("context.tar.gz", make_tar({"Dockerfile": "FROM x\n"}), "application/gzip"),
        },
    )
    _error(response, 400, "InvalidRequest", "Json: the Json part", "number too long")
    _nothing_stored()


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"42", b"null"])
def test_non_object_json_is_400(client, raw):
    _error(post_json(client, raw), 400, "InvalidRequest", "JSON object")


@pytest.mark.parametrize("raw", [b"", b"  \n"])
def test_empty_body_is_400(client, raw):
    _error(post_json(client, raw), 400, "InvalidRequest", "empty")


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "application/x-www-form-urlencoded"},  # curl -d without -H
        {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"},  # jQuery $.ajax's default
        {"Content-Type": "text/plain;charset=UTF-8"},  # fetch() with a string body
        {"Content-Type": "application/xml"},
        {"Content-Type": ""},
        {},  # no Content-Type at all
    ],
    ids=["form", "jquery", "text", "xml", "empty-type", "no-type"],
)
def test_json_body_is_accepted_whatever_the_content_type(client, headers):
    """The seed's relaxed mode: any non-multipart body is read as JSON."""
    response = client.http.post("/api/v1/build", headers=headers, body=json.dumps(OK))
    assert response.status_code == 202, response.body
    job_id = json.loads(response.body)["JobIdentifier"]
    assert job_item(job_id)["image_name"]["S"] == OK["image_name"]
    assert len(queue_bodies()) == 1


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("text/plain", b"build me an image"),
        ("application/x-www-form-urlencoded", b"image_name=user%2Fimage&dockerfile=FROM+busybox"),
        ("application/xml", b"<build><image_name>u/i</image_name></build>"),
        ("application/octet-stream", b"\x1f\x8b\x08\x00binary"),
    ],
)
def test_body_neither_json_nor_multipart_is_415(client, content_type, body):
    response = client.http.post("/api/v1/build", headers={"Content-Type": content_type}, body=body)
    _error(response, 415, "UnsupportedMediaType", "JSON", "multipart/form-data")
    _nothing_stored()


@pytest.mark.parametrize("content_type", ["application/json", "application/vnd.api+json", None])
def test_body_that_declares_json_and_is_not_is_400(client, content_type):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.http.post("/api/v1/build", headers=headers, body=b'{"image_name": ')
    _error(response, 400, "InvalidRequest", "not valid JSON")
    _nothing_stored()


def test_non_object_json_with_another_type_is_400(client):
    response = client.http.post("/api/v1/build", headers={"Content-Type": "text/plain"}, body=b"[1, 2]")
    _error(response, 400, "InvalidRequest", "JSON object")


def test_dockerfile_over_the_limit_is_413_naming_dockerfile(client):
    limit = stores().settings.max_dockerfile_bytes
    body = {"image_name": "u/i", "dockerfile": "FROM x\n" + "#" * limit}
    _error(post_json(client, body), 413, "PayloadTooLarge", "dockerfile", str(limit))
    _nothing_stored()


def test_dockerfile_at_the_limit_is_accepted(client):
    limit = stores().settings.max_dockerfile_bytes
    text = "FROM x\n" + "#" * (limit - 7)
    assert post_json(client, {"image_name": "u/i", "dockerfile": text}).status_code == 202


# --- multipart ---------------------------------------------------------------


def test_multipart_without_json_part(client):
    _error(post_multipart(client, {"TarFile": ("c.tgz", ARCHIVE)}), 400, "InvalidRequest", "Json")


def test_multipart_without_tarfile_part(client):
    _error(post_multipart(client, {"Json": json.dumps({"image_name": "u/i"})}), 400, "InvalidRequest", "TarFile")


def test_multipart_with_unknown_part(client):
    fields = {"TarFile": ("c.tgz", ARCHIVE), "Json": json.dumps({"image_name": "u/i"}), "Extra": "x"}
    _error(post_multipart(client, fields), 400, "InvalidRequest", "Extra")
    _nothing_stored()


def test_multipart_with_a_duplicate_part(client):
    fields = [
        ("TarFile", ("c.tgz", ARCHIVE)),
        ("TarFile", ("d.tgz", ARCHIVE)),
        ("Json", json.dumps({"image_name": "u/i"})),
    ]
    _error(post_multipart(client, fields), 400, "InvalidRequest", "TarFile", "more than once")


@pytest.mark.parametrize("data", [b"PK\x03\x04 a zip file" + b"\0" * 600, b"plain text", b""])
def test_multipart_tarfile_that_is_not_an_archive(client, data):
    fields = {"TarFile": ("c.tgz", data), "Json": json.dumps({"image_name": "u/i"})}
    _error(post_multipart(client, fields), 400, "InvalidRequest", "TarFile")
    _nothing_stored()


@pytest.mark.parametrize("json_part", ["{oops", "[1]"])
def test_multipart_json_part_must_be_an_object(client, json_part):
    _error(post_multipart(client, {"TarFile": ("c.tgz", ARCHIVE), "Json": json_part}), 400, "InvalidRequest", "Json")


def test_multipart_json_part_is_validated(client):
    fields = {"TarFile": ("c.tgz", ARCHIVE), "Json": json.dumps({"image_name": "Bad Name"})}
    _error(post_multipart(client, fields), 400, "InvalidRequest", "image_name")


def test_multipart_with_a_second_source_in_json(client):
    fields = {"TarFile": ("c.tgz", ARCHIVE), "Json": json.dumps({"image_name": "u/i", "dockerfile": "FROM x"})}
    _error(post_multipart(client, fields), 400, "InvalidRequest", "dockerfile", "TarFile")


def test_multipart_without_boundary(client):
    response = client.http.post("/api/v1/build", headers={"Content-Type": "multipart/form-data"}, body=b"--x\r\n")
    _error(response, 400, "InvalidRequest", "boundary")


def test_multipart_truncated_body(client):
    fields = {"TarFile": ("c.tgz", ARCHIVE), "Json": json.dumps({"image_name": "u/i"})}
    from urllib3 import encode_multipart_formdata

    body, content_type = encode_multipart_formdata(fields)
    response = client.http.post("/api/v1/build", headers={"Content-Type": content_type}, body=body[:-30])
    _error(response, 400, "InvalidRequest", "closing boundary")


def test_body_over_the_inline_limit_points_to_uploads(client, monkeypatch):
    monkeypatch.setenv("BOATYARD_MAX_INLINE_BYTES", "4096")
    reconfigure()
    big = make_tar({"Dockerfile": "FROM x\n", "blob": "y" * 20000}, gz=False)
    fields = {"TarFile": ("c.tar", big), "Json": json.dumps({"image_name": "u/i"})}
    _error(post_multipart(client, fields), 413, "PayloadTooLarge", "POST /api/v1/uploads", "4096")
    _nothing_stored()


def test_declared_content_length_is_checked_first(client, monkeypatch):
    monkeypatch.setenv("BOATYARD_MAX_INLINE_BYTES", "4096")
    reconfigure()
    response = client.http.post(
        "/api/v1/build", headers={"Content-Type": "application/json", "Content-Length": "999999999"}, body=b"{}"
    )
    _error(response, 413, "PayloadTooLarge", "999999999", "POST /api/v1/uploads")


def test_json_body_over_the_inline_limit(client, monkeypatch):
    monkeypatch.setenv("BOATYARD_MAX_INLINE_BYTES", "4096")
    reconfigure()
    _error(post_json(client, {**OK, "padding": "z" * 5000}), 413, "PayloadTooLarge", "POST /api/v1/uploads")


def test_upload_id_that_was_never_uploaded(client):
    upload_id = answer(client.http.post("/api/v1/uploads"))["UploadId"]
    message = _error(
        post_json(client, {"image_name": "u/i", "upload_id": upload_id}), 400, "InvalidRequest", "upload_id"
    )
    assert "no upload with that id; upload the archive first" in message


def test_upload_id_whose_file_is_not_an_archive(client):
    from chalicelib.stores import contexts

    upload_id = answer(client.http.post("/api/v1/uploads"))["UploadId"]
    stores().contexts.put_bytes(contexts.upload_key(upload_id), b"<html>not an archive</html>" * 40)
    _error(
        post_json(client, {"image_name": "u/i", "upload_id": upload_id}), 400, "InvalidRequest", "upload_id", "neither"
    )


def test_rejections_never_leak_the_password(client, test_password, caplog):
    bodies = [
        {"image_name": "BAD", "dockerfile": "FROM x", "password": test_password},
        {"image_name": "u/i", "password": test_password},
        {"image_name": "u/i", "tar_url": "nope", "password": test_password},
    ]
    responses = [post_json(client, b).body for b in bodies]
    assert_no_leak(test_password, *responses, caplog.text)
