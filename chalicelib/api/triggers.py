"""Build triggers: ``/api/v1/triggers`` (create, list, show, delete) and ``POST /api/v1/hooks/{trigger_id}``.

A trigger is created from a JSON body checked field by field (400 naming the
field); its build options, credentials and git token go through the build
request's own parser (:func:`chalicelib.api.validation.validate_build`, fed a
sample of what a push would build), so a trigger accepts exactly what a build
request does.  Creating one answers its webhook URL and a generated secret,
once; the secret and the credentials are only ever stored sealed
(:mod:`chalicelib.stores.triggers`) and never answered again.

A hook delivery is checked before anything in it is read: the trigger is
looked up, and the host's signature over the raw body verified with the
trigger's secret.  An unknown trigger and a missing or wrong signature get the
same 401.  Then: pings answer ``pong``; pushes become zero or more builds
(:func:`chalicelib.domain.trigger_rules.decide` for each pushed ref), each
fetching exactly the pushed commit; a redelivered delivery id builds nothing new;
a newer push to a ref cancels the still-live build of the older one (``supersede``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.api import hook_signatures, notify_fields, submit
from chalicelib.api.request_body import parse_json
from chalicelib.api.validation import (
    SOURCE_FIELDS,
    BuildRequest,
    validate_build,
    validate_git_ref,
    validate_image_name,
    validate_registry_host,
)
from chalicelib.domain import hook_payloads, patterns, trigger_rules
from chalicelib.domain.build_options import MAX_TAGS, BuildOptions
from chalicelib.domain.errors import (
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TransitionConflict,
    Unauthorized,
)
from chalicelib.domain.hook_payloads import BITBUCKET, GITHUB, GITLAB, HOSTS
from chalicelib.domain.jobs import Job, Phase, SourceKind
from chalicelib.domain.settings import Settings
from chalicelib.stores import history, notifications
from chalicelib.stores import triggers as store
from chalicelib.stores.apikeys import Principal
from chalicelib.stores.sealing import Credentials
from chalicelib.stores.services import Services

log = logging.getLogger(__name__)

MAX_TRIGGER_BODY_BYTES = 64 * 1024
MAX_LABEL_CHARS = 100
RECENT_BUILDS = 10
SUPERSEDED_REASON = "superseded by a newer push to {ref} (job {job_id})"
HOOK_REFUSED = "the delivery is not signed with this trigger's secret (or there is no such trigger)"
TRIGGER_FIELDS = (
    "host",
    "repository",
    "branch_regex",
    "tag_regex",
    "paths",
    "image_template",
    "default_branch_tag",
    "default_branch",
    "supersede",
    "notify_url",
    "label",
)
_COMMIT = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?", re.ASCII)
_REPOSITORY: dict[str, tuple[re.Pattern[str] | str, str]] = {
    GITHUB: (
        re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,37}[A-Za-z0-9])?/[A-Za-z0-9._-]{1,100}", re.ASCII),
        "owner/name",
    ),
    GITLAB: (patterns.GITLAB_PROJECT, "group/subgroup/project (the full path)"),
    BITBUCKET: (
        re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}/[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}", re.ASCII),
        "workspace/repo",
    ),
}
_AWS_ERRORS = (BotoCoreError, ClientError)


# ------------------------------------------------------------------ creating


def _repository(data: Mapping[str, Any], host: str) -> str:
    value = data.get("repository")
    pattern, shape = _REPOSITORY[host]
    refused = InvalidRequest(f"must be the repository as {shape}", field="repository")
    if not isinstance(value, str):
        raise refused
    ok = pattern.fullmatch(value) if isinstance(pattern, re.Pattern) else patterns.matches(pattern, value)
    if not ok or value.isdigit() or any(part in (".", "..") for part in value.split("/")):
        raise refused
    return value


def _sample_source(host: str, repository: str) -> dict[str, str]:
    """The build-request source fields of ``repository`` at a sample ref (to run the build parser)."""
    if host == GITHUB:
        user, repo = repository.split("/", 1)
        return {"github_username": user, "github_reponame": repo, "github_tag": "main"}
    if host == GITLAB:
        return {"gitlab_project": repository, "gitlab_ref": "main"}
    workspace, repo = repository.split("/", 1)
    return {"bitbucket_workspace": workspace, "bitbucket_repo": repo, "bitbucket_ref": "main"}


def validate_notify_url(value: Any, settings: Settings) -> str:
    """A trigger's ``notify_url``: absent (""), or checked exactly as a build's (:mod:`chalicelib.api.notify_fields`),
    so a trigger cannot keep a URL the sender would refuse."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise InvalidRequest("must be an https:// URL", field="notify_url")
    return notify_fields.validate_notify_url(value, settings)


