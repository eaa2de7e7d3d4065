"""Triggers' pure rules: hook signatures, ref regexes (and their abuse), path globs, image templates, payloads."""

from __future__ import annotations

import hashlib
import hmac
import json
import pathlib

import pytest

from chalicelib.api import hook_signatures
from chalicelib.domain import hook_payloads
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.trigger_rules import (
    BRANCH,
    TAG,
    RefChange,
    TriggerRules,
    decide,
    glob_regex,
    paths_match,
    render,
    safe_regex,
    tag_safe,
    validate_default_branch_tag,
    validate_image_template,
    validate_path_filters,
)

HOOKS = pathlib.Path(__file__).resolve().parents[1] / "data" / "hooks"
SHA = "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d"
BODY = b'{"ref": "refs/heads/main"}'


# ---------------------------------------------------------------- signatures


def test_github_signature_is_hmac_sha256_of_the_raw_body():
    expected = "sha256=" + hmac.new(b"s3cret", BODY, hashlib.sha256).hexdigest()
    assert hook_signatures.verify("github", "s3cret", {"x-hub-signature-256": expected}, BODY)
    assert hook_signatures.verify(
        "github", "s3cret", {"x-hub-signature-256": expected.upper().replace("SHA256", "sha256")}, BODY
    )


@pytest.mark.parametrize("host", ["github", "bitbucket"])
def test_hmac_signatures_refuse_a_wrong_secret_body_or_missing_header(host):
    header = hook_signatures.SIGNATURE_HEADERS[host]
    good = hook_signatures.signed_headers(host, "s3cret", BODY)
    assert hook_signatures.verify(host, "s3cret", good, BODY)
    assert not hook_signatures.verify(host, "other", good, BODY)
    assert not hook_signatures.verify(host, "s3cret", good, BODY + b" ")
    assert not hook_signatures.verify(host, "s3cret", {}, BODY)
    assert not hook_signatures.verify(host, "s3cret", {header: "sha1=" + "0" * 40}, BODY)
    assert not hook_signatures.verify(host, "", {header: hook_signatures.body_signature("", BODY)}, BODY)


def test_github_sha1_header_alone_is_not_enough():
    legacy = {"x-hub-signature": "sha1=" + hmac.new(b"s3cret", BODY, hashlib.sha1).hexdigest()}
    assert not hook_signatures.verify("github", "s3cret", legacy, BODY)


def test_gitlab_token_is_the_secret_itself():
    assert hook_signatures.verify("gitlab", "s3cret", {"x-gitlab-token": "s3cret"}, BODY)
    assert not hook_signatures.verify("gitlab", "s3cret", {"x-gitlab-token": "s3cre"}, BODY)
    assert not hook_signatures.verify("gitlab", "s3cret", {"x-gitlab-token": "S3CRET"}, BODY)
    assert not hook_signatures.verify("gitlab", "s3cret", {"x-gitlab-token": "\udcff"}, BODY)


# ---------------------------------------------------------------- regexes


@pytest.mark.parametrize(
    "pattern",
    [
        "main",
        "main|develop",
        "release/.+",
        r"v[0-9]+\.[0-9]+\.[0-9]+",
        "(release|hotfix)/[a-z0-9.-]+",
        "feature/.*",
        "v[0-9.]+(-rc[0-9]+)?",
        r"v[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?",
        "(ab{2}){3}",
    ],
)
def test_ordinary_ref_patterns_are_accepted(pattern):
    assert safe_regex(pattern, "branch_regex").pattern == pattern


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(a+)+$", "repeated group"),
        ("(a*)*b", "repeated group"),
        ("(a|aa)+", "alternation"),
        ("(.*a){12}", "repeated group"),
        ("(?:[0-9]+\\.)+", "repeated group"),
        ("(x)\\1", "backreferences"),
        ("(?=main).*", "lookarounds"),
        ("(?<!x)main", "lookarounds"),
        ("(?P<a>x)(?(a)y|z)", "conditional"),
        ("[unclosed", "not a valid"),
        ("x{1,", ""),  # a literal in Python: accepted or refused, never a crash
        ("a*a*a*a*a*x", "at most 4"),
    ],
)
def test_patterns_that_can_backtrack_without_bound_are_refused(pattern, why):
    if not why:
        try:
            safe_regex(pattern, "tag_regex")
        except InvalidRequest as exc:
            assert exc.field == "tag_regex"
        return
    with pytest.raises(InvalidRequest) as caught:
        safe_regex(pattern, "tag_regex")
    assert caught.value.field == "tag_regex" and why in caught.value.message


