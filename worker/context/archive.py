"""Turning an untrusted archive into a safe, uncompressed build context tar.

:func:`sanitize` reads a tar or tar.gz as a stream (through
:func:`worker.context.tarstream.open_tar`: nothing is seeked, nothing is held whole in
memory, extended headers are capped, every uncompressed byte counts against the
size and ratio limits, other compressions are refused) and writes a new tar
with only regular files, directories, and links that stay inside the context.
It refuses — with a reason the user can act on — path traversal, absolute
paths, paths longer than :data:`MAX_PATH_BYTES`, links that leave the context,
paths that pass through a symbolic link of the archive, device and FIFO
entries, archives above the size, file-count or compression-ratio limits, and
archives without a ``Dockerfile`` at the root.  With ``strip_top`` (GitHub
archives) the single top folder is removed from every path.  With
``context_path`` only that folder is kept, as the new root (the rest is read,
counted against the limits, and dropped), and the Dockerfile is looked for at
``dockerfile_path`` inside it.

Memory stays flat whatever the entry count: ``tarfile`` keeps every member it
has read in ``TarFile.members``; both lists are emptied as the copy goes, and
the names remembered for link checks are 16-byte digests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import posixpath
import re
import tarfile
import zlib
from collections.abc import Callable
from typing import BinaryIO

from chalicelib.domain.errors import BuildFailed
from worker.context.tarstream import InvalidContext, Readable, open_tar

__all__ = ["ContextLimits", "ContextStats", "InvalidContext", "Layout", "MAX_PATH_BYTES", "sanitize"]

MAX_PATH_BYTES = 4096
"""Longest member path or link target accepted (Linux's PATH_MAX)."""
_COMMIT = re.compile(r"[0-9a-f]{40}")


@dataclasses.dataclass(frozen=True)
class ContextLimits:
    """What an archive may hold."""

    max_bytes: int  # uncompressed bytes (file content and tar headers), and compressed input
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


def _key(path: str) -> bytes:
    """A fixed-size stand-in for a path in the sets of seen names."""
    return hashlib.blake2b(path.encode("utf-8", "surrogateescape"), digest_size=16).digest()


def _show(name: str) -> str:
    """A member name as quoted in a reason (long names are cut)."""
    return repr(name) if len(name) <= 200 else repr(name[:200]) + "..."


def _clean_path(name: str, what: str) -> list[str]:
    """The components of a member path; refuses over-long and absolute paths and ``..``."""
    if len(name.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise InvalidContext(f"the archive holds a path longer than {MAX_PATH_BYTES} bytes ({_show(name)}) in {what}")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InvalidContext(f"the archive holds an absolute path ({_show(name)}); paths must be relative")
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidContext(f"the archive holds a path that leaves the build context ({_show(name)}) in {what}")
    return parts


class _Symlinks:
    """The symbolic links seen so far: no later path may pass through one.

    Lexical checks alone are not enough once a path goes through a link: with
    ``a -> .`` then ``a/b -> ..``, ``b`` lands at the root and points outside.
    A name that was ever a link stays one (a later entry may replace it on
    extraction, but refusing such an archive costs nothing legitimate).
    """

    def __init__(self) -> None:
        self._seen: set[bytes] = set()

    def add(self, parts: list[str]) -> None:
        self._seen.add(_key("/".join(parts)))

    def crossed(self, parts: list[str], whole: bool = False) -> str | None:
        """The first proper prefix of ``parts`` (or ``parts`` itself if ``whole``) that is a link seen earlier."""
        if not self._seen:
            return None
        for depth in range(1, len(parts) + (1 if whole else 0)):
            prefix = "/".join(parts[:depth])
            if _key(prefix) in self._seen:
                return prefix
        return None

    def check(self, parts: list[str], what: str) -> None:
        """Refuse a path that goes through a link seen earlier; ``what`` names the path in the reason."""
        link = self.crossed(parts)
        if link is not None:
            raise InvalidContext(
                f"{what} goes through the symbolic link {_show(link)} of the archive; "
                "paths through links are not allowed"
            )

    def check_target(self, name: str, target: str) -> None:
        """Refuse a link target that climbs (``..``) out of a link seen earlier: ``t -> s/..`` with ``s -> .``."""
        stack = posixpath.dirname(name).split("/") if posixpath.dirname(name) else []
        for part in target.replace("\\", "/").split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                link = self.crossed(stack, whole=True)  # climbing out of a link lands somewhere else
                if link is not None:
                    raise InvalidContext(
                        f"the symbolic link {_show(name)} points through the symbolic link {_show(link)} "
                        f"and back up ({_show(target)}); links through links are not allowed"
                    )
                if stack:
                    stack.pop()
            else:
                stack.append(part)


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


def _forget_members(tar: tarfile.TarFile) -> None:
    """Empty the list of every member ``tar`` has read or written (memory stays flat)."""
    tar.members.clear()  # type: ignore[attr-defined]  # TarFile.members exists but typeshed does not declare it


class _Copy:
    """The state of one sanitizing copy: the limits, the layout and what the archive held so far."""

    def __init__(self, limits: ContextLimits, strip_top: bool, context_path: str, dockerfile_path: str) -> None:
        self.limits = limits
        self.stats = ContextStats()
        self.top = _TopFolder() if strip_top else None
        self.root = [p for p in context_path.split("/") if p]
        self.root_seen = not self.root
        self.dockerfile_path = dockerfile_path
        self.files_seen: set[bytes] = set()
        self.links = _Symlinks()
        self.has_dockerfile = False

    def copy(self, src: tarfile.TarFile, out: tarfile.TarFile) -> None:
        """Copy every member of ``src`` that belongs in the context to ``out``, refusing what is unsafe."""
        while True:
            member = src.next()
            _forget_members(src)  # tarfile keeps every member read; nothing here looks back
            _forget_members(out)
            if member is None:
                break
            parts = self._place(member)
            if parts:
                self._copy_member(src, out, member, parts)
        comment = str(src.pax_headers.get("comment", ""))
        self.stats.commit = comment if _COMMIT.fullmatch(comment) else ""

    def _place(self, member: tarfile.TarInfo) -> list[str]:
        """The member's path in the context (counted against the entry limit); empty when it is not copied."""
        parts = _clean_path(member.name, "its name")
        if self.top is not None:
            parts = self.top.strip(parts, member.name)
        if not parts:  # the root (or the top folder) itself
            return []
        self.stats.files += 1
        if self.stats.files > self.limits.max_files:
            raise InvalidContext(f"the archive holds more than {self.limits.max_files} entries")
        if not self.root:
            return parts
        if parts[: len(self.root)] != self.root:  # outside the context folder: counted (by the stream), then dropped
            if member.isreg():
                self.stats.content_bytes += member.size
                if self.stats.content_bytes > self.limits.max_bytes:
                    raise InvalidContext(
                        f"the archive is larger than the limit of {self.limits.max_bytes} bytes (uncompressed)"
                    )
            return []
        self.root_seen = True
        return parts[len(self.root) :]  # empty for the context folder itself

    def _copy_member(
        self, src: tarfile.TarFile, out: tarfile.TarFile, member: tarfile.TarInfo, parts: list[str]
    ) -> None:
        """Copy one member under its path in the context, by its type; refuse the types a context cannot hold."""
        name = "/".join(parts)
        self.links.check(parts, f"the path {_show(name)}")
        info = tarfile.TarInfo(name)
        info.mtime = member.mtime
        info.mode = member.mode & 0o777
        if member.isreg():
            self._copy_file(src, out, member, info)
        elif member.isdir():
            info.type = tarfile.DIRTYPE
            out.addfile(info)
        elif member.issym():
            self._check_symlink(name, member.linkname)
            info.type, info.linkname = tarfile.SYMTYPE, member.linkname
            out.addfile(info)
            self.links.add(parts)
        elif member.islnk():
            info.type, info.linkname = tarfile.LNKTYPE, self._hardlink_target(name, member.linkname)
            out.addfile(info)
            self._file_added(name)
        elif member.ischr() or member.isblk() or member.isfifo():
            raise InvalidContext(
                f"the archive holds a device or FIFO entry ({_show(member.name)}); "
                "only files, folders and links are allowed"
            )
        else:
            raise InvalidContext(f"the archive holds an entry of an unsupported type ({_show(member.name)})")

    def _file_added(self, name: str) -> None:
        """Remember a copied file (a later hard link may point to it)."""
        self.files_seen.add(_key(name))
        if name == self.dockerfile_path:
            self.has_dockerfile = True

    def _copy_file(
        self, src: tarfile.TarFile, out: tarfile.TarFile, member: tarfile.TarInfo, info: tarfile.TarInfo
    ) -> None:
        """Copy a regular file's content, within the size limit."""
        if self.stats.content_bytes + member.size > self.limits.max_bytes:
            raise InvalidContext(
                f"the build context is larger than the limit of {self.limits.max_bytes} bytes (uncompressed)"
            )
        info.size = member.size
        content = src.extractfile(member)
        assert content is not None  # a regular file always has content (tarfile returns None for other types)
        out.addfile(info, content)
        self.stats.content_bytes += member.size
        self._file_added(info.name)

    def _check_symlink(self, name: str, target: str) -> None:
        """Refuse a symbolic link whose target is too long, absolute, or leaves the context."""
        if len(target.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
            raise InvalidContext(f"the symbolic link {_show(name)} has a target longer than {MAX_PATH_BYTES} bytes")
        if target.startswith("/"):
            raise InvalidContext(
                f"the symbolic link {_show(name)} points to an absolute path ({_show(target)}), "
                "outside the build context"
            )
        resolved = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if resolved == ".." or resolved.startswith("../"):
            raise InvalidContext(f"the symbolic link {_show(name)} points outside the build context ({_show(target)})")
        self.links.check_target(name, target)

    def _hardlink_target(self, name: str, linkname: str) -> str:
        """The hard link's target in the context; it must be a file copied earlier."""
        link_parts = _clean_path(linkname, f"the hard link {_show(name)}")
        if self.top is not None:
            link_parts = self.top.strip(link_parts, linkname)
        root = self.root
        if root:  # a link to a file outside the context folder is not in files_seen: refused below
            link_parts = link_parts[len(root) :] if link_parts[: len(root)] == root else ["..", *link_parts]
        target = "/".join(link_parts)
        self.links.check(link_parts, f"the target {_show(target)} of the hard link {_show(name)}")
        if _key(target) not in self.files_seen:
            raise InvalidContext(
                f"the hard link {_show(name)} points to {_show(linkname)}, which is not a file earlier in the archive"
            )
        return target

    def check_complete(self, context_path: str, strip_top: bool) -> None:
        """Refuse an archive without the context folder or the Dockerfile it was said to have."""
        inside = " (inside its top folder)" if strip_top else ""
        if not self.root_seen:
            raise InvalidContext(f"the archive has no folder {context_path!r} (context_path){inside}")
        if not self.has_dockerfile:
            where = f"in the folder {context_path!r} (context_path)" if self.root else "at the root of the archive"
            what = "" if self.dockerfile_path == "Dockerfile" else f" at {self.dockerfile_path!r} (dockerfile_path)"
            raise InvalidContext(f"no Dockerfile{what} {where}{inside}")


def sanitize(
    source: Readable,
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
    copy = _Copy(limits, strip_top, context_path, dockerfile_path)
    counted = None
    try:
        src, counted = open_tar(source, limits.max_bytes, limits.max_ratio, check)
        with src, tarfile.open(fileobj=dest, mode="w", format=tarfile.PAX_FORMAT) as out:
            copy.copy(src, out)
    except (InvalidContext, BuildFailed):
        raise
    except (tarfile.TarError, EOFError, zlib.error, OSError, ValueError) as exc:
        if check is not None:
            check()  # an abort that broke the stream wins over the read error
        raise InvalidContext(f"the archive is not a valid tar or tar.gz file ({type(exc).__name__}: {exc})") from None
    copy.stats.compressed_bytes = counted.count if counted is not None else 0
    copy.check_complete(context_path, strip_top)
    return copy.stats
