"""Build contexts as tests make them: the tar builders, and reading an archive back.

* :func:`make_tar` / :func:`dockerfile_tar` — regular files only (what most tests need).
* :func:`entries_tar` — any member type (dirs, symlinks, hard links, fifos, devices), for the archive sanitizer.
* ``LIMITS`` and :class:`OneWayStream` — the context limits the sanitizer tests run with, and a non-seekable source.
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable, Mapping
from typing import Any

from worker.context.archive import ContextLimits

LIMITS = ContextLimits(max_bytes=50 * 1024 * 1024, max_files=100, max_ratio=200)


class OneWayStream:
    """A non-seekable source: the sanitizer must stream."""

    def __init__(self, data: bytes) -> None:
        self._buffer = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._buffer.read(size)


def make_tar(files: Mapping[str, bytes | str], gz: bool = True, top: str = "") -> bytes:
    """A tar of ``files`` (name → text or bytes, mode 0644), gzipped unless ``gz`` is False, under ``top/`` if given."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{top}/{name}" if top else name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def entries_tar(entries: Iterable[tuple[str, str, Any]], gz: bool = True) -> bytes:
    """entries: (name, kind, payload) with kind file|dir|sym|link|fifo|chr (a file named *.suid gets mode 4755)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz" if gz else "w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, payload in entries:
            info = tarfile.TarInfo(name)
            if kind == "file":
                data = payload.encode() if isinstance(payload, str) else payload
                info.size, info.mode = len(data), 0o4755 if name.endswith(".suid") else 0o644
                tar.addfile(info, io.BytesIO(data))
                continue
            info.type = {
                "dir": tarfile.DIRTYPE,
                "sym": tarfile.SYMTYPE,
                "link": tarfile.LNKTYPE,
                "fifo": tarfile.FIFOTYPE,
                "chr": tarfile.CHRTYPE,
            }[kind]
            if kind in ("sym", "link"):
                info.linkname = payload
            tar.addfile(info)
    return buffer.getvalue()


def dockerfile_tar(dockerfile: str, gz: bool = True) -> bytes:
    """A context holding only ``Dockerfile``."""
    return make_tar({"Dockerfile": dockerfile}, gz=gz)


def tar_members(data: bytes) -> dict[str, bytes]:
    """The regular files of a tar or tar.gz archive, by member name."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]  # a regular file (isfile) always has a reader
