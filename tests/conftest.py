"""Shared fixtures: AWS in process with moto, and the test password every leak check looks for."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.botocache import share_botocore_loader
from tests.support.canary import (
    IN_CI,
    TEST_PASSWORD,
    TEST_REGISTRY_PORT,
    TEST_REGISTRY_USER,
)
from tests.support.ordering import move_marked_last
from tests.support.stacks import StackHandle, start_stack

# Fake credentials before anything makes a boto3 client; never a real account.
for _key, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}.items():
    os.environ.setdefault(_key, _value)

share_botocore_loader()  # parse botocore's model files once per test process, not once per moto setup


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``after_all_tests`` (the leak scan) run after every other test, whatever their names."""
    move_marked_last(items)


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
    """moto's ``mock_aws`` with boatyard's resources created; yields their names.

    The test's stores (tests.support.services.stores()) are made here, from the settings as the
    environment holds them now: fixtures that set variables run before this one, or call reconfigure.
    """
    from moto import mock_aws

    from chalicelib.domain.settings import load_settings
    from chalicelib.stores.services import Services
    from devstack.moto_atomic import make_dynamodb_writes_atomic
    from devstack.resources import ensure_resources
    from tests.support.services import activated

    make_dynamodb_writes_atomic()  # conditional writes atomic across a worker's threads, as in DynamoDB
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("BOATYARD_QUEUE_URL", raising=False)
    with mock_aws():
        services = Services(load_settings())
        resources = ensure_resources(services.settings, services.clients)
        with activated(services):
            yield resources


# --- real services: Docker daemon, registry, base image (tier "docker") -----------------------


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


@pytest.fixture(scope="session")
def local_stack(registry, base_image: str, archive_server, docker_host: str) -> Iterator[StackHandle]:
    """The whole service (moto server, chalice local with the UI, one worker of 2 slots) on free ports, shared by
    every test of the session that needs a stack and does not break it or change its settings (tests/e2e,
    tests/cli, tests/browser, tests/faults).  The leak test scans it while it runs (it outlives that test)."""
    stack = start_stack(
        "e2e",
        workers=1,
        docker_host=docker_host,
        fresh_logs=False,  # sessions of other checkouts may be writing these files right now
        env={
            "BOATYARD_GITHUB_ARCHIVE_BASE": archive_server.base_url,
            "BOATYARD_WORKER_CONCURRENCY": "2",
            "BOATYARD_VISIBILITY_TIMEOUT_SECONDS": "30",
            "BOATYARD_HEARTBEAT_SECONDS": "5",
            "BOATYARD_BUILD_NETWORK": "none",  # RUN steps need no network in tests (and no docker0 bridge)
            # notifications: receivers on 127.0.0.1 (LocalStack allows loopback), retries after 1 s then 2 s,
            # a receiver that does not answer within 3 s is a timeout
            "BOATYARD_NOTIFY_BACKOFF_BASE_SECONDS": "1",
            "BOATYARD_NOTIFY_BACKOFF_MAX_SECONDS": "2",
            "BOATYARD_NOTIFY_READ_TIMEOUT_SECONDS": "3",
        },
    )
    try:
        yield StackHandle(stack, registry, base_image, archive_server)
    finally:
        stack.stop()
