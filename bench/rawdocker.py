"""The baseline: the Docker CLI (classic builder, ``DOCKER_BUILDKIT=0``) building and pushing the same context.

Logs in to the bench registry with a temporary ``DOCKER_CONFIG`` directory,
removed (after ``docker logout``) when the context manager exits.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from bench.client import BenchError
from bench.stack import Services


class DockerCLI:
    """``docker build`` + ``docker push`` timed from outside, as a person would run them."""

    def __init__(self, svc: Services, network: str = "") -> None:
        self.svc = svc
        self.network = ["--network", network] if network else []
        self.config_dir = Path(tempfile.mkdtemp(prefix="bench-docker-config-"))
        self.env = dict(os.environ)
        self.env.update({"DOCKER_CONFIG": str(self.config_dir), "DOCKER_BUILDKIT": "0", "DOCKER_HOST": svc.docker_host})
        self.docker = shutil.which("docker") or "docker"

    def __enter__(self) -> DockerCLI:
        answer = subprocess.run(
            [self.docker, "login", self.svc.registry.host, "-u", self.svc.registry.username, "--password-stdin"],
            input=self.svc.registry.password.encode(),
            env=self.env,
            capture_output=True,
            timeout=60,
        )
        if answer.returncode != 0:
            self.close()
            raise BenchError(f"docker login failed: {answer.stderr.decode(errors='replace')[-500:]}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Log out and remove the temporary config directory (it held the registry password)."""
        subprocess.run([self.docker, "logout", self.svc.registry.host], env=self.env, capture_output=True, timeout=60)
        shutil.rmtree(self.config_dir, ignore_errors=True)

    def _run(
        self, argv: list[str], out: IO[bytes] | int, stdin: IO[bytes] | None = None, timeout: float = 1800
    ) -> float:
        start = time.monotonic()
        answer = subprocess.run(argv, env=self.env, stdout=out, stderr=subprocess.PIPE, stdin=stdin, timeout=timeout)
        seconds = time.monotonic() - start
        if answer.returncode != 0:
            raise BenchError(
                f"{' '.join(argv[:2])} failed ({answer.returncode}): {answer.stderr.decode(errors='replace')[-800:]}"
            )
        return seconds

    def build_push(
        self, tag: str, context_dir: Path | None = None, context_tar: Path | None = None, output: Path | None = None
    ) -> tuple[float, float]:
        """Build ``tag`` from a directory or a tar (on stdin), then push it; (build s, push s).

        Build output goes to ``output`` (a file) or is discarded.
        """
        with open(output, "wb") if output else open(os.devnull, "wb") as out:
            if context_tar is not None:
                with open(context_tar, "rb") as stdin:
                    build = self._run([self.docker, "build", *self.network, "-t", tag, "-"], out, stdin=stdin)
            else:
                build = self._run([self.docker, "build", *self.network, "-t", tag, str(context_dir)], out)
            push = self._run([self.docker, "push", tag], subprocess.DEVNULL)
        return build, push

    def remove(self, tag: str) -> None:
        """Remove the local tag (and its layers if nothing else uses them)."""
        subprocess.run([self.docker, "rmi", "-f", tag], env=self.env, capture_output=True, timeout=120)
