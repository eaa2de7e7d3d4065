"""Fixtures of the API tests: the Chalice test client on moto, and a freshly submitted job."""
from __future__ import annotations

import pytest
from chalice.test import Client

from app import app
from tests.aws.api_helpers import answer, post_json


@pytest.fixture
def client(aws_env, monkeypatch):
    """chalice.test.Client on the app, with AWS in process (moto); local registries allowed, as on the local stack."""
    from chalicelib.settings import get_settings

    monkeypatch.setenv("BOATYARD_ALLOW_PRIVATE_REGISTRIES", "true")
    get_settings.cache_clear()
    with Client(app) as test_client:
        yield test_client


@pytest.fixture
def job_id(client) -> str:
    """A queued job made through the API (Dockerfile source)."""
    return answer(post_json(client, {"image_name": "user/image:1", "dockerfile": "FROM busybox\n"}))["JobIdentifier"]
