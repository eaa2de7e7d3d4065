"""Turning an untrusted archive into a safe, uncompressed build context tar.

:func:`sanitize` reads a tar or tar.gz as a stream (``tarfile`` mode ``r|*``:
nothing is seeked, nothing is held whole in memory) and writes a new tar with
only regular files, directories, and links that stay inside the context.  It
refuses — with a reason the user can act on — path traversal, absolute paths,
links that leave the context, device and FIFO entries, archives above the size,
file-count or compression-ratio limits, and archives without a ``Dockerfile``
at the root.  With ``strip_top`` (GitHub archives) the single top folder is
removed from every path.  With ``context_path`` only that folder is kept, as the
new root (the rest is read, counted against the limits, and dropped), and the
Dockerfile is looked for at ``dockerfile_path`` inside it.
"""
from __future__ import annotations

import dataclasses
import posixpath
import re
import tarfile
import zlib
from typing import BinaryIO, Callable

from chalicelib.errors import BuildFailed

# Below this many uncompressed bytes the ratio is not checked: tar padding alone
# makes a tiny archive "compress" 50-100 times.
RATIO_FLOOR_BYTES = 8 * 1024 * 1024
COPY_BUFSIZE = 64 * 1024
_COMMIT = re.compile(r"[0-9a-f]{40}")


class InvalidContext(BuildFailed):
    """The archive cannot be used as a build context; the message says why."""


@dataclasses.dataclass(frozen=True)
class ContextLimits:
    """What an archive may hold."""

    max_bytes: int  # uncompressed file content, and compressed input
    max_files: int
    max_ratio: int  # uncompressed / compressed


@dataclasses.dataclass
class ContextStats:
    """What a sanitized context holds."""

    files: int = 0  # entries of any kind
    content_bytes: int = 0  # uncompressed file content
    compressed_bytes: int = 0  # bytes read from the source
    commit: str = ""  # the commit a git archive was made from (its pax global header's comment), if it says


@dataclasses.dataclass(frozen=True)
class Layout:
    """Where the context and its Dockerfile are inside an archive (validated relative paths)."""

    context_path: str = ""
    dockerfile_path: str = "Dockerfile"


class CountingReader:
    """Wraps a source stream: counts bytes, caps them, and calls ``check`` on every read."""

    def __init__(self, source: BinaryIO, limit: int, check: Callable[[], None] | None = None) -> None:
        self._source = source
        self._limit = limit
        self._check = check
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        """Read like a file; raises :class:`InvalidContext` past the limit."""
        if self._check is not None:
            self._check()
        if size is None or size < 0:
            size = COPY_BUFSIZE
        data = self._source.read(size)
        self.count += len(data)
        if self.count > self._limit:
            raise InvalidContext(f"the archive is larger than the limit of {self._limit} bytes")
        return data


def _check_ratio(stats: ContextStats, source: CountingReader, limits: ContextLimits) -> None:
    expanded = stats.content_bytes
    if expanded > RATIO_FLOOR_BYTES and expanded > limits.max_ratio * max(source.count, 1):
        raise InvalidContext(
            f"the archive expands more than {limits.max_ratio} times its compressed size "
            "(a compression bomb?); it was refused"
        )


class _RatioGuard:
    """Reads a member's content while checking the total size and the compression ratio."""

    def __init__(self, member: BinaryIO, stats: ContextStats, source: CountingReader, limits: ContextLimits) -> None:
        self._member = member
        self._stats = stats
        self._source = source
        self._limits = limits

    def read(self, size: int = -1) -> bytes:
        data = self._member.read(size)
        self._stats.content_bytes += len(data)
        self._stats.compressed_bytes = self._source.count
        _check_ratio(self._stats, self._source, self._limits)
        return data


def _clean_path(name: str, what: str) -> list[str]:
    """The components of a member path; refuses absolute paths and ``..``."""
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InvalidContext(f"the archive holds an absolute path ({name!r}); paths must be relative")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidContext(f"the archive holds a path that leaves the build context ({name!r}) in {what}")
    return parts


class _TopFolder:
    """Strips the single top folder of a GitHub archive, refusing anything outside it."""

    def __init__(self) -> None:
        self.name: str | None = None

    def strip(self, parts: list[str], original: str) -> list[str]:
        if not parts:
            return parts
        if self.name is None:
            self.name = parts[0]
        if parts[0] != self.name:
            raise InvalidContext(
                f"the archive does not hold everything under one top folder ({original!r} is outside {self.name!r})"
            )
        return parts[1:]


