"""What every scenario gets: the options, the outside services, the Docker CLI baseline, helpers."""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable

from bench.rawdocker import DockerCLI
from bench.stack import BenchStack, Services


@dataclasses.dataclass
class Options:
    """Sizes and counts of one benchmark run (``--quick`` shrinks them)."""

    runs: int = 5
    quick: bool = False
    warmup: bool = True
    log_lines: int = 200_000
    upload_mib: int = 1024
    upload_runs: int = 2
    jobs: int = 100
    concurrency_levels: tuple[int, ...] = (1, 2, 4)
    idle_samples: int = 6
    api_seconds: float = 3.0
    api_threads: int = 4
    inproc_requests: int = 200
    build_network: str = "none"


@dataclasses.dataclass
class BenchContext:
    """Shared by the scenarios of one ``python -m bench`` run."""

    options: Options
    svc: Services
    docker: DockerCLI
    log: Callable[[str], None]

    def stack(self, name: str, extra_env: dict[str, str] | None = None) -> BenchStack:
        """A fresh local stack (not started)."""
        return BenchStack(self.svc, name, extra_env, self.options.build_network)

    def image(self, name: str, nonce: str) -> str:
        """A unique image reference in the bench registry."""
        return f"{self.svc.registry.host}/bench/{name}:{nonce}"

    def build_body(self, image: str, dockerfile: str) -> dict[str, str]:
        """A JSON build request with a Dockerfile source and the bench registry's credentials."""
        return {"image_name": image, "dockerfile": dockerfile, **self.svc.credentials}


def nonce() -> str:
    """A fresh token that makes a Dockerfile unique (so no side hits the layer cache)."""
    return uuid.uuid4().hex[:12]


def small_dockerfile(base_image: str, token: str) -> str:
    """The small build of scenarios 1 and 4: one RUN step unique to this build."""
    return f"FROM {base_image}\nRUN echo bench-{token} > /nonce.txt\nCMD cat /nonce.txt\n"


class Timer:
    """``with Timer() as t: ...; t.seconds``."""

    def __enter__(self) -> Timer:
        self.start = time.monotonic()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.monotonic() - self.start
