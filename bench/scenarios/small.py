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

from bench.breakdown import BoatyardRun, CliRun, ImageEvents, gap_note, summarize
from bench.client import BenchError, Client, Finished
from bench.context import BenchContext, Timer, nonce, small_dockerfile
from bench.report import ScenarioResult
from bench.stats import fmt, median

GOAL_RATIO = 1.2
BREAKDOWN_NOTE = (
    "Breakdown (Docker's `tag` and `push` events for each image, the job's CreatedAt/FinishedAt, the client's "
    "wall clock; one machine, one clock): boatyard = to CreatedAt (POST sent until the API stamped the job; "
    "the rest of the POST's time overlaps the queue) + queue (until StartedAt: SQS receive, claim) + fetch+build "
    "(until the daemon tagged the image: S3 fetch, context to the daemon, build) + push + "
    "to Finished (push done until FinishedAt: last log flush, phase write) + seen (until a 0.1 s poll read it); "
    "CLI = build (`docker build` start until tagged) + push (until pushed, incl. starting `docker push`) + exit."
)


def boatyard_once(ctx: BenchContext, client: Client, name: str = "small") -> tuple[float, Finished, BoatyardRun]:
    """Submit one small build and wait; (client-side seconds, the final status, the run for the breakdown)."""
    token = nonce()
    ref = ctx.image(name, "by-" + token)
    submitted = time.time()
    with Timer() as timer:
        job_id = client.submit(ctx.build_body(ref, small_dockerfile(ctx.svc.base_image, token)))
        done = client.wait(job_id, interval=0.1)
    seen = time.time()
    if not done.ok:
        raise BenchError(f"boatyard job {job_id} ended {done.status.get('Status')!r}")
    return timer.seconds, done, BoatyardRun(ref, submitted, seen, done)


def raw_once(ctx: BenchContext, name: str = "small") -> tuple[float, CliRun]:
    """Build and push the same kind of context with the Docker CLI; (seconds of build + push, the run)."""
    token = nonce()
    tag = ctx.image(name, "cli-" + token)
    with tempfile.TemporaryDirectory(prefix="bench-ctx-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(small_dockerfile(ctx.svc.base_image, token))
        started = time.time()
        try:
            build, push = ctx.docker.build_push(tag, context_dir=Path(tmp))
            ended = time.time()
        finally:
            ctx.docker.remove(tag)
    return build + push, CliRun(tag, started, ended)


def run(ctx: BenchContext) -> ScenarioResult:
    """Interleave boatyard and CLI runs; report medians and the median per-run ratio."""
    result = ScenarioResult("small", "Small Dockerfile: submit → Finished vs docker build + push", short="small build")
    runs = ctx.options.runs
    by_runs: list[BoatyardRun] = []
    cli_runs: list[CliRun] = []
    with ctx.stack("small") as stack, ImageEvents(ctx.docker.env) as watcher:
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
                raw, cli_run = raw_once(ctx)
            by, done, by_run = boatyard_once(ctx, client)
            if not first_raw:
                raw, cli_run = raw_once(ctx)
            by_runs.append(by_run)
            cli_runs.append(cli_run)
            by_times.append(by)
            raw_times.append(raw)
            ratios.append(by / raw)
            server.append(done.span("CreatedAt", "FinishedAt") or float("nan"))
            waits.append(done.span("CreatedAt", "StartedAt") or float("nan"))
            ctx.log(f"  run {index + 1}/{runs}: boatyard {by:.2f} s, docker CLI {raw:.2f} s, ratio {by / raw:.2f}")
            time.sleep(0.2)
        client.close()
        watcher.stop()
    events = watcher.times({r.ref for r in by_runs} | {r.ref for r in cli_runs})
    by_line, cli_line, parts = summarize(by_runs, cli_runs, events)
    ratio = median(ratios)
    result.add("boatyard submit → Finished (client, 0.1 s polls)", fmt(median(by_times), 2, " s"))
    result.add("docker build + docker push (CLI, classic builder)", fmt(median(raw_times), 2, " s"))
    result.add("ratio boatyard / CLI (median of per-run ratios)", fmt(ratio, 2), f"≤ {GOAL_RATIO}", ratio <= GOAL_RATIO)
    result.add("boatyard CreatedAt → FinishedAt (server clock)", fmt(median(server), 2, " s"))
    result.add(
        "ratio server-side (CreatedAt → FinishedAt) / CLI (informational: without the client's polling)",
        fmt(median([s / r for s, r in zip(server, raw_times, strict=True)]), 2),
    )
    result.add("queue wait StartedAt − CreatedAt (idle worker)", fmt(median(waits), 3, " s"))
    result.add("where boatyard's time goes (medians)", by_line)
    result.add("where the CLI's time goes (medians)", cli_line)
    result.notes += [
        f"{runs} interleaved runs (the order alternates), after one uncounted warm-up of each side"
        if ctx.options.warmup
        else f"{runs} interleaved runs, no warm-up",
        "Dockerfile: `FROM <bench registry>/boatyard/busybox` + `RUN echo bench-<nonce> > /nonce.txt` + `CMD`; "
        "a fresh nonce on each side in every run, so neither side hits the layer cache for the RUN step "
        "(both find the base image locally and its layer already in the registry).",
        "boatyard: default settings (one worker, concurrency 2). The CLI side excludes `docker login` (done once "
        "per bench run) and its `docker rmi`; the worker removes its tag after writing Finished, so neither "
        "side's clean-up is timed.",
        "The boatyard figure includes the client's polling granularity (0.1 s sleep + one status request, "
        "~0.05 s on chalice local) — on average about half of one poll cycle.",
        "per-run ratios: " + ", ".join(f"{r:.2f}" for r in ratios),
        BREAKDOWN_NOTE,
        gap_note(parts),
    ]
    result.raw = {
        "breakdown": parts,
        "boatyard_s": by_times,
        "cli_s": raw_times,
        "ratios": ratios,
        "server_s": server,
        "queue_wait_s": waits,
    }
    return result
