"""Notifications without AWS: signatures, the retry schedule, events, and the SSRF refusals (issue 14)."""

from __future__ import annotations

import json
import socket

import pytest

from boatyard.webhooks import verify_signature
from chalicelib.api.notify_fields import validate_notify_fields
from chalicelib.domain import notify as rules
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.settings import load_settings
from chalicelib.stores import outbound

SECRET = "s3cret-for-the-receiver"
STATUS = {
    "Status": "Finished",
    "Phase": "finished",
    "JobIdentifier": "j-1",
    "ImageName": "u/i:1",
    "ImageDigest": "sha256:" + "a" * 64,
}


# --- signatures -----------------------------------------------------------------------------------


def test_a_signed_payload_verifies_with_the_receivers_function():
    body = rules.payload(STATUS, "finished", "d-1")
    header = rules.signature_header(SECRET, body, timestamp=1_700_000_000)
    assert header.startswith("t=1700000000,v1=")
    assert verify_signature(SECRET, header, body, now=1_700_000_010)
    assert rules.verify_signature_header(SECRET, header, body, now=1_700_000_010)
    data = json.loads(body)
    assert data["Event"] == "finished" and data["JobIdentifier"] == "j-1" and data["ImageDigest"].startswith("sha256:")
    assert data["Status"] == "Finished" and data["DeliveryId"] == "d-1"


@pytest.mark.parametrize("verify", [verify_signature, rules.verify_signature_header])
def test_wrong_secret_changed_body_changed_time_and_replays_are_refused(verify):
    body = rules.payload(STATUS, "finished", "d-1")
    t = 1_700_000_000
    header = rules.signature_header(SECRET, body, timestamp=t)
    assert not verify("another-secret-entirely", header, body, now=t)
    assert not verify(SECRET, header, body.replace(b"Finished", b"Failed: x"), now=t)
    forged_time = header.replace(f"t={t}", f"t={t + 600}")
    assert not verify(SECRET, forged_time, body, now=t + 600)  # the timestamp is signed too
    assert not verify(SECRET, header, body, now=t + rules.SIGNATURE_TOLERANCE_SECONDS + 1)  # a replay later
    assert verify(SECRET, header, body, now=t + rules.SIGNATURE_TOLERANCE_SECONDS - 1)
    for broken in ("", "v1=abc", f"t={t}", f"t={t},t={t},v1=00", "t=abc,v1=00"):
        assert not verify(SECRET, broken, body, now=t)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body():
    import hashlib
    import hmac

    body = b'{"a":1}'
    expected = hmac.new(SECRET.encode(), b"42." + body, hashlib.sha256).hexdigest()
    assert rules.signature_header(SECRET, body, timestamp=42) == f"t=42,v1={expected}"


# --- retries ---------------------------------------------------------------------------------------


def test_backoff_doubles_from_the_base_up_to_the_cap():
    assert [rules.backoff_delay(n, 30, 3600) for n in range(1, 10)] == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert rules.backoff_delay(500, 30, 3600) == 3600


def test_the_default_schedule_tries_for_24_hours_and_stops():
    offsets = rules.schedule(30, 3600, 86400)
    assert offsets[:4] == [0, 30, 90, 210]
    assert offsets[-1] <= 86400 < offsets[-1] + 3600
    assert 25 <= len(offsets) <= 35
    assert rules.next_attempt_at(len(offsets) - 1, 0, offsets[-1], 30, 3600, 86400) is None


@pytest.mark.parametrize(
    "status, again",
    [
        (None, True),
        (500, True),
        (502, True),
        (503, True),
        (408, True),
        (429, True),
        (400, False),
        (401, False),
        (404, False),
        (410, False),
        (301, False),
        (200, False),
    ],
)
def test_what_is_tried_again(status, again):
    assert rules.retryable(status) is again


# --- events ----------------------------------------------------------------------------------------


def test_events_default_and_accept_status_words():
    assert rules.parse_events(None) == ("finished", "failed", "cancelled")
    assert rules.parse_events(["Finished", "building", "queued"]) == ("queued", "building", "finished")
    assert rules.parse_events("failed, Cancelled") == ("failed", "cancelled")
    for bad in (["done"], [1], {"a": 1}, ["x" * 100], ","):
        with pytest.raises(rules.EventsInvalid):
            rules.parse_events(bad)


