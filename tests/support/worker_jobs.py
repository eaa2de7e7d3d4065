"""Jobs for in-process worker tests (moto in process): create + store the context + seal + enqueue as the API
does (:func:`submit`, the one way), run a worker until a job ends, read what it left.

Used by tests/docker (real daemon and registry), tests/aws/test_worker_* and tests/faults (moto only).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping

import pytest

from chalicelib.domain.build_options import validate_options
from chalicelib.domain.jobs import Job, SourceKind
from chalicelib.stores import contexts, sealing
from chalicelib.stores.queue import JobMessage
from tests.support.archives import make_tar
from tests.support.probes import run_once
from tests.support.services import reconfigure, stores


def set_env(monkeypatch: pytest.MonkeyPatch, **values: object) -> None:
    """Set ``BOATYARD_*``-style variables (names as given) and reload the settings."""
    for name, value in values.items():
        monkeypatch.setenv(name, str(value))
    reconfigure()


def submit(
    image_name: str,
    *,
    dockerfile: str | None = None,
    archive: bytes | None = None,
    tar_url: str | None = None,
    github: tuple[str, str, str] | None = None,
    username: str = "",
    password: str = "",
    copies: int = 1,
    options: Mapping[str, object] | None = None,
    source_token: str = "",
    source: tuple[SourceKind | str, dict[str, str]] | None = None,
    token_user: str = "",
    registry_auths: dict[str, dict[str, str]] | None = None,
    engine: str = "",
    secrets: Mapping[str, str] | None = None,
    ssh: str = "",
) -> str:
    """Create a job, store its context, seal its credentials and enqueue it (like the API); returns its id.

    The source is one of ``dockerfile``, ``archive`` (bytes of a tar), ``tar_url``, ``github`` (user, repo,
    tag) or ``source`` (kind, its fields as stored: GitLab/Bitbucket, or anything the API would refuse — the
    worker's own defences must hold on their own).  ``options`` are build options as the API takes them
    (validated the same way).  Credentials are sealed only when there are any, as the API does.
    """
    job_id = str(uuid.uuid4())
    if dockerfile is not None or archive is not None:
        kind = SourceKind.DOCKERFILE if dockerfile is not None else SourceKind.UPLOAD
        data = make_tar({"Dockerfile": dockerfile}) if dockerfile is not None else archive
        assert data is not None
        key = contexts.context_key(job_id)
        stores().contexts.put_bytes(key, data)
        fields = {"context_key": key}
    elif tar_url is not None:
        kind, fields = SourceKind.TAR_URL, {"tar_url": tar_url}
    elif github is not None:
        kind = SourceKind.GITHUB
        fields = dict(zip(("github_username", "github_reponame", "github_tag"), github, strict=True))
    elif source is not None:
        kind, fields = SourceKind(source[0]), dict(source[1])
    else:
        raise ValueError("no source")
    stored = validate_options(options or {}, stores().settings).to_item()
    stores().jobs.create_job(Job(job_id, image_name, kind, fields, options=stored, engine=engine))
    credentials = sealing.Credentials(
        username,
        password,
        source_token=source_token,
        source_user=token_user,
        registry_auths=registry_auths or {},
        secrets=dict(secrets or {}),
        ssh=ssh,
    )
    sealed = stores().sealing.seal(job_id, credentials) if credentials.to_seal else ""
    for _ in range(copies):
        stores().queue.send(JobMessage(job_id, 0, sealed))
    return job_id


def run_until_terminal(worker, job_id: str, timeout: float = 180, wait: int = 1) -> list:
    """Run one poll of the worker (``run_once``) until the job is terminal; returns every ProcessResult seen."""
    results = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        results.extend(run_once(worker, wait_seconds=wait))
        job = stores().jobs.get_job(job_id)
        if job.phase.is_terminal:
            return results
    raise AssertionError(f"job {job_id} still {stores().jobs.get_job(job_id).phase.value} after {timeout} s")


def full_log(job_id: str) -> str:
    """The whole stored log of a job."""
    return stores().logs.read_logs(job_id, 0, max_bytes=10**10).text


def status(job_id: str) -> str:
    """The seed's ``Status`` word of a job."""
    return stores().jobs.get_job(job_id).status_word


def image_for(registry_host: str, name: str, tag: str = "v1") -> str:
    """A unique test image name in the test registry."""
    return f"{registry_host}/tests/{name}-{uuid.uuid4().hex[:8]}:{tag}"
