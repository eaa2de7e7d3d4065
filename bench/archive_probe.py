"""One worker process fetching one archive: ``python -m bench.archive_probe <url>`` prints JSON.

It imports what ``python -m worker`` imports, then runs the worker's own fetch
path for a ``tar_url`` job (download → sniff → sanitize) and reports the
reason the archive was refused and its peak RSS (``VmHWM``).  Used by the
``archives`` bench scenario, one fresh process per archive.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from typing import Any


def _status_kib(field: str) -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def child(url: str) -> dict[str, Any]:
    """In a fresh process: load the worker, fetch ``url`` as a job's context, report memory and outcome."""
    os.environ["BOATYARD_ALLOW_PRIVATE_URLS"] = "true"
    import worker.job.loop  # noqa: F401 - everything the worker process loads
    from chalicelib.domain.errors import BuildFailed
    from chalicelib.domain.jobs import Job, SourceKind
    from chalicelib.stores.services import Services
    from worker.job.control import JobControl
    from worker.sources import fetch_context

    baseline = _status_kib("VmRSS")
    job = Job("00000000-0000-4000-8000-000000000000", "bench/x", SourceKind.TAR_URL, {"tar_url": url})
    started = time.monotonic()
    reason = "accepted"
    with tempfile.TemporaryFile() as dest:
        try:
            fetch_context(job, dest, Services.from_environment(), JobControl())
        except BuildFailed as exc:
            reason = exc.message
    return {
        "reason": reason,
        "seconds": time.monotonic() - started,
        "baseline_kib": baseline,
        "peak_kib": _status_kib("VmHWM"),
    }


if __name__ == "__main__":
    print(json.dumps(child(sys.argv[1])))
