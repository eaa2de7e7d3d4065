"""Scenario: the ``boatyard`` command line on the small build, end to end, against ``docker build`` +
``docker push`` of the same folder.

The boatyard side is the whole command as a user runs it (a child process ``python -m boatyard build
DIR -t IMAGE -q -o json``): start-up, pack + gzip, submit (inline multipart: the context is tiny), follow the
log until Finished, exit 0.  Same Dockerfile shape as scenario ``small`` (a fresh ``RUN echo <nonce>``
on each side), same machine, interleaved runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.client import BenchError, parse_ts
from bench.context import BenchContext, nonce, small_dockerfile
from bench.report import ScenarioResult
from bench.stats import fmt, median
from devstack.services import REPO_ROOT

GOAL_RATIO = 1.5


def cli_env(ctx: BenchContext, api_url: str) -> dict[str, str]:
    """The CLI child's environment: this checkout's code, the stack's API, the bench registry's login."""
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "BOATYARD_API": api_url,
            "BOATYARD_CONFIG": os.devnull + ".absent.toml",
            "BOATYARD_REGISTRY_USER": ctx.svc.registry.username,
            "BOATYARD_REGISTRY_PASSWORD": ctx.svc.registry.password,
        }
    )
    env.pop("BOATYARD_TOKEN", None)
    return env


def boatyard_once(ctx: BenchContext, env: dict[str, str]) -> tuple[float, float]:
    """One ``boatyard build`` of a fresh small folder; (its wall-clock seconds, the job's CreatedAt →
    FinishedAt on the server's clock)."""
    token = nonce()
    with tempfile.TemporaryDirectory(prefix="bench-cli-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(small_dockerfile(ctx.svc.base_image, token))
        start = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "boatyard", "build", tmp, "-t", ctx.image("cli", "by-" + token), "-q", "-o", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=REPO_ROOT,
        )
        seconds = time.monotonic() - start
    if done.returncode != 0:
        raise BenchError(f"boatyard build exited {done.returncode}: {done.stderr[-800:]}")
    status = json.loads(done.stdout)
    created, finished = parse_ts(status.get("CreatedAt")), parse_ts(status.get("FinishedAt"))
    return seconds, (finished - created) if created is not None and finished is not None else float("nan")


def raw_once(ctx: BenchContext) -> float:
    """``docker build`` + ``docker push`` of the same kind of folder; seconds."""
    token = nonce()
    tag = ctx.image("cli", "cli-" + token)
    with tempfile.TemporaryDirectory(prefix="bench-ctx-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(small_dockerfile(ctx.svc.base_image, token))
        try:
            build, push = ctx.docker.build_push(tag, context_dir=Path(tmp))
        finally:
            ctx.docker.remove(tag)
    return build + push


def startup_seconds(env: dict[str, str], runs: int = 3) -> float:
    """Median seconds of ``python -m boatyard --version`` (interpreter and imports)."""
    times = []
    for _ in range(runs):
        start = time.monotonic()
        subprocess.run(
            [sys.executable, "-m", "boatyard", "--version"], env=env, capture_output=True, timeout=60, cwd=REPO_ROOT
        )
        times.append(time.monotonic() - start)
    return median(times)


def run(ctx: BenchContext) -> ScenarioResult:
    """Interleave ``boatyard build`` and the Docker CLI; medians and the median per-run ratio."""
    result = ScenarioResult(
        "cli", "`boatyard build DIR` (the command line, end to end) vs docker build + push", short="CLI build"
    )
    runs = ctx.options.runs
    with ctx.stack("cli") as stack:
        env = cli_env(ctx, stack.api_url)
        if ctx.options.warmup:
            ctx.log("  warm-up (not counted)")
            boatyard_once(ctx, env)
            raw_once(ctx)
        by_times: list[float] = []
        raw_times: list[float] = []
        ratios: list[float] = []
        server: list[float] = []
        for index in range(runs):
            first_raw = index % 2 == 1
            if first_raw:
                raw = raw_once(ctx)
            by, span = boatyard_once(ctx, env)
            server.append(span)
            if not first_raw:
                raw = raw_once(ctx)
            by_times.append(by)
            raw_times.append(raw)
            ratios.append(by / raw)
            ctx.log(
                f"  run {index + 1}/{runs}: boatyard build {by:.2f} s, docker CLI {raw:.2f} s, ratio {by / raw:.2f}"
            )
        startup = startup_seconds(env)
    ratio = median(ratios)
    result.add("`boatyard build DIR -t IMAGE` until it exits 0", fmt(median(by_times), 2, " s"))
    result.add("docker build + docker push (CLI, classic builder)", fmt(median(raw_times), 2, " s"))
    result.add(
        "ratio boatyard build / docker CLI (median of per-run ratios)",
        fmt(ratio, 2),
        f"≤ {GOAL_RATIO}",
        ratio <= GOAL_RATIO,
    )
    result.add("of which the service's job (CreatedAt → FinishedAt, server clock)", fmt(median(server), 2, " s"))
    result.add(
        "of which the command's own (total − job: start-up, pack, submit, last poll, exit)",
        fmt(median([b - s for b, s in zip(by_times, server, strict=True)]), 2, " s"),
    )
    result.add("the command's start-up alone (`boatyard --version`: interpreter + imports)", fmt(startup, 2, " s"))
    result.add(
        "ratio server-side job / docker CLI (informational: the service without the command)",
        fmt(median([s / r for s, r in zip(server, raw_times, strict=True)]), 2),
    )
    result.notes += [
        f"{runs} interleaved runs (the order alternates)"
        + (", after one uncounted warm-up of each side" if ctx.options.warmup else ""),
        "Both sides build a folder holding only the scenario-`small` Dockerfile with a fresh nonce. boatyard: the "
        "command as a user runs it with `-q -o json` (a new Python process: imports, pack + gzip, inline "
        "multipart submit, status polls from every 0.1 s slowing towards 1 s while nothing changes, exit). "
        "The goal (1.5) is looser than scenario `small`'s 1.2 because the command adds a process start-up "
        "(~0.2-0.5 s for Python + requests on this machine) and its last poll on top of the service's own time; "
        "the `job` rows split the two.",
        "per-run ratios: " + ", ".join(f"{r:.2f}" for r in ratios),
    ]
    result.raw = {
        "boatyard_s": by_times,
        "cli_s": raw_times,
        "ratios": ratios,
        "server_s": server,
        "startup_s": startup,
    }
    return result