def _refuse_source_fields(data: Mapping[str, Any]) -> None:
    """400 for a build request's source fields or ``image_name``: a push supplies the source, the template the image."""
    source_given = [name for name in SOURCE_FIELDS if name in data] + (["image_name"] if "image_name" in data else [])
    if source_given:
        raise InvalidRequest(
            "is not a trigger field: a trigger's source is its repository at the pushed commit, and its "
            "image is image_template",
            field=source_given[0],
        )


def _ref_regexes(data: Mapping[str, Any]) -> tuple[str, str]:
    """``branch_regex`` and ``tag_regex`` ("" when absent); at least one must be given."""
    branch_regex = tag_regex = ""
    if data.get("branch_regex") not in (None, ""):
        branch_regex = trigger_rules.safe_regex(data["branch_regex"], "branch_regex").pattern
    if data.get("tag_regex") not in (None, ""):
        tag_regex = trigger_rules.safe_regex(data["tag_regex"], "tag_regex").pattern
    if not branch_regex and not tag_regex:
        raise InvalidRequest(
            "give branch_regex, tag_regex or both (e.g. 'main' or 'v[0-9.]+'): which refs build", field="branch_regex"
        )
    return branch_regex, tag_regex


def _default_branch(data: Mapping[str, Any]) -> str:
    """``default_branch``: absent (""), or a valid branch name."""
    if data.get("default_branch") in (None, ""):
        return ""
    if not isinstance(data["default_branch"], str):
        raise InvalidRequest("must be a branch name", field="default_branch")
    return validate_git_ref(data["default_branch"], "default_branch")


def _supersede(data: Mapping[str, Any]) -> bool:
    """``supersede``: true when absent."""
    supersede = data.get("supersede")
    supersede = True if supersede is None else supersede
    if not isinstance(supersede, bool):
        raise InvalidRequest("must be true or false", field="supersede")
    return supersede


def _label(data: Mapping[str, Any]) -> str:
    """``label``: absent (""), or a short text without control characters."""
    label = data.get("label") or ""
    if (
        not isinstance(label, str)
        or len(label) > MAX_LABEL_CHARS
        or not patterns.matches(patterns.NO_CONTROL_CHARS, label)
    ):
        raise InvalidRequest(f"must be at most {MAX_LABEL_CHARS} characters without control characters", field="label")
    return label


def _sample_build(
    data: Mapping[str, Any], host: str, repository: str, template: str, settings: Settings
) -> BuildRequest:
    """The build request's own parser run on the body: options, engine, credentials and git token, as a push would
    submit them (an image_name refusal is the template's)."""
    sample = {k: v for k, v in data.items() if k not in TRIGGER_FIELDS}
    sample.update(_sample_source(host, repository), image_name=trigger_rules.render(template, trigger_rules.SAMPLE))
    try:
        return validate_build(sample, settings)
    except InvalidRequest as exc:
        if exc.field == "image_name":
            raise InvalidRequest(exc.message.split(": ", 1)[-1], field="image_template") from None
        raise


