"""Build triggers through the API on moto: CRUD, owner isolation, and hook deliveries replayed from
tests/data/hooks/ (payloads modelled on each host's documented push, tag and ping payloads) with right
and wrong signatures."""

from __future__ import annotations

import copy
import json
import pathlib
import uuid
from typing import Any

import pytest

from chalicelib.api.hook_signatures import signed_headers
from chalicelib.domain.jobs import Phase
from tests.aws.api_helpers import answer, job_item, queue_bodies
from tests.support.services import reconfigure, stores

HOOKS = pathlib.Path(__file__).resolve().parents[1] / "data" / "hooks"
SHA = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d"
OTHER_SHA = "a" * 40
EVENT_HEADER = {"github": "X-GitHub-Event", "gitlab": "X-Gitlab-Event", "bitbucket": "X-Event-Key"}
DELIVERY_HEADER = {"github": "X-GitHub-Delivery", "gitlab": "Idempotency-Key", "bitbucket": "X-Request-UUID"}
REPOSITORY = {"github": "Codertocat/Hello-World", "gitlab": "mike/diaspora", "bitbucket": "team-ws/app"}


def payload(name: str) -> dict[str, Any]:
    return json.loads((HOOKS / f"{name}.json").read_text())


def at(push: dict[str, Any], sha: str) -> None:
    """Make a GitHub push payload name ``sha`` as its new commit (``after`` and the head commit, as GitHub sends)."""
    push["after"] = sha
    if push.get("head_commit"):
        push["head_commit"]["id"] = sha


def create(client: Any, headers: dict[str, str] | None = None, **fields: Any) -> Any:
    body = {
        "host": "github",
        "repository": REPOSITORY["github"],
        "branch_regex": "main|release/.+",
        "image_template": "registry.example.com/team/app:{branch}-{short_sha}",
        "username": "pusher",
        "password": "push-secret-pw",
        **fields,
    }
    body = {k: v for k, v in body.items() if v is not None}
    return client.http.post(
        "/api/v1/triggers", headers={"Content-Type": "application/json", **(headers or {})}, body=json.dumps(body)
    )


def deliver(
    client: Any,
    trigger: dict[str, Any],
    body: Any,
    event: str,
    host: str = "github",
    secret: str | None = None,
    delivery: str | None = None,
    extra: dict[str, str] | None = None,
) -> Any:
    raw = json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        EVENT_HEADER[host]: event,
        DELIVERY_HEADER[host]: delivery or str(uuid.uuid4()),
        **signed_headers(host, secret if secret is not None else trigger["Secret"], raw),
        **(extra or {}),
    }
    return client.http.post(f"/api/v1/hooks/{trigger['TriggerId']}", headers=headers, body=raw)


@pytest.fixture
def trigger(client) -> dict[str, Any]:
    response = create(client)
    assert response.status_code == 201, response.body
    return answer(response)


# ---------------------------------------------------------------- CRUD


def test_create_answers_the_webhook_url_and_secret_once_and_never_the_credentials(client, trigger):
    assert trigger["WebhookUrl"].endswith(f"/api/v1/hooks/{trigger['TriggerId']}")
    assert len(trigger["Secret"]) >= 40 and trigger["SignatureHeader"] == "x-hub-signature-256"
    assert trigger["HasPushCredentials"] is True and trigger["HasGitToken"] is False
    for path in ("/api/v1/triggers", f"/api/v1/triggers/{trigger['TriggerId']}"):
        text = client.http.get(path).body.decode()
        assert trigger["TriggerId"] in text
        assert trigger["Secret"] not in text and "push-secret-pw" not in text and "Secret" not in json.loads(text)
    # stored sealed only: neither the secret nor the password is anywhere in the table

    items = stores().clients.client("dynamodb").scan(TableName=stores().settings.table_name)["Items"]
    assert trigger["Secret"] not in json.dumps(items) and "push-secret-pw" not in json.dumps(items)


