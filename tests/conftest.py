"""Shared fixtures: AWS in process with moto, and the test password every leak check looks for."""
from __future__ import annotations

import os
from typing import Iterator

import pytest

# Fake credentials before anything makes a boto3 client; never a real account.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(_key, _value)

TEST_PASSWORD = "pw-Zq8!leak-canary-7731"


@pytest.fixture
def test_password() -> str:
    """The registry password used by tests; no stored item, object or log may contain it."""
    return TEST_PASSWORD


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """moto's ``mock_aws`` with boatyard's resources created; yields their names."""
    from moto import mock_aws

    from chalicelib import aws, queue
    from chalicelib.resources import ensure_resources
    from chalicelib.settings import get_settings

    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("BOATYARD_QUEUE_URL", raising=False)
    get_settings.cache_clear()
    aws.reset_clients()
    queue.reset()
    with mock_aws():
        yield ensure_resources()
    get_settings.cache_clear()
    aws.reset_clients()
    queue.reset()
