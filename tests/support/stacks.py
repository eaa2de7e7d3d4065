"""Local stacks (moto server, ``chalice local``, workers) on free ports, scanned for leaks before they stop.

* :func:`start_stack` — the one way a test starts a stack of its own: free ports, fresh log files, the
  settings every test stack needs (private URLs allowed, quick log flushes, no network for RUN steps).
* :func:`scan_stack` — leak findings (the canary, or another secret) in a stack's AWS state and logs.
* :func:`stop_stack` — scan, record the findings for the session's leak test, then stop.
* :class:`StackHandle` — what the session-wide ``local_stack`` fixture gives: the stack plus the registry,
  base image and archive server it uses.  Prefer that shared stack; start one of your own only when the
  test changes the stack's settings or breaks it (kills a worker, a daemon, fills its queue).
"""

from __future__ import annotations

from typing import Any

from tests.support.canary import TEST_PASSWORD

TEST_STACK_ENV = {
    "BOATYARD_ALLOW_PRIVATE_URLS": "true",  # the archive server and test registries are on 127.0.0.1
    "BOATYARD_LOG_FLUSH_SECONDS": "0.5",
}


# A worker stops when its current SQS long poll returns: 1 s instead of 20 lets a stack stop in a second or
# two rather than being SIGKILLed after its 10 s grace.  A long poll still returns as soon as a job arrives.
WORKER_ARGS = ("--poll-wait", "1")


def start_stack(
    name: str,
    workers: int,
    env: dict[str, str] | None = None,
    docker_host: str | None = None,
    test_defaults: bool = True,
    fresh_logs: bool = True,
) -> Any:
    """Start a ``LocalStack`` named ``name`` with ``workers`` worker processes on free ports; returns it started.

    ``env`` adds or overrides settings on top of :data:`TEST_STACK_ENV` (left out with ``test_defaults=False``:
    the deployed defaults).  With ``fresh_logs`` the stack's old log files are removed first, so scans and
    counts see only this run.  The caller stops it (:func:`stop_stack`).
    """
    from devstack.services import free_port
    from devstack.stack import LocalStack, StackConfig

    extra = {
        **(TEST_STACK_ENV if test_defaults else {}),
        **({"DOCKER_HOST": docker_host} if docker_host else {}),
        **(env or {}),
    }
    config = StackConfig(
        api_port=free_port(),
        moto_port=free_port(),
        workers=workers,
        name=name,
        extra_env=extra,
        worker_args=list(WORKER_ARGS),
    )
    if fresh_logs:
        for log in config.log_dir.glob(f"{config.name}-*.log"):
            log.unlink()
    stack = LocalStack(config)
    try:
        return stack.start()
    except BaseException:
        stack.stop()
        raise


def scan_stack(stack: Any, secret: str = TEST_PASSWORD) -> list[str]:
    """Leak findings of ``secret`` in a running stack's DynamoDB, S3, SQS and moto dump, and its log files."""
    from tests.support import faults

    findings = faults.scan_aws(stack.aws_endpoint, secret)
    logs = sorted(stack.config.log_dir.glob(f"{stack.config.name}-*.log"))
    return findings + faults.scan_files(logs, secret)


def stop_stack(stack: Any, secrets: tuple[str, ...] = ()) -> None:
    """Scan a stack for the canary (and ``secrets``), record the findings for the leak test, stop it."""
    from tests.support import faults

    try:
        if stack.procs:
            findings = scan_stack(stack)
            for number, secret in enumerate(secrets, 1):
                findings += [f"secret #{number}: {f}" for f in scan_stack(stack, secret)]
            faults.record_leaks(f"stack {stack.config.name}", findings)
    finally:
        stack.stop()


class StackHandle:
    """The session-wide local stack as tests get it: where it answers and what it pushes to."""

    def __init__(self, stack: Any, registry: Any, base_image: str, archive_server: Any) -> None:
        self.stack = stack
        self.api_url = stack.api_url
        self.aws_endpoint = stack.aws_endpoint
        self.registry = registry
        self.base_image = base_image
        self.archive_server = archive_server