def test_list_and_delete(client, trigger):
    listed = answer(client.http.get("/api/v1/triggers"))["Triggers"]
    assert [t["TriggerId"] for t in listed] == [trigger["TriggerId"]]
    gone = client.http.delete(f"/api/v1/triggers/{trigger['TriggerId']}")
    assert gone.status_code == 200 and answer(gone)["Deleted"] is True
    assert client.http.get(f"/api/v1/triggers/{trigger['TriggerId']}").status_code == 404
    assert answer(client.http.get("/api/v1/triggers"))["Triggers"] == []
    # a deleted trigger's hook is refused like an unknown one
    assert deliver(client, trigger, payload("github-push"), "push").status_code == 401


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"host": "svn"}, "host"),
        ({"repository": "no-slash"}, "repository"),
        ({"repository": "../etc"}, "repository"),
        ({"branch_regex": None}, "branch_regex"),
        ({"branch_regex": "(a+)+$"}, "branch_regex"),
        ({"branch_regex": "(a|ab)*"}, "branch_regex"),
        ({"branch_regex": "(x)\\1"}, "branch_regex"),
        ({"branch_regex": "(?=main)main"}, "branch_regex"),
        ({"branch_regex": "x" * 201}, "branch_regex"),
        ({"branch_regex": "[unclosed"}, "branch_regex"),
        ({"tag_regex": "((v)+)+"}, "tag_regex"),
        ({"paths": "src/**"}, "paths"),
        ({"paths": ["/abs"]}, "paths"),
        ({"paths": ["x"] * 21}, "paths"),
        ({"image_template": None}, "image_template"),
        ({"image_template": "Registry.example.com/UPPER/app:{tag}"}, "image_template"),
        ({"image_template": "app:{branch}-{tag}"}, "image_template"),
        ({"image_template": "app:{nope}"}, "image_template"),
        ({"image_template": "app:{branch"}, "image_template"),
        ({"image_template": "app@sha256:" + "a" * 64}, "image_template"),
        ({"image_template": "127.0.0.1:5000/app:{branch}"}, "image_template"),
        ({"default_branch_tag": "{tag}"}, "default_branch_tag"),
        ({"default_branch_tag": "-bad"}, "default_branch_tag"),
        ({"supersede": "yes"}, "supersede"),
        ({"notify_url": "http://example.com/hook"}, "notify_url"),
        ({"notify_url": "https://169.254.169.254/latest"}, "notify_url"),
        ({"gitlab_token": "glpat-x"}, "gitlab_token"),
        ({"memory": "lots"}, "memory"),
        ({"tags": ["ok", "-bad"]}, "tags"),
        ({"dockerfile": "FROM x"}, "dockerfile"),
        ({"image_name": "x/y"}, "image_name"),
        ({"label": "a\nb"}, "label"),
    ],
)
def test_invalid_fields_are_refused_naming_the_field_and_nothing_is_created(client, monkeypatch, fields, field):

    monkeypatch.setenv("BOATYARD_ALLOW_PRIVATE_REGISTRIES", "false")
    reconfigure()
    response = create(client, **fields)
    assert response.status_code == 400, response.body
    assert answer(response)["Message"].startswith(f"{field}:"), answer(response)
    assert answer(client.http.get("/api/v1/triggers"))["Triggers"] == []


def test_build_options_and_git_token_are_the_build_requests_own(client):
    body = answer(create(client, github_token="ghp_example", build_args={"A": "1"}, tags=["stable"], no_cache=True))
    assert body["HasGitToken"] is True
    assert body["Options"] == {"build_args": {"A": "1"}, "tags": ["stable"], "no_cache": True}
    assert "ghp_example" not in client.http.get(f"/api/v1/triggers/{body['TriggerId']}").body.decode()


def test_regex_abuse_is_bounded_at_match_time_too(client):
    """A safe pattern is matched with fullmatch against a ref of at most 255 characters: no partial match builds."""
    body = answer(create(client, branch_regex="main"))
    push = payload("github-push")
    push["ref"] = "refs/heads/main-and-more"
    answered = answer(deliver(client, body, push, "push"))
    assert answered["Builds"] == [] and "does not match" in answered["Skipped"][0]["Reason"]


