"""A local HTTP server that serves archives: a stand-in for GitHub and for tarball URLs.

``/{user}/{repo}/archive/{tag}.tar.gz`` answers like GitHub's archive endpoint
(everything under one top folder ``<repo>-<tag without a leading v>/``, and the
commit id in a pax global header's ``comment``, as ``git archive`` writes it);
:meth:`ArchiveServer.add_commit` publishes one at a commit sha (what a build trigger fetches);
``/files/<name>`` serves any blob added with :meth:`ArchiveServer.add_file`.
``/repos/{owner}/{repo}/tarball/{ref}`` answers like GitHub's REST API for a
private repository (:meth:`ArchiveServer.add_private_repo`): ``Authorization:
Bearer <token>`` required (401 otherwise), 404 for an unknown repository or ref,
403 with ``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset`` once
:meth:`ArchiveServer.rate_limit` is set, and a 302 to a download on another
host name (``localhost``), as GitHub sends to codeload.github.com, whose archive
folder is ``<owner>-<repo>-<short sha>/``.
``/api/v4/projects/{id or encoded path}/repository/archive.tar.gz?sha={ref}``
answers like GitLab (folder ``<project>-<ref>-<sha>/``; a private project wants
``PRIVATE-TOKEN``, 401 otherwise) and ``/{workspace}/{repo}/get/{ref}.tar.gz``
like Bitbucket (folder ``<workspace>-<repo>-<12-char sha>/``, a private repository
wants Basic auth with the app password, and the download is a 302 to another host
name, as Bitbucket sends to its upload storage).
"""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import threading
import urllib.parse
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_tar_gz(files: Mapping[str, bytes | str], top: str = "", commit: str = "") -> bytes:
    """A tar.gz holding ``files`` (path → content), optionally under folder ``top`` and naming a ``commit``."""
    buffer = io.BytesIO()
    pax_headers = {"comment": commit} if commit else None
    with tarfile.open(
        fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT if commit else None, pax_headers=pax_headers
    ) as tar:
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


