"""Scenario 4: 100 small jobs through one worker at concurrency 1, 2 and 4.

For each level the stack's worker is restarted with
``BOATYARD_WORKER_CONCURRENCY``; one uncounted job warms it up.  Then:

* free-slot waits: ``idle_samples`` jobs submitted one at a time, each
  ``IDLE_GAP_SECONDS`` after the previous one ended (the worker has finished
  its post-job clean-up and is waiting in its long poll): queue wait =
  StartedAt − CreatedAt;
* back-to-back waits: as many jobs submitted the moment the previous one read
  Finished.  At concurrency 1 the only slot may still be busy then: the worker
  removes the pushed tag (and checks its disk budget) after writing Finished;
* the burst: ``jobs`` jobs submitted back to back; jobs per minute over
  first CreatedAt → last FinishedAt (server clock), queue wait p50/p95.

Status is polled oldest-first, stopping at the first live job, once a second,
so polling adds little load; the figures come from the server's timestamps.
"""

from __future__ import annotations

import time
from typing import Any

from bench.client import TERMINAL, BenchError, Client, Finished, parse_ts
from bench.context import BenchContext, nonce, small_dockerfile
from bench.report import ScenarioResult
from bench.stack import BenchStack
from bench.stats import fmt, percentile

GOAL_IDLE_P95 = 1.0
IDLE_GAP_SECONDS = 2.0


def submit_small(ctx: BenchContext, client: Client) -> str:
    """Submit one small unique build."""
    token = nonce()
    return client.submit(ctx.build_body(ctx.image("many", token), small_dockerfile(ctx.svc.base_image, token)))


def wait_all(client: Client, job_ids: list[str], timeout: float) -> list[Finished]:
    """Wait until every job has ended (bounded); scan oldest-first and stop at the first live one."""
    done: dict[str, Finished] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(job_ids):
        if time.monotonic() > deadline:
            raise BenchError(f"{len(job_ids) - len(done)} of {len(job_ids)} jobs still live after {timeout:.0f} s")
        for job_id in job_ids:
            if job_id in done:
                continue
            body = client.status(job_id)
            if not str(body.get("Status", "")).startswith(TERMINAL):
                break
            done[job_id] = Finished(job_id, body, time.monotonic(), 1)
        else:
            continue
        time.sleep(1.0)
    return [done[j] for j in job_ids]


def _warm_up(client: Client, ctx: BenchContext) -> None:
    """One uncounted job, so the level's figures start from a warm worker."""
    warm = client.wait(submit_small(ctx, client), interval=0.1, timeout=300)
    if not warm.ok:
        raise BenchError(f"warm-up job ended {warm.status.get('Status')!r}")


def _single_waits(ctx: BenchContext, client: Client) -> tuple[list[float], list[float]]:
    """Queue waits of single jobs: (free-slot waits, back-to-back waits)."""
    idle: list[float] = []
    back_to_back: list[float] = []
    for _ in range(ctx.options.idle_samples):
        done = client.wait(submit_small(ctx, client), interval=0.1, timeout=300)
        back_to_back.append(done.span("CreatedAt", "StartedAt") or float("nan"))
        time.sleep(IDLE_GAP_SECONDS)  # the worker has cleaned up and waits in its long poll
        done = client.wait(submit_small(ctx, client), interval=0.1, timeout=300)
        idle.append(done.span("CreatedAt", "StartedAt") or float("nan"))
        time.sleep(IDLE_GAP_SECONDS)
    return idle, back_to_back


def _burst(ctx: BenchContext, client: Client) -> tuple[list[Finished], float]:
    """Submit ``jobs`` jobs back to back and wait for all; the ended jobs and the seconds submitting took."""
    jobs = ctx.options.jobs
    start = time.monotonic()
    job_ids = [submit_small(ctx, client) for _ in range(jobs)]
    submit_seconds = time.monotonic() - start
    return wait_all(client, job_ids, timeout=max(600.0, jobs * 20.0)), submit_seconds


def _level_figures(
    finished: list[Finished], idle: list[float], back_to_back: list[float], submit_seconds: float
) -> dict[str, Any]:
    """One level's figures from the burst's server timestamps and the single-job waits."""
    created = [parse_ts(f.status.get("CreatedAt")) for f in finished]
    ended = [parse_ts(f.status.get("FinishedAt")) for f in finished]
    waits = [w for w in (f.span("CreatedAt", "StartedAt") for f in finished) if w is not None]
    ok = sum(1 for f in finished if f.ok)
    span = max(e for e in ended if e) - min(c for c in created if c)
    return {
        "jobs_per_min": ok / span * 60 if span > 0 else float("nan"),
        "span_s": span,
        "ok": ok,
        "failed": [f.status.get("Status") for f in finished if not f.ok][:3],
        "wait_p50": percentile(waits, 50),
        "wait_p95": percentile(waits, 95),
        "idle_waits": idle,
        "idle_p50": percentile(idle, 50),
        "idle_p95": percentile(idle, 95),
        "b2b_waits": back_to_back,
        "b2b_p50": percentile(back_to_back, 50),
        "b2b_p95": percentile(back_to_back, 95),
        "submit_s": submit_seconds,
        "build_p50": percentile([f.span("StartedAt", "FinishedAt") or 0 for f in finished], 50),
    }