# ---------------------------------------------------------------- signatures


def test_unknown_trigger_and_bad_signatures_get_the_same_401(client, trigger):
    push = payload("github-push")
    wrong = deliver(client, trigger, push, "push", secret="not-the-secret")
    raw = json.dumps(push).encode()
    missing = client.http.post(
        f"/api/v1/hooks/{trigger['TriggerId']}",
        headers={"Content-Type": "application/json", "X-GitHub-Event": "push"},
        body=raw,
    )
    unknown = deliver(client, {**trigger, "TriggerId": str(uuid.uuid4())}, push, "push")
    not_an_id = deliver(client, {**trigger, "TriggerId": "nope"}, push, "push")
    tampered_headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "push",
        **signed_headers("github", trigger["Secret"], raw),
    }
    tampered = client.http.post(
        f"/api/v1/hooks/{trigger['TriggerId']}", headers=tampered_headers, body=raw.replace(b"main", b"mein")
    )
    answers = [wrong, missing, unknown, not_an_id, tampered]
    assert {r.status_code for r in answers} == {401}
    assert len({r.body for r in answers}) == 1
    assert queue_bodies() == []


def test_signature_is_checked_before_the_body_is_read(client, trigger):
    """An unsigned body that is not even JSON still gets the 401, not a parse error."""
    response = client.http.post(
        f"/api/v1/hooks/{trigger['TriggerId']}",
        headers={"Content-Type": "application/json", "X-GitHub-Event": "push"},
        body=b"{not json",
    )
    assert response.status_code == 401


def test_an_oversized_delivery_is_refused_before_its_signature_is_checked(client, trigger, monkeypatch):

    monkeypatch.setenv("BOATYARD_HOOK_MAX_BYTES", "1000")
    reconfigure()
    push = payload("github-push")
    push["padding"] = "x" * 2000
    assert deliver(client, trigger, push, "push").status_code == 413


def test_the_hook_needs_no_api_key_in_keys_mode(keys_client, owners):
    """The authorizer guards the CRUD routes; the hook route's check is the signature."""
    auth = {"Authorization": f"Bearer {owners['a']}"}
    assert create(keys_client).status_code == 401
    made = answer(create(keys_client, headers=auth))
    delivered = deliver(keys_client, made, payload("github-push"), "push")
    assert delivered.status_code == 202, delivered.body
    (build,) = answer(delivered)["Builds"]
    history = answer(keys_client.http.get("/api/v1/jobs", headers=auth))["Jobs"]
    assert history[0]["JobIdentifier"] == build["JobIdentifier"] and history[0]["TriggerId"] == made["TriggerId"]
    assert job_item(build["JobIdentifier"])["owner"]["S"] == "team-a"


def test_another_owners_trigger_is_a_404_like_an_unknown_one(keys_client, owners):
    a = {"Authorization": f"Bearer {owners['a']}"}
    b = {"Authorization": f"Bearer {owners['b']}"}
    made = answer(create(keys_client, headers=a))
    path = f"/api/v1/triggers/{made['TriggerId']}"
    unknown = f"/api/v1/triggers/{uuid.uuid4()}"
    assert keys_client.http.get(path, headers=b).status_code == 404
    assert keys_client.http.delete(path, headers=b).status_code == 404
    assert (
        answer(keys_client.http.get(path, headers=b))["Code"]
        == answer(keys_client.http.get(unknown, headers=b))["Code"]
    )
    assert answer(keys_client.http.get("/api/v1/triggers", headers=b))["Triggers"] == []
    assert keys_client.http.get(path, headers=a).status_code == 200


# ---------------------------------------------------------------- events


def test_github_ping_answers_pong_and_builds_nothing(client, trigger):
    response = deliver(client, trigger, payload("github-ping"), "ping")
    assert response.status_code == 200 and answer(response)["Message"] == "pong"
    assert queue_bodies() == []


