"""``python -m worker``: run a boatyard build worker until SIGTERM/SIGINT.

Configuration comes from the environment (see ``chalicelib/domain/settings.py``);
the two options below only tune polling.
"""

from __future__ import annotations

import argparse
import logging
import signal

from chalicelib.stores.services import Services
from worker.build.limits import RuntimeUnavailable
from worker.job.loop import Worker
from worker.job.spot import start_watch
from worker.logging_setup import setup_logging

log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    """Parse options, install signal handlers, and run the worker."""
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__)
    parser.add_argument("--poll-wait", type=int, default=20, help="SQS long-poll wait in seconds (0-20; default 20)")
    parser.add_argument(
        "--dlq-sweep", type=float, default=300.0, help="seconds between dead-letter sweeps (default 300)"
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    worker = Worker(
        Services.from_environment(), poll_wait_seconds=max(0, min(20, args.poll_wait)), dlq_sweep_seconds=args.dlq_sweep
    )
    try:
        worker.builder.check_runtime()
    except RuntimeUnavailable as exc:
        log.error("refusing to start: %s", exc)
        return 2
    signal.signal(signal.SIGTERM, worker.request_stop)
    signal.signal(signal.SIGINT, worker.request_stop)
    start_watch(worker.request_stop, worker.settings)  # spot interruption notice → the same drain
    worker.run_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
