"""HTTP helpers for tests that drive the local stack as the seed's clients did."""
from __future__ import annotations

import time
import uuid
from typing import Any

import requests

TERMINAL_PREFIXES = ("Finished", "Failed", "Cancelled")


def unique_image(registry_host: str, name: str) -> str:
    """A fresh image reference in the test registry."""
    return f"{registry_host}/e2e/{name}:{uuid.uuid4().hex[:10]}"


def credentials(registry) -> dict[str, str]:
    """The seed's credential fields for the test registry."""
    return {"username": registry.username, "password": registry.password, "email": "tester@example.com"}


def wait_terminal(api_url: str, job_id: str, timeout: float = 240.0) -> dict[str, Any]:
    """Poll status once a second (as the seed's page did) until the job ends; returns the last answer."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    while time.monotonic() < deadline:
        answer = requests.get(f"{api_url}/api/v1/{job_id}/status", timeout=10)
        answer.raise_for_status()
        body = answer.json()
        if not seen or seen[-1] != body["Status"]:
            seen.append(body["Status"])
        if body["Status"].startswith(TERMINAL_PREFIXES):
            body["_seen"] = seen
            return body
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} still live after {timeout} s; statuses seen: {seen}")


def pull_and_run(docker_host: str, registry, image: str, command: list[str] | None = None) -> str:
    """Pull the pushed image from the registry (after removing any local copy) and run it."""
    import docker

    client = docker.DockerClient(base_url=docker_host)
    # The worker removes the pushed tag from its host right after it writes Finished, and this
    # host is that host: wait for it, so the copy pulled below is not removed under the test.
    deadline = time.monotonic() + 30
    while client.api.images(name=image, quiet=True) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not client.api.images(name=image, quiet=True), f"the worker left {image} on the build host"
    repository, tag = image.rsplit(":", 1)
    client.api.pull(repository, tag=tag, auth_config=registry.auth_config)
    try:
        output = client.containers.run(image, command, remove=True)
    finally:
        client.images.remove(image, force=True)
    return output.decode()
