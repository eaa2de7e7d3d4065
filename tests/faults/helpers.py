"""Counting and operator helpers of the fault and load tests (jobs over HTTP: tests.support.http_jobs)."""

from __future__ import annotations

from typing import Any

from tests.support import faults


def queue_depth(endpoint: str, name_suffix: str = "") -> dict[str, int]:
    """Visible + in-flight messages of every queue on a moto server, by queue name."""
    sqs = faults.aws_client("sqs", endpoint)
    depth = {}
    for url in sqs.list_queues().get("QueueUrls", []):
        attrs = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )["Attributes"]
        depth[url.rsplit("/", 1)[-1]] = int(attrs["ApproximateNumberOfMessages"]) + int(
            attrs["ApproximateNumberOfMessagesNotVisible"]
        )
    return depth


def job_items(endpoint: str) -> dict[str, dict[str, Any]]:
    """Every job item on a stack's moto server, deserialised, by job id."""
    from chalicelib.stores import dynamo

    jobs = {}
    for _table, item in faults.scan_table_items(endpoint):
        if item.get("sk", {}).get("S") == "job":
            jobs[item["pk"]["S"]] = dynamo.deserialize(item)
    return jobs


def worker_pid_of(lease_owner: str | None) -> int | None:
    """The pid inside a worker id ``host:pid:uuid``."""
    if not lease_owner:
        return None
    parts = lease_owner.split(":")
    try:
        return int(parts[-2])
    except (IndexError, ValueError):
        return None


def admin(stack, *args: str) -> str:
    """Run ``python -m boatyard.admin keys <args>`` against a stack's moto (as an operator would); its stdout."""
    import subprocess
    import sys

    from devstack.services import REPO_ROOT

    done = subprocess.run(
        [sys.executable, "-m", "boatyard.admin", "keys", *args],
        cwd=REPO_ROOT,
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def new_key(stack, owner: str, label: str = "tests", admin_scope: bool = False) -> str:
    """A fresh API key for ``owner`` on a keys-mode stack (the token, shown once)."""
    import json

    out = admin(stack, "create", "--owner", owner, "--label", label, "--json", *(["--admin"] if admin_scope else []))
    return json.loads(out)["token"]
