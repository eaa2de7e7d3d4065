"""Hostile archives: compression bombs, path traversal, absolute paths, link escapes, device files and
archives over the size or file-count limits are refused with a clear ``Failed: ...``, nothing is
extracted anywhere, and the worker stays fine for the next job.

In process: each archive is uploaded through the API (multipart TarFile + Json) and run by a worker
against moto.  A few cases also go straight to the worker (bypassing the API's checks).
"""

from __future__ import annotations

import gzip
import io
import os
import tarfile
import time
import zlib

import pytest

from devstack import hostile
from tests.support.canary import TEST_PASSWORD
from tests.support.faults import STATE_DIR, report
from tests.support.services import stores

IMAGE = "127.0.0.1:9/faults/archive:1"  # a closed local port: a push that should never happen fails locally
DOCKERFILE = b"FROM scratch\nCOPY . /\n"
GiB = 1024**3
MiB = 1024**2


def _tar(
    entries: list[tarfile.TarInfo | tuple[tarfile.TarInfo, bytes]], gz: bool = True, with_dockerfile: bool = True
) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        if with_dockerfile:
            info = tarfile.TarInfo("Dockerfile")
            info.size = len(DOCKERFILE)
            tar.addfile(info, io.BytesIO(DOCKERFILE))
        for entry in entries:
            if isinstance(entry, tuple):
                info, data = entry
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(entry)
    return gzip.compress(raw.getvalue(), compresslevel=6) if gz else raw.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _link(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def _special(name: str, kind: bytes, major: int = 1, minor: int = 3) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.devmajor, info.devminor = major, minor
    return info


def gzip_bomb(uncompressed: int = GiB) -> bytes:
    """A tar.gz with a Dockerfile and one file of ``uncompressed`` zero bytes (~1 MB compressed per GB)."""
    dockerfile = tarfile.TarInfo("Dockerfile")
    dockerfile.size = len(DOCKERFILE)
    header_block = dockerfile.tobuf(tarfile.GNU_FORMAT) + DOCKERFILE + bytes(-len(DOCKERFILE) % 512)
    member = tarfile.TarInfo("zeros.bin")
    member.size = uncompressed
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    out = [compressor.compress(header_block + member.tobuf(tarfile.GNU_FORMAT))]
    chunk = bytes(MiB)
    for _ in range(uncompressed // MiB):
        out.append(compressor.compress(chunk))
    out.append(compressor.compress(bytes(1024)))  # end-of-archive
    out.append(compressor.flush())
    return b"".join(out)


def hostile_cases() -> list[tuple[str, bytes, str]]:
    """(case, archive, a phrase the Failed status must contain)."""
    return [
        ("path traversal ../evil", _tar([_file("../evil")]), "leaves the build context"),
        ("nested traversal a/../../evil", _tar([_file("a/../../evil")]), "leaves the build context"),
        ("backslash traversal ..\\evil", _tar([_file("..\\evil")]), "leaves the build context"),
        ("absolute /etc/passwd", _tar([_file("/etc/passwd", b"root::0:0::/:/bin/sh\n")]), "absolute path"),
        ("drive-letter path C:/evil", _tar([_file("C:/evil")]), "absolute path"),
        (
            "symlink escape ../../etc/passwd",
            _tar([_link("passwd", "../../etc/passwd", tarfile.SYMTYPE)]),
            "outside the build context",
        ),
        ("symlink to /etc/shadow", _tar([_link("shadow", "/etc/shadow", tarfile.SYMTYPE)]), "absolute path"),
        (
            "symlink escape from a subfolder",
            _tar([_link("a/b/up", "../../../x", tarfile.SYMTYPE)]),
            "outside the build context",
        ),
        (
            "hard link escape ../../etc/passwd",
            _tar([_link("hl", "../../etc/passwd", tarfile.LNKTYPE)]),
            "leaves the build context",
        ),
        ("hard link to /etc/passwd", _tar([_link("hl", "/etc/passwd", tarfile.LNKTYPE)]), "absolute path"),
        (
            "hard link to a file not in the archive",
            _tar([_link("hl", "elsewhere", tarfile.LNKTYPE)]),
            "not a file earlier in the archive",
        ),
        ("character device", _tar([_special("dev/null", tarfile.CHRTYPE)]), "device or FIFO"),
        ("block device", _tar([_special("dev/sda", tarfile.BLKTYPE, 8, 0)]), "device or FIFO"),
        ("FIFO", _tar([_special("pipe", tarfile.FIFOTYPE)]), "device or FIFO"),
        ("no Dockerfile", _tar([_file("README", b"hi")], with_dockerfile=False), "no Dockerfile"),
        ("gzip of garbage", gzip.compress(os.urandom(4096)), "not a valid tar"),
        ("truncated tar.gz", _tar([_file("big", os.urandom(64 * 1024))])[:20_000], "not a valid tar"),
        ("GNU long name declaring 600 MiB", hostile.extended_header_bomb(600), "extended headers may be at most"),
        (
            "PAX header declaring 600 MiB",
            hostile.extended_header_bomb(600, tarfile.XHDTYPE),
            "extended headers may be at most",
        ),
        ("bz2 bomb", hostile.bz2_bomb(64), "only tar and tar.gz"),
        (
            "path through a symlink a -> . then a/b -> ..",
            hostile.symlink_through_symlink(),
            "goes through the symbolic link",
        ),
    ]


def _ok_status(status: dict, phrase: str) -> bool:
    return status.get("Phase") == "failed" and status["Status"].startswith("Failed: ") and phrase in status["Status"]


def _check_nothing_escaped() -> list[str]:
    """Files an extracting sanitizer would have written next to its work folder."""
    work = STATE_DIR / "faults-work"
    suspects = [work.parent / "evil", work / "evil", STATE_DIR / "evil", work.parent.parent / "evil"]
    return [str(p) for p in suspects if p.exists()]


def test_hostile_archives_are_refused_with_a_clear_status(inproc):
    harness = inproc()
    cases = hostile_cases()
    api_refused, jobs = {}, {}
    for name, archive, _phrase in cases:
        try:
            jobs[name] = harness.submit_archive(
                {"image_name": IMAGE, "username": "u", "password": TEST_PASSWORD}, archive
            )
        except AssertionError as exc:  # the API may already refuse what it can see (a 400 is a refusal)
            api_refused[name] = str(exc)
        jobs[f"{name} (direct)"] = _direct_upload(harness, archive)
    harness.run_queue(rounds=2 * len(cases) + 5)
    wrong = []
    phrases = {name: phrase for name, _a, phrase in cases}
    for name, job_id in jobs.items():
        status = harness.status(job_id)
        phrase = phrases[name.removesuffix(" (direct)")]
        if not _ok_status(status, phrase):
            wrong.append(f"{name}: {status['Status']!r} (expected 'Failed: ...{phrase}...')")
    for name, why in api_refused.items():
        if "400" not in why and "InvalidRequest" not in why:
            wrong.append(f"{name}: the API answered {why[:200]}")
    escaped = _check_nothing_escaped()
    line = report(
        f"ARCHIVES: {len(cases)} hostile archives (traversal, absolute, symlink/hard-link escapes, devices, FIFO, "
        f"no Dockerfile, garbage, extended-header and bz2 bombs), {len(jobs)} jobs ({len(api_refused)} refused by the API), "
        f"{len(jobs) - len(wrong)} failed with the right reason, {len(wrong)} wrong, {len(escaped)} files escaped"
    )
    assert not wrong and not escaped, line + "\n" + "\n".join(wrong) + str(escaped)
    assert {r.outcome.value for r in harness.results} == {"failed"}
    # the worker is fine afterwards: a good archive goes all the way to the build step

    good = _direct_upload(harness, _tar([_file("hello.txt", b"hello")]))
    harness.worker.builder.build = _stop_at_build  # no Docker in this test: prove the context got through
    harness.run_queue()
    assert "reached the build step" in harness.status(good)["Status"], harness.status(good)
    assert stores().jobs.get_job(good).phase.value == "failed"


def _stop_at_build(context, image, write, control, **_options):  # stands in for Builder.build (its signature)
    from chalicelib.domain.errors import BuildFailed

    names = tarfile.open(fileobj=context, mode="r:").getnames()
    raise BuildFailed(f"reached the build step with a sanitized context {sorted(names)}")


def _direct_upload(harness, archive: bytes) -> str:
    """Put the archive in S3 and queue an upload job for it without the API (the worker must refuse on its own)."""
    import uuid

    from chalicelib.stores import contexts

    key = contexts.context_key(str(uuid.uuid4()))
    stores().contexts.put_bytes(key, archive)
    return harness.enqueue_direct(IMAGE, "upload", {"context_key": key}, "u", TEST_PASSWORD)


@pytest.mark.slow
def test_gzip_bomb_is_refused_quickly(inproc):
    bomb = gzip_bomb(GiB)
    assert len(bomb) < 2 * MiB
    harness = inproc()
    job_id = harness.submit_archive({"image_name": IMAGE}, bomb)
    started = time.monotonic()
    harness.run_queue()
    seconds = time.monotonic() - started
    status = harness.status(job_id)
    line = report(
        f"ARCHIVES: gzip bomb of 1 GiB zeros in {len(bomb) / MiB:.1f} MiB -> {status['Status'][:90]!r} after {seconds:.1f} s"
    )
    assert _ok_status(status, "compression bomb"), line
    assert seconds < 30, line


@pytest.mark.parametrize(
    ("setting", "value", "archive", "phrase"),
    [
        ("BOATYARD_MAX_CONTEXT_FILES", "50", lambda: _tar([_file(f"f{i}") for i in range(60)]), "more than 50 entries"),
        ("BOATYARD_MAX_CONTEXT_BYTES", str(MiB), lambda: _tar([_file("big", bytes(2 * MiB))]), "larger than the limit"),
        (
            "BOATYARD_MAX_CONTEXT_BYTES",
            str(MiB),
            lambda: _tar([_file("rand", os.urandom(2 * MiB))]),
            "larger than the limit",
        ),
        ("BOATYARD_MAX_CONTEXT_RATIO", "10", lambda: _tar([_file("z", bytes(16 * MiB))]), "compression bomb"),
    ],
    ids=["file-count", "size-uncompressed", "size-compressed", "ratio"],
)
def test_archives_over_the_limits_are_refused(inproc, setting, value, archive, phrase):
    harness = inproc(**{setting: value})
    job_id = harness.submit_archive({"image_name": IMAGE}, archive())
    harness.run_queue()
    status = harness.status(job_id)
    report(f"ARCHIVES: over {setting}={value} -> {status['Status'][:100]!r}")
    assert _ok_status(status, phrase), status
    # and just under the limit is fine (so the limit, not something else, refused it)
    from chalicelib.domain.jobs import Phase

    under = {
        "BOATYARD_MAX_CONTEXT_FILES": lambda: _tar([_file(f"f{i}") for i in range(40)]),
        "BOATYARD_MAX_CONTEXT_BYTES": lambda: _tar([_file("small", bytes(MiB // 2))]),
        "BOATYARD_MAX_CONTEXT_RATIO": lambda: _tar([_file("z", bytes(4 * MiB))]),
    }[setting]()
    ok_id = harness.submit_archive({"image_name": IMAGE}, under)
    harness.worker.builder.build = _stop_at_build
    harness.run_queue()
    assert "reached the build step" in harness.status(ok_id)["Status"], harness.status(ok_id)
    assert harness.status(ok_id)["Phase"] == Phase.FAILED.value
