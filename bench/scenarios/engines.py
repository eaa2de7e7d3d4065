"""Scenario: the BuildKit engine against the classic one, and a cache mount cold vs warm (issue 18).

Same local stack (both engines allowed), same client timing as scenario 1
(POST until a 0.1 s status poll reads Finished):

* the small build of scenario 1 with ``engine: classic`` and ``engine: buildkit``,
  interleaved (order alternates), ratio buildkit / classic per run;
* the 200,000-line build of scenario 2 on both engines (time, and how many of the
  numbered lines reach the job's log: Docker 20.10's BuildKit limits a step's
  log output, the classic builder does not);
* a "dependency install" through ``RUN --mount=type=cache``: the step fills the
  cache with 200 gzip'd 200 KB "packages" unless they are there, then copies
  them into the image.  Cold = a cache id never used before; warm = the same id
  again (an earlier step differs, so the RUN step itself runs again).
"""

from __future__ import annotations

import re
import time

from bench.client import BenchError, Client, Finished
from bench.context import BenchContext, Timer, nonce, small_dockerfile
from bench.report import ScenarioResult
from bench.scenarios.logs import dockerfile as lines_dockerfile
from bench.scenarios.logs import numbered_lines_in_order
from bench.stats import fmt, median

PACKAGES = 200
_BUILDKIT_PREFIX = re.compile(r"^#\d+ [0-9.]+ ", re.M)


def deps_dockerfile(base_image: str, token: str, cache_id: str) -> str:
    """A dependency install whose downloads live in a cache mount (``cache_id``)."""
    return (
        f"FROM {base_image}\nRUN echo bench-{token} > /nonce.txt\n"
        f"RUN --mount=type=cache,target=/cache,id=deps-{cache_id} sh -c '"
        f"if [ ! -f /cache/complete ]; then mkdir -p /cache/pkgs && for i in $(seq 1 {PACKAGES}); do "
        f"head -c 200000 /dev/urandom | gzip -1 > /cache/pkgs/p$i.gz; done && touch /cache/complete; "
        f"echo deps-downloaded; else echo deps-from-cache; fi; mkdir -p /opt && cp -r /cache/pkgs /opt/pkgs'\n"
    )


def _once(ctx: BenchContext, client: Client, name: str, dockerfile: str, engine: str) -> tuple[float, Finished, str]:
    ref = ctx.image(name, f"{engine}-{nonce()}")
    with Timer() as timer:
        job_id = client.submit({**ctx.build_body(ref, dockerfile), "engine": engine})
        done = client.wait(job_id, interval=0.1)
    if not done.ok:
        raise BenchError(f"{engine} job {job_id} ended {done.status.get('Status')!r}")
    return timer.seconds, done, job_id