def test_regex_length_is_capped():
    with pytest.raises(InvalidRequest, match="at most 200"):
        safe_regex("a" * 201, "branch_regex")
    with pytest.raises(InvalidRequest):
        safe_regex("(" * 150 + ")" * 150, "branch_regex")  # nesting deep enough to trouble the parser


def test_a_ref_longer_than_git_allows_never_reaches_the_regex():
    rules = TriggerRules(branch_regex="a.*", image_template="app:{branch}")
    decision = decide(rules, RefChange(BRANCH, "a" * 300, SHA))
    assert decision.skipped and "does not match" in decision.skipped


# ---------------------------------------------------------------- globs


@pytest.mark.parametrize(
    ("glob", "path", "hit"),
    [
        ("src/**", "src/a/b.py", True),
        ("src/**", "srcx/a.py", False),
        ("*.py", "a.py", True),
        ("*.py", "src/a.py", False),
        ("**/*.py", "a.py", True),
        ("**/*.py", "src/deep/a.py", True),
        ("Dockerfile", "Dockerfile", True),
        ("Dockerfile", "sub/Dockerfile", False),
        ("docs/?.md", "docs/a.md", True),
        ("docs/?.md", "docs/ab.md", False),
        ("[!a]*.txt", "b.txt", True),
        ("[!a]*.txt", "a.txt", False),
        ("a.b", "axb", False),
    ],
)
def test_globs(glob, path, hit):
    assert bool(glob_regex(glob).fullmatch(path)) is hit


def test_path_filter_validation():
    assert validate_path_filters(["src/**"]) == ("src/**",)
    assert validate_path_filters(None) == ()
    for bad in ("src", ["/abs"], [""], ["a\nb"], [1], ["x"] * 21, ["y" * 201]):
        with pytest.raises(InvalidRequest) as caught:
            validate_path_filters(bad)
        assert caught.value.field == "paths"
    assert paths_match(["src/**"], ["README", "src/x"]) and not paths_match(["src/**"], ["README"])


# ---------------------------------------------------------------- templates


def test_template_values_are_made_tag_safe():
    assert tag_safe("feature/Login_2") == "feature-Login_2"
    assert tag_safe("-.x") == "x" and tag_safe("") == "_" and len(tag_safe("a" * 300)) == 128
    assert (
        render("r.example.com/app:{branch}-{short_sha}", {"branch": "feat/x", "short_sha": "abc1234"})
        == "r.example.com/app:feat-x-abc1234"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("", "required"),
        ("app:{branch}-{tag}", "both"),
        ("app:{nope}", "not a placeholder"),
        ("app:{branch", "unbalanced"),
        ("app:{branch!r}", "format spec"),
        ("team/App:{tag}", "lowercase"),
        ("app:{tag}" + "x" * 300, "at most"),
        ("app@sha256:" + "a" * 64, "digest"),
    ],
)
def test_bad_templates_are_refused(template, message):
    with pytest.raises(InvalidRequest) as caught:
        validate_image_template(template)
    assert caught.value.field == "image_template" and message in caught.value.message


def test_good_templates():
    for template in (
        "registry.example.com/team/app:{tag}",
        "team/app:{branch}",
        "app",
        "r:5000/app:{short_sha}",
        "team/app:{ref}-{short_sha}",
    ):
        assert validate_image_template(template) == template
    assert validate_default_branch_tag(":latest") == "latest"
    assert validate_default_branch_tag("edge-{short_sha}") == "edge-{short_sha}"
    assert validate_default_branch_tag(None) == ""


def test_a_template_decides_which_pushes_build():
    tag_only = TriggerRules(branch_regex=".*", tag_regex=".*", image_template="app:{tag}")
    assert "branch" in decide(tag_only, RefChange(BRANCH, "main", SHA)).skipped
    assert decide(tag_only, RefChange(TAG, "v1", SHA)).image_name == "app:v1"
    branch_only = TriggerRules(branch_regex=".*", tag_regex=".*", image_template="app:{branch}")
    assert "tag" in decide(branch_only, RefChange(TAG, "v1", SHA)).skipped


