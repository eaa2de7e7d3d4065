"""A GitHub repository at a tag: ``{base}/{user}/{repo}/archive/{tag}.tar.gz``, top folder stripped.

With a ``github_token`` (a private repository) the archive comes from the REST API,
``{api}/repos/{user}/{repo}/tarball/{ref}`` with the token as a Bearer header; GitHub
answers with a redirect to a short-lived download on another host, which gets no
token.  401, 404 and rate-limit 403s become reasons a person can act on.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from typing import BinaryIO

import requests

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.settings import Settings
from worker.context.archive import ContextLimits, ContextStats, Layout
from worker.job.control import JobControl
from worker.sources.githosts import fetch_archive

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def not_found_message(user: str, repo: str, tag: str) -> str:
    """The reason a job fails when GitHub has no such repository or tag."""
    return f"GitHub repository {user}/{repo} or tag {tag} not found; check them (a private repository needs a github_token)"


def archive_url(base: str, user: str, repo: str, tag: str) -> str:
    """The archive URL of ``user/repo`` at ``tag``; raises :class:`BuildFailed` for impossible names."""
    if not _NAME.match(user) or not _NAME.match(repo) or user in (".", "..") or repo in (".", ".."):
        raise BuildFailed(f"{user}/{repo} is not a valid GitHub repository name; check it")
    if not tag or any(part in ("", ".", "..") for part in tag.split("/")):
        raise BuildFailed(f"{tag!r} is not a valid tag name; check it")
    quote = urllib.parse.quote
    return f"{base.rstrip('/')}/{quote(user, safe='')}/{quote(repo, safe='')}/archive/{quote(tag, safe='/')}.tar.gz"


def api_tarball_url(api_base: str, user: str, repo: str, ref: str) -> str:
    """The REST API's tarball URL of ``user/repo`` at ``ref`` (branch, tag or commit sha)."""
    archive_url(api_base, user, repo, ref)  # the same name checks
    quote = urllib.parse.quote
    return f"{api_base.rstrip('/')}/repos/{quote(user, safe='')}/{quote(repo, safe='')}/tarball/{quote(ref, safe='/')}"


def api_failure(response: requests.Response, user: str, repo: str, ref: str) -> str | None:
    """The reason a job fails for the REST API's answer, or None when it is a success."""
    status = response.status_code
    if status < 400:
        return None
    if status == 401:
        return "GitHub refused the github_token (401 Bad credentials): check that it is valid and not expired"
    if status in (403, 429) and (response.headers.get("X-RateLimit-Remaining") == "0" or status == 429):
        reset = response.headers.get("X-RateLimit-Reset", "")
        when = ""
        if reset.isdigit():
            when = " until " + dt.datetime.fromtimestamp(int(reset), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"GitHub's API rate limit for this github_token is used up{when}; submit the build again after that"
    if status == 403:
        return f"GitHub refused access to {user}/{repo} (403): the github_token needs read access to its contents"
    if status == 404:
        return f"GitHub repository {user}/{repo} or ref {ref} not found, or the github_token cannot read it"
    return f"GitHub answered {status} for {user}/{repo} at {ref}"


def fetch(
    user: str,
    repo: str,
    tag: str,
    dest: BinaryIO,
    limits: ContextLimits,
    settings: Settings,
    control: JobControl,
    layout: Layout = Layout(),
    token: str = "",
) -> ContextStats:
    """Download the archive (following redirects) and sanitize it into ``dest`` without its top folder."""
    headers: dict[str, str] = {}
    if token:
        url = api_tarball_url(settings.github_api_base, user, repo, tag)
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}
    else:
        url = archive_url(settings.github_archive_base, user, repo, tag)

    def reason(response: requests.Response) -> str | None:
        found = api_failure(response, user, repo, tag) if token else None
        if found is None and response.status_code == 404:
            return not_found_message(user, repo, tag)
        return found

    return fetch_archive(url, headers, reason, f"{user}/{repo} at {tag}", dest, limits, settings, control, layout)
