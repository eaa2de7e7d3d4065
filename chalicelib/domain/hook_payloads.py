"""Git hosts' webhook deliveries, read into one shape: a ping, pushes (ref changes), or something to ignore.

Only called after the delivery's signature was verified.  Each host's payload
is read defensively (a field of the wrong type is treated as absent); what is
read follows each host's documented push payloads:

- GitHub (``X-GitHub-Event``): ``ping``; ``push`` with ``ref``, ``after``,
  ``deleted``, ``head_commit.id`` and ``.message`` (an annotated tag's ``after`` is
  the tag object, ``head_commit.id`` the commit it names), ``commits[].added/modified/removed``
  (at most 20 commits: with more, the changed files are unknown),
  ``repository.full_name`` and ``repository.default_branch``.
- GitLab (``X-Gitlab-Event``): ``Push Hook`` / ``Tag Push Hook`` with ``ref``,
  ``checkout_sha`` (the commit) and ``after`` (all zeros when the ref was deleted), ``commits[]`` (at most 20;
  ``total_commits_count`` says how many there were), ``project.path_with_namespace``
  and ``project.default_branch``.  GitLab's "Test" button sends a push event.
- Bitbucket Cloud (``X-Event-Key``): ``repo:push`` with ``push.changes[]`` of
  ``new``/``old`` ({type branch|tag, name, target.hash, target.message});
  ``new`` is null when the ref was deleted.  The payload lists no changed files.
  ``diagnostics:ping`` is a ping.

The delivery id (for redelivery detection) is ``X-GitHub-Delivery``, GitLab's
``Idempotency-Key`` (else ``X-Gitlab-Event-UUID``), Bitbucket's ``X-Request-UUID``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.trigger_rules import BRANCH, TAG, RefChange

GITHUB = "github"
GITLAB = "gitlab"
BITBUCKET = "bitbucket"
HOSTS = (GITHUB, GITLAB, BITBUCKET)
MAX_CHANGES = 20
"""Pushes of more refs than this at once build only the first 20 (a mirror push is not a build request)."""
MAX_CHANGED_PATHS = 5000

PING = "ping"
PUSH = "push"
IGNORED = "ignored"


@dataclasses.dataclass(frozen=True)
class HookEvent:
    """A delivery read: ``kind`` is PING, PUSH or IGNORED (with ``note`` saying what it was)."""

    kind: str
    repository: str = ""
    changes: tuple[RefChange, ...] = ()
    default_branch: str = ""
    note: str = ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""


def delivery_id(host: str, headers: Mapping[str, str]) -> str:
    """The host's id of this delivery, the same when it is redelivered ('' when the host sent none)."""
    names = {
        GITHUB: ("x-github-delivery",),
        GITLAB: ("idempotency-key", "x-gitlab-event-uuid"),
        BITBUCKET: ("x-request-uuid",),
    }[host]
    for name in names:
        value = (headers.get(name) or "").strip()
        if value:
            return value[:200]
    return ""


def _split_ref(ref: str) -> tuple[str, str] | None:
    for prefix, kind in (("refs/heads/", BRANCH), ("refs/tags/", TAG)):
        if ref.startswith(prefix) and len(ref) > len(prefix):
            return kind, ref[len(prefix) :]
    return None


def _changed_paths(commits: list[Any], complete: bool) -> tuple[str, ...] | None:
    """Every path the commits added, modified or removed; None when the list is known to be incomplete."""
    if not complete:
        return None
    paths: list[str] = []
    for commit in commits:
        for key in ("added", "modified", "removed"):
            paths.extend(p for p in _list(_dict(commit).get(key)) if isinstance(p, str))
    if len(paths) > MAX_CHANGED_PATHS:
        return None
    return tuple(dict.fromkeys(paths))


