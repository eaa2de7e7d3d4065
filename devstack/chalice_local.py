"""``python -m devstack.chalice_local local ...``: ``chalice local`` tuned as a server for the local stack.

The server and the app are chalice's own; two socket settings change:

* the listen backlog: chalice's ThreadedHTTPServer keeps socketserver's 5, so a
  burst of concurrent submissions (the load test sends 200) saw connection resets;
* TCP_NODELAY on each connection: the handler writes headers and body apart, and
  with Nagle's algorithm against the client's delayed ACK every answer on a
  kept-alive connection waited ~40 ms (a status read took 48 ms instead of ~2).
"""

from __future__ import annotations

import sys

from chalice import local
from chalice.cli import main

local.ThreadedHTTPServer.request_queue_size = 256
local.ChaliceRequestHandler.disable_nagle_algorithm = True

if __name__ == "__main__":
    sys.exit(main())
