"""Fixtures of the API tests: the Chalice test client on moto, and a freshly submitted job."""

from __future__ import annotations

import pytest

from tests.aws.api_helpers import answer, post_json
from tests.support.services import api_client, reconfigure, stores


@pytest.fixture
def client(aws_env, monkeypatch):
    """chalice.test.Client on the app, with AWS in process (moto); local registries allowed, as on the local stack."""
    reconfigure(monkeypatch, BOATYARD_ALLOW_PRIVATE_REGISTRIES="true")
    with api_client() as test_client:
        yield test_client


@pytest.fixture
def job_id(client) -> str:
    """A queued job made through the API (Dockerfile source)."""
    return answer(post_json(client, {"image_name": "user/image:1", "dockerfile": "FROM busybox\n"}))["JobIdentifier"]


# --- keys mode (issue 12): the same app loaded with BOATYARD_AUTH=keys -------------------------

KEYS_ENV = {
    "BOATYARD_AUTH": "keys",
    "BOATYARD_AUTH_CACHE_SECONDS": "1",
    "BOATYARD_QUOTA_LIVE_JOBS": "5",
    "BOATYARD_QUOTA_SUBMISSIONS_PER_MINUTE": "1000",
    "BOATYARD_QUOTA_OUTSTANDING_UPLOADS": "3",
}


@pytest.fixture
def keys_env(monkeypatch):
    """BOATYARD_AUTH=keys with small quotas and a 1 s authorizer cache (set before ``aws_env`` reads the settings)."""

    for name, value in KEYS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def keys_client(keys_env, aws_env):
    """chalice.test.Client on an app made in keys mode (the authorizer guards the API)."""
    with api_client() as test_client:
        yield test_client


@pytest.fixture
def owners(keys_client):
    """Tokens of two ordinary owners and one admin: ``{"a": ..., "b": ..., "admin": ...}``."""
    keys = stores().apikeys
    return {
        "a": keys.create_key("team-a", "ci")[1],
        "b": keys.create_key("team-b", "ci")[1],
        "admin": keys.create_key("ops", "admin", scope="admin")[1],
    }
