"""``python -m bench`` (``make bench``): run the scenarios against a local stack, write BENCHMARKS.md.

python -m bench                  # every scenario, --runs 5 (about 15 min on 2 cores)
python -m bench --runs 5         # more runs per figure
python -m bench --quick          # smoke run: small sizes, 1 run; writes var/bench/BENCHMARKS-quick.md
python -m bench --only small,logs
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from bench import machine, report
from bench.context import BenchContext, Options
from bench.rawdocker import DockerCLI
from bench.scenarios import SCENARIOS
from bench.stack import BENCH_DIR, REGISTRY_PORT, ensure_services
from devstack.services import REPO_ROOT


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (median); default 5, --quick 1")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 run, small sizes and counts")
    parser.add_argument("--only", default="", help=f"comma-separated scenarios of: {', '.join(SCENARIOS)}")
    parser.add_argument("--jobs", type=int, default=None, help="jobs per concurrency level in scenario 4 (default 100)")
    parser.add_argument("--upload-runs", type=int, default=None, help="runs of the 1 GiB upload scenario (default 2)")
    parser.add_argument("--upload-mib", type=int, default=None, help="size of the upload context in MiB (default 1024)")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help="report path (default BENCHMARKS.md; --quick: var/bench/BENCHMARKS-quick.md)",
    )
    parser.add_argument(
        "--build-network",
        default="none",
        help="network of RUN steps on both sides (worker BOATYARD_BUILD_NETWORK, CLI --network); default none "
        "(this host's daemon has no docker0 bridge); '' for the daemon default",
    )
    parser.add_argument(
        "--registry-port", type=int, default=REGISTRY_PORT, help="port of the bench's own registry (default 5060)"
    )
    return parser.parse_args(argv)


def options_from(args: argparse.Namespace) -> Options:
    """Options for this run (``--quick`` first, explicit flags win)."""
    opts = Options()
    if args.quick:
        opts = dataclasses.replace(
            opts,
            runs=1,
            quick=True,
            log_lines=20_000,
            upload_mib=64,
            upload_runs=1,
            jobs=6,
            idle_samples=3,
            api_seconds=1.0,
            inproc_requests=30,
        )
    if args.runs is not None:
        opts.runs = max(1, args.runs)
    if args.jobs is not None:
        opts.jobs = max(1, args.jobs)
    if args.upload_runs is not None:
        opts.upload_runs = max(1, args.upload_runs)
    opts.build_network = args.build_network
    if args.upload_mib is not None:
        opts.upload_mib = max(4, args.upload_mib)
    return opts


def log(message: str) -> None:
    """Progress on stdout, timestamped."""
    print(time.strftime("%H:%M:%S ") + message, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen scenarios; the report is rewritten after each one (a crash keeps what was measured)."""
    args = parse_args(argv)
    opts = options_from(args)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(SCENARIOS)
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown:
        print(f"unknown scenario(s): {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}", file=sys.stderr)
        return 2
    output = args.output or (BENCH_DIR / "BENCHMARKS-quick.md" if opts.quick else REPO_ROOT / "BENCHMARKS.md")
    output.parent.mkdir(parents=True, exist_ok=True)
    command = "python -m bench" + (
        "" if argv is None and len(sys.argv) <= 1 else " " + shlex.join(argv if argv is not None else sys.argv[1:])
    )
    options = dataclasses.asdict(opts)
    started = time.monotonic()
    log(f"bench: scenarios {', '.join(chosen)}; {report.options_summary(options)}")
    svc = ensure_services(args.registry_port)
    log(
        f"bench: Docker {svc.docker_host}, registry {svc.registry.host} (user {svc.registry.username}), base {svc.base_image}"
    )
    desc = machine.describe({"DOCKER_HOST": svc.docker_host})
    results: list[report.ScenarioResult] = []
    with DockerCLI(svc, opts.build_network) as docker:
        ctx = BenchContext(opts, svc, docker, log)
        for name in chosen:
            log(f"scenario {name} ...")
            begun = time.monotonic()
            load_before = machine.load_average()
            try:
                result = SCENARIOS[name](ctx)
            except Exception as exc:  # noqa: BLE001 - keep going: report what failed and why
                traceback.print_exc()
                result = report.ScenarioResult(name, name, error=f"{type(exc).__name__}: {exc}")
            result.seconds = time.monotonic() - begun
            result.notes.append(
                f"Load average (1/5/15 min) before: {load_before}; after: {machine.load_average()} "
                "(the Docker daemon and the cores are shared with whatever else runs on this machine)."
            )
            results.append(result)
            for row in result.rows:
                log(f"  {row.metric}: {row.value}" + (f"  [goal {row.goal}: {row.verdict}]" if row.goal else ""))
            desc["Load average at end (1/5/15 min)"] = machine.load_average()
            report.write(output, report.render(desc, results, options, command, time.monotonic() - started))
            report.write_json(BENCH_DIR / "results.json", desc, results, options)
    total = time.monotonic() - started
    report.write(output, report.render(desc, results, options, command, total))
    log(f"bench: done in {total / 60:.1f} min; wrote {output}")
    return 1 if any(r.error for r in results) else 0


if __name__ == "__main__":
    os.chdir(REPO_ROOT)
    sys.exit(main())
