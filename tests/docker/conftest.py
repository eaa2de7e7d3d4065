"""Fixtures for worker tests against the real Docker daemon and registry (AWS is moto in process)."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.support import worker_jobs
from tests.support.services import stores


@pytest.fixture
def docker_api(docker_host: str) -> Iterator[docker.APIClient]:
    """A low-level client for assertions (pull back, run, inspect)."""
    api = docker.APIClient(base_url=docker_host, timeout=300)
    yield api
    api.close()


@pytest.fixture
def worker_env(aws_env, docker_host, registry, base_image, archive_server, monkeypatch):
    """Worker settings for docker tests: the real daemon, local archive server allowed, quick flushes."""
    worker_jobs.set_env(
        monkeypatch,
        DOCKER_HOST=docker_host,
        BOATYARD_ALLOW_PRIVATE_URLS="true",
        BOATYARD_ALLOW_PRIVATE_REGISTRIES="true",  # the test registry is on 127.0.0.1
        BOATYARD_GITHUB_ARCHIVE_BASE=archive_server.base_url,
        BOATYARD_VISIBILITY_TIMEOUT_SECONDS=30,
        BOATYARD_HEARTBEAT_SECONDS=2,
        BOATYARD_LOG_FLUSH_SECONDS=0.5,
        BOATYARD_BUILD_TIMEOUT_SECONDS=300,
        BOATYARD_BUILD_NETWORK="none",  # no internet for tests (and this host has no docker0 bridge)
    )
    return aws_env


@pytest.fixture
def make_worker(worker_env):
    """Build in-process workers on the current settings; shuts them down after the test."""
    from worker.job.loop import Worker

    made = []

    def factory(**kwargs) -> Worker:
        worker = Worker(stores(), poll_wait_seconds=0, dlq_sweep_seconds=3600, **kwargs)
        made.append(worker)
        return worker

    yield factory
    for worker in made:
        worker.shutdown(grace_seconds=5)