def test_github_states_follow_the_job():
    assert rules.github_status("queued", {})["state"] == "pending"
    assert rules.github_status("fetching", {})["state"] == "pending"
    assert rules.github_status("finished", STATUS)["state"] == "success"
    failed = rules.github_status("failed", {"Reason": "x" * 500})
    assert failed["state"] == "failure" and len(failed["description"]) <= 140
    assert rules.github_status("cancelled", {})["state"] == "error"


# --- the API's field checks ----------------------------------------------------------------------


def _fields(**extra):
    return {"notify_url": "https://hooks.example.com/boatyard?token=x", "notify_secret": SECRET, **extra}


def test_notify_fields_accepted():
    found = validate_notify_fields(_fields(notify_events=["Finished"]), load_settings({}))
    assert found is not None and found.events == ("finished",) and found.url.startswith("https://hooks.example.com/")
    assert validate_notify_fields({}, load_settings({})) is None
    assert SECRET not in repr(found)


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/x",
        "ftp://hooks.example.com/x",
        "https://127.0.0.1/x",
        "https://localhost:8443/x",
        "https://10.1.2.3/x",
        "https://192.168.0.1/x",
        "https://169.254.169.254/latest/meta-data",
        "https://100.64.0.1/",
        "https://2130706433/",
        "https://0x7f.0.0.1/",
        "https://0.0.0.0/",
        "https://[::1]/",
        "https://u:p@hooks.example.com/",
        "https://hooks.example.com:99999/",
        "https://",
        "https://hooks.example.com/a b",
    ],
)
def test_notify_url_refusals_name_the_field(url):
    with pytest.raises(InvalidRequest) as caught:
        validate_notify_fields(_fields(notify_url=url), load_settings({}))
    assert caught.value.field == "notify_url"


def test_the_test_setting_allows_loopback_only():
    settings = load_settings({"BOATYARD_ALLOW_LOOPBACK_NOTIFY_URLS": "true"})
    assert validate_notify_fields(_fields(notify_url="http://127.0.0.1:8123/hook"), settings)
    assert validate_notify_fields(_fields(notify_url="http://localhost:8123/hook"), settings)
    for url in ("http://10.0.0.1/x", "https://169.254.169.254/", "http://hooks.example.com/"):
        with pytest.raises(InvalidRequest):
            validate_notify_fields(_fields(notify_url=url), settings)


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"notify_url": "https://hooks.example.com/"}, "notify_secret"),
        (_fields(notify_secret="short"), "notify_secret"),
        (_fields(notify_secret="a\nb" * 10), "notify_secret"),
        (_fields(notify_events=["sometimes"]), "notify_events"),
        ({"notify_secret": SECRET}, "notify_secret"),
        ({"notify_events": ["failed"]}, "notify_events"),
        (_fields(notify_url=5), "notify_url"),
    ],
)
def test_other_refusals_name_their_field_and_never_echo_the_secret(fields, field):
    with pytest.raises(InvalidRequest) as caught:
        validate_notify_fields(fields, load_settings({}))
    assert caught.value.field == field
    assert SECRET not in caught.value.message


# --- the sender's guard ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1:9/x",
        "https://localhost:9/x",
        "https://169.254.169.254/x",
        "https://10.0.0.1/x",
        "http://198.51.100.7/x",
    ],
)
def test_the_sender_refuses_non_public_addresses_and_plain_http(url):
    with pytest.raises(outbound.Refused):
        outbound.post(url, b"{}", {}, 1, 1, allow_loopback=False)


def test_a_name_resolving_to_a_private_address_is_refused_before_connecting(monkeypatch):
    connects = []
    monkeypatch.setattr(
        socket, "getaddrinfo", lambda *a, **k: [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.9.8.7", 443))]
    )
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: connects.append(a))
    with pytest.raises(outbound.Refused, match="10.9.8.7, a private address"):
        outbound.post("https://hooks.example.com/x", b"{}", {}, 1, 1)
    assert connects == []


def test_loopback_allowance_still_refuses_metadata_and_private():
    for url in ("http://169.254.169.254/x", "https://10.0.0.1/x"):
        with pytest.raises(outbound.Refused):
            outbound.post(url, b"{}", {}, 1, 1, allow_loopback=True)
