"""Scenario 6: what the gVisor sandbox costs — the same RUN-step workloads under ``runsc`` and ``runc``.

dockerd runs a classic build's RUN steps with its *default* runtime and cannot be
told otherwise per build, and the daemon here is shared, so its default is not
switched back and forth. Instead each workload runs as what the classic builder
does for one RUN step — create a container from the image with the step's
command, start it, stream its output, wait, commit it as a layer, remove it —
once with ``runtime=runsc`` and once with ``runtime=runc`` on the same daemon, in
the same run, alternating, and the ratio of the medians is reported:

* per-step start cost: ``true`` (create + start + wait + commit + remove);
* small build: ``echo <nonce> > /nonce.txt`` (the RUN step of scenario 1);
* 200k log lines: ``seq 1 200000`` read back through the attached stream;
* CPU-bound: 200 MB from /dev/urandom through ``gzip -1``;
* syscall-heavy: create 50,000 files, then ``ls -l`` (a stat of each).
"""

from __future__ import annotations

import time

import docker

from bench.context import BenchContext, nonce
from bench.report import ScenarioResult
from bench.stats import fmt, median

GOAL_SMALL_RATIO = 1.5


def workloads(quick: bool) -> dict[str, str]:
    """The RUN commands, by row name (smaller under --quick)."""
    lines, mib, files = (20_000, 20, 5_000) if quick else (200_000, 200, 50_000)
    return {
        "per-step start cost (`true`)": "true",
        "small build step (`echo > file`)": "echo bench-{nonce} > /nonce.txt",
        f"{lines // 1000}k log lines": f"seq 1 {lines}",
        f"CPU-bound: gzip {mib} MB": f"head -c {mib}m /dev/urandom | gzip -1 > /dev/null",
        f"syscall-heavy: {files // 1000}k files created + stat": (
            f"mkdir /t && cd /t && i=0; while [ $i -lt {files} ]; do : > f$i; i=$((i+1)); done; ls -l | wc -l"
        ),
    }


def run_step(api: docker.APIClient, image: str, command: str, runtime: str) -> float:
    """One RUN step the classic builder's way, under ``runtime``; seconds from create to removed."""
    started = time.monotonic()
    container = api.create_container(
        image,
        command=["/bin/sh", "-c", command],
        host_config=api.create_host_config(runtime=runtime, network_mode="none"),
    )
    cid = container["Id"]
    try:
        stream = api.attach(cid, stream=True, logs=True)
        api.start(cid)
        for _chunk in stream:
            pass
        code = api.wait(cid, timeout=600)["StatusCode"]
        if code != 0:
            raise RuntimeError(f"{command!r} under {runtime} exited {code}")
        committed = api.commit(cid)
    finally:
        api.remove_container(cid, force=True)
    seconds = time.monotonic() - started
    api.remove_image(committed["Id"])
    return seconds


def run(ctx: BenchContext) -> ScenarioResult:
    """Each workload under both runtimes, ``runs`` times, alternating; medians and their ratio."""
    result = ScenarioResult("sandbox", "6. gVisor sandbox cost (runsc vs runc, RUN-step workloads)", short="sandbox")
    api = docker.APIClient(base_url=ctx.svc.docker_host, timeout=900)
    info = api.info()
    if "runsc" not in (info.get("Runtimes") or {}):
        result.error = "the daemon has no runsc runtime (install gVisor: scripts/install-system-deps.sh)"
        return result
    runs = max(1, ctx.options.runs)
    image = ctx.svc.base_image
    for name, template in workloads(ctx.options.quick).items():
        times: dict[str, list[float]] = {"runsc": [], "runc": []}

        def step(runtime: str, template: str = template) -> float:
            return run_step(api, image, template.replace("{nonce}", nonce()), runtime)

        for runtime in ("runsc", "runc"):  # warm both (page cache, the runtime binaries)
            step(runtime)
        for _ in range(runs):
            for runtime in ("runsc", "runc"):
                times[runtime].append(step(runtime))
        sandboxed, plain = median(times["runsc"]), median(times["runc"])
        ratio = sandboxed / plain if plain else float("nan")
        result.raw[name] = times
        goal, met = ("", None)
        if name.startswith("small build"):
            goal, met = (f"≤ {GOAL_SMALL_RATIO}×", ratio <= GOAL_SMALL_RATIO)
        result.add(
            f"{name}: runsc / runc", f"{fmt(sandboxed, 3, ' s')} / {fmt(plain, 3, ' s')} = {ratio:.2f}×", goal, met
        )
        ctx.log(f"  sandbox {name}: runsc {times['runsc']} runc {times['runc']}")
    api.close()
    result.notes.append(
        "Each figure is the median of the runs of one RUN step done the classic builder's way (create, start, "
        "stream the output, wait, commit, remove) with an explicit runtime on the same daemon, alternating "
        "runsc and runc; the builder itself cannot pick a runtime per build (it uses the daemon default, "
        f"which is runsc on build hosts). Daemon default here: {info.get('DefaultRuntime')}; runsc is Debian's "
        "2022-12 build on the ptrace platform with --network=host; network none for both."
    )
    return result
