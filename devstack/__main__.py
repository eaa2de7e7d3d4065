"""``python -m devstack run``: the whole service in the foreground (what ``make run`` calls)."""

from __future__ import annotations

import argparse
import signal
import sys
import time

from devstack import services
from devstack.services import ServiceError
from devstack.stack import LocalStack, StackConfig


def run(args: argparse.Namespace) -> int:
    """Start everything, print where it is, wait for Ctrl-C or SIGTERM, stop everything."""
    try:
        docker_host = services.ensure_dockerd()
    except ServiceError as err:
        print(f"boatyard: {err}", file=sys.stderr)
        return 2
    registry = None
    if not args.no_registry:
        try:
            registry = services.ensure_registry()
            services.ensure_base_image(registry, docker_host)
        except ServiceError as err:
            print(f"boatyard: demo registry not started: {err}", file=sys.stderr)
    stack = LocalStack(StackConfig(workers=args.workers))
    stopping = {"now": False}

    def _stop(signum: int, _frame: object) -> None:
        stopping["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        stack.start()
    except ServiceError as err:
        stack.stop()
        print(f"boatyard: {err}", file=sys.stderr)
        return 1
    print(f"boatyard is running\n  UI and API:  {stack.api_url}/\n  AWS (moto):  {stack.aws_endpoint}")
    print(f"  Docker:      {docker_host}\n  logs:        {stack.config.log_dir}")
    if registry:
        print(
            f"  registry:    {registry.host}  user {registry.username}  password {registry.password}\n"
            f"               (a demo registry on this machine; base image {registry.host}/{services.BASE_REPOSITORY}:latest)"
        )
    print("Ctrl-C stops everything.", flush=True)
    try:
        while not stopping["now"]:
            time.sleep(0.5)
            for name, proc in stack.procs.items():
                if proc.poll() is not None:
                    print(
                        f"boatyard: {name} exited ({proc.returncode}); stopping. See {stack.config.log_dir}",
                        file=sys.stderr,
                    )
                    stopping["now"] = True
    finally:
        print("stopping ...", flush=True)
        stack.stop()
    return 0


def main() -> int:
    """Command-line entry."""
    parser = argparse.ArgumentParser(prog="python -m devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="run the whole service locally in the foreground")
    run_parser.add_argument("--workers", type=int, default=1)
    run_parser.add_argument("--no-registry", action="store_true")
    sub.add_parser("services", help="start dockerd and the demo registry if missing, then exit")
    args = parser.parse_args()
    if args.command == "run":
        return run(args)
    try:
        host = services.ensure_dockerd()
        registry = services.ensure_registry()
        print(host, registry.host, services.ensure_base_image(registry, host))
    except ServiceError as err:
        print(f"boatyard: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
