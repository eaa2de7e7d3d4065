"""Build-context fetchers: each turns a job's source into a sanitized local tar file.

:func:`fetch_context` picks the fetcher for the job's source kind.  Every
fetcher streams (S3 body, HTTP body) straight through
:func:`worker.context.archive.sanitize` into ``dest``: the archive is never whole in
memory, and nothing but the sanitized tar reaches the Docker daemon (no URL is
ever handed to the daemon as a remote context).
"""

from __future__ import annotations

from typing import BinaryIO

from chalicelib.domain.build_options import BuildOptions
from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.jobs import Job, SourceKind
from chalicelib.domain.settings import Settings
from chalicelib.domain.urls import display_url
from chalicelib.stores.services import Services
from worker.context.archive import ContextLimits, ContextStats, Layout
from worker.job.control import JobControl
from worker.sources import githosts, github, s3, tarurl


def limits_from(settings: Settings) -> ContextLimits:
    """The archive limits configured for this worker."""
    return ContextLimits(settings.max_context_bytes, settings.max_context_files, settings.max_context_ratio)


def describe_source(job: Job) -> str:
    """A short, credential-free description of where the context comes from."""
    if job.source_kind == SourceKind.TAR_URL:
        return f"the tarball at {display_url(job.source.get('tar_url', ''))}"
    if job.source_kind == SourceKind.GITHUB:
        return (
            f"GitHub {job.source.get('github_username', '')}/{job.source.get('github_reponame', '')}"
            f" at {job.source.get('github_tag', '')}"
        )
    if job.source_kind == SourceKind.GITLAB:
        return f"GitLab {job.source.get('gitlab_project', '')} at {job.source.get('gitlab_ref', '')}"
    if job.source_kind == SourceKind.BITBUCKET:
        return (
            f"Bitbucket {job.source.get('bitbucket_workspace', '')}/{job.source.get('bitbucket_repo', '')}"
            f" at {job.source.get('bitbucket_ref', '')}"
        )
    if job.source_kind == SourceKind.DOCKERFILE:
        return "the Dockerfile in the request"
    return "the uploaded archive"


def fetch_context(
    job: Job, dest: BinaryIO, services: Services, control: JobControl, token: str = "", token_user: str = ""
) -> ContextStats:
    """Write the job's sanitized build context (an uncompressed tar) to ``dest``.

    The job's ``context_path`` / ``dockerfile_path`` options say where in the archive the
    context and its Dockerfile are; ``token`` (unsealed; with ``token_user`` for a Bitbucket
    app password) reads a private repository.  Downloads are registered with ``control``
    (an abort cuts them at once) and paced (:class:`worker.sources.download.Download`).
    """
    settings = services.settings
    limits = limits_from(settings)
    options = BuildOptions.from_item(job.options)
    layout = Layout(options.context_path, options.dockerfile_path)
    kind = job.source_kind
    if kind in (SourceKind.DOCKERFILE, SourceKind.UPLOAD):
        return s3.fetch(services.contexts, job, dest, limits, control.check, layout)
    if kind == SourceKind.TAR_URL:
        url = job.source.get("tar_url", "")
        return tarurl.fetch(url, dest, limits, settings, control, layout)
    if kind == SourceKind.GITHUB:
        return github.fetch(
            job.source.get("github_username", ""),
            job.source.get("github_reponame", ""),
            job.source.get("github_tag", ""),
            dest,
            limits,
            settings,
            control,
            layout,
            token,
        )
    if kind == SourceKind.GITLAB:
        source = job.source
        return githosts.fetch_gitlab(
            source.get("gitlab_project", ""),
            source.get("gitlab_ref", ""),
            token,
            dest,
            limits,
            settings,
            control,
            layout,
        )
    if kind == SourceKind.BITBUCKET:
        source = job.source
        return githosts.fetch_bitbucket(
            source.get("bitbucket_workspace", ""),
            source.get("bitbucket_repo", ""),
            source.get("bitbucket_ref", ""),
            token_user,
            token,
            dest,
            limits,
            settings,
            control,
            layout,
        )
    raise BuildFailed(f"unknown source kind {kind!r}")
