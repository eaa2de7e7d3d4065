"""Build triggers end to end over real HTTP on the local stack: a signed GitHub push delivery builds exactly
the pushed commit from the local fake git host, and a newer push to the same branch cancels the older push's
build on the real daemon while the newer one is pushed."""

from __future__ import annotations

import hashlib
import json
import time
import uuid

import pytest
import requests

from chalicelib.api.hook_signatures import signed_headers
from tests.nonce import RUN_NONCE
from tests.support.http_jobs import credentials, wait_terminal
from tests.support.images import pull_and_run

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


def _sha(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def _push(api_url: str, trigger: dict, repo: str, sha: str, message: str = "Update") -> requests.Response:
    body = json.dumps(
        {
            "ref": "refs/heads/main",
            "before": "1" * 40,
            "after": sha,
            "created": False,
            "deleted": False,
            "head_commit": {"id": sha, "message": message, "added": [], "removed": [], "modified": ["Dockerfile"]},
            "commits": [{"id": sha, "message": message, "added": [], "removed": [], "modified": ["Dockerfile"]}],
            "repository": {"full_name": f"octo-user/{repo}", "default_branch": "main"},
        }
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": str(uuid.uuid4()),
        **signed_headers("github", trigger["Secret"], body),
    }
    return requests.post(f"{api_url}/api/v1/hooks/{trigger['TriggerId']}", data=body, headers=headers, timeout=60)


def _wait_phase(api_url: str, job_id: str, phases: set[str], timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = requests.get(f"{api_url}/api/v1/{job_id}/status", timeout=10).json()
        if body["Phase"] in phases:
            return body
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never reached {phases}: {body}")


def test_a_push_builds_the_pushed_commit_and_a_newer_push_supersedes_it(local_stack, docker_host):
    api = local_stack.api_url
    repo = f"hooked-{uuid.uuid4().hex[:8]}"
    registry = local_stack.registry
    template = f"{registry.host}/e2e/{repo}:{{branch}}-{{short_sha}}"
    made = requests.post(
        f"{api}/api/v1/triggers",
        timeout=30,
        json={
            "host": "github",
            "repository": f"octo-user/{repo}",
            "branch_regex": "main",
            "image_template": template,
            "default_branch_tag": "latest",
            **credentials(registry),
        },
    )
    assert made.status_code == 201, made.text
    trigger = made.json()
    assert trigger["WebhookUrl"] == f"{api}/api/v1/hooks/{trigger['TriggerId']}"

    # a wrong signature is refused and builds nothing
    forged = dict(trigger, Secret="not-the-secret")
    assert _push(api, forged, repo, _sha("forged")).status_code == 401

    # the older commit's build is slow (a RUN step that sleeps), the newer one is quick
    old_sha, new_sha = _sha(f"{repo}-old"), _sha(f"{repo}-new")
    local_stack.archive_server.add_commit(
        "octo-user",
        repo,
        old_sha,
        {"Dockerfile": f"FROM {local_stack.base_image}\nRUN : {RUN_NONCE}-{repo} && sleep 120\nCMD echo old\n"},
    )
    local_stack.archive_server.add_commit(
        "octo-user",
        repo,
        new_sha,
        {
            "Dockerfile": f"FROM {local_stack.base_image}\nCOPY commit /commit\nCMD cat /commit\n",
            "commit": f"built {new_sha}\n",
        },
    )

    first = _push(api, trigger, repo, old_sha)
    assert first.status_code == 202, first.text
    (old_build,) = first.json()["Builds"]
    assert old_build["Commit"] == old_sha
    _wait_phase(api, old_build["JobIdentifier"], {"building"})  # running on the real daemon

    second = _push(api, trigger, repo, new_sha)
    assert second.status_code == 202, second.text
    assert second.json()["Superseded"] == [old_build["JobIdentifier"]]
    (new_build,) = second.json()["Builds"]
    assert new_build["ImageName"] == f"{registry.host}/e2e/{repo}:main-{new_sha[:7]}" and new_build["ExtraTags"] == [
        "latest"
    ]

    old = wait_terminal(api, old_build["JobIdentifier"], timeout=120)
    assert old["Status"] == "Cancelled" and old["Phase"] == "cancelled", old
    new = wait_terminal(api, new_build["JobIdentifier"], timeout=240)
    assert new["Status"] == "Finished", new
    assert (new["TriggerId"], new["Ref"], new["Commit"]) == (trigger["TriggerId"], "refs/heads/main", new_sha)
    assert set(new["TagDigests"]) == {"latest"}
    # the archive of exactly the pushed commit was fetched
    assert f"/octo-user/{repo}/archive/{new_sha}.tar.gz" in local_stack.archive_server.requests
    assert pull_and_run(docker_host, registry, new_build["ImageName"]).strip() == f"built {new_sha}"

    # both builds are in the owner's history and the trigger's recent builds
    shown = requests.get(f"{api}/api/v1/triggers/{trigger['TriggerId']}", timeout=30).json()
    assert [b["JobIdentifier"] for b in shown["Builds"]] == [new_build["JobIdentifier"], old_build["JobIdentifier"]]
    history = requests.get(f"{api}/api/v1/jobs", params={"limit": 100}, timeout=30).json()["Jobs"]
    mine = {j["JobIdentifier"]: j for j in history if j.get("TriggerId") == trigger["TriggerId"]}
    assert (
        mine[new_build["JobIdentifier"]]["Commit"] == new_sha
        and mine[old_build["JobIdentifier"]]["Phase"] == "cancelled"
    )
    # no secret or password in what the API shows of the trigger
    text = json.dumps(shown)
    assert trigger["Secret"] not in text and registry.password not in text