class _Handler(BaseHTTPRequestHandler):
    """The archive server's HTTP handler; each :class:`ArchiveServer` serves a subclass bound to it."""

    owner: ArchiveServer

    def _plain(self, status: int, text: str, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(text.encode())

    def _api(self, path: str) -> None:
        token = self.owner.private.get(path)
        auth = self.headers.get("Authorization") or ""
        if self.owner.rate_limit_reset is not None:
            self._plain(
                403,
                '{"message": "API rate limit exceeded"}',
                {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(self.owner.rate_limit_reset)},
            )
        elif not auth.startswith("Bearer ") or (token is not None and auth != f"Bearer {token}"):
            self._plain(401, '{"message": "Bad credentials"}')
        elif token is None:
            self._plain(404, '{"message": "Not Found"}')
        else:
            self.send_response(302)
            port = self.owner._server.server_address[1]
            self.send_header("Location", f"http://localhost:{port}/_codeload{path}?token=temporary")
            self.end_headers()

    def _hosted(self, route: tuple[str, str, bool]) -> None:
        """A GitLab/Bitbucket route: (blob key, the header value it needs or "", redirect or not)."""
        key, needed, redirect = route
        given = self.headers.get("PRIVATE-TOKEN") or self.headers.get("Authorization") or ""
        if needed and given != needed:
            self._plain(401, '{"message": "401 Unauthorized"}')
        elif redirect:
            self.send_response(302)
            self.send_header("Location", f"http://localhost:{self.owner._server.server_address[1]}{key}")
            self.end_headers()
        else:
            self._blob(key)

    def _blob(self, key: str) -> None:
        body = self.owner._blobs.get(key)
        if body is None:
            self._plain(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/x-gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # http.server's name
        self.owner.requests.append(self.path)
        path = self.path.split("?", 1)[0]
        self.owner.authorizations[path] = self.headers.get("Authorization") or self.headers.get("PRIVATE-TOKEN") or ""
        if path.startswith("/repos/"):
            self._api(path)
            return
        if self.path in self.owner.hosted:
            self._hosted(self.owner.hosted[self.path])
            return
        body = self.owner._blobs.get(path)
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


class ArchiveServer:
    """Serves GitHub-style archives and plain files on 127.0.0.1 from a thread."""

    def __init__(self, port: int = 0) -> None:
        self._blobs: dict[str, bytes] = {}
        self.requests: list[str] = []
        self.authorizations: dict[str, str] = {}  # path -> the Authorization header it came with ("" if none)
        self.private: dict[str, str] = {}  # API path -> the token that may read it
        self.rate_limit_reset: int | None = None
        self.hosted: dict[str, tuple[str, str, bool]] = {}  # request path+query -> (blob key, needed auth, redirect)
        handler: type[_Handler] = type("Handler", (_Handler,), {"owner": self})

        self._server = ThreadingHTTPServer(("127.0.0.1", port), handler)
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

    def add_commit(self, user: str, repo: str, sha: str, files: Mapping[str, bytes | str]) -> str:
        """Publish ``user/repo`` at commit ``sha`` (archive by sha, as a trigger's build fetches it); returns its URL path."""
        path = f"/{user}/{repo}/archive/{sha}.tar.gz"
        self._blobs[path] = make_tar_gz(files, f"{repo}-{sha}", sha)
        return path

    def add_private_repo(self, user: str, repo: str, ref: str, files: Mapping[str, bytes | str], token: str) -> str:
        """Publish a private repository at ``ref`` behind the API path, readable with ``token``; returns its commit."""
        commit = self.commit_of(user, repo, ref)
        path = f"/repos/{user}/{repo}/tarball/{ref}"
        self.private[path] = token
        self._blobs[f"/_codeload{path}"] = make_tar_gz(files, f"{user}-{repo}-{commit[:7]}", commit)
        return commit

    def add_gitlab_project(self, project: str, ref: str, files: Mapping[str, bytes | str], token: str = "") -> str:
        """Publish a GitLab project (``group/name``) archive at ``ref``; private with ``token``. Returns its commit."""
        commit = self.commit_of("gitlab", project, ref)
        encoded = urllib.parse.quote(project, safe="")
        request = f"/api/v4/projects/{encoded}/repository/archive.tar.gz?sha={urllib.parse.quote(ref, safe='')}"
        key = f"/_gitlab/{encoded}/{ref}.tar.gz"
        self._blobs[key] = make_tar_gz(files, f"{project.rsplit('/', 1)[-1]}-{ref.replace('/', '-')}-{commit}", commit)
        self.hosted[request] = (key, token, False)
        return commit

    def add_bitbucket_repo(
        self,
        workspace: str,
        repo: str,
        ref: str,
        files: Mapping[str, bytes | str],
        username: str = "",
        app_password: str = "",
    ) -> str:
        """Publish a Bitbucket repository archive at ``ref``; private with an app password. Returns its commit."""
        commit = self.commit_of(workspace, repo, ref)
        request = f"/{workspace}/{repo}/get/{urllib.parse.quote(ref, safe='')}.tar.gz"
        key = f"/_bbuploads/{workspace}/{repo}/{commit}.tar.gz"
        self._blobs[key] = make_tar_gz(files, f"{workspace}-{repo}-{commit[:12]}", commit)
        needed = ""
        if app_password:
            needed = "Basic " + base64.b64encode(f"{username}:{app_password}".encode()).decode("ascii")
        self.hosted[request] = (key, needed, True)
        return commit

    def rate_limit(self, reset_epoch: int | None) -> None:
        """Answer every API call with GitHub's rate-limit 403 until ``reset_epoch`` (None: stop)."""
        self.rate_limit_reset = reset_epoch

    @staticmethod
    def commit_of(user: str, repo: str, tag: str) -> str:
        """The (made-up, stable) commit id the archive of ``user/repo`` at ``tag`` says it was made from."""
        return hashlib.sha1(f"{user}/{repo}@{tag}".encode()).hexdigest()

    def add_file(self, name: str, data: bytes) -> str:
        """Publish a blob; returns its URL."""
        self._blobs[f"/files/{name}"] = data
        return f"{self.base_url}/files/{name}"

    def start(self) -> ArchiveServer:
        """Serve in a daemon thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
