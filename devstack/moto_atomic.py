"""Make moto's DynamoDB writes atomic, as DynamoDB's are.

boatyard's job store relies on conditional writes being atomic: two workers
claiming the same job cannot both succeed. moto evaluates a condition and
applies the update in two steps with no lock, so two threads of one worker
(or two requests to a threaded moto server) can both pass the same condition:
a duplicate SQS delivery was then claimed twice at attempt 1 in the tests,
which no real table allows. One process-wide lock around moto's item
operations restores DynamoDB's guarantee for the in-process mock (tests) and
for the moto server the local stack runs (``python -m devstack.moto_atomic``).
"""

from __future__ import annotations

import functools
import sys
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
_OPERATIONS = (
    "put_item",
    "update_item",
    "delete_item",
    "get_item",
    "query",
    "transact_write_items",
    "transact_get_items",
    "batch_write_item",
)


_WRAPPED: set[Callable[..., Any]] = set()  # the operations _locked made: never wrapped twice


def _locked(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def run(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    _WRAPPED.add(run)
    return run


def make_dynamodb_writes_atomic() -> None:
    """Serialize moto's DynamoDB item operations in this process (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _OPERATIONS:
        operation = getattr(DynamoDBBackend, name, None)
        if operation is not None and operation not in _WRAPPED:
            setattr(DynamoDBBackend, name, _locked(operation))


def main(argv: list[str] | None = None) -> None:
    """``python -m devstack.moto_atomic [moto.server args]``: the moto server with atomic DynamoDB writes."""
    make_dynamodb_writes_atomic()
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
