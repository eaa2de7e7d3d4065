"""Scenario 3: a 1 GiB build context through the upload flow.

``POST /api/v1/uploads`` → a streaming multipart POST of a 1 GiB tar (random,
incompressible bytes in four files) to the presigned URL (the moto server) →
``POST /api/v1/build`` with ``upload_id``.  The Dockerfile COPYs only a small
file, so the whole context travels (upload, S3, worker, Docker daemon) but the
pushed layer stays small: the figure is about moving the context, not pushing
1 GiB.  Peak memory (VmHWM) of the worker and of ``chalice local`` is read
from /proc after all runs: a fresh stack serves this scenario only, so the peak
is over its runs (the strictest reading).  The Docker CLI baseline builds the
same tar from stdin (``docker build -``) and pushes.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.client import BenchError, Client
from bench.context import BenchContext, Timer, nonce
from bench.report import ScenarioResult
from bench.stack import BENCH_DIR
from bench.stats import fmt, median

GOAL_MEMORY_MB = 150
MiB = 1024 * 1024
PARTS = 4


class MultipartBody:
    """A ``multipart/form-data`` body streamed from a file on disk, with a known length.

    requests sends it with a Content-Length and reads it in blocks, so the
    client never holds the archive in memory.
    """

    def __init__(self, fields: dict[str, str], path: Path, filename: str, content_type: str) -> None:
        self.boundary = "----bench" + uuid.uuid4().hex
        head = b"".join(
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        )
        head += (
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        ).encode()
        tail = f"\r\n--{self.boundary}--\r\n".encode()
        self._size = len(head) + path.stat().st_size + len(tail)
        self._parts: list[Any] = [io.BytesIO(head), open(path, "rb"), io.BytesIO(tail)]
        self._index = 0

    @property
    def content_type(self) -> str:
        """The request's Content-Type header."""
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return self._size

    def read(self, size: int = -1) -> bytes:
        """The next bytes of the body (``size`` < 0: all that is left, for completeness)."""
        out = bytearray()
        while self._index < len(self._parts) and (size < 0 or len(out) < size):
            chunk = self._parts[self._index].read(-1 if size < 0 else size - len(out))
            if not chunk:
                self._index += 1
                continue
            out += chunk
        return bytes(out)

    def close(self) -> None:
        """Close the file."""
        for part in self._parts:
            part.close()


