"""The archive sanitizer: what a user's archive may hold, and the reasons it is refused."""

from __future__ import annotations

import gzip
import io
import os
import tarfile

import pytest

from devstack import hostile
from tests.support.archives import LIMITS, OneWayStream, entries_tar
from worker.context.archive import ContextLimits, InvalidContext, sanitize
from worker.context.tarstream import EXTENDED_HEADER_MAX_BYTES

MiB = 1024 * 1024


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
    members = run(
        entries_tar(
            [
                ("./Dockerfile", "file", "FROM x\n"),
                ("src", "dir", None),
                ("src/a.txt", "file", "a"),
                ("src/link", "sym", "a.txt"),
                ("src/hard", "link", "src/a.txt"),
                ("tool.suid", "file", "x"),
            ],
            gz,
        )
    )
    assert set(members) == {"Dockerfile", "src", "src/a.txt", "src/link", "src/hard", "tool.suid"}
    assert members["src/link"].issym() and members["src/link"].linkname == "a.txt"
    assert members["src/hard"].islnk() and members["src/hard"].linkname == "src/a.txt"
    assert members["tool.suid"].mode == 0o755  # setuid bits dropped
    assert members["Dockerfile"].uid == 0 and members["Dockerfile"].uname == ""


def test_dockerfile_is_required_at_the_root():
    assert refused(entries_tar([("app/Dockerfile", "file", "FROM x")])) == "no Dockerfile at the root of the archive"


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
    message = refused(entries_tar([("Dockerfile", "file", "FROM x")] + entries))
    assert words in message


def test_github_archive_top_folder_is_stripped():
    members = run(
        entries_tar(
            [
                ("repo-1.0", "dir", None),
                ("repo-1.0/Dockerfile", "file", "FROM x"),
                ("repo-1.0/lib/x", "file", "x"),
                ("repo-1.0/l", "link", "repo-1.0/lib/x"),
            ]
        ),
        strip_top=True,
    )
    assert set(members) == {"Dockerfile", "lib/x", "l"}
    assert members["l"].linkname == "lib/x"


def test_github_archive_with_two_top_folders_is_refused():
    message = refused(entries_tar([("a/Dockerfile", "file", "FROM x"), ("b/other", "file", "x")]), strip_top=True)
    assert "one top folder" in message


def test_github_archive_needs_the_dockerfile_in_its_top_folder():
    message = refused(entries_tar([("repo-1/sub/Dockerfile", "file", "FROM x")]), strip_top=True)
    assert message.startswith("no Dockerfile at the root of the archive")


def test_file_count_limit():
    entries = [("Dockerfile", "file", "FROM x")] + [(f"f{i}", "file", "x") for i in range(5)]
    message = refused(entries_tar(entries), ContextLimits(10**9, 5, 200))
    assert "more than 5 entries" in message


def test_uncompressed_size_limit():
    message = refused(
        entries_tar([("Dockerfile", "file", "FROM x"), ("big", "file", b"y" * 5000)]), ContextLimits(4000, 100, 10**6)
    )
    assert "larger than the limit of 4000 bytes" in message


def test_compression_bomb_is_refused():
    data = entries_tar([("Dockerfile", "file", "FROM x"), ("zeros", "file", b"\0" * (20 * 1024 * 1024))])
    assert len(data) < 100_000  # ~1000:1
    message = refused(data, ContextLimits(10**10, 100, 200))
    assert "expands more than 200 times" in message


def test_compressed_input_limit_applies_while_streaming():
    data = entries_tar([("Dockerfile", "file", "FROM x"), ("noise", "file", bytes(range(256)) * 400)], gz=False)
    message = refused(data, ContextLimits(50_000, 100, 10**6))
    assert "larger than the limit" in message


@pytest.mark.parametrize("junk", [b"", b"not an archive at all" * 50, gzip.compress(b"gzip but not a tar" * 100)])
def test_garbage_is_not_a_valid_archive(junk):
    message = refused(junk)
    assert message.startswith("the archive is not a valid tar or tar.gz file")


# --- archives that exhaust memory: extended headers, other compressions (issue 11, item 1) -----------------


