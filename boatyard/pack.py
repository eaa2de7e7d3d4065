"""Pack a build context folder as Docker does: ``.dockerignore`` (Docker's own matching rules), then a
gzipped tar written straight to a file object, file by file (never the whole context in memory).

Matching reuses docker-py's ``PatternMatcher`` (a port of moby's ``fileutils``); what the Docker CLI
adds around it is reproduced here: the Dockerfile and ``.dockerignore`` are always sent (the daemon
reads them, then drops them from the context when ``.dockerignore`` names them), owners are 0:0, and
special files (sockets, devices, FIFOs) are left out.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

DOCKERIGNORE = ".dockerignore"
COMPRESS_LEVEL = 3  # fast; contexts are mostly source text, where 3 is close to 6 in size


class PackError(Exception):
    """The folder cannot be packed (missing, unreadable, no Dockerfile)."""


@dataclasses.dataclass
class PackResult:
    """What went into the archive."""

    files: int = 0
    bytes_in: int = 0  # file content bytes read
    skipped: list[str] = dataclasses.field(default_factory=list)  # special files left out


def read_dockerignore(root: Path) -> list[str]:
    """The patterns of ``root/.dockerignore`` as moby's ``dockerignore.ReadAll`` reads them:
    one per line, surrounding blanks trimmed, blank lines and ``#`` comments skipped."""
    try:
        text = (root / DOCKERIGNORE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    patterns = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        patterns.append(line)
    return patterns


def context_paths(root: Path, dockerfile: str = "Dockerfile", patterns: list[str] | None = None) -> list[str]:
    """The paths under ``root`` (files and folders, relative, ``/``-separated, sorted) that a
    ``docker build`` of it sends: all but those ``.dockerignore`` excludes, plus the Dockerfile and
    ``.dockerignore`` themselves (as the Docker CLI's ``TrimBuildFilesFromExcludes`` does)."""
    patterns = list(read_dockerignore(root) if patterns is None else patterns)
    patterns += [f"!{dockerfile}", f"!{DOCKERIGNORE}"]
    from docker.utils.build import (
        PatternMatcher,  # imported here: `docker` is slow to import
    )

    matcher = PatternMatcher(patterns)
    return sorted(set(matcher.walk(str(root))))


def _clean_info(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Owners 0:0 without names (the Docker CLI's ``ChownOpts``), a whole-second mtime."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = int(max(0, min(info.mtime, 8**11 - 1)))
    return info


def iter_entries(root: Path, paths: list[str]) -> Iterator[tuple[str, Path]]:
    """(name in the archive, path on disk) for each path."""
    for rel in paths:
        yield rel.replace(os.sep, "/"), root / rel


def _add_entry(archive: tarfile.TarFile, name: str, path: Path, result: PackResult) -> None:
    """Add one path of the context (skipped, and noted, if Docker could not build from it either)."""
    try:
        info = archive.gettarinfo(str(path), arcname=name)
    except OSError as exc:
        raise PackError(f"cannot read {path}: {exc.strerror or exc}") from None
    if info is None or not (info.isfile() or info.isdir() or info.issym() or info.islnk()):
        result.skipped.append(name)  # sockets, devices, FIFOs: Docker cannot build from them either
        return
    _clean_info(info)
    if info.isfile():
        try:
            with open(path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size != info.size or not stat.S_ISREG(
                    os.fstat(handle.fileno()).st_mode
                ):
                    raise PackError(f"{path} changed while it was being packed")
                archive.addfile(info, handle)
        except OSError as exc:
            raise PackError(f"cannot read {path}: {exc.strerror or exc}") from None
        result.bytes_in += info.size
    else:
        archive.addfile(info)
    result.files += 1


def _add_dockerfile(archive: tarfile.TarFile, source: Path, result: PackResult) -> None:
    """Add a Dockerfile from outside the context as ``Dockerfile`` at its root."""
    try:
        with open(source, "rb") as handle:
            info = _clean_info(archive.gettarinfo(fileobj=handle, arcname="Dockerfile"))
            info.mode = 0o644
            archive.addfile(info, handle)
            result.bytes_in += info.size
            result.files += 1
    except OSError as exc:
        raise PackError(f"cannot read {source}: {exc.strerror or exc}") from None


def pack(
    root: Path,
    out: BinaryIO,
    dockerfile: str = "Dockerfile",
    dockerfile_source: Path | None = None,
    on_file: Callable[[PackResult], None] | None = None,
) -> PackResult:
    """Write the context of ``root`` to ``out`` as tar.gz; returns what went in.

    ``dockerfile`` is the Dockerfile's path inside the context.  ``dockerfile_source``, when given, is
    a Dockerfile from elsewhere that is sent as ``Dockerfile`` at the context's root instead (the
    ``-f`` of ``docker build`` pointing outside the folder, or any ``-f`` for a service that only
    reads the root's Dockerfile).
    """
    root = root.resolve()
    if not root.is_dir():
        raise PackError(f"{root} is not a folder")
    if dockerfile_source is None and not (root / dockerfile).is_file():
        raise PackError(f"no {dockerfile} in {root}")
    result = PackResult()
    paths = context_paths(root, "Dockerfile" if dockerfile_source else dockerfile)
    if dockerfile_source is not None:
        paths = [p for p in paths if p != "Dockerfile"]
    with tarfile.open(mode="w:gz", fileobj=out, compresslevel=COMPRESS_LEVEL, format=tarfile.PAX_FORMAT) as archive:
        for name, path in iter_entries(root, paths):
            _add_entry(archive, name, path, result)
            if on_file is not None:
                on_file(result)
        if dockerfile_source is not None:
            _add_dockerfile(archive, dockerfile_source, result)
    return result
