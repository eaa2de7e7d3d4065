"""A description of the machine the benchmark ran on (for the report header)."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
import sys
from typing import Any


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> str:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    kib = int(line.split()[1])
                    return f"{kib / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _run(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return ""


def _package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def load_average() -> str:
    """The 1/5/15-minute load averages (other work on the machine skews every figure)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return " / ".join(f"{x:.2f}" for x in load)


def describe(docker_env: dict[str, str] | None = None) -> dict[str, Any]:
    """CPU, cores, memory, kernel, Docker, Python, versions of the moving parts, date and commit."""
    env = dict(os.environ, **(docker_env or {}))
    versions = ""
    try:
        versions = subprocess.run(
            ["docker", "version", "--format", "{{.Client.Version}} / {{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
            env=env,
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    commit = _run(
        ["git", "-C", os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "rev-parse", "--short", "HEAD"]
    )
    return {
        "CPU": _cpu_model(),
        "Cores": str(os.cpu_count() or "unknown"),
        "Memory": _mem_total(),
        "Kernel": f"{platform.system()} {platform.release()}",
        "Docker (client / daemon)": versions or "unknown",
        "Python": platform.python_version() + f" ({sys.executable})",
        "boto3 / moto / chalice / docker-py": " / ".join(
            _package_version(p) for p in ("boto3", "moto", "chalice", "docker")
        ),
        "Date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "Commit": commit or "unknown",
        "Load average at start (1/5/15 min)": load_average(),
    }