class ReadCounter(OneWayStream):
    """A one-way stream that counts what the sanitizer read."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.read_bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = super().read(size)
        self.read_bytes += len(data)
        return data


@pytest.mark.parametrize(
    "kind, words",
    [
        (tarfile.GNUTYPE_LONGNAME, "GNU long-name header"),
        (tarfile.GNUTYPE_LONGLINK, "GNU long-link header"),
        (tarfile.XHDTYPE, "PAX header"),
        (tarfile.XGLTYPE, "PAX global header"),
    ],
    ids=["L", "K", "x", "g"],
)
def test_extended_header_declaring_600_mib_is_refused_before_it_is_read(kind, words):
    bomb = hostile.extended_header_bomb(600, kind)
    assert len(bomb) < MiB
    source = ReadCounter(bomb)
    with pytest.raises(InvalidContext) as caught:
        sanitize(source, io.BytesIO(), ContextLimits(5 * 1024**3, 100_000, 200))
    assert f"{words} of {600 * MiB} bytes" in caught.value.message
    assert f"at most {EXTENDED_HEADER_MAX_BYTES} bytes" in caught.value.message
    assert source.read_bytes < 200_000  # refused at the header, not after buffering what it declares


def _pax_member(name: str, data: bytes, pax: dict[str, str]) -> bytes:
    """One member's blocks (a PAX header first when ``pax`` or the name needs one)."""
    info = tarfile.TarInfo(name)
    info.size, info.pax_headers = len(data), pax
    return info.tobuf(tarfile.PAX_FORMAT) + data + bytes(-len(data) % 512)


def _tar_of(*members: bytes) -> bytes:
    return b"".join(members) + bytes(1024)


def test_long_names_up_to_the_path_limit_pass_and_longer_ones_are_refused():
    long_dir = "/".join(["d" * 200] * 20)  # 4019 bytes
    members = run(entries_tar([("Dockerfile", "file", "FROM x"), (f"{long_dir}/f", "file", "x")]))
    assert f"{long_dir}/f" in members
    message = refused(entries_tar([("Dockerfile", "file", "FROM x"), ("n" * 5000, "file", "x")]))
    assert "a path longer than 4096 bytes" in message
    assert len(message) < 400  # the name is cut in the reason


def test_pax_headers_under_the_cap_pass():
    comment = {"comment": "c" * 60_000, "path": "deep/" + "p" * 3000}
    members = run(_tar_of(_pax_member("Dockerfile", b"FROM x\n", {}), _pax_member("ignored", b"x", comment)))
    assert set(members) == {"Dockerfile", "deep/" + "p" * 3000}


def test_too_many_extended_headers_in_front_of_one_entry_are_refused():
    headers = b"".join(_pax_member("ignored", b"", {"comment": str(i)})[:1024] for i in range(9))
    data = _tar_of(_pax_member("Dockerfile", b"FROM x\n", {}), headers + _pax_member("f", b"x", {}))
    assert "more than 8 extended headers in front of one entry" in refused(data)


def test_global_headers_share_one_budget():
    def global_header(size: int) -> bytes:
        return tarfile.TarInfo.create_pax_global_header({"comment": "g" * size})

    ok = _tar_of(global_header(30_000), _pax_member("Dockerfile", b"FROM x\n", {}))
    assert set(run(ok)) == {"Dockerfile"}
    bad = _tar_of(
        global_header(40_000),
        _pax_member("Dockerfile", b"FROM x\n", {}),
        global_header(40_000),
        _pax_member("f", b"x", {}),
    )
    assert "PAX global headers hold more than 65536 bytes" in refused(bad)


def test_header_bytes_count_in_the_size_limit():
    members = [_pax_member(f"f{i}", b"x", {"comment": os.urandom(30_000).hex()}) for i in range(20)]
    data = gzip.compress(
        _tar_of(_pax_member("Dockerfile", b"FROM x\n", {}), *members)
    )  # 1.2 MB of headers, 20 of content
    message = refused(data, ContextLimits(1024 * 1024, 100, 10**6))
    assert "larger than the limit of 1048576 bytes (uncompressed, headers included)" in message


