"""What only tests need to know or reset about the product; kept out of chalicelib/ and worker/ (issue 16 item 7).

* :func:`live_count` — how many live-job slots an owner holds (the quota counter item);
* :func:`run_once` — one poll of a :class:`~worker.job.loop.Worker`, waiting for what it received;
* :data:`REASON_CLASSES` — the closed set of the ``ReasonClass`` metric dimension (infra/README.md's alarms
  and dashboards name these values; worker/job/metrics.py's ``reason_class`` must stay inside it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.stores import dynamo, quotas
from tests.support.services import stores

if TYPE_CHECKING:
    from worker.job.loop import Worker
    from worker.job.runner import ProcessResult

REASON_CLASSES = (
    "none", "source", "build", "push", "credentials", "timeout", "queue_timeout", "service", "internal",
    "shutdown", "lost", "other",
)  # fmt: skip


def live_count(owner: str) -> int:
    """How many live-job slots ``owner`` holds now (a consistent read of its quota item)."""
    item = (
        stores()
        .clients.client("dynamodb")
        .get_item(TableName=stores().settings.table_name, Key=quotas.quota_key(owner), ConsistentRead=True)
        .get("Item")
    )
    return int(dynamo.deserialize(item).get("live", 0)) if item else 0


def run_once(worker: Worker, wait_seconds: int = 0) -> list[ProcessResult]:
    """Receive once and run what came to completion."""
    return [future.result() for future in worker.poll(wait_seconds)]
