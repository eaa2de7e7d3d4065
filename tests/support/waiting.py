"""The one way tests wait: poll a predicate fast until it holds, fail with what was last seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], Any], timeout: float, what: str = "condition", interval: float = 0.1) -> Any:
    """Poll ``predicate`` every ``interval`` s until it returns something truthy (returned).

    AssertionError naming ``what`` and the last value after ``timeout`` seconds.  Never use a fixed
    ``time.sleep`` to wait for something that can be observed: wait for it with this.
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")
        time.sleep(interval)