def _github(event: str, body: dict[str, Any]) -> HookEvent:
    repo = _dict(body.get("repository"))
    name = _str(repo.get("full_name"))
    if event == "ping":
        return HookEvent(PING, name)
    if event != "push":
        return HookEvent(IGNORED, name, note=f"GitHub event {event[:60]!r} builds nothing (only push does)")
    split = _split_ref(_str(body.get("ref")))
    if split is None:
        return HookEvent(IGNORED, name, note="the push is not to a branch or a tag")
    commits = _list(body.get("commits"))
    head = _dict(body.get("head_commit"))
    # an annotated tag's "after" is the tag object; head_commit.id is the commit it names (for a branch: the same)
    sha = "" if body.get("deleted") is True else (_str(head.get("id")) or _str(body.get("after")))
    # a new branch made from existing commits lists none: its changed files are unknown, not "none"
    complete = len(commits) < MAX_CHANGES and not (body.get("created") is True and not commits)
    change = RefChange(split[0], split[1], sha, _str(head.get("message")), _changed_paths(commits, complete))
    return HookEvent(PUSH, name, (change,), _str(repo.get("default_branch")))


def _gitlab(event: str, body: dict[str, Any]) -> HookEvent:
    project = _dict(body.get("project"))
    name = _str(project.get("path_with_namespace"))
    if event not in ("Push Hook", "Tag Push Hook"):
        return HookEvent(IGNORED, name, note=f"GitLab event {event[:60]!r} builds nothing (only pushes do)")
    split = _split_ref(_str(body.get("ref")))
    if split is None:
        return HookEvent(IGNORED, name, note="the push is not to a branch or a tag")
    # checkout_sha is the commit (an annotated tag's "after" is the tag object); null when the ref was deleted
    after = _str(body.get("after"))
    sha = "" if after.strip("0") == "" else (_str(body.get("checkout_sha")) or after)
    commits = _list(body.get("commits"))
    total = body.get("total_commits_count")
    created = _str(body.get("before")).strip("0") == ""
    complete = isinstance(total, int) and total <= len(commits) and not (created and not commits)
    message = ""
    for commit in commits:  # the head commit is the one whose id is the new sha
        if _str(_dict(commit).get("id")) == sha:
            message = _str(_dict(commit).get("message"))
    if not message:
        message = _str(body.get("message"))  # a tag push's annotation
    change = RefChange(split[0], split[1], sha, message, _changed_paths(commits, complete))
    return HookEvent(PUSH, name, (change,), _str(project.get("default_branch")))


def _bitbucket(event: str, body: dict[str, Any]) -> HookEvent:
    repo = _dict(body.get("repository"))
    name = _str(repo.get("full_name"))
    if event == "diagnostics:ping":
        return HookEvent(PING, name)
    if event != "repo:push":
        return HookEvent(IGNORED, name, note=f"Bitbucket event {event[:60]!r} builds nothing (only repo:push does)")
    changes = []
    for raw in _list(_dict(body.get("push")).get("changes"))[:MAX_CHANGES]:
        raw = _dict(raw)
        new, old = _dict(raw.get("new")), _dict(raw.get("old"))
        ref = new or old
        kind = {"branch": BRANCH, "tag": TAG}.get(_str(ref.get("type")))
        ref_name = _str(ref.get("name"))
        if kind is None or not ref_name:
            continue
        target = _dict(new.get("target"))
        sha = _str(target.get("hash")) if new else ""
        changes.append(RefChange(kind, ref_name, sha, _str(target.get("message")), None))
    main = _dict(repo.get("mainbranch"))
    return HookEvent(PUSH, name, tuple(changes), _str(main.get("name")))


def read_event(host: str, headers: Mapping[str, str], body: Any) -> HookEvent:
    """The delivery as a :class:`HookEvent` (``headers`` with lowercase names, ``body`` the parsed JSON)."""
    if not isinstance(body, dict):
        return HookEvent(IGNORED, note="the payload is not a JSON object")
    if host == GITHUB:
        return _github((headers.get("x-github-event") or "").strip(), body)
    if host == GITLAB:
        return _gitlab((headers.get("x-gitlab-event") or "").strip(), body)
    return _bitbucket((headers.get("x-event-key") or "").strip(), body)
