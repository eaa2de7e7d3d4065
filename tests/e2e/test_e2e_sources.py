"""End to end over real HTTP: each source kind, submitted exactly as the seed's clients did,
is built by a real worker on the real Docker daemon, pushed to the real registry, pulled back and run."""

from __future__ import annotations

import io
import json
import tarfile
import uuid

import pytest
import requests

from devstack.archive_server import make_tar_gz
from tests.support.http_jobs import credentials, unique_image, wait_terminal
from tests.support.images import pull_and_run

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _submit_json(api_url: str, body: dict) -> str:
    answer = requests.post(f"{api_url}/api/v1/build", json=body, timeout=30)
    assert answer.status_code in (200, 202), answer.text
    assert list(answer.json()) == ["JobIdentifier"]
    job_id = answer.json()["JobIdentifier"]
    assert str(uuid.UUID(job_id)) == job_id
    return job_id


def _finish_and_check(local_stack, docker_host, job_id: str, image: str, expected: str) -> None:
    status = wait_terminal(local_stack.api_url, job_id)
    assert status["Status"] == "Finished", status
    assert status["_seen"][-1] == "Finished" and set(status["_seen"]) <= {"Building", "Pushing", "Finished"}
    assert status["ImageDigest"].startswith("sha256:")
    logs = requests.get(f"{local_stack.api_url}/api/v1/{job_id}/logs", timeout=30).json()["Logs"]
    assert "Step 1/" in logs and "FROM " in logs
    assert expected in pull_and_run(docker_host, local_stack.registry, image)


def test_dockerfile_source(local_stack, docker_host):
    image = unique_image(local_stack.registry.host, "dockerfile")
    dockerfile = f"FROM {local_stack.base_image}\nCMD echo hello from a dockerfile\n"
    job_id = _submit_json(
        local_stack.api_url, {"image_name": image, "dockerfile": dockerfile, **credentials(local_stack.registry)}
    )
    _finish_and_check(local_stack, docker_host, job_id, image, "hello from a dockerfile")


def test_tar_url_source(local_stack, docker_host):
    image = unique_image(local_stack.registry.host, "tarurl")
    archive = make_tar_gz(
        {
            "Dockerfile": f"FROM {local_stack.base_image}\nCOPY message.txt /message.txt\nCMD cat /message.txt\n",
            "message.txt": "hello from a tarball url\n",
        }
    )
    url = local_stack.archive_server.add_file(f"{uuid.uuid4().hex}.tar.gz", archive)
    job_id = _submit_json(
        local_stack.api_url, {"image_name": image, "tar_url": url, **credentials(local_stack.registry)}
    )
    _finish_and_check(local_stack, docker_host, job_id, image, "hello from a tarball url")


def test_github_source(local_stack, docker_host):
    image = unique_image(local_stack.registry.host, "github")
    repo = f"repo-{uuid.uuid4().hex[:8]}"
    local_stack.archive_server.add_repo(
        "octo-user",
        repo,
        "v1.2.0",
        {
            "Dockerfile": f"FROM {local_stack.base_image}\nCOPY greeting /greeting\nCMD cat /greeting\n",
            "greeting": "hello from github v1.2.0\n",
        },
    )
    job_id = _submit_json(
        local_stack.api_url,
        {
            "image_name": image,
            "github_username": "octo-user",
            "github_reponame": repo,
            "github_tag": "v1.2.0",
            **credentials(local_stack.registry),
        },
    )
    _finish_and_check(local_stack, docker_host, job_id, image, "hello from github v1.2.0")


def test_multipart_tarfile_source(local_stack, docker_host):
    """The seed's fourth form: multipart/form-data with parts TarFile and Json."""
    image = unique_image(local_stack.registry.host, "multipart")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:  # a plain (uncompressed) tar this time
        for name, text in {
            "Dockerfile": f"FROM {local_stack.base_image}\nCOPY note /note\nCMD cat /note\n",
            "note": "hello from a multipart upload\n",
        }.items():
            info = tarfile.TarInfo(name)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    fields = {"image_name": image, **credentials(local_stack.registry)}
    answer = requests.post(
        f"{local_stack.api_url}/api/v1/build",
        files={
            "TarFile": ("context.tar", buffer.getvalue(), "application/x-gzip"),
            "Json": (None, json.dumps(fields), "application/json"),
        },
        timeout=30,
    )
    assert answer.status_code in (200, 202), answer.text
    job_id = answer.json()["JobIdentifier"]
    _finish_and_check(local_stack, docker_host, job_id, image, "hello from a multipart upload")


def test_failed_build_says_why_in_status_and_logs(local_stack):
    image = unique_image(local_stack.registry.host, "failing")
    job_id = _submit_json(
        local_stack.api_url,
        {
            "image_name": image,
            "dockerfile": f"FROM {local_stack.base_image}\nRUN exit 3\n",
            **credentials(local_stack.registry),
        },
    )
    status = wait_terminal(local_stack.api_url, job_id)
    expected = "The command '/bin/sh -c exit 3' returned a non-zero code: 3"
    assert status["Status"] == f"Failed: {expected}"
    logs = requests.get(f"{local_stack.api_url}/api/v1/{job_id}/logs", timeout=30).json()["Logs"]
    assert expected in logs


def test_unknown_job_is_404(local_stack):
    for path in ("status", "logs"):
        answer = requests.get(f"{local_stack.api_url}/api/v1/{uuid.uuid4()}/{path}", timeout=10)
        assert answer.status_code == 404
        assert set(answer.json()) == {"Code", "Message"}
