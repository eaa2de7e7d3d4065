"""Credentials never reach a log; image names map to the right registry."""

from __future__ import annotations

import base64
import io
import json
import logging
import urllib.parse

import pytest

from chalicelib.domain.image_ref import DOCKER_HUB, InvalidReference, parse_image_ref
from worker.redact import MARK, MIN_SUBSTRING_CHARS, SECRETS, RedactingSink, Redactor, SecretFilter

PASSWORD = "pw-Zq8!leak-canary-7731"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    "leak",
    [
        PASSWORD,
        _b64(PASSWORD),
        _b64(f"alice:{PASSWORD}"),
        _b64(f"alice:{PASSWORD}").rstrip("="),
        base64.urlsafe_b64encode(f"alice:{PASSWORD}".encode()).decode(),
    ],
)
def test_every_form_of_the_password_is_redacted(leak):
    redact = Redactor.for_pairs([("alice", PASSWORD)])
    out = redact(f"Authorization: Basic {leak} and more")
    assert leak not in out and MARK in out and out.endswith(" and more")


HTML_PASSWORD = 'p<w>&d/Zq8\u00e9"x'  # characters Go's JSON and URL escaping both change


@pytest.mark.parametrize(
    "leak",
    [
        HTML_PASSWORD.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace('"', '\\"'),
        HTML_PASSWORD.replace("<", "\\u003C").replace(">", "\\u003E").replace("&", "\\u0026").replace('"', '\\"'),
        json.dumps(HTML_PASSWORD)[1:-1],  # Python's: non-ASCII as \u00e9
        json.dumps(HTML_PASSWORD)[1:-1].replace("\\u00e9", "\\u00E9"),
        urllib.parse.quote(HTML_PASSWORD, safe=""),
        urllib.parse.quote(HTML_PASSWORD, safe="").lower().replace("zq8", "Zq8"),  # lower-case %xx escapes
        urllib.parse.quote_plus(HTML_PASSWORD).lower().replace("zq8", "Zq8"),
    ],
    ids=[
        "go-json",
        "go-json-upper-hex",
        "python-json",
        "python-json-upper-hex",
        "url",
        "url-lower-hex",
        "form-lower-hex",
    ],
)
def test_escaped_forms_of_the_password_are_redacted(leak):
    assert leak != HTML_PASSWORD
    out = Redactor.for_pairs([("alice", HTML_PASSWORD)])(f'{{"auth": "{leak}"}} and more')
    assert leak not in out and MARK in out and out.endswith(" and more"), out


@pytest.mark.parametrize("password", ["a", "e", "pw", "12345"])
def test_a_short_password_is_redacted_only_as_a_whole_token(password):
    redact = Redactor.for_pairs([("alice", password)])
    text = f"Step 1/2 : RUN make release && echo 'please wait' 1234567\nlogin -p {password} done\n{password}\n"
    out = redact(text)
    assert out == text.replace(f"-p {password} ", f"-p {MARK} ").replace(f"\n{password}\n", f"\n{MARK}\n")
    assert f"Basic {MARK}" in redact("Basic " + _b64(f"alice:{password}"))


def test_the_minimum_length_is_where_substring_redaction_starts():
    assert len("abcdef") == MIN_SUBSTRING_CHARS
    assert Redactor(["abcdef"])("xabcdefx") == f"x{MARK}x"
    assert Redactor(["abcde"])("xabcdex") == "xabcdex"
    assert Redactor(["abcde"])("x abcde.") == f"x {MARK}."


def test_no_password_means_nothing_is_redacted():
    assert Redactor.for_pairs([("alice", "")])("alice:anything") == "alice:anything"


def test_sink_finds_a_password_split_across_writes():
    written: list[str] = []
    sink = RedactingSink(written.append, Redactor.for_pairs([("u", PASSWORD)]))
    sink.write("token=" + PASSWORD[:7])
    sink.write(PASSWORD[7:] + " end\nnext")
    sink.flush()
    text = "".join(written)
    assert PASSWORD not in text and text == f"token={MARK} end\nnext"


def test_sink_writes_long_partial_lines_without_leaking():
    written: list[str] = []
    sink = RedactingSink(written.append, Redactor.for_pairs([("u", PASSWORD)]), max_partial=100)
    filler = "x" * 95
    sink.write(filler + PASSWORD[:10])  # over the partial limit, secret incomplete
    assert written, "a long partial line is written before its end arrives"
    sink.write(PASSWORD[10:] + "\n")
    text = "".join(written)
    assert PASSWORD not in text and text == filler + MARK + "\n"