def test_header_bytes_count_in_the_compression_ratio():
    members = [_pax_member(f"f{i}", b"x", {"comment": "z" * 60_000}) for i in range(200)]  # 12 MB of headers
    data = gzip.compress(_tar_of(_pax_member("Dockerfile", b"FROM x\n", {}), *members))
    assert len(data) < 200_000
    assert "expands more than 200 times" in refused(data, ContextLimits(10**10, 1000, 200))


def test_sparse_files_are_refused():
    info = tarfile.TarInfo("holes")
    info.type = tarfile.GNUTYPE_SPARSE
    gnu_sparse = info.tobuf(tarfile.GNU_FORMAT)
    assert "sparse files are not supported" in refused(_tar_of(_pax_member("Dockerfile", b"FROM x\n", {}), gnu_sparse))
    pax_sparse = _pax_member("holes", b"", {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": "h"})
    assert "sparse files are not supported" in refused(_tar_of(_pax_member("Dockerfile", b"FROM x\n", {}), pax_sparse))


@pytest.mark.parametrize(
    "data, name",
    [(hostile.bz2_bomb(16), "bzip2"), (hostile.xz_archive(), "xz"), (b"\x28\xb5\x2f\xfd" + bytes(600), "zstd")],
    ids=["bz2", "xz", "zstd"],
)
def test_only_tar_and_gzip_are_accepted(data, name):
    source = ReadCounter(data)
    with pytest.raises(InvalidContext) as caught:
        sanitize(source, io.BytesIO(), LIMITS)
    assert caught.value.message == f"the archive is {name}-compressed; only tar and tar.gz (gzip) archives are accepted"


def test_concatenated_gzip_members_are_one_archive():
    raw = entries_tar([("Dockerfile", "file", "FROM x"), ("a.txt", "file", "a" * 5000)], gz=False)
    data = gzip.compress(raw[:3000]) + gzip.compress(raw[3000:]) + bytes(100)  # trailing NUL padding is allowed
    assert set(run(data)) == {"Dockerfile", "a.txt"}


def test_truncated_gzip_is_not_a_valid_archive():
    data = entries_tar([("Dockerfile", "file", "FROM x"), ("noise", "file", os.urandom(50_000))])
    assert refused(data[: len(data) // 2]).startswith("the archive is not a valid tar or tar.gz file")


# --- symbolic links that other paths go through (issue 11, item 4) ------------------------------------------


def test_path_through_a_symlink_of_the_archive_is_refused():
    message = refused(hostile.symlink_through_symlink())
    assert message == (
        "the path 'a/b' goes through the symbolic link 'a' of the archive; paths through links are not allowed"
    )


@pytest.mark.parametrize(
    "entries, words",
    [
        ([("a", "sym", "."), ("a/evil", "file", "x")], "the path 'a/evil' goes through the symbolic link 'a'"),
        (
            [("d", "dir", None), ("d/l", "sym", "../sub"), ("d/l/x/y", "file", "x")],
            "goes through the symbolic link 'd/l'",
        ),
        (
            [("f", "file", "x"), ("s", "sym", "."), ("h", "link", "s/f")],
            "the target 's/f' of the hard link 'h' goes through",
        ),
        ([("s", "sym", "sub/deeper"), ("t", "sym", "s/../..")], "points outside the build context"),
        ([("s", "sym", "."), ("t", "sym", "s/..")], "points through the symbolic link 's' and back up"),
    ],
)
def test_links_through_links_are_refused(entries, words):
    assert words in refused(entries_tar([("Dockerfile", "file", "FROM x")] + entries))


def test_ordinary_links_still_pass():
    members = run(
        entries_tar(
            [
                ("Dockerfile", "file", "FROM x"),
                ("sub", "dir", None),
                ("sub/a", "file", "a"),
                ("lib", "sym", "sub"),
                ("up", "sym", "sub/.."),
                ("sub/back", "sym", "../lib"),
                ("copy", "link", "sub/a"),
            ]
        )
    )
    assert members["lib"].linkname == "sub" and members["sub/back"].linkname == "../lib"
