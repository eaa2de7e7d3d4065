"""The benchmark scenarios, in report order."""

from __future__ import annotations

from bench.scenarios import api, archives, cli, engines, logs, sandbox, small, throughput, upload

SCENARIOS = {
    "small": small.run,
    "cli": cli.run,
    "logs": logs.run,
    "upload": upload.run,
    "throughput": throughput.run,
    "api": api.run,
    "archives": archives.run,
    "engines": engines.run,
    "sandbox": sandbox.run,
}
