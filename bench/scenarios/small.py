"""Scenario 1: a small Dockerfile, submit → Finished, against ``docker build`` + ``docker push``.

Each build, on either side, has its own ``RUN echo <nonce>`` step, so neither
side hits the layer cache for it; both reuse the local base image and the base
layer already in the registry (the same for both).  The boatyard side is
timed from the POST until a status poll (every 0.1 s) reads Finished.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.client import BenchError, Client
from bench.context import BenchContext, Timer, nonce, small_dockerfile
from bench.report import ScenarioResult
from bench.stats import fmt, median

GOAL_RATIO = 1.2


def boatyard_once(ctx: BenchContext, client: Client, name: str = "small"):
    """Submit one small build and wait; returns (client-side seconds, Finished)."""
    token = nonce()
    with Timer() as timer:
        job_id = client.submit(ctx.build_body(ctx.image(name, "by-" + token), small_dockerfile(ctx.svc.base_image, token)))
        done = client.wait(job_id, interval=0.1)
    if not done.ok:
        raise BenchError(f"boatyard job {job_id} ended {done.status.get('Status')!r}")
    return timer.seconds, done


def raw_once(ctx: BenchContext, name: str = "small") -> float:
    """Build and push the same kind of context with the Docker CLI; returns seconds (build + push)."""
    token = nonce()
    tag = ctx.image(name, "cli-" + token)
    with tempfile.TemporaryDirectory(prefix="bench-ctx-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(small_dockerfile(ctx.svc.base_image, token))
        try:
            build, push = ctx.docker.build_push(tag, context_dir=Path(tmp))
        finally:
            ctx.docker.remove(tag)
    return build + push


def run(ctx: BenchContext) -> ScenarioResult:
    """Interleave boatyard and CLI runs; report medians and the median per-run ratio."""
    result = ScenarioResult("small", "Small Dockerfile: submit → Finished vs docker build + push", short="small build")
    runs = ctx.options.runs
    with ctx.stack("small") as stack:
        client = Client(stack.api_url)
        if ctx.options.warmup:
            ctx.log("  warm-up (not counted)")
            boatyard_once(ctx, client)
            raw_once(ctx)
        by_times: list[float] = []
        raw_times: list[float] = []
        ratios: list[float] = []
        server: list[float] = []
        waits: list[float] = []
        for index in range(runs):
            first_raw = index % 2 == 1  # alternate who goes first
            if first_raw:
                raw = raw_once(ctx)
            by, done = boatyard_once(ctx, client)
            if not first_raw:
                raw = raw_once(ctx)
            by_times.append(by)
            raw_times.append(raw)
            ratios.append(by / raw)
            server.append(done.span("CreatedAt", "FinishedAt") or float("nan"))
            waits.append(done.span("CreatedAt", "StartedAt") or float("nan"))
            ctx.log(f"  run {index + 1}/{runs}: boatyard {by:.2f} s, docker CLI {raw:.2f} s, ratio {by / raw:.2f}")
            time.sleep(0.2)
        client.close()
    ratio = median(ratios)
    result.add("boatyard submit → Finished (client, 0.1 s polls)", fmt(median(by_times), 2, " s"))
    result.add("docker build + docker push (CLI, classic builder)", fmt(median(raw_times), 2, " s"))
    result.add("ratio boatyard / CLI (median of per-run ratios)", fmt(ratio, 2), f"≤ {GOAL_RATIO}", ratio <= GOAL_RATIO)
    result.add("boatyard CreatedAt → FinishedAt (server clock)", fmt(median(server), 2, " s"))
    result.add("queue wait StartedAt − CreatedAt (idle worker)", fmt(median(waits), 3, " s"))
    result.notes += [
        f"{runs} interleaved runs (the order alternates), after one uncounted warm-up of each side"
        if ctx.options.warmup else f"{runs} interleaved runs, no warm-up",
        "Dockerfile: `FROM <bench registry>/boatyard/busybox` + `RUN echo bench-<nonce> > /nonce.txt` + `CMD`; "
        "a fresh nonce on each side in every run, so neither side hits the layer cache for the RUN step "
        "(both find the base image locally and its layer already in the registry).",
        "boatyard: default settings (one worker, concurrency 2). The CLI side excludes `docker login` (done once "
        "per bench run) and its `docker rmi`; the worker removes its tag after writing Finished, so neither "
        "side's clean-up is timed.",
        "The boatyard figure includes the client's polling granularity (0.1 s sleep + one status request, "
        "~0.05 s on chalice local) — on average about half of one poll cycle.",
        "per-run ratios: " + ", ".join(f"{r:.2f}" for r in ratios),
    ]
    result.raw = {"boatyard_s": by_times, "cli_s": raw_times, "ratios": ratios, "server_s": server, "queue_wait_s": waits}
    return result