def parse_trigger(data: Any, caller: Principal, settings: Settings) -> tuple[store.Trigger, Credentials]:
    """A trigger (not yet stored) and its credentials from a create body; 400 naming the field."""
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object with the trigger's fields")
    host = data.get("host")
    if host not in HOSTS:
        raise InvalidRequest(f"must be one of {', '.join(HOSTS)}", field="host")
    repository = _repository(data, host)
    _refuse_source_fields(data)
    branch_regex, tag_regex = _ref_regexes(data)
    template = trigger_rules.validate_image_template(data.get("image_template"))
    default_branch = _default_branch(data)
    supersede = _supersede(data)
    label = _label(data)
    rules = trigger_rules.TriggerRules(
        branch_regex=branch_regex,
        tag_regex=tag_regex,
        paths=trigger_rules.validate_path_filters(data.get("paths")),
        image_template=template,
        default_branch_tag=trigger_rules.validate_default_branch_tag(data.get("default_branch_tag")),
        default_branch=default_branch,
    )
    request = _sample_build(data, host, repository, template, settings)
    trigger = store.Trigger(
        trigger_id=str(uuid.uuid4()),
        owner=caller.owner,
        host=host,
        repository=repository,
        rules=rules,
        options=request.options.to_item(),
        engine=request.engine,
        supersede=supersede,
        notify_url=validate_notify_url(data.get("notify_url"), settings),
        label=label,
        has_git_token=bool(request.credentials.source_token),
        has_push_credentials=request.credentials.present,
    )
    return trigger, request.credentials


def public_base(headers: Mapping[str, str], context: Mapping[str, Any], settings: Settings) -> str:
    """The API's public base URL: ``BOATYARD_PUBLIC_URL``, or the one this request came to (lowercase header names)."""
    if settings.public_url:
        return settings.public_url
    host = headers.get("host") or str(context.get("domainName") or "localhost")
    scheme = (headers.get("x-forwarded-proto") or ("https" if host.endswith(".amazonaws.com") else "http")).split(",")[
        0
    ]
    stage = str(context.get("stage") or "")
    prefix = f"/{stage}" if stage and host.endswith(".amazonaws.com") else ""
    return f"{scheme.strip()}://{host}{prefix}"


def webhook_url(trigger_id: str, headers: Mapping[str, str], context: Mapping[str, Any], settings: Settings) -> str:
    """Where the git host must POST: ``BOATYARD_PUBLIC_URL`` or the URL this request came to."""
    return f"{public_base(headers, context, settings)}/api/v1/hooks/{trigger_id}"


def create_trigger(
    services: Services,
    raw: bytes | str | None,
    headers: Mapping[str, str],
    context: Mapping[str, Any],
    caller: Principal,
) -> dict[str, Any]:
    """Create a trigger: its view plus ``WebhookUrl`` and ``Secret`` (the only time the secret is shown)."""
    settings = services.settings
    body = raw.encode("utf-8") if isinstance(raw, str) else (raw or b"")
    if len(body) > MAX_TRIGGER_BODY_BYTES:
        raise PayloadTooLarge(f"a trigger's body may be at most {MAX_TRIGGER_BODY_BYTES} bytes")
    if not body.strip():
        raise InvalidRequest("the request body is empty; send the trigger's fields as a JSON object")
    trigger, credentials = parse_trigger(parse_json(body), caller, settings)
    secret = secrets.token_urlsafe(32)
    try:
        if services.triggers.count_for(caller.owner) >= settings.quota_triggers:
            raise InvalidRequest(f"an owner may have at most {settings.quota_triggers} triggers; delete one first")
        stored = services.triggers.create(trigger, secret, credentials)
    except _AWS_ERRORS as exc:
        log.error("trigger %s: storing failed (%s)", trigger.trigger_id, type(exc).__name__)
        raise ServiceUnavailable("storage is unavailable; try again shortly") from None
    log.info("trigger %s created by %s for %s %s", stored.trigger_id, caller.owner, stored.host, stored.repository)
    headers_lower = {k.lower(): v for k, v in headers.items()}
    return {
        **stored.view(),
        "WebhookUrl": webhook_url(stored.trigger_id, headers_lower, context, settings),
        "Secret": secret,
        "SignatureHeader": hook_signatures.SIGNATURE_HEADERS[stored.host],
    }


# ------------------------------------------------------------------ reading and deleting


class TriggerNotFound(NotFound):
    """No trigger of the caller has that id (404, the same for someone else's)."""


