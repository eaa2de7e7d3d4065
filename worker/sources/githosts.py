"""GitLab and Bitbucket repositories at a ref (branch, tag or commit sha): the host's archive, top folder stripped.

- GitLab: ``{gitlab}/api/v4/projects/{id or url-encoded path}/repository/archive.tar.gz?sha={ref}``,
  with an optional token as ``PRIVATE-TOKEN`` (``BOATYARD_GITLAB_BASE`` for a self-hosted GitLab).
- Bitbucket: ``{bitbucket}/{workspace}/{repo}/get/{ref}.tar.gz``, with an optional app password as
  HTTP Basic auth with its username.
Both go through the SSRF guard (every redirect hop re-checked; requests drops the
credentials on a redirect to another host) and the archive sanitizer; 401, 403,
404 and rate limits become reasons a person can act on, never showing the token.
"""

from __future__ import annotations

import base64
import datetime as dt
import urllib.parse
from collections.abc import Callable
from typing import BinaryIO

import requests

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.settings import Settings
from worker.context.archive import ContextLimits, ContextStats, Layout, sanitize
from worker.job.control import JobControl
from worker.sources.download import download


def gitlab_url(base: str, project: str, ref: str) -> str:
    """The archive URL of a GitLab project (id or path) at ``ref``."""
    quote = urllib.parse.quote
    return f"{base.rstrip('/')}/api/v4/projects/{quote(project, safe='')}/repository/archive.tar.gz?sha={quote(ref, safe='')}"


def bitbucket_url(base: str, workspace: str, repo: str, ref: str) -> str:
    """The archive URL of a Bitbucket repository at ``ref``."""
    quote = urllib.parse.quote
    return f"{base.rstrip('/')}/{quote(workspace, safe='')}/{quote(repo, safe='')}/get/{quote(ref, safe='')}.tar.gz"


def _reset_time(response: requests.Response) -> str:
    for header in ("RateLimit-Reset", "X-RateLimit-Reset"):
        value = response.headers.get(header, "")
        if value.isdigit():
            return " until " + dt.datetime.fromtimestamp(int(value), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    retry = response.headers.get("Retry-After", "")
    return f" for {retry} s" if retry.isdigit() else ""


def failure_reason(response: requests.Response, host: str, what: str, token_field: str, has_token: bool) -> str | None:
    """Why a git host's answer fails the job (None for a success)."""
    status = response.status_code
    if status < 400:
        return None
    if status == 401:
        if has_token:
            return f"{host} refused the {token_field} (401): check that it is valid and not expired"
        return f"{host} needs credentials for {what} (401): give a {token_field}"
    if status == 429 or (status == 403 and response.headers.get("RateLimit-Remaining") == "0"):
        return f"{host}'s rate limit is used up{_reset_time(response)}; submit the build again after that"
    if status == 403:
        return f"{host} refused access to {what} (403): the {token_field} needs read access to the repository"
    if status == 404:
        hint = (
            f", or the {token_field} cannot read it" if has_token else f" (a private repository needs a {token_field})"
        )
        return f"{host} repository or ref {what} not found{hint}"
    return f"{host} answered {status} for {what}"


def fetch_archive(
    url: str,
    headers: dict[str, str],
    reason: Callable[[requests.Response], str | None],
    what: str,
    dest: BinaryIO,
    limits: ContextLimits,
    settings: Settings,
    control: JobControl,
    layout: Layout,
) -> ContextStats:
    """A git host's archive at ``url`` (of ``what``) through the guard, sanitized into ``dest`` without its top folder.

    ``reason(response)`` is why the host's answer fails the job, or None to leave it to the download's
    own checks.  GitHub, GitLab and Bitbucket all come through here.
    """

    def on_status(response: requests.Response) -> None:
        text = reason(response)
        if text:
            raise BuildFailed(text)

    with download(
        url,
        f"the download of {what}",
        settings,
        limits.max_bytes,
        control,
        on_status=on_status,
        headers=headers or None,
    ) as body:
        return sanitize(
            body,
            dest,
            limits,
            strip_top=True,
            check=control.check,
            context_path=layout.context_path,
            dockerfile_path=layout.dockerfile_path,
        )


def fetch_gitlab(
    project: str,
    ref: str,
    token: str,
    dest: BinaryIO,
    limits: ContextLimits,
    settings: Settings,
    control: JobControl,
    layout: Layout = Layout(),
) -> ContextStats:
    """A GitLab project's archive at ``ref`` into ``dest`` (top folder stripped)."""
    what = f"GitLab {project} at {ref}"
    headers = {"PRIVATE-TOKEN": token} if token else {}
    return fetch_archive(
        gitlab_url(settings.gitlab_base, project, ref),
        headers,
        lambda r: failure_reason(r, "GitLab", f"{project} at {ref}", "gitlab_token", bool(token)),
        what,
        dest,
        limits,
        settings,
        control,
        layout,
    )


def fetch_bitbucket(
    workspace: str,
    repo: str,
    ref: str,
    username: str,
    app_password: str,
    dest: BinaryIO,
    limits: ContextLimits,
    settings: Settings,
    control: JobControl,
    layout: Layout = Layout(),
) -> ContextStats:
    """A Bitbucket repository's archive at ``ref`` into ``dest`` (top folder stripped)."""
    what = f"{workspace}/{repo} at {ref}"
    headers = {}
    if app_password:
        basic = base64.b64encode(f"{username}:{app_password}".encode()).decode("ascii")
        headers = {"Authorization": f"Basic {basic}"}
    return fetch_archive(
        bitbucket_url(settings.bitbucket_base, workspace, repo, ref),
        headers,
        lambda r: failure_reason(r, "Bitbucket", what, "bitbucket_app_password", bool(app_password)),
        f"Bitbucket {what}",
        dest,
        limits,
        settings,
        control,
        layout,
    )