def make_blobs(folder: Path, total_mib: int) -> list[Path]:
    """``PARTS`` files of random bytes adding up to ``total_mib`` (made once per bench run)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    each = total_mib * MiB // PARTS
    for index in range(PARTS):
        path = folder / f"part-{index}.bin"
        if not path.exists() or path.stat().st_size != each:
            with open(path, "wb") as handle:
                left = each
                while left:
                    block = min(left, 16 * MiB)
                    handle.write(os.urandom(block))
                    left -= block
        paths.append(path)
    return paths


def make_context_tar(path: Path, blobs: list[Path], base_image: str, token: str) -> int:
    """A plain tar: a Dockerfile unique to ``token``, a small file, and the blobs under data/; its size."""
    dockerfile = f"FROM {base_image}\nCOPY small.txt /small.txt\nRUN echo bench-{token}\n".encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("Dockerfile", dockerfile), ("small.txt", f"{token}\n".encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
        for blob in blobs:
            tar.add(blob, arcname=f"data/{blob.name}")
    return path.stat().st_size


def upload(client: Client, tar_path: Path) -> tuple[str, float]:
    """Create an upload and stream the tar to its presigned URL; (upload id, seconds of the POST to S3)."""
    grant = client.create_upload()
    body = MultipartBody(grant["Fields"], tar_path, "context.tar", "application/x-tar")
    try:
        with Timer() as timer:
            answer = requests.post(grant["Url"], data=body, headers={"Content-Type": body.content_type}, timeout=1800)
    finally:
        body.close()
    if answer.status_code not in (200, 201, 204):
        raise BenchError(f"the presigned POST answered {answer.status_code}: {answer.text[:300]}")
    return grant["UploadId"], timer.seconds


def run(ctx: BenchContext) -> ScenarioResult:
    """Interleave boatyard (upload + build) and CLI (build from the tar on stdin + push)."""
    size_mib = ctx.options.upload_mib
    runs = ctx.options.upload_runs
    size_text = f"{size_mib / 1024:g} GiB" if size_mib >= 1024 else f"{size_mib} MiB"
    result = ScenarioResult(
        "upload", f"{size_text} build context via the upload flow (presigned POST)", short=f"{size_text} upload"
    )
    folder = BENCH_DIR / "upload"
    upload_s, fetch_build_s, submit_s, e2e_s, raw_s, sizes, waits = [], [], [], [], [], [], []
    post_s, fetch_s, build_s = [], [], []
    try:
        with Timer() as gen:
            blobs = make_blobs(folder, size_mib)
        ctx.log(f"  made {size_mib} MiB of random data in {gen.seconds:.1f} s")
        with ctx.stack("upload") as stack:
            client = Client(stack.api_url, timeout=600)
            tar_path = folder / "context.tar"

            def boatyard() -> float:
                token = nonce()
                sizes.append(make_context_tar(tar_path, blobs, ctx.svc.base_image, token))
                try:
                    upload_id, up = upload(client, tar_path)
                finally:
                    tar_path.unlink(missing_ok=True)
                image = ctx.image("bigctx", "by-" + token)
                with Timer() as timer:
                    with Timer() as post:
                        job_id = client.submit({"image_name": image, "upload_id": upload_id, **ctx.svc.credentials})
                    done = client.wait(job_id, interval=0.1, timeout=1800)
                post_s.append(post.seconds)
                fetch_s.append(done.phase_seconds("fetching", "building") or float("nan"))
                build_s.append(done.phase_seconds("building", "pushing") or float("nan"))
                if not done.ok:
                    raise BenchError(f"boatyard job {job_id} ended {done.status.get('Status')!r}")
                upload_s.append(up)
                submit_s.append(timer.seconds)
                fetch_build_s.append(done.span("StartedAt", "FinishedAt") or float("nan"))
                waits.append(done.span("CreatedAt", "StartedAt") or float("nan"))
                e2e_s.append(up + timer.seconds)
                return up + timer.seconds

            def raw() -> float:
                token = nonce()
                make_context_tar(tar_path, blobs, ctx.svc.base_image, token)
                tag = ctx.image("bigctx", "cli-" + token)
                try:
                    build, push = ctx.docker.build_push(tag, context_tar=tar_path)
                finally:
                    ctx.docker.remove(tag)
                    tar_path.unlink(missing_ok=True)
                raw_s.append(build + push)
                return build + push

            for index in range(runs):
                first_raw = index % 2 == 1
                if first_raw:
                    raw()
                boatyard()
                if not first_raw:
                    raw()
                ctx.log(
                    f"  run {index + 1}/{runs}: upload {upload_s[-1]:.1f} s, submit→Finished {submit_s[-1]:.1f} s "
                    f"(worker fetch+build {fetch_build_s[-1]:.1f} s), CLI {raw_s[-1]:.1f} s"
                )
            stack.check_alive()
            worker_kib, worker_kids_kib = stack.peak_memory_kib(stack.worker_pid())
            api_kib, api_kids_kib = stack.peak_memory_kib(stack.api_pid())
            moto_kib, _ = stack.peak_memory_kib(stack.moto_pid())
            client.close()
    finally:
        for path in folder.glob("*"):
            path.unlink(missing_ok=True)
    size = median(sizes)
    mib = size / MiB
    ratio = [e / r for e, r in zip(e2e_s, raw_s, strict=True)]
    worker_mb = max(worker_kib, worker_kids_kib) * 1024 / 1e6
    api_mb = max(api_kib, api_kids_kib) * 1024 / 1e6
    result.add("context size (tar, random data)", f"{mib:.0f} MiB")
    result.add(
        "upload: presigned POST to S3 (moto)",
        f"{fmt(median(upload_s), 1, ' s')} = {fmt(mib / median(upload_s), 0)} MiB/s",
    )
    result.add(
        "worker fetch + build + push (StartedAt → FinishedAt)",
        f"{fmt(median(fetch_build_s), 1, ' s')} = {fmt(mib / median(fetch_build_s), 0)} MiB/s",
    )
    result.add(
        "  of which: POST /build with upload_id / fetching / building (phases as polled)",
        f"{fmt(median(post_s), 1, ' s')} / {fmt(median(fetch_s), 1, ' s')} / {fmt(median(build_s), 1, ' s')}",
    )
    result.add(
        "end to end: upload + submit → Finished", f"{fmt(median(e2e_s), 1, ' s')} = {fmt(mib / median(e2e_s), 0)} MiB/s"
    )
    result.add(
        "docker build - < tar + push (CLI)", f"{fmt(median(raw_s), 1, ' s')} = {fmt(mib / median(raw_s), 0)} MiB/s"
    )
    result.add("ratio end to end / CLI (informational)", fmt(median(ratio), 2))
    result.add(
        "peak memory (VmHWM) of the worker",
        f"{worker_mb:.0f} MB"
        + (
            f" (process {worker_kib * 1024 / 1e6:.0f} MB, largest child {worker_kids_kib * 1024 / 1e6:.0f} MB)"
            if worker_kids_kib
            else ""
        ),
        f"≤ {GOAL_MEMORY_MB} MB",
        worker_mb <= GOAL_MEMORY_MB,
    )
    result.add(
        "peak memory (VmHWM) of the API (chalice local)",
        f"{api_mb:.0f} MB" + (f" (largest child {api_kids_kib * 1024 / 1e6:.0f} MB)" if api_kids_kib else ""),
        f"≤ {GOAL_MEMORY_MB} MB",
        api_mb <= GOAL_MEMORY_MB,
    )
    result.add("peak memory of the moto server (not boatyard; for context)", f"{moto_kib * 1024 / 1e6:.0f} MB")
    result.notes += [
        f"{runs} interleaved runs (order alternates); a fresh tar per run and side (new Dockerfile nonce, same data), "
        "so neither side hits the cache for the RUN step; COPY of the small file differs per run too.",
        f"The context is a plain tar of {PARTS} files of os.urandom bytes (incompressible) plus a Dockerfile that "
        "COPYs only a small file: the whole context goes through upload → S3 → worker → Docker daemon "
        "(the classic builder receives all of it), but the pushed layer is small.",
        "The upload is one streaming multipart POST with a Content-Length (the client never holds the file in "
        "memory); MiB/s figures are context MiB over that step's wall time.",
        "Peak memory: VmHWM from /proc/<pid>/status of the worker process and of `chalice local` (and the "
        "largest of their children, if any), read after all runs of this scenario on a stack started for it: "
        "the peak over all runs, not a median. MB = 10^6 bytes.",
        "POST /build with upload_id checks the upload (HEAD, then a ranged GET of its first bytes). moto answers a "
        "ranged GET by materialising the whole object before slicing it (moto/s3/responses.py, "
        "_handle_range_header uses len(response_content)), so that POST's time here grows with the upload size; "
        "the same is true of the moto server's memory (its peak is listed).",
        "Queue wait of these jobs: " + ", ".join(f"{w:.2f} s" for w in waits),
    ]
    result.raw = {
        "sizes": sizes,
        "upload_s": upload_s,
        "submit_s": submit_s,
        "fetch_build_s": fetch_build_s,
        "e2e_s": e2e_s,
        "cli_s": raw_s,
        "worker_vmhwm_kib": worker_kib,
        "worker_children_vmhwm_kib": worker_kids_kib,
        "post_s": post_s,
        "fetch_s": fetch_s,
        "build_s": build_s,
        "api_vmhwm_kib": api_kib,
        "api_children_vmhwm_kib": api_kids_kib,
        "moto_vmhwm_kib": moto_kib,
    }
    return result
