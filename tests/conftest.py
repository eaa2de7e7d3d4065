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
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI nothing may skip: a skipped test (e.g. no Docker daemon) is turned into a failure."""
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, which is a failure here: {report.longrepr}"


@pytest.fixture
def test_password() -> str:
    """The registry password used by tests; no stored item, object or log may contain it."""
    return TEST_PASSWORD


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict]:
    """moto's ``mock_aws`` with boatyard's resources created; yields their names."""
    from moto import mock_aws

    from chalicelib.stores import aws, queue
    from devstack.resources import ensure_resources
    from chalicelib.domain.settings import get_settings
    from devstack.moto_atomic import make_dynamodb_writes_atomic

    make_dynamodb_writes_atomic()  # conditional writes atomic across a worker's threads, as in DynamoDB
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


# --- real services: Docker daemon, registry, base image (tier "docker") -----------------------

TEST_REGISTRY_PORT = int(os.environ.get("BOATYARD_TEST_REGISTRY_PORT", "5050"))
TEST_REGISTRY_USER = "tester"


@pytest.fixture(scope="session")
def docker_host() -> str:
    """The Docker daemon's URL; started when missing and we are root. Never skipped: fails loudly."""
    from devstack import services

    return services.ensure_dockerd()


@pytest.fixture(scope="session")
def registry(docker_host: str):
    """A real registry on 127.0.0.1 with htpasswd auth; its password is the leak canary."""
    from devstack import services

    return services.ensure_registry(TEST_REGISTRY_PORT, TEST_REGISTRY_USER, TEST_PASSWORD)


@pytest.fixture(scope="session")
def base_image(registry, docker_host: str) -> str:
    """``127.0.0.1:<port>/boatyard/busybox:latest``: the only FROM the tests use (no internet)."""
    from devstack import services

    return services.ensure_base_image(registry, docker_host)


@pytest.fixture(scope="session")
def archive_server():
    """A local server standing in for GitHub archives and tarball URLs."""
    from devstack.archive_server import ArchiveServer

    server = ArchiveServer().start()
    yield server
    server.stop()


class StackHandle:
    """What the end-to-end and browser tests get: where the stack is and what it pushes to."""

    def __init__(self, stack, registry, base_image: str, archive_server) -> None:
        self.stack = stack
        self.api_url = stack.api_url
        self.aws_endpoint = stack.aws_endpoint
        self.registry = registry
        self.base_image = base_image
        self.archive_server = archive_server


@pytest.fixture(scope="session")
def local_stack(registry, base_image: str, archive_server, docker_host: str):
    """The whole service (moto server, chalice local with the UI, one worker) on free ports."""
    from devstack.services import free_port
    from devstack.stack import LocalStack, StackConfig

    config = StackConfig(
        api_port=free_port(),
        moto_port=free_port(),
        workers=1,
        name="e2e",
        extra_env={
            "BOATYARD_ALLOW_PRIVATE_URLS": "true",
            "BOATYARD_GITHUB_ARCHIVE_BASE": archive_server.base_url,
            "BOATYARD_WORKER_CONCURRENCY": "2",
            "BOATYARD_VISIBILITY_TIMEOUT_SECONDS": "30",
            "BOATYARD_HEARTBEAT_SECONDS": "5",
            "BOATYARD_LOG_FLUSH_SECONDS": "0.5",
            "BOATYARD_BUILD_NETWORK": "none",  # RUN steps need no network in tests (and no docker0 bridge)
            "DOCKER_HOST": docker_host,
        },
    )
    stack = LocalStack(config).start()
    try:
        yield StackHandle(stack, registry, base_image, archive_server)
    finally:
        stack.stop()