def sanitize(
    source: BinaryIO,
    dest: BinaryIO,
    limits: ContextLimits,
    strip_top: bool = False,
    check: Callable[[], None] | None = None,
    context_path: str = "",
    dockerfile_path: str = "Dockerfile",
) -> ContextStats:
    """Copy the archive in ``source`` (tar or tar.gz) to ``dest`` as a safe uncompressed tar.

    ``check`` is called on every read (it raises to abort the copy).  ``context_path``
    (a validated relative folder) re-roots the context there.  Raises
    :class:`InvalidContext` with the reason the job fails.
    """
    counted = CountingReader(source, limits.max_bytes, check)
    stats = ContextStats()
    top = _TopFolder() if strip_top else None
    root = [p for p in context_path.split("/") if p]
    root_seen = not root
    files_seen: set[str] = set()
    has_dockerfile = False
    try:
        with tarfile.open(fileobj=counted, mode="r|*") as src, tarfile.open(
            fileobj=dest, mode="w", format=tarfile.PAX_FORMAT
        ) as out:
            for member in src:
                parts = _clean_path(member.name, "its name")
                if top is not None:
                    parts = top.strip(parts, member.name)
                if not parts:  # the root (or the top folder) itself
                    continue
                stats.files += 1
                if stats.files > limits.max_files:
                    raise InvalidContext(f"the archive holds more than {limits.max_files} entries")
                if root:
                    if parts[: len(root)] != root:  # outside the context folder: counted, then dropped
                        if member.isreg():
                            stats.content_bytes += member.size
                            if stats.content_bytes > limits.max_bytes:
                                raise InvalidContext(
                                    f"the archive is larger than the limit of {limits.max_bytes} bytes (uncompressed)"
                                )
                            _check_ratio(stats, counted, limits)
                        continue
                    root_seen = True
                    parts = parts[len(root):]
                    if not parts:  # the context folder itself
                        continue
                name = "/".join(parts)
                info = tarfile.TarInfo(name)
                info.mtime = member.mtime
                info.mode = member.mode & 0o777
                if member.isreg():
                    if stats.content_bytes + member.size > limits.max_bytes:
                        raise InvalidContext(
                            f"the build context is larger than the limit of {limits.max_bytes} bytes (uncompressed)"
                        )
                    info.size = member.size
                    content = src.extractfile(member)
                    assert content is not None
                    out.addfile(info, _RatioGuard(content, stats, counted, limits))  # type: ignore[arg-type]
                    files_seen.add(name)
                    if name == dockerfile_path:
                        has_dockerfile = True
                elif member.isdir():
                    info.type = tarfile.DIRTYPE
                    out.addfile(info)
                elif member.issym():
                    target = member.linkname
                    if target.startswith("/"):
                        raise InvalidContext(
                            f"the symbolic link {name!r} points to an absolute path ({target!r}), outside the build context"
                        )
                    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
                    if resolved == ".." or resolved.startswith("../"):
                        raise InvalidContext(
                            f"the symbolic link {name!r} points outside the build context ({target!r})"
                        )
                    info.type, info.linkname = tarfile.SYMTYPE, target
                    out.addfile(info)
                elif member.islnk():
                    link_parts = _clean_path(member.linkname, f"the hard link {name!r}")
                    if top is not None:
                        link_parts = top.strip(link_parts, member.linkname)
                    if root:  # a link to a file outside the context folder is not in files_seen: refused below
                        link_parts = link_parts[len(root):] if link_parts[: len(root)] == root else ["..", *link_parts]
                    target = "/".join(link_parts)
                    if target not in files_seen:
                        raise InvalidContext(
                            f"the hard link {name!r} points to {member.linkname!r}, which is not a file earlier in the archive"
                        )
                    info.type, info.linkname = tarfile.LNKTYPE, target
                    out.addfile(info)
                    if name == dockerfile_path:
                        has_dockerfile = True
                    files_seen.add(name)
                elif member.ischr() or member.isblk() or member.isfifo():
                    raise InvalidContext(f"the archive holds a device or FIFO entry ({member.name!r}); only files, folders and links are allowed")
                else:
                    raise InvalidContext(f"the archive holds an entry of an unsupported type ({member.name!r})")
            comment = str(src.pax_headers.get("comment", ""))
            stats.commit = comment if _COMMIT.fullmatch(comment) else ""
    except InvalidContext:
        raise
    except BuildFailed:
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
        if check is not None:
            check()  # an abort that broke the stream wins over the read error
        raise InvalidContext(f"the archive is not a valid tar or tar.gz file ({type(exc).__name__}: {exc})") from None
    stats.compressed_bytes = counted.count
    inside = " (inside its top folder)" if strip_top else ""
    if not root_seen:
        raise InvalidContext(f"the archive has no folder {context_path!r} (context_path){inside}")
    if not has_dockerfile:
        where = f"in the folder {context_path!r} (context_path)" if root else "at the root of the archive"
        what = "" if dockerfile_path == "Dockerfile" else f" at {dockerfile_path!r} (dockerfile_path)"
        raise InvalidContext(f"no Dockerfile{what} {where}{inside}")
    return stats