def parse_trigger_id(value: str) -> str:
    """A trigger id from the path (lowercased); anything else is a 404."""
    if not patterns.matches(patterns.UUID, value or ""):
        raise TriggerNotFound("no trigger with that identifier (trigger identifiers are UUIDs)")
    return value.lower()


def owned_trigger(services: Services, trigger_id: str, caller: Principal) -> store.Trigger:
    """The caller's trigger; 404 (as for an unknown id) when it is someone else's."""
    trigger = services.triggers.find(parse_trigger_id(trigger_id))
    if trigger is None or not (trigger.owner == caller.owner or caller.is_admin):
        raise TriggerNotFound(f"no trigger with identifier {trigger_id}")
    return trigger


def list_triggers(services: Services, caller: Principal) -> dict[str, Any]:
    """``{"Triggers": [...]}``: the caller's triggers, newest first."""
    return {"Triggers": [t.view() for t in services.triggers.list_for(caller.owner)]}


def trigger_body(services: Services, trigger_id: str, caller: Principal) -> dict[str, Any]:
    """One trigger and its recent builds (newest first, as the history shows them)."""
    trigger = owned_trigger(services, trigger_id, caller)
    builds = [history.history_entry(job) for job in services.triggers.recent_builds(trigger.trigger_id, RECENT_BUILDS)]
    return {**trigger.view(), "Builds": builds}


def delete_trigger(services: Services, trigger_id: str, caller: Principal) -> dict[str, Any]:
    """Delete the caller's trigger (its builds stay in the history)."""
    trigger = owned_trigger(services, trigger_id, caller)
    if not services.triggers.delete(trigger.trigger_id, trigger.owner):
        raise TriggerNotFound(f"no trigger with identifier {trigger_id}")
    return {"TriggerId": trigger.trigger_id, "Deleted": True}


# ------------------------------------------------------------------ hooks


@dataclasses.dataclass(frozen=True)
class HookAnswer:
    """The status and body a hook delivery gets."""

    status: int
    body: dict[str, Any]


def _source_at(trigger: store.Trigger, sha: str) -> tuple[SourceKind, dict[str, str]]:
    """The job source of the trigger's repository at exactly ``sha``."""
    if trigger.host == GITHUB:
        user, repo = trigger.repository.split("/", 1)
        return SourceKind.GITHUB, {"github_username": user, "github_reponame": repo, "github_tag": sha}
    if trigger.host == GITLAB:
        return SourceKind.GITLAB, {"gitlab_project": trigger.repository, "gitlab_ref": sha}
    workspace, repo = trigger.repository.split("/", 1)
    return SourceKind.BITBUCKET, {"bitbucket_workspace": workspace, "bitbucket_repo": repo, "bitbucket_ref": sha}


def _options(trigger: store.Trigger, extra_tags: tuple[str, ...]) -> BuildOptions:
    options = BuildOptions.from_item(trigger.options)
    if extra_tags:
        tags = tuple(dict.fromkeys((*options.tags, *extra_tags)))[:MAX_TAGS]
        options = dataclasses.replace(options, tags=tags)
    return options


def _subscriber(
    services: Services,
    trigger: store.Trigger,
    secret: str,
    credentials: Credentials,
    sha: str,
    job_link: Callable[[str], str],
) -> Callable[[Job], None] | None:
    """What subscribes a new job to the trigger's notifications (GitHub commit status, notify_url), if anything."""
    wants_status = trigger.host == GITHUB and bool(credentials.source_token)
    if not trigger.notify_url and not wants_status:
        return None

    def subscribe(job: Job) -> None:
        if trigger.notify_url:
            services.notifications.subscribe(
                job.job_id, job.owner, notifications.WebhookTarget(trigger.notify_url, secret)
            )
        if wants_status:
            target = notifications.GithubStatusTarget(
                trigger.repository, sha, credentials.source_token, target_url=job_link(job.job_id)
            )
            services.notifications.subscribe(job.job_id, job.owner, target)

    return subscribe


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _verified_trigger(
    services: Services, trigger_id: str, headers: dict[str, str], body: bytes
) -> tuple[store.Trigger, str]:
    """The trigger and its secret when the delivery's signature is right; one 401 for every other case."""
    refused = Unauthorized(HOOK_REFUSED)
    if not patterns.matches(patterns.UUID, trigger_id or ""):
        raise refused
    trigger = services.triggers.find(trigger_id.lower())
    if trigger is None:
        hook_signatures.verify(GITHUB, secrets.token_urlsafe(32), headers, body)  # the same work as a known trigger
        raise refused
    secret = services.triggers.secret_of(trigger)
    if not hook_signatures.verify(trigger.host, secret, headers, body):
        log.info("hook %s: refused a delivery with a missing or wrong signature", trigger.trigger_id)
        raise refused
    return trigger, secret


