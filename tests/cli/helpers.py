"""Shared by the CLI tests: run ``python -m boatyard`` as a child process, and make context folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def cli_env(api_url: str, **extra: str) -> dict[str, str]:
    """The environment of a CLI child: this checkout's code, the API, no user config or Docker login."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BOATYARD_REGISTRY_", "BOATYARD_TOKEN"))}
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "BOATYARD_API": api_url,
            "BOATYARD_CONFIG": os.devnull + ".absent.toml",
            "DOCKER_CONFIG": os.devnull + ".absent",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def run_cli(
    args: list[str], env: dict[str, str], stdin: str | None = None, timeout: float = 600, cwd: Path | None = None
) -> subprocess.CompletedProcess:
    """``python -m boatyard ARGS``; the finished process with text stdout/stderr."""
    return subprocess.run(
        [sys.executable, "-m", "boatyard", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or REPO_ROOT,
    )


def spawn_cli(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen:
    """``python -m boatyard ARGS`` started in the background (stdin closed, output piped)."""
    return subprocess.Popen(
        [sys.executable, "-m", "boatyard", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=cwd or REPO_ROOT,
    )


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Create ``files`` (relative path → content) under ``root``."""
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


DOCKERIGNORE_TREE: dict[str, str] = {
    # what .dockerignore keeps or drops, including its odd corners
    ".dockerignore": "\n".join(
        [
            "# a comment line, and blank lines, are skipped",
            "",
            "*.log",
            "!important.log",
            "secrets/",
            "build",
            "**/*.tmp",
            "docs/*.md",
            "!docs/README.md",
            "/rooted.txt",
            "sub/../dotdot.txt",
            "   padded.txt   ",
            "node_modules",
            "cache/**",
            "!cache/keep/",
            "!cache/keep/**",
            "?.one",
            "[ab].range",
            ".dockerignore",
            "",
        ]
    ),
    "app.py": "print('app')\n",
    "a.log": "drop\n",
    "important.log": "keep\n",
    "nested/deep.log": "keep: *.log matches only at the root\n",
    "secrets/key.pem": "drop\n",
    "build/out.bin": "drop\n",
    "buildfile.txt": "keep: 'build' is a whole name\n",
    "x/y/z.tmp": "drop\n",
    "top.tmp": "drop\n",
    "docs/guide.md": "drop\n",
    "docs/README.md": "keep\n",
    "docs/sub/inner.md": "keep: docs/*.md is one level\n",
    "rooted.txt": "drop\n",
    "sub/rooted.txt": "keep\n",
    "dotdot.txt": "drop\n",
    "padded.txt": "drop\n",
    "node_modules/pkg/index.js": "drop\n",
    "cache/a/b.bin": "drop\n",
    "cache/keep/c.bin": "keep\n",
    "x.one": "drop\n",
    "xy.one": "keep\n",
    "a.range": "drop\n",
    "c.range": "keep\n",
    ".hidden": "keep\n",
}
"""A context whose .dockerignore uses comments, globs, ``**``, ``!`` exceptions, rooted and ``..``
patterns, padding, character classes and names itself."""

KEPT_FILES = {
    "app.py",
    "important.log",
    "nested/deep.log",
    "buildfile.txt",
    "docs/README.md",
    "docs/sub/inner.md",
    "sub/rooted.txt",
    "cache/keep/c.bin",
    "xy.one",
    "c.range",
    ".hidden",
}


_PEAK_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print('PEAK_RSS_KIB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
    "sys.exit(code)\n"
)


def run_cli_peak_rss(
    args: list[str], env: dict[str, str], timeout: float = 900
) -> tuple[subprocess.CompletedProcess, float]:
    """Run the CLI under a tiny wrapper process and return (the run, the CLI's peak RSS in MiB).

    The wrapper's ``RUSAGE_CHILDREN`` peak is the CLI's own (a child forked straight from pytest would
    count the test process's memory too).
    """
    done = subprocess.run(
        [sys.executable, "-c", _PEAK_WRAPPER, sys.executable, "-m", "boatyard", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
    )
    lines = done.stderr.splitlines()
    peak = next(int(line.split()[1]) for line in reversed(lines) if line.startswith("PEAK_RSS_KIB "))
    done.stderr = "\n".join(line for line in lines if not line.startswith("PEAK_RSS_KIB "))
    return done, peak / 1024
