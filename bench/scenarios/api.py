"""Scenario 5: the API's read paths.

* over real HTTP against ``chalice local`` on the local stack: status reads
  and log reads per second from a few threads, each loop bounded by time and
  count, on a finished job with a ~110 KiB log (full log read, and the polling
  client's tail read ``?since=<last cursor>``);
* in process: handler latency p50/p99 with ``chalice.test.Client`` and
  ``moto.mock_aws`` (a child process, :mod:`bench.scenarios.api_inproc`, so its
  in-memory AWS never mixes with the stack's environment).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import requests

from bench.client import BenchError, Client
from bench.context import BenchContext, nonce
from bench.report import ScenarioResult
from bench.stats import fmt, median
from devstack.services import REPO_ROOT

MAX_REQUESTS = 50_000


def hammer(url: str, threads: int, seconds: float) -> tuple[float, int, int]:
    """GET ``url`` from ``threads`` threads for ``seconds`` (each at most MAX_REQUESTS/threads); (per s, ok, errors)."""
    counts = [0] * threads
    errors = [0] * threads
    start_gate = threading.Barrier(threads + 1)

    def loop(index: int) -> None:
        session = requests.Session()
        start_gate.wait()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and counts[index] + errors[index] < MAX_REQUESTS // threads:
            try:
                answer = session.get(url, timeout=30)
                if answer.status_code == 200:
                    counts[index] += 1
                else:
                    errors[index] += 1
            except requests.RequestException:
                errors[index] += 1
        session.close()

    workers = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    start_gate.wait()
    start = time.monotonic()
    for worker in workers:
        worker.join(seconds + 60)
    elapsed = time.monotonic() - start
    return sum(counts) / elapsed, sum(counts), sum(errors)


def single_latency(url: str, count: int = 40) -> tuple[float, float]:
    """Median seconds of one GET on a kept-alive connection, and on a new connection per request."""
    session = requests.Session()
    kept, fresh = [], []
    try:
        for _ in range(count):
            start = time.perf_counter()
            session.get(url, timeout=30)
            kept.append(time.perf_counter() - start)
            start = time.perf_counter()
            requests.get(url, timeout=30)
            fresh.append(time.perf_counter() - start)
    finally:
        session.close()
    return median(kept), median(fresh)


def run(ctx: BenchContext) -> ScenarioResult:
    """HTTP reads per second (median of runs), then in-process latency."""
    opts = ctx.options
    result = ScenarioResult(
        "api", "API reads: HTTP throughput (chalice local) and in-process handler latency", short="API"
    )
    figures: dict[str, list[float]] = {"status": [], "logs_full": [], "logs_tail": []}
    errors = 0
    with ctx.stack("api") as stack:
        client = Client(stack.api_url)
        token = nonce()
        job_id = client.submit(
            ctx.build_body(
                ctx.image("apiread", token), f"FROM {ctx.svc.base_image}\nRUN echo bench-{token} && seq 1 20000\n"
            )
        )
        done = client.wait(job_id, interval=0.2)
        if not done.ok:
            raise BenchError(f"the job to read ended {done.status.get('Status')!r}")
        full = client.logs(job_id, "0")
        log_kib = len(full["Logs"].encode()) / 1024
        tail_cursor = full["Next"]
        urls = {
            "status": f"{stack.api_url}/api/v1/{job_id}/status",
            "logs_full": f"{stack.api_url}/api/v1/{job_id}/logs",
            "logs_tail": f"{stack.api_url}/api/v1/{job_id}/logs?since={tail_cursor}",
        }
        kept, fresh = single_latency(urls["status"])
        for index in range(opts.runs):
            for name, url in urls.items():
                rate, ok, bad = hammer(url, opts.api_threads, opts.api_seconds)
                figures[name].append(rate)
                errors += bad
            ctx.log(f"  run {index + 1}/{opts.runs}: " + ", ".join(f"{k} {v[-1]:.0f}/s" for k, v in figures.items()))
        client.close()
    result.add(f"HTTP status reads per second ({opts.api_threads} threads)", fmt(median(figures["status"]), 0))
    result.add(f"HTTP full log reads per second ({log_kib:.0f} KiB log)", fmt(median(figures["logs_full"]), 0))
    result.add("HTTP tail log reads per second (?since=<last cursor>)", fmt(median(figures["logs_tail"]), 0))
    result.add("HTTP errors during the read loops", str(errors), "0", errors == 0)
    result.add(
        "one status read, single client: kept-alive connection / new connection each time",
        f"{kept * 1000:.1f} ms / {fresh * 1000:.1f} ms",
    )
    inproc = subprocess.run(
        [sys.executable, "-m", "bench.scenarios.api_inproc", str(opts.inproc_requests), str(opts.runs)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if inproc.returncode != 0:
        raise BenchError(f"in-process latency run failed: {inproc.stderr[-1500:]}")
    latency = json.loads(inproc.stdout.strip().splitlines()[-1])
    for name, label in (
        ("status", "status"),
        ("logs_full", "full log"),
        ("logs_tail", "tail log (?since)"),
        ("build", "submit (POST /build, dockerfile)"),
    ):
        data = latency[name]
        result.add(
            f"in-process {label} handler latency p50 / p99",
            f"{data['p50'] * 1000:.1f} ms / {data['p99'] * 1000:.1f} ms",
        )
    overhead = latency["auth_overhead_p50"]
    result.add(
        "API-key authorizer's added p50 on an in-process status read (keys minus open)",
        f"{overhead * 1000:.1f} ms ({latency['status_keys']['p50'] * 1000:.1f} vs {latency['status_open']['p50'] * 1000:.1f} ms)",
        "≤ 5 ms",
        overhead <= 0.005,
    )
    result.notes += [
        f"HTTP: {opts.runs} runs of {opts.api_seconds:g} s per endpoint with {opts.api_threads} threads, each with its own "
        f"keep-alive session, each loop bounded by time and by {MAX_REQUESTS} requests in total; median of the runs. "
        "The load generator shares the 2 cores with chalice local and the moto server, so these are "
        "local-stack figures (chalice local is a development server), not Lambda's.",
        f"In process: chalice.test.Client on create_app(services) inside moto.mock_aws, {opts.inproc_requests} requests per "
        f"endpoint per run, {opts.runs} runs; p50/p99 are medians over runs. The job read has a "
        f"{latency['log_kib']:.0f} KiB log written with LogStore.writer; POST /build includes the in-memory S3 put, "
        "DynamoDB put, KMS encrypt and SQS send.",
        "Authorizer: the same status read through a second app made with BOATYARD_AUTH=keys over the same stores "
        "(chalice's local gateway runs the @app.authorizer, which verifies the Bearer key and caches the verdict "
        "for BOATYARD_AUTH_CACHE_SECONDS like API Gateway does deployed), alternating 10 reads with and 10 "
        "without a key; the row is the difference of the two p50s.",
        "Small answers (status, an empty log tail) are slower over a kept-alive connection to `chalice local` than "
        "over a new connection (see the single-client row), which is why full-log reads per second can exceed "
        "status reads per second here: the pattern of Nagle's algorithm meeting delayed ACKs in the development "
        "server (headers and body written separately). It is a property of `chalice local`, not of the handlers "
        "(see the in-process latencies) nor of API Gateway.",
    ]
    result.raw = {
        "single_kept_s": kept,
        "single_fresh_s": fresh,
        "http": figures,
        "http_errors": errors,
        "inproc": latency,
    }
    return result
