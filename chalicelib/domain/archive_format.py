"""Build-context archives: recognise gzip/tar by their first bytes; make a context from a Dockerfile."""

from __future__ import annotations

import enum
import gzip
import io
import tarfile

HEAD_BYTES = 512
"""How many leading bytes :func:`detect_format` needs (one tar header block)."""

_GZIP_MAGIC = b"\x1f\x8b"
_USTAR_OFFSET = 257


class ArchiveFormat(str, enum.Enum):
    """The archive formats accepted as a build context."""

    GZIP = "gzip"
    TAR = "tar"


def _tar_checksum_ok(block: bytes) -> bool:
    """Whether a 512-byte block is a tar header with a valid checksum (covers pre-POSIX v7 tars)."""
    raw = block[148:156].split(b"\0", 1)[0].strip()
    if not raw:
        return False
    try:
        stored = int(raw, 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:512])
    return stored == unsigned


def detect_format(head: bytes) -> ArchiveFormat | None:
    """The format of an archive from its first :data:`HEAD_BYTES` bytes, or None if neither gzip nor tar."""
    if head[:2] == _GZIP_MAGIC:
        return ArchiveFormat.GZIP
    if len(head) < HEAD_BYTES:
        return None
    block = head[:HEAD_BYTES]
    if block[_USTAR_OFFSET : _USTAR_OFFSET + 5] == b"ustar":
        return ArchiveFormat.TAR
    if block[0] != 0 and _tar_checksum_ok(block):
        return ArchiveFormat.TAR
    return None


DOCKERFILE = "Dockerfile"
"""The name of the Dockerfile at the root of a build context."""


def add_dockerfile(tar: tarfile.TarFile, text: str, name: str = DOCKERFILE) -> None:
    """Add a ``Dockerfile`` (or the member ``name``) holding ``text`` (UTF-8, mode 0644, mtime 0) to ``tar``
    (open for writing or appending).

    The one way a Dockerfile given as text becomes a tar member: the API's inline
    Dockerfile context and the worker's rewritten Dockerfile (appended, so it wins over
    an earlier member of the same name) are the same bytes for the same text.
    """
    data = text.encode("utf-8")
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, 0
    tar.addfile(info, io.BytesIO(data))


def dockerfile_context(dockerfile: str) -> bytes:
    """A tar.gz build context holding only ``Dockerfile`` with the given text (the same bytes for the same text)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_dockerfile(tar, dockerfile)
    return gzip.compress(raw.getvalue(), mtime=0)
