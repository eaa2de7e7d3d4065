"""Request field validation: image references, sources, GitHub names, URLs, credentials, ids and cursors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from chalicelib.api.validation import (
    parse_job_id,
    parse_since,
    validate_build,
    validate_git_ref,
    validate_tar_url,
)
from chalicelib.domain import patterns
from chalicelib.domain.errors import InvalidRequest, JobNotFound, PayloadTooLarge
from chalicelib.domain.image_ref import InvalidReference, parse_image_ref
from chalicelib.domain.jobs import SourceKind
from chalicelib.domain.settings import load_settings

SETTINGS = load_settings({})


@pytest.mark.parametrize(
    "ref, domain, path, tag",
    [
        ("image", None, "image", "latest"),
        ("user/image", None, "user/image", "latest"),
        ("user/image:tag", None, "user/image", "tag"),
        ("registry.example.com:5000/team/image:1.0", "registry.example.com:5000", "team/image", "1.0"),
        ("localhost/x", "localhost", "x", "latest"),
        ("localhost:5000/a/b/c:V_1.2-rc", "localhost:5000", "a/b/c", "V_1.2-rc"),
        ("127.0.0.1:5000/e2e/dockerfile:0a1b2c", "127.0.0.1:5000", "e2e/dockerfile", "0a1b2c"),
        ("[::1]:5000/img", "[::1]:5000", "img", "latest"),
        ("My.Registry/img", "My.Registry", "img", "latest"),
        ("Registry/img", "Registry", "img", "latest"),  # Docker's rule: an uppercase first part is a registry
        ("a__b/c--d.e_f", None, "a__b/c--d.e_f", "latest"),
        ("localhost:5000", None, "localhost", "5000"),
        ("u/i:" + "t" * 128, None, "u/i", "t" * 128),
    ],
)
def test_valid_references(ref, domain, path, tag):
    parsed = parse_image_ref(ref)
    assert (parsed.domain, parsed.path, parsed.tag) == (domain, path, tag)
    assert str(parsed) == (ref if ref.endswith(":" + tag) else f"{ref}:latest")
    assert patterns.matches(patterns.IMAGE_NAME, ref)


@pytest.mark.parametrize(
    "ref, why",
    [
        ("User", "lowercase"),
        ("Registry/Image", "lowercase"),
        ("0123456789abcdef" * 4, "image ID"),
        ("user/Image", "lowercase"),
        ("user/image@sha256:" + "a" * 64, "cannot be pushed"),
        ("user/image:tag@sha256:" + "a" * 64, "cannot be pushed"),
        ("user/image:.tag", "tag"),
        ("user/image:" + "t" * 129, "tag"),
        ("user//image", "path"),
        ("user/image/", "path"),
        ("-user/image", "path"),
        ("user/im___age", "path"),
        ("user/ima ge", "path"),
        ("bad_host.com/image", "registry"),
        ("host.com:port/image", "registry"),
        ("a:b:c", "path"),
        ("a" * 256, "255"),
        ("", "empty"),
        ("ünicode/image", "path"),
    ],
)
def test_invalid_references(ref, why):
    with pytest.raises(InvalidReference, match=why):
        parse_image_ref(ref)
    if len(ref) <= 255:  # longer names are refused by maxLength in openapi.yaml, not by the pattern
        assert not patterns.matches(patterns.IMAGE_NAME, ref)


_REF_ALPHABET = st.sampled_from(list("abAB09._-/:@[]") + ["localhost", "__", "--", ":5000", "\n", "é"])


@hsettings(max_examples=3000, deadline=None)
@given(st.lists(_REF_ALPHABET, min_size=1, max_size=12).map("".join))
def test_reference_parser_and_documented_pattern_agree(text):
    """openapi.yaml documents IMAGE_NAME; the hand-written parser must accept exactly the same strings."""
    try:
        parse_image_ref(text)
        parsed = True
    except InvalidReference:
        parsed = False
    assert parsed == patterns.matches(patterns.IMAGE_NAME, text), text


@pytest.mark.parametrize("text", ["user/image\n", "user/image:tag\n", "\nuser/image"])
def test_trailing_newline_is_not_a_match(text):
    assert not patterns.matches(patterns.IMAGE_NAME, text)


def _build(**fields):
    return validate_build(fields, SETTINGS)


def test_each_source_kind():
    assert _build(image_name="u/i", dockerfile="FROM x").kind == SourceKind.DOCKERFILE
    assert _build(image_name="u/i", tar_url="http://h/a.tgz").fields == {"tar_url": "http://h/a.tgz"}
    github = _build(image_name="u/i", github_username="o", github_reponame="r", github_tag="v1")
    assert github.kind == SourceKind.GITHUB and github.fields == {
        "github_username": "o",
        "github_reponame": "r",
        "github_tag": "v1",
    }
    upload = _build(image_name="u/i", upload_id="AAAAAAAA-0000-4000-8000-000000000000")
    assert upload.kind == SourceKind.UPLOAD and upload.fields == {"upload_id": "aaaaaaaa-0000-4000-8000-000000000000"}
    multipart = validate_build({"image_name": "u/i"}, SETTINGS, archive_supplied=True)
    assert multipart.kind == SourceKind.UPLOAD and multipart.fields == {}


def test_credentials_are_kept_out_of_repr():
    request = _build(image_name="u/i", dockerfile="FROM x", username="me", password="hunter2", email="e@x")
    assert request.credentials.password == "hunter2"
    assert "hunter2" not in repr(request)


def test_missing_github_fields_are_named():
    with pytest.raises(InvalidRequest) as info:
        _build(image_name="u/i", github_username="octo")
    assert info.value.field == "github_reponame"
    assert "github_reponame, github_tag" in info.value.message


def test_dockerfile_limit_is_in_utf8_bytes():
    small = load_settings({"BOATYARD_MAX_DOCKERFILE_BYTES": "10"})
    validate_build({"image_name": "u/i", "dockerfile": "FROM abcde"}, small)  # 10 bytes
    with pytest.raises(PayloadTooLarge, match="dockerfile"):
        validate_build({"image_name": "u/i", "dockerfile": "FROM abcdé"}, small)  # 11 bytes


def test_unpaired_surrogates_are_refused():
    with pytest.raises(InvalidRequest, match="Unicode") as info:
        _build(image_name="u/i", github_username="o", github_reponame="r", github_tag="v\ud800")
    assert info.value.field == "github_tag"


@pytest.mark.parametrize(
    "url",
    ["http://h", "https://example.com:443/a/b.tar.gz?x=1&y=%20#frag", "HTTPS://H.example/a@b", "http://h:65535/"],
)
def test_good_tar_urls(url):
    assert validate_tar_url(url) == url
    assert patterns.matches(patterns.TAR_URL, url)


@pytest.mark.parametrize(
    "url, why",
    [
        ("file:///etc/passwd", "http"),
        ("http://", "host"),
        ("http://h:65536/", "valid URL"),
        ("http://h:99x/", "valid URL"),
        ("http://u:p@h/", "credentials"),
        ("http://h/a b", "whitespace"),
        ("http://h/\x7f", "control"),
        ("http://hé.com/", "ASCII"),
        ("//h/a.tar", "http"),
        ("http://h/" + "a" * 2048, "2048"),
    ],
)
def test_bad_tar_urls(url, why):
    with pytest.raises(InvalidRequest, match=why):
        validate_tar_url(url)


@pytest.mark.parametrize("tag", ["v1.2.0", "release/2024", "a-b_c", "1", "@x", "v1@2", "héllo"])
def test_good_git_refs(tag):
    assert validate_git_ref(tag) == tag


@pytest.mark.parametrize(
    "tag",
    [
        "a..b",
        "a b",
        "a~1",
        "a^",
        "a:b",
        "a?",
        "a*",
        "a[b",
        "a\\b",
        "/a",
        "a/",
        "a.",
        "-a",
        "@",
        "a@{1}",
        "a//b",
        ".a",
        "a/.b",
        "a.lock",
        "a.lock/b",
        "a\x01",
        "t" * 256,
    ],
)
def test_bad_git_refs(tag):
    with pytest.raises(InvalidRequest) as info:
        validate_git_ref(tag)
    assert info.value.field == "github_tag"


@pytest.mark.parametrize(
    "user, ok",
    [
        ("octo", True),
        ("octo-cat", True),
        ("a" * 39, True),
        ("a" * 40, False),
        ("-octo", False),
        ("octo-", False),
        ("oc--to", False),
        ("oc_to", False),
        ("", False),
    ],
)
def test_github_usernames(user, ok):
    fields = {"image_name": "u/i", "github_username": user or "x", "github_reponame": "r", "github_tag": "v"}
    if user == "":
        fields["github_username"] = "-"
    if ok:
        _build(**fields)
    else:
        with pytest.raises(InvalidRequest, match="github_username"):
            _build(**fields)


@pytest.mark.parametrize(
    "repo, ok",
    [
        ("r", True),
        ("my.repo_x-1", True),
        ("r" * 100, True),
        ("r" * 101, False),
        (".", False),
        ("..", False),
        ("a/b", False),
        ("a b", False),
    ],
)
def test_github_reponames(repo, ok):
    fields = {"image_name": "u/i", "github_username": "o", "github_reponame": repo, "github_tag": "v"}
    if ok:
        _build(**fields)
    else:
        with pytest.raises(InvalidRequest, match="github_reponame"):
            _build(**fields)


def test_job_ids():
    assert parse_job_id("EF0C7A10-31A5-4140-6087-DF97C2BEBCB2") == "ef0c7a10-31a5-4140-6087-df97c2bebcb2"
    for bad in ["", "x", "ef0c7a1031a541406087df97c2bebcb2", "ef0c7a10-31a5-4140-6087-df97c2bebcb2\n"]:
        with pytest.raises(JobNotFound):
            parse_job_id(bad)


def test_since_cursor():
    assert parse_since(None) is None
    assert parse_since("0") == 0 and parse_since("9999999999") == 9999999999
    for bad in ["-1", "1.0", "", "x", "10000000000", "1\n"]:
        with pytest.raises(InvalidRequest, match="^since: "):
            parse_since(bad)


def test_credentials_that_kms_cannot_seal_are_refused_up_front():
    """KMS encrypts at most 4096 bytes; non-ASCII text grows when sealing.py serialises it."""
    _build(image_name="u/i", dockerfile="FROM x", username="u" * 256, password="p" * 1024, email="e" * 320)
    with pytest.raises(InvalidRequest, match="too long to seal") as info:
        _build(image_name="u/i", dockerfile="FROM x", password="\U0001f600" * 1000)
    assert info.value.field == "password"


@pytest.mark.parametrize(
    "ref", ["boatyard.invalid/job/x:1", "BOATYARD.INVALID/job/x:1", "boatyard.invalid:5000/x", "Boatyard.Invalid/a"]
)
def test_the_build_services_private_namespace_is_refused(ref):
    """The worker builds jobs to ``boatyard.invalid/job/<id>:<attempt>``: no user name may equal one."""
    with pytest.raises(InvalidReference, match="reserved"):
        parse_image_ref(ref)
    with pytest.raises(InvalidRequest) as caught:
        validate_build({"image_name": ref, "dockerfile": "FROM x"}, SETTINGS)
    assert caught.value.field == "image_name"