def _same_repository(trigger: store.Trigger, event_repository: str) -> bool:
    return not event_repository or event_repository.lower() == trigger.repository.lower()


def handle_hook(
    services: Services,
    trigger_id: str,
    raw: bytes | str | None,
    headers: Mapping[str, str],
    context: Mapping[str, Any] | None = None,
) -> HookAnswer:
    """A git host's delivery: verify, then ping / ignore / build (see the module doc)."""
    settings = services.settings
    lowered = _lower(headers)
    # links to a job's page in the web UI: its CloudFront origin when deployed, else the API serves it at /
    base_url = settings.cors_origin if settings.cors_origin != "*" else public_base(lowered, context or {}, settings)
    declared = (lowered.get("content-length") or "").strip()
    body = raw.encode("utf-8") if isinstance(raw, str) else (raw or b"")
    if (declared.isdigit() and int(declared) > settings.hook_max_body_bytes) or len(
        body
    ) > settings.hook_max_body_bytes:
        raise PayloadTooLarge(f"a delivery may be at most {settings.hook_max_body_bytes} bytes")
    trigger, secret = _verified_trigger(services, trigger_id, lowered, body)
    event = hook_payloads.read_event(trigger.host, lowered, parse_json(body))
    base = {"TriggerId": trigger.trigger_id}
    if event.kind == hook_payloads.PING:
        return HookAnswer(200, {**base, "Message": "pong", "Builds": []})
    if event.kind == hook_payloads.IGNORED:
        return HookAnswer(200, {**base, "Message": event.note, "Builds": []})
    if not _same_repository(trigger, event.repository):
        return HookAnswer(
            200,
            {
                **base,
                "Builds": [],
                "Message": (
                    f"the delivery is for {event.repository[:200]!r}; this trigger builds {trigger.repository!r}"
                ),
            },
        )
    delivery = hook_payloads.delivery_id(trigger.host, lowered) or "body:" + hashlib.sha256(body).hexdigest()
    earlier = services.triggers.claim_delivery(trigger.trigger_id, delivery)
    if earlier is not None:
        return HookAnswer(
            200,
            {
                **base,
                "Duplicate": True,
                "Builds": [{"JobIdentifier": j} for j in earlier.get("jobs") or []],
                "Message": "this delivery was received before; it builds nothing new",
            },
        )
    wanted, skipped = _plan(trigger, event, settings)
    made = _queue_builds(services, trigger, secret, wanted, delivery, base_url)
    builds: list[dict[str, Any]] = []
    superseded: list[str] = []
    for job, decision in made:
        services.triggers.link_build(trigger.trigger_id, job)
        builds.append(_build_entry(job, decision))
        if trigger.supersede:
            older = services.triggers.swap_ref(trigger.trigger_id, decision.change.ref, job.job_id, decision.change.sha)
            if older and _cancel_superseded(services, older, decision.change.ref, job.job_id):
                superseded.append(older)
    answer: dict[str, Any] = {**base, "Builds": builds}
    if skipped:
        answer["Skipped"] = skipped
    if superseded:
        answer["Superseded"] = superseded
    if not builds:
        answer["Message"] = (
            "nothing to build: " + "; ".join(s["Reason"] for s in skipped) if skipped else "nothing to build"
        )
    log.info(
        "hook %s: %d build(s), %d skipped, %d superseded",
        trigger.trigger_id,
        len(builds),
        len(skipped),
        len(superseded),
    )
    return HookAnswer(202 if builds else 200, answer)


