"""A local HTTP server that serves archives: a stand-in for GitHub and for tarball URLs.

``/{user}/{repo}/archive/{tag}.tar.gz`` answers like GitHub's archive endpoint
(everything under one top folder ``<repo>-<tag without a leading v>/``, and the
commit id in a pax global header's ``comment``, as ``git archive`` writes it);
``/files/<name>`` serves any blob added with :meth:`ArchiveServer.add_file`.
"""
from __future__ import annotations

import hashlib
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Mapping


def make_tar_gz(files: Mapping[str, bytes | str], top: str = "", commit: str = "") -> bytes:
    """A tar.gz holding ``files`` (path → content), optionally under folder ``top`` and naming a ``commit``."""
    buffer = io.BytesIO()
    extra = {"format": tarfile.PAX_FORMAT, "pax_headers": {"comment": commit}} if commit else {}
    with tarfile.open(fileobj=buffer, mode="w:gz", **extra) as tar:
        if top:
            info = tarfile.TarInfo(top.rstrip("/"))
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
            tar.addfile(info)
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(f"{top.rstrip('/')}/{name}" if top else name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class ArchiveServer:
    """Serves GitHub-style archives and plain files on 127.0.0.1 from a thread."""

    def __init__(self, port: int = 0) -> None:
        self._blobs: dict[str, bytes] = {}
        self.requests: list[str] = []
        blobs, seen = self._blobs, self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                seen.append(self.path)
                body = blobs.get(self.path.split("?", 1)[0])
                if body is None:
                    self.send_response(404)
                    self.send_header("Content-Type", "text/plain")
                    self.end_headers()
                    self.wfile.write(b"Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add_repo(self, user: str, repo: str, tag: str, files: Mapping[str, bytes | str]) -> None:
        """Publish a repository archive at a tag (made from the commit :meth:`commit_of` names)."""
        top = f"{repo}-{tag[1:] if tag.startswith('v') else tag}"
        commit = self.commit_of(user, repo, tag)
        self._blobs[f"/{user}/{repo}/archive/{tag}.tar.gz"] = make_tar_gz(files, top, commit)

    @staticmethod
    def commit_of(user: str, repo: str, tag: str) -> str:
        """The (made-up, stable) commit id the archive of ``user/repo`` at ``tag`` says it was made from."""
        return hashlib.sha1(f"{user}/{repo}@{tag}".encode()).hexdigest()

    def add_file(self, name: str, data: bytes) -> str:
        """Publish a blob; returns its URL."""
        self._blobs[f"/files/{name}"] = data
        return f"{self.base_url}/files/{name}"

    def start(self) -> "ArchiveServer":
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
