"""A GitHub repository at a tag: ``{base}/{user}/{repo}/archive/{tag}.tar.gz``, top folder stripped."""
from __future__ import annotations

import re
import urllib.parse
from typing import BinaryIO, Callable

import requests

from chalicelib.errors import BuildFailed
from chalicelib.settings import Settings
from worker import netguard
from worker.archive import ContextLimits, ContextStats, Layout, sanitize
from worker.sources.tarurl import download_stream

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def not_found_message(user: str, repo: str, tag: str) -> str:
    """The reason a job fails when GitHub has no such repository or tag."""
    return f"GitHub repository {user}/{repo} or tag {tag} not found; check them (private repositories are not supported)"


def archive_url(base: str, user: str, repo: str, tag: str) -> str:
    """The archive URL of ``user/repo`` at ``tag``; raises :class:`BuildFailed` for impossible names."""
    if not _NAME.match(user) or not _NAME.match(repo) or user in (".", "..") or repo in (".", ".."):
        raise BuildFailed(f"{user}/{repo} is not a valid GitHub repository name; check it")
    if not tag or any(part in ("", ".", "..") for part in tag.split("/")):
        raise BuildFailed(f"{tag!r} is not a valid tag name; check it")
    quote = urllib.parse.quote
    return f"{base.rstrip('/')}/{quote(user, safe='')}/{quote(repo, safe='')}/archive/{quote(tag, safe='/')}.tar.gz"


def fetch(
    user: str,
    repo: str,
    tag: str,
    dest: BinaryIO,
    limits: ContextLimits,
    settings: Settings,
    check: Callable[[], None],
    layout: Layout = Layout(),
) -> ContextStats:
    """Download the archive (following redirects) and sanitize it into ``dest`` without its top folder."""
    url = archive_url(settings.github_archive_base, user, repo, tag)

    def on_status(response: requests.Response) -> None:
        if response.status_code == 404:
            raise BuildFailed(not_found_message(user, repo, tag))

    response = netguard.open_url(
        url, settings.allow_private_urls, settings.fetch_timeout_seconds, limits.max_bytes, on_status=on_status
    )
    with response:
        return sanitize(
            download_stream(response, f"the download of {user}/{repo} at {tag}"), dest, limits, strip_top=True, check=check,
            context_path=layout.context_path, dockerfile_path=layout.dockerfile_path,
        )