def test_stderr_filter_redacts_running_jobs_secrets():
    redactor = Redactor.for_pairs([("bob", PASSWORD)])
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(SecretFilter())
    logger = logging.getLogger("test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    SECRETS.add(redactor)
    try:
        logger.warning("push failed for %s with %s", "bob", PASSWORD)
        try:
            raise RuntimeError(f"boom {_b64('bob:' + PASSWORD)}")
        except RuntimeError:
            logger.exception("oops")
    finally:
        SECRETS.remove(redactor)
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert PASSWORD not in text and _b64("bob:" + PASSWORD) not in text
    assert "push failed for bob with [redacted]" in text and "RuntimeError: boom [redacted]" in text


@pytest.mark.parametrize(
    "name, registry, repository, tag",
    [
        ("user/image", DOCKER_HUB, "user/image", "latest"),
        ("user/image:1.0", DOCKER_HUB, "user/image", "1.0"),
        ("busybox", DOCKER_HUB, "busybox", "latest"),
        (
            "registry.example.com:5000/team/image:1.0",
            "registry.example.com:5000",
            "registry.example.com:5000/team/image",
            "1.0",
        ),
        ("127.0.0.1:5000/tests/x:v1", "127.0.0.1:5000", "127.0.0.1:5000/tests/x", "v1"),
        ("localhost/app", "localhost", "localhost/app", "latest"),
        ("ghcr.io/org/app", "ghcr.io", "ghcr.io/org/app", "latest"),
        ("myhost:5000/app", "myhost:5000", "myhost:5000/app", "latest"),
        ("team/sub/app:2", DOCKER_HUB, "team/sub/app", "2"),
        ("Registry/app", "Registry", "Registry/app", "latest"),
    ],
)
def test_image_names_map_to_their_registry(name, registry, repository, tag):
    ref = parse_image_ref(name)
    assert (ref.registry, ref.repository, ref.tag) == (registry, repository, tag)
    assert ref.reference == f"{repository}:{tag}"


def test_docker_hub_credentials_go_to_the_index():
    assert parse_image_ref("user/app").auth_server == "https://index.docker.io/v1/"
    assert parse_image_ref("index.docker.io/user/app").auth_server == "https://index.docker.io/v1/"
    assert parse_image_ref("r.example.com/app").auth_server == "r.example.com"


@pytest.mark.parametrize("bad", ["", "app@sha256:abc", "http://r/app", "a b", "app:", "team/"])
def test_malformed_image_names_are_rejected(bad):
    with pytest.raises(InvalidReference):
        parse_image_ref(bad)


def test_private_tags_are_per_attempt_and_outside_every_user_name():
    from chalicelib.domain.image_ref import is_reserved, split_domain
    from worker.build.images import private_tag

    job = "0b8c2e1a-1111-4222-8333-444455556666"
    assert private_tag(job, 1) == f"boatyard.invalid/job/{job}:1" != private_tag(job, 2)
    assert is_reserved(split_domain(private_tag(job, 1))[0] or "")
    with pytest.raises(InvalidReference, match="reserved"):
        parse_image_ref(private_tag(job, 1))
    odd = private_tag("../../Weird ID", 3)  # never trusted as a path component
    assert odd.startswith("boatyard.invalid/job/") and ".." not in odd and " " not in odd


@pytest.mark.parametrize(
    "name, key",
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("docker.io/library/busybox:latest", "docker.io/library/busybox:latest"),
        ("index.docker.io/library/busybox", "docker.io/library/busybox:latest"),
        ("user/app:1", "docker.io/user/app:1"),
        ("127.0.0.1:5000/a/b:2", "127.0.0.1:5000/a/b:2"),
    ],
)
def test_one_lock_key_for_every_spelling_of_a_name(name, key):
    assert parse_image_ref(name).daemon_name == key


def test_a_builds_registry_auths_hold_only_the_jobs_credentials():
    from worker.build.images import registry_auths

    hub = registry_auths(parse_image_ref("user/app"), "me", "pw")
    assert hub == {
        "https://index.docker.io/v1/": {
            "username": "me",
            "password": "pw",
            "serveraddress": "https://index.docker.io/v1/",
        }
    }
    assert registry_auths(parse_image_ref("127.0.0.1:5000/a"), "", "") == {}
    both = registry_auths(
        parse_image_ref("r.example.com/a"), "me", "pw", {"r.example.com": ("x", "y"), "ghcr.io": ("g", "h")}
    )
    assert both["r.example.com"]["username"] == "me", "the push registry's own credentials win"
    assert both["ghcr.io"]["password"] == "h" and set(both) == {"r.example.com", "ghcr.io"}