def test_github_push_builds_the_exact_commit(client, trigger):
    response = deliver(client, trigger, payload("github-push"), "push")
    assert response.status_code == 202, response.body
    (build,) = answer(response)["Builds"]
    assert build["ImageName"] == "registry.example.com/team/app:main-7fd1a60"
    assert build["Ref"] == "refs/heads/main" and build["Commit"] == SHA
    status = answer(client.http.get(f"/api/v1/{build['JobIdentifier']}/status"))
    assert (
        status["TriggerId"] == trigger["TriggerId"] and status["Ref"] == "refs/heads/main" and status["Commit"] == SHA
    )
    item = job_item(build["JobIdentifier"])
    assert item["source"]["M"]["github_tag"]["S"] == SHA  # the archive of exactly the pushed commit
    assert item["source"]["M"]["github_reponame"]["S"] == "Hello-World"
    assert "push-secret-pw" not in json.dumps(item) and "push-secret-pw" not in "".join(queue_bodies())
    shown = answer(client.http.get(f"/api/v1/triggers/{trigger['TriggerId']}"))["Builds"]
    assert [b["JobIdentifier"] for b in shown] == [build["JobIdentifier"]]


def test_a_triggers_build_subscribes_its_notify_url_and_github_status(client):
    made = create(client, notify_url="https://ci.example.com/boatyard-hook", github_token="ghp_example")
    assert made.status_code == 201, made.body
    trigger = answer(made)
    (build,) = answer(deliver(client, trigger, payload("github-push"), "push"))["Builds"]
    shown = answer(client.http.get(f"/api/v1/{build['JobIdentifier']}/notifications"))
    kinds = {sub["Kind"]: sub for sub in shown["Subscriptions"]}
    assert set(kinds) == {"webhook", "github_status"}, shown
    assert kinds["webhook"]["Url"] == "https://ci.example.com/boatyard-hook"
    assert kinds["github_status"]["Repository"] == REPOSITORY["github"] and kinds["github_status"]["Commit"] == SHA
    text = json.dumps(shown)
    assert trigger["Secret"] not in text and "ghp_example" not in text

    [status] = [s for s in stores().notifications.subscriptions(build["JobIdentifier"]) if s.kind == "github_status"]
    assert status.target_url.endswith(f"#job={build['JobIdentifier']}")  # GitHub links the status to the job's page

    items = json.dumps(stores().clients.client("dynamodb").scan(TableName=stores().settings.table_name)["Items"])
    assert trigger["Secret"] not in items and "ghp_example" not in items  # sealed, never plain


def test_a_trigger_without_notify_url_or_token_subscribes_nothing(client, trigger):
    (build,) = answer(deliver(client, trigger, payload("github-push"), "push"))["Builds"]
    assert answer(client.http.get(f"/api/v1/{build['JobIdentifier']}/notifications"))["Subscriptions"] == []


def test_the_job_carries_the_triggers_credentials_sealed_for_the_worker(client, trigger):
    from chalicelib.stores import queue

    (build,) = answer(deliver(client, trigger, payload("github-push"), "push"))["Builds"]
    (body,) = queue_bodies()
    message = queue.JobMessage.from_body(body)
    assert message.job_id == build["JobIdentifier"]
    credentials = stores().sealing.unseal(message.job_id, message.sealed_credentials)
    assert (credentials.username, credentials.password) == ("pusher", "push-secret-pw")


def test_github_tag_push_with_a_tag_template(client):
    made = answer(
        create(
            client,
            branch_regex=None,
            tag_regex=r"v[0-9]+\.[0-9]+\.[0-9]+",
            image_template="registry.example.com/team/app:{tag}",
        )
    )
    response = deliver(client, made, payload("github-tag-push"), "push")
    (build,) = answer(response)["Builds"]
    assert build["ImageName"] == "registry.example.com/team/app:v1.2.0" and build["Ref"] == "refs/tags/v1.2.0"
    # a branch push does not match a tag-only trigger
    skipped = answer(deliver(client, made, payload("github-push"), "push"))
    assert skipped["Builds"] == [] and "builds no branches" in skipped["Skipped"][0]["Reason"]


