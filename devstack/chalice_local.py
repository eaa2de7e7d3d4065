"""``python -m devstack.chalice_local local ...``: ``chalice local`` with a deeper listen backlog.

chalice's ThreadedHTTPServer keeps socketserver's backlog of 5, so a burst of
concurrent submissions (the load test sends 200) sees connection resets. The
server and the app are chalice's own; only the backlog changes.
"""
from __future__ import annotations

import sys

from chalice import local
from chalice.cli import main

local.ThreadedHTTPServer.request_queue_size = 256

if __name__ == "__main__":
    sys.exit(main())
