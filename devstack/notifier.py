"""``python -m devstack.notifier``: the local stack's notification sender (the deployed one is a Lambda).

Polls the notifications queue and runs the same sender the SQS Lambda runs
(:mod:`chalicelib.api.notify_poller`); stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading

from chalicelib.api import notify_poller as poller
from chalicelib.stores.services import Services


def main() -> None:
    """Run until signalled."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger("boatyard.notifier").info("notification sender polling")
    poller.run(Services.from_environment(), stop)


if __name__ == "__main__":
    main()
