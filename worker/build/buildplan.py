"""From a job's build options to the arguments of the Docker daemon's build, plus the automatic OCI labels.

:func:`plan_build` is pure (no Docker, no AWS): the job, its options, what the
sanitizer learnt about the archive (a git archive's commit), the settings and
the clock give a :class:`BuildPlan`.  Labels the user gave win over the
automatic ones.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
from typing import Any

from chalicelib.domain.build_options import BuildOptions
from chalicelib.domain.jobs import Job, SourceKind
from chalicelib.domain.image_ref import ImageRef
from chalicelib.domain.settings import Settings
from worker.context.archive import ContextStats

OCI = "org.opencontainers.image."
CPU_PERIOD_US = 100_000


@dataclasses.dataclass(frozen=True)
class BuildPlan:
    """Everything a job changes about ``docker build``, and the extra tags to push."""

    buildargs: dict[str, str]
    dockerfile: str
    target: str
    nocache: bool
    pull: bool | None  # None: the builder's default
    labels: dict[str, str]
    memory: int  # bytes, 0 = no per-build limit
    cpus: float  # 0 = no per-build limit
    extra_tags: tuple[str, ...]
    cache_from: tuple[str, ...] = ()  # BuildKit only: images whose inline cache may be reused

    def build_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``docker.APIClient.build``."""
        kwargs: dict[str, Any] = {
            "buildargs": dict(self.buildargs) or None,
            "dockerfile": self.dockerfile,
            "nocache": self.nocache,
            "labels": dict(self.labels) or None,
        }
        if self.pull is not None:
            kwargs["pull"] = self.pull
        if self.target:
            kwargs["target"] = self.target
        if self.memory:
            kwargs["container_limits"] = {"memory": self.memory, "memswap": self.memory}  # no swap beyond it
        return kwargs

    def extra_params(self) -> dict[str, str]:
        """Query parameters of ``POST /build`` docker-py has no argument for (the CPU quota)."""
        if not self.cpus:
            return {}
        return {"cpuperiod": str(CPU_PERIOD_US), "cpuquota": str(int(self.cpus * CPU_PERIOD_US))}


def source_url(job: Job, settings: Settings) -> str:
    """Where the context came from, as a URL without credentials, query or fragment ('' when not a URL)."""
    if job.source_kind == SourceKind.GITHUB:
        user, repo = job.source.get("github_username", ""), job.source.get("github_reponame", "")
        return f"{settings.github_archive_base}/{user}/{repo}"
    if job.source_kind == SourceKind.GITLAB:
        return f"{settings.gitlab_base}/{job.source.get('gitlab_project', '')}"
    if job.source_kind == SourceKind.BITBUCKET:
        return f"{settings.bitbucket_base}/{job.source.get('bitbucket_workspace', '')}/{job.source.get('bitbucket_repo', '')}"
    if job.source_kind == SourceKind.TAR_URL:
        parts = urllib.parse.urlsplit(job.source.get("tar_url", ""))
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port:
            netloc += f":{parts.port}"
        return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return ""


def automatic_labels(job: Job, stats: ContextStats | None, settings: Settings, now: dt.datetime) -> dict[str, str]:
    """The OCI labels boatyard knows: ``created`` always; ``source`` and ``revision`` where the source tells."""
    labels = {OCI + "created": now.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")}
    url = source_url(job, settings)
    if url:
        labels[OCI + "source"] = url
    if stats is not None and stats.commit:
        labels[OCI + "revision"] = stats.commit
    else:
        ref = job.source.get({SourceKind.GITHUB: "github_tag", SourceKind.GITLAB: "gitlab_ref",
                              SourceKind.BITBUCKET: "bitbucket_ref"}.get(job.source_kind, ""), "")
        if ref:
            labels[OCI + "revision"] = ref
    return labels


def plan_build(
    job: Job, ref: ImageRef, stats: ContextStats | None, settings: Settings, now: dt.datetime | None = None
) -> BuildPlan:
    """The build plan of a job: its options applied over the defaults, labels merged, extra tags deduplicated."""
    options = BuildOptions.from_item(job.options)
    labels = {**automatic_labels(job, stats, settings, now or dt.datetime.now(dt.timezone.utc)), **options.labels}
    extra_tags = tuple(tag for tag in dict.fromkeys(options.tags) if tag != ref.tag)
    return BuildPlan(
        buildargs=dict(options.build_args),
        dockerfile=options.dockerfile_path,
        target=options.target,
        nocache=options.no_cache,
        pull=options.pull,
        labels=labels,
        memory=options.memory,
        cpus=options.cpus,
        extra_tags=extra_tags,
        cache_from=options.cache_from,
    )
