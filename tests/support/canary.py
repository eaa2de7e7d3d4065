"""The leak canary and the facts every tier shares about the test session.

``TEST_PASSWORD`` is the test registry's password: no stored item, object, log, image or
answer may ever contain it (the session's last test, ``tests/faults/test_no_leaks.py``,
looks everywhere).  ``SESSION_STARTED`` is when this test process started: leak findings
recorded after it belong to this session.
"""

from __future__ import annotations

import os
import time

TEST_PASSWORD = "pw-Zq8!leak-canary-7731"
TEST_REGISTRY_USER = "tester"
TEST_REGISTRY_PORT = int(os.environ.get("BOATYARD_TEST_REGISTRY_PORT", "5050"))
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
SESSION_STARTED = time.time()
