"""The archive sanitizer: what a user's archive may hold, and the reasons it is refused."""
from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from worker.archive import ContextLimits, InvalidContext, sanitize

LIMITS = ContextLimits(max_bytes=50 * 1024 * 1024, max_files=100, max_ratio=200)


class OneWayStream:
    """A non-seekable source: the sanitizer must stream."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._buffer.read(size)


def build(entries, gz: bool = True) -> bytes:
    """entries: (name, kind, payload) with kind file|dir|sym|link|fifo|chr."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                info.size, info.mode = len(data), 0o4755 if name.endswith(".suid") else 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "sym": tarfile.SYMTYPE, "link": tarfile.LNKTYPE,
                         "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
            if kind in ("sym", "link"):
                info.linkname = payload
            tar.addfile(info)
    return buffer.getvalue()


def run(data: bytes, limits: ContextLimits = LIMITS, strip_top: bool = False) -> dict[str, tarfile.TarInfo]:
    out = io.BytesIO()
    sanitize(OneWayStream(data), out, limits, strip_top=strip_top)
    out.seek(0)
    with tarfile.open(fileobj=out, mode="r:") as tar:  # uncompressed output
        return {m.name: m for m in tar.getmembers()}


def refused(data: bytes, limits: ContextLimits = LIMITS, strip_top: bool = False) -> str:
    with pytest.raises(InvalidContext) as caught:
        run(data, limits, strip_top)
    return caught.value.message


@pytest.mark.parametrize("gz", [True, False])
def test_good_archive_is_copied_uncompressed(gz):
    members = run(build([("./Dockerfile", "file", "FROM x\n"), ("src", "dir", None), ("src/a.txt", "file", "a"),
                         ("src/link", "sym", "a.txt"), ("src/hard", "link", "src/a.txt"), ("tool.suid", "file", "x")], gz))
    assert set(members) == {"Dockerfile", "src", "src/a.txt", "src/link", "src/hard", "tool.suid"}
    assert members["src/link"].issym() and members["src/link"].linkname == "a.txt"
    assert members["src/hard"].islnk() and members["src/hard"].linkname == "src/a.txt"
    assert members["tool.suid"].mode == 0o755  # setuid bits dropped
    assert members["Dockerfile"].uid == 0 and members["Dockerfile"].uname == ""


def test_dockerfile_is_required_at_the_root():
    assert refused(build([("app/Dockerfile", "file", "FROM x")])) == "no Dockerfile at the root of the archive"


@pytest.mark.parametrize(
    "entries, words",
    [
        ([("../evil", "file", "x")], "leaves the build context"),
        ([("a/../../evil", "file", "x")], "leaves the build context"),
        ([("/etc/passwd", "file", "x")], "absolute path"),
        ([("escape", "sym", "../../etc/shadow")], "points outside the build context"),
        ([("sub/escape", "sym", "../..")], "points outside the build context"),
        ([("abs", "sym", "/etc/shadow")], "absolute path"),
        ([("hard", "link", "../outside")], "leaves the build context"),
        ([("hard", "link", "not-seen-yet")], "not a file earlier in the archive"),
        ([("pipe", "fifo", None)], "device or FIFO"),
        ([("null", "chr", None)], "device or FIFO"),
    ],
)
def test_dangerous_entries_are_refused_with_a_reason(entries, words):
    message = refused(build([("Dockerfile", "file", "FROM x")] + entries))
    assert words in message


def test_github_archive_top_folder_is_stripped():
    members = run(build([("repo-1.0", "dir", None), ("repo-1.0/Dockerfile", "file", "FROM x"),
                         ("repo-1.0/lib/x", "file", "x"), ("repo-1.0/l", "link", "repo-1.0/lib/x")]), strip_top=True)
    assert set(members) == {"Dockerfile", "lib/x", "l"}
    assert members["l"].linkname == "lib/x"


def test_github_archive_with_two_top_folders_is_refused():
    message = refused(build([("a/Dockerfile", "file", "FROM x"), ("b/other", "file", "x")]), strip_top=True)
    assert "one top folder" in message


def test_github_archive_needs_the_dockerfile_in_its_top_folder():
    message = refused(build([("repo-1/sub/Dockerfile", "file", "FROM x")]), strip_top=True)
    assert message.startswith("no Dockerfile at the root of the archive")


def test_file_count_limit():
    entries = [("Dockerfile", "file", "FROM x")] + [(f"f{i}", "file", "x") for i in range(5)]
    message = refused(build(entries), ContextLimits(10**9, 5, 200))
    assert "more than 5 entries" in message


def test_uncompressed_size_limit():
    message = refused(build([("Dockerfile", "file", "FROM x"), ("big", "file", b"y" * 5000)]), ContextLimits(4000, 100, 10**6))
    assert "larger than the limit of 4000 bytes" in message


def test_compression_bomb_is_refused():
    data = build([("Dockerfile", "file", "FROM x"), ("zeros", "file", b"\0" * (20 * 1024 * 1024))])
    assert len(data) < 100_000  # ~1000:1
    message = refused(data, ContextLimits(10**10, 100, 200))
    assert "expands more than 200 times" in message


def test_compressed_input_limit_applies_while_streaming():
    data = build([("Dockerfile", "file", "FROM x"), ("noise", "file", bytes(range(256)) * 400)], gz=False)
    message = refused(data, ContextLimits(50_000, 100, 10**6))
    assert "larger than the limit" in message


@pytest.mark.parametrize("junk", [b"", b"not an archive at all" * 50, gzip.compress(b"gzip but not a tar" * 100)])
def test_garbage_is_not_a_valid_archive(junk):
    message = refused(junk)
    assert message.startswith("the archive is not a valid tar or tar.gz file")