def test_default_branch_extra_tag_and_its_fallback_to_the_payload():
    rules = TriggerRules(branch_regex=".*", image_template="app:{branch}", default_branch_tag="latest")
    assert decide(rules, RefChange(BRANCH, "main", SHA), "main").extra_tags == ("latest",)
    assert decide(rules, RefChange(BRANCH, "dev", SHA), "main").extra_tags == ()
    assert decide(rules, RefChange(BRANCH, "main", SHA), "").extra_tags == ()
    pinned = TriggerRules(
        branch_regex=".*", image_template="app:{branch}", default_branch_tag="latest", default_branch="dev"
    )
    assert decide(pinned, RefChange(BRANCH, "dev", SHA), "main").extra_tags == ("latest",)
    same = TriggerRules(branch_regex=".*", image_template="app", default_branch_tag="latest")
    assert decide(same, RefChange(BRANCH, "main", SHA), "main").extra_tags == ()  # app is app:latest already


def test_paths_do_not_filter_tags_or_unknown_file_lists():
    rules = TriggerRules(branch_regex=".*", tag_regex=".*", paths=("src/**",), image_template="app:{ref}")
    assert decide(rules, RefChange(BRANCH, "main", SHA, changed_paths=("docs/x",))).skipped
    assert not decide(rules, RefChange(BRANCH, "main", SHA, changed_paths=None)).skipped
    assert not decide(rules, RefChange(TAG, "v1", SHA, changed_paths=("docs/x",))).skipped


# ---------------------------------------------------------------- payloads


def _load(name: str) -> dict:
    return json.loads((HOOKS / f"{name}.json").read_text())


def test_github_payloads():
    push = hook_payloads.read_event("github", {"x-github-event": "push"}, _load("github-push"))
    assert push.kind == "push" and push.repository == "Codertocat/Hello-World" and push.default_branch == "main"
    (change,) = push.changes
    assert (change.kind, change.name, change.sha, change.changed_paths) == (BRANCH, "main", SHA, ("src/app.py",))
    tag = hook_payloads.read_event("github", {"x-github-event": "push"}, _load("github-tag-push")).changes[0]
    assert (tag.kind, tag.name, tag.changed_paths) == (TAG, "v1.2.0", None)  # created with no commits: unknown
    assert hook_payloads.read_event("github", {"x-github-event": "ping"}, _load("github-ping")).kind == "ping"
    assert hook_payloads.read_event("github", {"x-github-event": "push"}, [1]).kind == "ignored"
    odd = hook_payloads.read_event("github", {"x-github-event": "push"}, {"ref": 5, "after": []})
    assert odd.kind == "ignored"


def test_gitlab_and_bitbucket_payloads():
    push = hook_payloads.read_event("gitlab", {"x-gitlab-event": "Push Hook"}, _load("gitlab-push"))
    (change,) = push.changes
    assert change.message == "fixed readme" and set(change.changed_paths) == {
        "CHANGELOG",
        "app/controller/application.rb",
    }
    bb = hook_payloads.read_event("bitbucket", {"x-event-key": "repo:push"}, _load("bitbucket-push"))
    assert bb.repository == "team-ws/app" and bb.changes[0].sha == SHA and bb.changes[0].changed_paths is None


def test_delivery_ids():
    assert hook_payloads.delivery_id("github", {"x-github-delivery": "abc"}) == "abc"
    assert hook_payloads.delivery_id("gitlab", {"idempotency-key": "k", "x-gitlab-event-uuid": "u"}) == "k"
    assert hook_payloads.delivery_id("gitlab", {"x-gitlab-event-uuid": "u"}) == "u"
    assert hook_payloads.delivery_id("bitbucket", {"x-request-uuid": "r"}) == "r"
    assert hook_payloads.delivery_id("github", {}) == ""


def test_an_annotated_tag_builds_the_commit_it_names_not_the_tag_object():
    github = _load("github-tag-push")
    github["after"] = "f" * 40  # the tag object
    (change,) = hook_payloads.read_event("github", {"x-github-event": "push"}, github).changes
    assert change.sha == SHA
    gitlab = _load("gitlab-tag-push")
    gitlab["after"] = "f" * 40
    (change,) = hook_payloads.read_event("gitlab", {"x-gitlab-event": "Tag Push Hook"}, gitlab).changes
    assert change.sha == SHA
    gitlab.update(after="0" * 40, checkout_sha=None)
    (change,) = hook_payloads.read_event("gitlab", {"x-gitlab-event": "Tag Push Hook"}, gitlab).changes
    assert change.deleted
