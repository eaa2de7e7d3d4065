"""Build contexts as tests make them: the one tar builder, and reading an archive back."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Mapping


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


def dockerfile_tar(dockerfile: str, gz: bool = True) -> bytes:
    """A context holding only ``Dockerfile``."""
    return make_tar({"Dockerfile": dockerfile}, gz=gz)


def tar_members(data: bytes) -> dict[str, bytes]:
    """The regular files of a tar or tar.gz archive, by member name."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]  # a regular file (isfile) always has a reader