def test_tag_regex_is_a_full_match(client):
    made = answer(
        create(client, branch_regex=None, tag_regex="v1", image_template="registry.example.com/team/app:{tag}")
    )
    skipped = answer(deliver(client, made, payload("github-tag-push"), "push"))
    assert skipped["Builds"] == [] and "does not match" in skipped["Skipped"][0]["Reason"]


def test_default_branch_gets_the_extra_tag(client):
    made = answer(create(client, default_branch_tag=":latest"))
    (build,) = answer(deliver(client, made, payload("github-push"), "push"))["Builds"]
    assert build["ExtraTags"] == ["latest"]
    options = job_item(build["JobIdentifier"])["options"]["M"]
    assert [t["S"] for t in options["tags"]["L"]] == ["latest"]
    push = payload("github-push")
    push["ref"] = "refs/heads/release/2.0"
    at(push, OTHER_SHA)
    (other,) = answer(deliver(client, made, push, "push"))["Builds"]
    assert (
        "ExtraTags" not in other and other["ImageName"] == f"registry.example.com/team/app:release-2.0-{OTHER_SHA[:7]}"
    )


@pytest.mark.parametrize("marker", ["[skip build]", "[ci skip]", "[CI SKIP]"])
def test_skip_marker_in_the_head_commit_message_skips(client, trigger, marker):
    push = payload("github-push")
    push["head_commit"]["message"] = f"Fix typo {marker}"
    response = deliver(client, trigger, push, "push")
    assert response.status_code == 200
    assert answer(response)["Builds"] == [] and marker.lower() in answer(response)["Skipped"][0]["Reason"].lower()
    assert queue_bodies() == []


def test_branch_deletion_builds_nothing(client, trigger):
    push = payload("github-push")
    push.update(deleted=True, after="0" * 40, head_commit=None, commits=[])
    answered = answer(deliver(client, trigger, push, "push"))
    assert answered["Builds"] == [] and "deleted" in answered["Skipped"][0]["Reason"]


def test_path_filters(client):
    made = answer(create(client, paths=["src/**", "Dockerfile"]))
    assert len(answer(deliver(client, made, payload("github-push"), "push"))["Builds"]) == 1  # src/app.py
    push = payload("github-push")
    at(push, OTHER_SHA)
    for commit in (push["commits"][0], push["head_commit"]):
        commit["modified"] = ["docs/readme.md"]
    answered = answer(deliver(client, made, push, "push"))
    assert answered["Builds"] == [] and "paths" in answered["Skipped"][0]["Reason"]
    # 20 commits: GitHub's payload may be cut, so the changed files are unknown and it builds
    push["commits"] = push["commits"] * 20
    at(push, "b" * 40)
    assert len(answer(deliver(client, made, push, "push"))["Builds"]) == 1


def test_a_push_for_another_repository_builds_nothing(client, trigger):
    push = payload("github-push")
    push["repository"]["full_name"] = "someone/else"
    answered = answer(deliver(client, trigger, push, "push"))
    assert answered["Builds"] == [] and "someone/else" in answered["Message"]


def test_other_github_events_are_ignored(client, trigger):
    answered = answer(deliver(client, trigger, {"action": "opened"}, "issues"))
    assert answered["Builds"] == [] and "issues" in answered["Message"]


# ---------------------------------------------------------------- redelivery and supersede


def test_a_redelivered_delivery_builds_nothing_new(client, trigger):
    first = answer(deliver(client, trigger, payload("github-push"), "push", delivery="d-1"))
    again = deliver(client, trigger, payload("github-push"), "push", delivery="d-1")
    assert again.status_code == 200
    assert answer(again)["Duplicate"] is True
    assert [b["JobIdentifier"] for b in answer(again)["Builds"]] == [first["Builds"][0]["JobIdentifier"]]
    assert len(queue_bodies()) == 1


