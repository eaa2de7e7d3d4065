"""Scenario: the worker's peak memory while it refuses the hostile archives of ``devstack/hostile.py``.

Each archive is served from a local HTTP server and fetched by a fresh worker
process (``python -m bench.archive_probe <url>``: it imports what ``python -m
worker`` imports, then runs the worker's own fetch path for a ``tar_url`` job:
download → sniff → sanitize).  The child reports its peak RSS (``VmHWM``
of /proc/self/status) and the reason it refused the archive; the figure held
against the goal is the worst archive's.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from typing import Any

GOAL_MB = 150.0


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # http.server's name
        data = self.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_: Any) -> None:
        pass


def measure() -> list[dict[str, Any]]:
    """Refuse every archive of the corpus in its own worker process; one dict per archive."""
    from devstack import hostile

    corpus = hostile.corpus()
    _Files.files = {f"/{n}.tar": data for n, data in enumerate(corpus.values())}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    results = []
    try:
        for n, (name, data) in enumerate(corpus.items()):
            url = f"http://127.0.0.1:{server.server_address[1]}/{n}.tar"
            out = subprocess.run(
                [sys.executable, "-m", "bench.archive_probe", url],
                capture_output=True,
                text=True,
                timeout=300,
                check=True,
            )
            result = json.loads(out.stdout.strip().splitlines()[-1])
            result.update(name=name, compressed_bytes=len(data))
            results.append(result)
    finally:
        server.shutdown()
    return results


def run(ctx: Any) -> Any:
    """The bench scenario: one row per archive, the worst one held against the goal."""
    from bench.report import ScenarioResult

    result = ScenarioResult("archives", "Worker memory while refusing hostile archives", short="hostile archives")
    measured = measure()
    for item in measured:
        result.add(
            f"peak RSS refusing: {item['name']} ({item['compressed_bytes'] / 1e6:.2f} MB)",
            f"{item['peak_kib'] / 1024:.0f} MB in {item['seconds']:.2f} s",
        )
    worst = max(measured, key=lambda i: i["peak_kib"])
    result.add(
        "worker peak RSS, worst archive of the corpus",
        f"{worst['peak_kib'] / 1024:.0f} MB ({worst['name']})",
        f"≤ {GOAL_MB:.0f} MB",
        worst["peak_kib"] / 1024 <= GOAL_MB,
    )
    result.notes.append(
        "Each archive is fetched over HTTP by a fresh process that first imports what `python -m worker` loads "
        f"(RSS after imports: {measured[0]['baseline_kib'] / 1024:.0f} MB), then runs the worker's fetch path; "
        "peak RSS is VmHWM. Reasons: " + "; ".join(f"{i['name']}: {i['reason']}" for i in measured)
    )
    result.raw = {"archives": measured}
    return result


if __name__ == "__main__":  # python -m bench.scenarios.archives: the figures without the rest of the bench
    for item in measure():
        print(
            f"{item['name']}: peak RSS {item['peak_kib'] / 1024:.0f} MB "
            f"(after imports {item['baseline_kib'] / 1024:.0f} MB), {item['seconds']:.2f} s: {item['reason']}"
        )