def run(ctx: BenchContext) -> ScenarioResult:
    """Classic vs BuildKit on the small and the 200k-line build; a cache mount cold vs warm."""
    result = ScenarioResult(
        "engines", "BuildKit vs classic engine, and a cache-mount install cold vs warm", short="buildkit engine"
    )
    runs = ctx.options.runs
    lines = ctx.options.log_lines
    times: dict[str, list[float]] = {"classic": [], "buildkit": []}
    ratios: list[float] = []
    big: dict[str, list[float]] = {"classic": [], "buildkit": []}
    big_lines: dict[str, list[int]] = {"classic": [], "buildkit": []}
    cold: list[float] = []
    warm: list[float] = []
    with ctx.stack("engines", {"BOATYARD_ALLOWED_ENGINES": "classic,buildkit"}) as stack:
        client = Client(stack.api_url)
        if ctx.options.warmup:
            ctx.log("  warm-up (not counted)")
            for engine in ("classic", "buildkit"):
                _once(ctx, client, "engines", small_dockerfile(ctx.svc.base_image, nonce()), engine)
        for index in range(runs):
            order = ("classic", "buildkit") if index % 2 == 0 else ("buildkit", "classic")
            run_times = {}
            for engine in order:
                run_times[engine], _, _ = _once(
                    ctx, client, "engines", small_dockerfile(ctx.svc.base_image, nonce()), engine
                )
                times[engine].append(run_times[engine])
            ratios.append(run_times["buildkit"] / run_times["classic"])
            ctx.log(
                f"  small run {index + 1}/{runs}: classic {run_times['classic']:.2f} s, "
                f"buildkit {run_times['buildkit']:.2f} s, ratio {ratios[-1]:.2f}"
            )
        for index in range(max(1, runs // 2)):
            for engine in ("classic", "buildkit"):
                seconds, _, job_id = _once(
                    ctx, client, "englines", lines_dockerfile(ctx.svc.base_image, nonce(), lines), engine
                )
                text = client.read_all_logs(job_id).text
                _, seen = numbered_lines_in_order(_BUILDKIT_PREFIX.sub("", text), lines)  # "#5 0.123 42" → "42"
                big[engine].append(seconds)
                big_lines[engine].append(seen)
                ctx.log(f"  {lines}-line run {index + 1}: {engine} {seconds:.2f} s, {seen} numbered lines in the log")
        for index in range(runs):
            cache_id = nonce()
            cold_s, _, _ = _once(
                ctx, client, "engdeps", deps_dockerfile(ctx.svc.base_image, nonce(), cache_id), "buildkit"
            )
            warm_s, _, job_id = _once(
                ctx, client, "engdeps", deps_dockerfile(ctx.svc.base_image, nonce(), cache_id), "buildkit"
            )
            if "deps-from-cache" not in client.read_all_logs(job_id).text:
                raise BenchError("the warm dependency install did not use the cache mount")
            cold.append(cold_s)
            warm.append(warm_s)
            ctx.log(f"  deps run {index + 1}/{runs}: cold {cold_s:.2f} s, warm {warm_s:.2f} s")
            time.sleep(0.2)
        client.close()
    result.add("small build, engine classic (submit → Finished)", fmt(median(times["classic"]), 2, " s"))
    result.add("small build, engine buildkit (submit → Finished)", fmt(median(times["buildkit"]), 2, " s"))
    result.add("ratio buildkit / classic, small build (median of per-run ratios)", fmt(median(ratios), 2))
    result.add(f"{lines}-line build, classic", fmt(median(big["classic"]), 2, " s"))
    result.add(f"{lines}-line build, buildkit", fmt(median(big["buildkit"]), 2, " s"))
    result.add(
        f"ratio buildkit / classic, {lines}-line build", fmt(median(big["buildkit"]) / median(big["classic"]), 2)
    )
    result.add(
        f"numbered lines in the log, classic / buildkit (of {lines})",
        f"{min(big_lines['classic'])} / {min(big_lines['buildkit'])}",
    )
    result.add(f"cache-mount dependency install ({PACKAGES} × 200 KB), cold", fmt(median(cold), 2, " s"))
    result.add("same install, warm (cache mount hit)", fmt(median(warm), 2, " s"))
    result.add("ratio warm / cold", fmt(median([w / c for w, c in zip(warm, cold, strict=True)]), 2))
    result.notes += [
        f"{runs} interleaved small runs (order alternates), {max(1, runs // 2)} {lines}-line run(s) per engine, "
        f"{runs} cold/warm pairs; one stack with BOATYARD_ALLOWED_ENGINES=classic,buildkit.",
        "BuildKit builds run /usr/bin/docker (the docker.io 20.10 CLI) with DOCKER_BUILDKIT=1 against the same "
        "daemon; both push with docker-py.",
        "Docker 20.10's embedded BuildKit limits each step's log output (size and rate, in the daemon): the line "
        "count shows how much of the 200k-line output reaches the job's log.",
        "per-run small ratios: " + ", ".join(f"{r:.2f}" for r in ratios),
    ]
    result.raw = {"small": times, "ratios": ratios, "big": big, "big_lines": big_lines, "cold": cold, "warm": warm}
    return result