def _plan(
    trigger: store.Trigger, event: hook_payloads.HookEvent, settings: Settings
) -> tuple[list[trigger_rules.Decision], list[dict[str, str]]]:
    """The pushed refs that build, and ``{Ref, Reason}`` for those that do not."""
    wanted: list[trigger_rules.Decision] = []
    skipped: list[dict[str, str]] = []
    for change in event.changes:
        decision = trigger_rules.decide(trigger.rules, change, event.default_branch)
        reason = decision.skipped or _unbuildable(decision, settings)
        if reason:
            skipped.append({"Ref": change.ref, "Reason": reason})
        else:
            wanted.append(decision)
    return wanted, skipped


def _queue_builds(
    services: Services,
    trigger: store.Trigger,
    secret: str,
    wanted: list[trigger_rules.Decision],
    delivery: str,
    base_url: str,
) -> list[tuple[Job, trigger_rules.Decision]]:
    """Submit each wanted build; the delivery records the jobs made, or is forgotten if none could be."""
    made: list[tuple[Job, trigger_rules.Decision]] = []
    try:
        credentials = services.triggers.credentials_of(trigger) if wanted else Credentials()
        for decision in wanted:
            made.append((_submit(services, trigger, secret, credentials, decision, base_url), decision))
    except Exception:
        if not made:  # nothing was built: let the host's redelivery try again
            try:
                services.triggers.release_delivery(trigger.trigger_id, delivery)
            except _AWS_ERRORS:
                log.exception("hook %s: could not forget delivery after a failure", trigger.trigger_id)
        raise
    finally:
        if made:
            services.triggers.record_delivery(trigger.trigger_id, delivery, [job.job_id for job, _ in made])
    return made


def _build_entry(job: Job, decision: trigger_rules.Decision) -> dict[str, Any]:
    """One build of a hook's answer."""
    entry: dict[str, Any] = {
        "JobIdentifier": job.job_id,
        "ImageName": job.image_name,
        "Ref": decision.change.ref,
        "Commit": decision.change.sha,
    }
    if decision.extra_tags:
        entry["ExtraTags"] = list(decision.extra_tags)
    return entry


def _unbuildable(decision: trigger_rules.Decision, settings: Settings) -> str:
    """Why a decided build cannot be submitted after all ('' when it can): a bad commit id or image name."""
    if not _COMMIT.fullmatch(decision.change.sha):
        return "the push names no valid commit id"
    try:
        validate_registry_host(validate_image_name({"image_name": decision.image_name}), settings)
    except InvalidRequest as exc:
        return f"the image template renders as {decision.image_name[:200]!r}: {exc.message.split(': ', 1)[-1]}"
    return ""


def _submit(
    services: Services,
    trigger: store.Trigger,
    secret: str,
    credentials: Credentials,
    decision: trigger_rules.Decision,
    base_url: str,
) -> Job:
    """Submit one build of the pushed commit, as the trigger's owner."""
    kind, fields = _source_at(trigger, decision.change.sha)
    request = BuildRequest(
        decision.image_name, kind, fields, credentials, _options(trigger, decision.extra_tags), trigger.engine
    )
    origin = {"trigger_id": trigger.trigger_id, "ref": decision.change.ref, "commit": decision.change.sha}
    job_id = submit.submit_build(
        services,
        request,
        None,
        Principal(trigger.owner),
        origin=origin,
        before_enqueue=_subscriber(
            services, trigger, secret, credentials, decision.change.sha, lambda job_id: f"{base_url}/#job={job_id}"
        ),
    )
    return services.jobs.get_job(job_id)


def _cancel_superseded(services: Services, job_id: str, ref: str, newer: str) -> bool:
    """Cancel the older build of a ref if it is still queued or running; True when it was cancelled."""
    try:
        services.jobs.fail(job_id, SUPERSEDED_REASON.format(ref=ref, job_id=newer), target=Phase.CANCELLED)
    except TransitionConflict:
        return False  # it had already ended
    log.info("job %s: cancelled, superseded by %s on %s", job_id, newer, ref)
    return True