def test_a_newer_push_cancels_the_older_live_build_of_the_same_ref(client, trigger):
    (old,) = answer(deliver(client, trigger, payload("github-push"), "push"))["Builds"]
    push = payload("github-push")
    at(push, OTHER_SHA)
    newer = answer(deliver(client, trigger, push, "push"))
    assert newer["Superseded"] == [old["JobIdentifier"]]
    assert stores().jobs.get_job(old["JobIdentifier"]).phase == Phase.CANCELLED
    assert "superseded" in stores().jobs.get_job(old["JobIdentifier"]).reason
    assert stores().jobs.get_job(newer["Builds"][0]["JobIdentifier"]).phase == Phase.QUEUED
    assert newer["Builds"][0]["Commit"] == OTHER_SHA


def test_an_ended_older_build_is_left_alone_and_supersede_can_be_off(client):
    made = answer(create(client, supersede=False))
    (old,) = answer(deliver(client, made, payload("github-push"), "push"))["Builds"]
    push = payload("github-push")
    at(push, OTHER_SHA)
    newer = answer(deliver(client, made, push, "push"))
    assert "Superseded" not in newer and stores().jobs.get_job(old["JobIdentifier"]).phase == Phase.QUEUED


def test_racing_pushes_to_one_ref_leave_exactly_the_last(client, trigger):
    """Each swap of the ref's newest build returns the one it displaced: N pushes cancel exactly N-1 jobs."""
    from concurrent.futures import ThreadPoolExecutor

    jobs = [str(uuid.uuid4()) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        displaced = list(
            pool.map(lambda j: stores().triggers.swap_ref(trigger["TriggerId"], "refs/heads/main", j, SHA), jobs)
        )
    assert displaced.count(None) == 1
    survivors = set(jobs) - {d for d in displaced if d}
    assert len(survivors) == 1


# ---------------------------------------------------------------- GitLab and Bitbucket


def test_gitlab_push_and_tag_push(client):
    made = answer(
        create(
            client,
            host="gitlab",
            repository=REPOSITORY["gitlab"],
            tag_regex="v.+",
            image_template="registry.example.com/team/app:{ref}",
        )
    )
    assert made["SignatureHeader"] == "x-gitlab-token"
    (branch,) = answer(deliver(client, made, payload("gitlab-push"), "Push Hook", host="gitlab"))["Builds"]
    assert branch["Commit"] == SHA and branch["ImageName"] == "registry.example.com/team/app:main"
    assert job_item(branch["JobIdentifier"])["source"]["M"]["gitlab_ref"]["S"] == SHA
    (tag,) = answer(deliver(client, made, payload("gitlab-tag-push"), "Tag Push Hook", host="gitlab"))["Builds"]
    assert tag["Ref"] == "refs/tags/v1.0.0"
    assert deliver(client, made, payload("gitlab-push"), "Push Hook", host="gitlab", secret="wrong").status_code == 401


def test_gitlab_paths_come_from_every_commit(client):
    made = answer(
        create(
            client,
            host="gitlab",
            repository=REPOSITORY["gitlab"],
            paths=["CHANGELOG"],
            image_template="registry.example.com/team/app:{branch}",
        )
    )
    assert len(answer(deliver(client, made, payload("gitlab-push"), "Push Hook", host="gitlab"))["Builds"]) == 1
    made = answer(
        create(
            client,
            host="gitlab",
            repository=REPOSITORY["gitlab"],
            paths=["docs/**"],
            image_template="registry.example.com/team/app:{branch}",
        )
    )
    assert answer(deliver(client, made, payload("gitlab-push"), "Push Hook", host="gitlab"))["Builds"] == []


def test_bitbucket_push_and_ping(client):
    made = answer(create(client, host="bitbucket", repository=REPOSITORY["bitbucket"]))
    assert made["SignatureHeader"] == "x-hub-signature"
    response = deliver(client, made, payload("bitbucket-push"), "repo:push", host="bitbucket")
    (build,) = answer(response)["Builds"]
    assert job_item(build["JobIdentifier"])["source"]["M"]["bitbucket_ref"]["S"] == SHA
    ping = deliver(client, made, {}, "diagnostics:ping", host="bitbucket")
    assert answer(ping)["Message"] == "pong"
    assert (
        deliver(client, made, payload("bitbucket-push"), "repo:push", host="bitbucket", secret="x").status_code == 401
    )


def test_bitbucket_push_of_several_refs_builds_each_matching_one(client):
    made = answer(
        create(
            client,
            host="bitbucket",
            repository=REPOSITORY["bitbucket"],
            tag_regex="v.*",
            image_template="registry.example.com/team/app:{ref}",
        )
    )
    push = payload("bitbucket-push")
    change = push["push"]["changes"][0]
    tag = copy.deepcopy(change)
    tag["new"].update(type="tag", name="v2")
    tag["new"]["target"]["hash"] = OTHER_SHA
    deleted = copy.deepcopy(change)
    deleted["new"] = None
    deleted["old"]["name"] = "gone"
    push["push"]["changes"] = [change, tag, deleted]
    answered = answer(deliver(client, made, push, "repo:push", host="bitbucket"))
    assert sorted(b["Ref"] for b in answered["Builds"]) == ["refs/heads/main", "refs/tags/v2"]
    assert [s["Ref"] for s in answered["Skipped"]] == ["refs/heads/gone"]


def test_a_quota_refusal_lets_the_host_redeliver(keys_client, owners, monkeypatch):

    auth = {"Authorization": f"Bearer {owners['a']}"}
    made = answer(create(keys_client, headers=auth))
    monkeypatch.setenv("BOATYARD_QUOTA_LIVE_JOBS", "1")
    reconfigure()
    manual = keys_client.http.post(
        "/api/v1/build",
        headers={**auth, "Content-Type": "application/json"},
        body=json.dumps({"image_name": "user/image:1", "dockerfile": "FROM busybox\n"}),
    )
    refused = deliver(keys_client, made, payload("github-push"), "push", delivery="q-1")
    assert refused.status_code == 429 and refused.headers.get("Retry-After")
    job_id = answer(manual)["JobIdentifier"]
    assert keys_client.http.post(f"/api/v1/{job_id}/cancel", headers=auth).status_code == 200
    again = deliver(keys_client, made, payload("github-push"), "push", delivery="q-1")
    assert again.status_code == 202, again.body


def test_answers_match_their_documented_schemas(client):
    import yaml

    from tests.support.openapi import DOC_PATH, check_answer

    doc = yaml.safe_load(DOC_PATH.read_text())
    made = create(client, default_branch_tag="latest", paths=["src/**"], build_args={"A": "b"})
    check_answer(doc, "/api/v1/triggers", "post", made)
    check_answer(doc, "/api/v1/triggers", "post", create(client, host="svn"))  # 400
    made = answer(made)
    check_answer(doc, "/api/v1/triggers", "get", client.http.get("/api/v1/triggers"))
    hook = "/api/v1/hooks/{trigger_id}"
    check_answer(doc, hook, "post", deliver(client, made, payload("github-push"), "push"))  # 202
    check_answer(doc, hook, "post", deliver(client, made, payload("github-ping"), "ping"))  # 200
    check_answer(doc, hook, "post", deliver(client, made, payload("github-push"), "push", secret="x"))  # 401
    one = "/api/v1/triggers/{trigger_id}"
    check_answer(doc, one, "get", client.http.get(f"/api/v1/triggers/{made['TriggerId']}"))
    check_answer(doc, one, "get", client.http.get(f"/api/v1/triggers/{uuid.uuid4()}"))  # 404
    (build,) = answer(client.http.get(f"/api/v1/triggers/{made['TriggerId']}"))["Builds"]
    check_answer(doc, "/api/v1/{job_id}/status", "get", client.http.get(f"/api/v1/{build['JobIdentifier']}/status"))
    check_answer(doc, "/api/v1/jobs", "get", client.http.get("/api/v1/jobs"))
    check_answer(doc, one, "delete", client.http.delete(f"/api/v1/triggers/{made['TriggerId']}"))
