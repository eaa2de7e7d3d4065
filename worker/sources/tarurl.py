"""A tarball from a URL the user gave, fetched through the SSRF guard."""

from __future__ import annotations

from typing import BinaryIO

from chalicelib.domain.settings import Settings
from chalicelib.domain.urls import display_url
from worker.context.archive import ContextLimits, ContextStats, Layout, sanitize
from worker.job.control import JobControl
from worker.sources.download import download


def fetch(
    url: str,
    dest: BinaryIO,
    limits: ContextLimits,
    settings: Settings,
    control: JobControl,
    layout: Layout = Layout(),
) -> ContextStats:
    """Download ``url`` (tar or tar.gz) through the guard, sanitizing it into ``dest``."""
    with download(url, f"the download of {display_url(url)}", settings, limits.max_bytes, control) as body:
        return sanitize(
            body,
            dest,
            limits,
            check=control.check,
            context_path=layout.context_path,
            dockerfile_path=layout.dockerfile_path,
        )