def _measure_level(ctx: BenchContext, client: Client, stack: BenchStack, level: int) -> dict[str, Any]:
    """Warm-up, single-job waits, then the burst, at one concurrency level (the worker already runs at it)."""
    _warm_up(client, ctx)
    idle, back_to_back = _single_waits(ctx, client)
    finished, submit_seconds = _burst(ctx, client)
    stack.check_alive()
    d = _level_figures(finished, idle, back_to_back, submit_seconds)
    ctx.log(
        f"  concurrency {level}: {d['ok']}/{ctx.options.jobs} finished in {d['span_s']:.1f} s = "
        f"{d['jobs_per_min']:.1f} jobs/min; "
        f"burst wait p50 {d['wait_p50']:.2f} s p95 {d['wait_p95']:.2f} s; idle wait p50 {d['idle_p50']:.3f} s "
        f"p95 {d['idle_p95']:.3f} s; back-to-back wait p50 {d['b2b_p50']:.3f} s p95 {d['b2b_p95']:.3f} s "
        f"(submitting the burst took {submit_seconds:.1f} s)"
    )
    return d


def _add_rows(result: ScenarioResult, level: int, d: dict[str, Any], jobs: int, idle_samples: int) -> None:
    """The report rows of one concurrency level."""
    result.add(
        f"concurrency {level}: jobs per minute ({d['ok']}/{jobs} Finished)",
        fmt(d["jobs_per_min"], 1),
        f"all {jobs} Finished",
        d["ok"] == jobs,
    )
    result.add(
        f"concurrency {level}: queue wait in the burst p50 / p95",
        f"{fmt(d['wait_p50'], 1, ' s')} / {fmt(d['wait_p95'], 1, ' s')}",
    )
    result.add(f"concurrency {level}: build time per job p50 (StartedAt → FinishedAt)", fmt(d["build_p50"], 2, " s"))
    result.add(
        f"concurrency {level}: queue wait with a free slot p50 / p95 ({idle_samples} jobs, each "
        f"{IDLE_GAP_SECONDS:g} s after the last ended)",
        f"{fmt(d['idle_p50'], 3, ' s')} / {fmt(d['idle_p95'], 3, ' s')}",
        f"p95 ≤ {GOAL_IDLE_P95} s",
        d["idle_p95"] <= GOAL_IDLE_P95,
    )
    result.add(
        f"concurrency {level}: queue wait when submitted the moment the previous job read Finished p50 / p95",
        f"{fmt(d['b2b_p50'], 3, ' s')} / {fmt(d['b2b_p95'], 3, ' s')}",
    )


def _notes(per_level: dict[int, dict[str, Any]]) -> list[str]:
    """The notes under the scenario's table."""
    failures = "; ".join(f"c={lvl}: {d['failed']}" for lvl, d in per_level.items() if d["failed"])
    return [
        "One burst per concurrency level (the percentiles are over its jobs; jobs per minute is finished jobs over "
        "first CreatedAt → last FinishedAt by the server's clock); not repeated, so not a median of runs — a burst "
        "of 100 jobs at concurrency 1 takes minutes on this machine.",
        f"Free-slot waits: each job submitted {IDLE_GAP_SECONDS:g} s after the previous one ended. Back-to-back: "
        "submitted the moment the previous job read Finished; at concurrency 1 the worker's only slot is then "
        "possibly still removing the previous image (post-Finished clean-up), so that wait is not a free-slot wait.",
        "The burst's queue waits are dominated by the backlog (100 jobs submitted at once); the free-slot waits "
        "are the figure the goal is about.",
        "Each job: the small Dockerfile of scenario 1 with its own nonce (no cache hits), pushed to the bench "
        "registry.",
        "Failures seen (first 3 per level): " + failures if failures else "No job failed.",
    ]


def run(ctx: BenchContext) -> ScenarioResult:
    """Each concurrency level: warm-up, idle waits, then the burst."""
    opts = ctx.options
    levels = "/".join(map(str, opts.concurrency_levels))
    result = ScenarioResult(
        "throughput", f"{opts.jobs} small jobs, one worker, concurrency {levels}", short=f"{opts.jobs} jobs, c={levels}"
    )
    per_level: dict[int, dict[str, Any]] = {}
    with ctx.stack("throughput", {"BOATYARD_WORKER_CONCURRENCY": str(opts.concurrency_levels[0])}) as stack:
        client = Client(stack.api_url)
        for position, level in enumerate(opts.concurrency_levels):
            if position:
                stack.restart_worker({"BOATYARD_WORKER_CONCURRENCY": str(level)})
            per_level[level] = _measure_level(ctx, client, stack, level)
        client.close()
    for level, d in per_level.items():
        _add_rows(result, level, d, opts.jobs, opts.idle_samples)
    result.notes += _notes(per_level)
    result.raw = {str(k): v for k, v in per_level.items()}
    return result
