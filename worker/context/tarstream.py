"""Opening an untrusted archive as a tar stream whose memory and expansion are bounded.

:func:`open_tar` is the only way the worker reads a user's archive.  It

1. sniffs the first bytes: gzip and plain tar are accepted; bzip2, xz, zstd,
   LZMA and ``compress`` archives are refused by name (``tarfile``'s ``r|*``
   would have opened bz2/xz, whose bombs expand ~10 KB into GiBs per call);
2. decompresses gzip itself (:class:`_Gunzip`, zlib with a bounded output per
   call) so that ``tarfile`` only ever sees an uncompressed ``r|`` stream;
3. counts every uncompressed byte ``tarfile`` reads — file content, padding
   and every header, extended headers included — against the size limit and
   the compression-ratio limit (:class:`_Expansion`);
4. caps every extended header (GNU ``L``/``K`` long names and links, PAX ``x``
   and ``g``) at :data:`EXTENDED_HEADER_MAX_BYTES` *before* ``tarfile``
   buffers it, and refuses sparse members.

Why a :class:`tarfile.TarInfo` subclass for (4) rather than re-parsing 512-byte
headers in the byte stream below ``tarfile``: ``tarfile`` decides where each
header starts (a PAX ``size`` record moves the next header, global headers
apply to later members, sparse maps add blocks).  A second parser below it
would have to agree with all of that exactly, and any disagreement lets a
header through unseen.  ``TarInfo._proc_member`` is the hook ``tarfile``'s own
source documents for subclasses ("can be overridden in a subclass"); it runs
on the very header ``tarfile`` is about to act on, after its size field is
parsed and before ``_proc_gnulong``/``_proc_pax`` read the data.  The
subclass is passed with ``tarfile.open(tarinfo=...)``, a public parameter.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable
from typing import Any, BinaryIO, Protocol, cast

from chalicelib.domain.archive_format import ArchiveFormat, detect_format
from chalicelib.domain.errors import BuildFailed

EXTENDED_HEADER_MAX_BYTES = 64 * 1024
"""Largest GNU long-name/long-link or PAX header accepted (a path is at most 4 KiB on Linux)."""
EXTENDED_HEADERS_PER_MEMBER = 8
"""Most extended headers in front of one member (``tarfile`` recurses through the chain)."""
GLOBAL_HEADERS_MAX_BYTES = 64 * 1024
"""Most bytes of PAX global headers in one archive (``tarfile`` keeps them for the whole read)."""
# Below this many uncompressed bytes the ratio is not checked: tar padding alone
# makes a tiny archive "compress" 50-100 times.
RATIO_FLOOR_BYTES = 8 * 1024 * 1024
READ_SIZE = 64 * 1024

_EXTENDED = {
    tarfile.GNUTYPE_LONGNAME,
    tarfile.GNUTYPE_LONGLINK,
    tarfile.XHDTYPE,
    tarfile.XGLTYPE,
    tarfile.SOLARIS_XHDTYPE,
}
_KIND_NAMES = {
    tarfile.GNUTYPE_LONGNAME: "GNU long-name",
    tarfile.GNUTYPE_LONGLINK: "GNU long-link",
    tarfile.XGLTYPE: "PAX global",
}
_REFUSED_MAGIC = (  # (leading bytes, what they are)
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x5d\x00\x00", "LZMA"),
    (b"\x1f\x9d", "Unix compress (.Z)"),
    (b"\x1f\xa0", "LZH"),
    (b"PK\x03\x04", "zip"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip"),
)


class InvalidContext(BuildFailed):
    """The archive cannot be used as a build context; the message says why."""


def not_valid(detail: str) -> InvalidContext:
    """The refusal for bytes that are not a tar or tar.gz archive."""
    return InvalidContext(f"the archive is not a valid tar or tar.gz file ({detail})")


class Readable(Protocol):
    """What an archive is read from: anything with ``read(size) -> bytes`` (a file, a download)."""

    def read(self, size: int = -1, /) -> bytes: ...


class CountingReader:
    """Wraps a source stream: counts bytes, caps them, and calls ``check`` on every read."""

    def __init__(self, source: Readable, limit: int, check: Callable[[], None] | None = None) -> None:
        self._source = source
        self._limit = limit
        self._check = check
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        """Read like a file (at most ``size`` bytes); raises :class:`InvalidContext` past the limit."""
        if self._check is not None:
            self._check()
        if size is None or size < 0:
            size = READ_SIZE
        data = self._source.read(size)
        self.count += len(data)
        if self.count > self._limit:
            raise InvalidContext(f"the archive is larger than the limit of {self._limit} bytes")
        return data


class _Replay:
    """``head`` first, then the rest of ``source``: the sniffed bytes are not lost."""

    def __init__(self, head: bytes, source: CountingReader) -> None:
        self._head = head
        self._source = source

    def read(self, size: int = -1) -> bytes:
        if self._head:
            size = len(self._head) if size is None or size < 0 else size
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._source.read(size)


class _Gunzip:
    """The uncompressed bytes of a gzip stream (members may be concatenated), at most ``size`` per read."""

    def __init__(self, source: _Replay) -> None:
        self._source = source
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._input = b""
        self._done = False

    def read(self, size: int = -1) -> bytes:
        size = READ_SIZE if size is None or size <= 0 else min(size, READ_SIZE)
        while not self._done:
            if self._inflater.eof:  # one gzip member ended: another may follow (trailing NULs are padding)
                rest = self._inflater.unused_data.lstrip(b"\0")
                while not rest:
                    more = self._source.read(READ_SIZE)
                    if not more:
                        self._done = True
                        return b""
                    rest = more.lstrip(b"\0")
                self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._input = rest
            if not self._input:
                self._input = self._source.read(READ_SIZE)
                if not self._input:
                    pending = self._inflater.flush()  # output zlib still holds (at most its 32 KiB window)
                    if pending:
                        return pending
                    raise not_valid("the gzip data ends too early")
            data = self._inflater.decompress(self._input, size)
            self._input = self._inflater.unconsumed_tail
            if data:
                return data
        return b""


class _Expansion:
    """Counts the uncompressed tar bytes read; refuses past the size limit or the compression ratio."""

    def __init__(
        self, stream: Any, compressed: CountingReader, max_bytes: int, max_ratio: int, check: Callable[[], None] | None
    ) -> None:
        self._stream = stream
        self._compressed = compressed
        self._max_bytes = max_bytes
        self._max_ratio = max_ratio
        self._check = check
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if self._check is not None:
            self._check()
        data: bytes = self._stream.read(size)
        self.count += len(data)
        if self.count > self._max_bytes:
            raise InvalidContext(
                f"the build context is larger than the limit of {self._max_bytes} bytes (uncompressed, headers included)"
            )
        if self.count > RATIO_FLOOR_BYTES and self.count > self._max_ratio * max(self._compressed.count, 1):
            raise InvalidContext(
                f"the archive expands more than {self._max_ratio} times its compressed size "
                "(a compression bomb?); it was refused"
            )
        return data


class _HeaderBudget:
    """What the extended headers of one archive have used so far."""

    def __init__(self) -> None:
        self.chain = 0  # extended headers in front of the member being read
        self.global_bytes = 0


def _guarded_tarinfo(budget: _HeaderBudget) -> type[tarfile.TarInfo]:
    """A TarInfo class that checks every header before ``tarfile`` reads what it declares."""

    class GuardedTarInfo(tarfile.TarInfo):
        def _proc_member(self, tarfile_: tarfile.TarFile) -> Any:  # tarfile's documented hook
            if self.type in _EXTENDED:
                kind = _KIND_NAMES.get(self.type, "PAX")
                if self.size > EXTENDED_HEADER_MAX_BYTES:
                    raise InvalidContext(
                        f"the archive holds a {kind} header of {self.size} bytes; "
                        f"extended headers may be at most {EXTENDED_HEADER_MAX_BYTES} bytes"
                    )
                budget.chain += 1
                if budget.chain > EXTENDED_HEADERS_PER_MEMBER:
                    raise InvalidContext(
                        f"the archive holds more than {EXTENDED_HEADERS_PER_MEMBER} extended headers in front of one entry"
                    )
                if self.type == tarfile.XGLTYPE:
                    budget.global_bytes += self.size
                    if budget.global_bytes > GLOBAL_HEADERS_MAX_BYTES:
                        raise InvalidContext(
                            f"the archive's PAX global headers hold more than {GLOBAL_HEADERS_MAX_BYTES} bytes"
                        )
            else:
                budget.chain = 0
            return super()._proc_member(tarfile_)  # type: ignore[misc]  # the documented hook is not in typeshed

        def _proc_sparse(self, tarfile_: tarfile.TarFile) -> Any:
            raise InvalidContext(f"the archive holds a sparse file ({self.name!r}); sparse files are not supported")

        def _proc_gnusparse_00(self, next_: Any, *_: Any) -> None:
            raise InvalidContext(f"the archive holds a sparse file ({next_.name!r}); sparse files are not supported")

        _proc_gnusparse_01 = _proc_gnusparse_10 = _proc_gnusparse_00

    return GuardedTarInfo


def _head(reader: CountingReader, size: int) -> bytes:
    """Up to ``size`` leading bytes (a read may return fewer than asked)."""
    chunks, got = [], 0
    while got < size:
        data = reader.read(size - got)
        if not data:
            break
        chunks.append(data)
        got += len(data)
    return b"".join(chunks)


def open_tar(
    source: Readable, max_bytes: int, max_ratio: int, check: Callable[[], None] | None = None
) -> tuple[tarfile.TarFile, CountingReader]:
    """Open ``source`` (tar or tar.gz) for streamed reading with every bound above in place.

    Returns the reader and the counter of compressed bytes read.  Raises
    :class:`InvalidContext` (possibly later, from the reader) with the reason.
    """
    counted = CountingReader(source, max_bytes, check)
    head = _head(counted, 512)
    if not head:
        raise not_valid("it is empty")
    replay = _Replay(head, counted)
    stream: Any
    if head[:2] == b"\x1f\x8b":
        stream = _Gunzip(replay)
    elif detect_format(head) == ArchiveFormat.TAR:
        stream = replay
    else:
        for magic, name in _REFUSED_MAGIC:
            if head.startswith(magic):
                raise InvalidContext(
                    f"the archive is {name}-compressed; only tar and tar.gz (gzip) archives are accepted"
                )
        raise not_valid("it starts with neither gzip data nor a tar header")
    expanded = _Expansion(stream, counted, max_bytes, max_ratio, check)
    # Stream mode ("r|") only reads; typeshed's fileobj protocol asks for a whole seekable file.
    fileobj = cast(BinaryIO, expanded)
    return tarfile.open(fileobj=fileobj, mode="r|", tarinfo=_guarded_tarinfo(_HeaderBudget())), counted
