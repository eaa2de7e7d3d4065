"""Validation of build requests and path/query parameters.

Every rejection is an :class:`InvalidRequest` (400) or :class:`PayloadTooLarge`
(413) naming the field, with a message a person can act on.  Values of
credential fields are never echoed.  Unknown fields are ignored, as the seed did.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from chalicelib.api.engine_fields import validate_engine_fields
from chalicelib.api.notify_fields import NotifyRequest, validate_notify_fields
from chalicelib.api.url_fields import url_parts
from chalicelib.domain import patterns
from chalicelib.domain.build_options import BuildOptions, validate_options
from chalicelib.domain.errors import InvalidRequest, JobNotFound, PayloadTooLarge
from chalicelib.domain.image_ref import InvalidReference, parse_image_ref
from chalicelib.domain.jobs import SourceKind
from chalicelib.domain.registry_hosts import registry_refusal
from chalicelib.domain.settings import Settings
from chalicelib.stores import sealing
from chalicelib.stores.sealing import Credentials

MAX_IMAGE_NAME_CHARS = 255
MAX_GITHUB_USERNAME_CHARS = 39
MAX_PASSWORD_CHARS = 1024
MAX_USERNAME_CHARS = 256
MAX_EMAIL_CHARS = 320
MAX_REGISTRY_AUTHS = 8
MAX_SEALED_BYTES = 4096  # KMS Encrypt's plaintext limit; chalicelib.stores.sealing encrypts the JSON of the credentials

GITHUB_FIELDS = ("github_username", "github_reponame", "github_tag")
GITLAB_FIELDS = ("gitlab_project", "gitlab_ref")
BITBUCKET_FIELDS = ("bitbucket_workspace", "bitbucket_repo", "bitbucket_ref")
SOURCE_FIELDS = ("dockerfile", "tar_url", *GITHUB_FIELDS, *GITLAB_FIELDS, *BITBUCKET_FIELDS, "upload_id")
"""Every field that names a build source (a trigger's body may hold none of them)."""
SOURCES_HELP = (
    "give exactly one source: dockerfile, tar_url, github_username+github_reponame+github_tag, "
    "gitlab_project+gitlab_ref, bitbucket_workspace+bitbucket_repo+bitbucket_ref, "
    "upload_id, or a multipart TarFile part"
)
# the secret that reads a private repository of each git host (sealed like the password)
TOKEN_FIELDS = {"github_*": "github_token", "gitlab_*": "gitlab_token", "bitbucket_*": "bitbucket_app_password"}
MAX_GITLAB_PROJECT_CHARS = 255

_CURSOR_RE = re.compile(r"[0-9]{1,10}", re.ASCII)
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclasses.dataclass(frozen=True)
class BuildRequest:
    """A validated build request.

    ``fields`` holds the validated source fields (``dockerfile``, ``tar_url``,
    the three ``github_*`` or ``upload_id``); it is empty for a multipart
    upload, whose archive travels beside the request.  ``options`` are the build
    options (:mod:`chalicelib.domain.build_options`).
    """

    image_name: str
    kind: SourceKind
    fields: dict[str, str]
    credentials: Credentials = dataclasses.field(default_factory=Credentials, repr=False)
    options: BuildOptions = dataclasses.field(default_factory=BuildOptions)
    engine: str = ""  # "" = the deployment's choice (chalicelib.api.engine_fields)
    notify: NotifyRequest | None = dataclasses.field(default=None, repr=False)  # a per-job notification subscription


def _has_control_chars(text: str) -> bool:
    return not patterns.matches(patterns.NO_CONTROL_CHARS, text)


def _given(data: Mapping[str, Any], name: str) -> bool:
    """A field counts as given unless it is absent, null or the empty string (the seed's UI sent blanks)."""
    value = data.get(name)
    return value is not None and value != ""


def _string(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest("must be a string", field=name)
    if _SURROGATE_RE.search(value):
        raise InvalidRequest("must be valid Unicode text (it holds an unpaired surrogate)", field=name)
    return value


def validate_image_name(data: Mapping[str, Any]) -> str:
    """The ``image_name`` field: required, a pushable Docker image reference."""
    if not _given(data, "image_name"):
        raise InvalidRequest("is required (the image to build and push, e.g. user/image:tag)", field="image_name")
    value = _string(data, "image_name")
    if len(value) > MAX_IMAGE_NAME_CHARS:
        raise InvalidRequest(f"must be at most {MAX_IMAGE_NAME_CHARS} characters", field="image_name")
    try:
        parse_image_ref(value)
    except InvalidReference as exc:
        raise InvalidRequest(f"{value[:300]!r} is not a valid image reference: {exc}", field="image_name") from None
    if not patterns.matches(patterns.IMAGE_NAME, value):  # the documented pattern is the final word
        raise InvalidRequest(f"{value[:300]!r} is not a valid image reference", field="image_name")
    return value


def validate_registry_host(image_name: str, settings: Settings) -> None:
    """Refuse an ``image_name`` whose registry is this host's loopback, a private, link-local or CGNAT address."""
    if settings.allow_private_registries:
        return
    reason = registry_refusal(parse_image_ref(image_name).domain)
    if reason:
        raise InvalidRequest(f"{reason}; builds push only to registries on public addresses", field="image_name")


def validate_credentials(data: Mapping[str, Any], source: str = "") -> Credentials:
    """``username``, ``password``, ``email``, ``registry_auths`` and the source's token: values are never echoed."""
    username = _string(data, "username")
    password = _string(data, "password")
    email = _string(data, "email")
    if len(username) > MAX_USERNAME_CHARS or _has_control_chars(username):
        raise InvalidRequest(
            f"must be at most {MAX_USERNAME_CHARS} characters without control characters", field="username"
        )
    if len(password) > MAX_PASSWORD_CHARS or _has_control_chars(password):
        raise InvalidRequest(
            f"must be at most {MAX_PASSWORD_CHARS} characters without control characters", field="password"
        )
    if len(email) > MAX_EMAIL_CHARS or _has_control_chars(email):
        raise InvalidRequest(f"must be at most {MAX_EMAIL_CHARS} characters without control characters", field="email")
    auths = validate_registry_auths(data.get("registry_auths"))
    token_field = TOKEN_FIELDS.get(source, "")
    for field in TOKEN_FIELDS.values():
        if field != token_field and _given(data, field):
            host = {"github_token": "GitHub", "gitlab_token": "GitLab", "bitbucket_app_password": "Bitbucket"}[field]
            raise InvalidRequest(f"is only for a {host} source", field=field)
    token = validate_token(data, token_field) if token_field else ""
    token_user = ""
    if token_field == "bitbucket_app_password" and (token or _given(data, "bitbucket_username")):
        token_user = _string(data, "bitbucket_username")
        if not token or not patterns.matches(patterns.BITBUCKET_NAME, token_user):
            raise InvalidRequest(
                "a Bitbucket app password needs bitbucket_username and bitbucket_app_password together "
                "(a username is 1 to 100 letters, digits, '_', '.' or '-')",
                field="bitbucket_username" if token else "bitbucket_app_password",
            )
    credentials = Credentials(
        username=username,
        password=password,
        email=email,
        registry_auths=auths,
        source_token=token,
        source_user=token_user,
    )
    if len(sealing.sealed_json(credentials).encode("utf-8")) > MAX_SEALED_BYTES:
        field = "registry_auths" if auths else token_field if token else "password"
        raise InvalidRequest(
            "the credentials together (username, password, email, registry_auths and the source's token) are too "
            f"long to seal (KMS takes at most {MAX_SEALED_BYTES} bytes)",
            field=field,
        )
    return credentials


def validate_registry_auths(value: Any) -> dict[str, dict[str, str]]:
    """``registry_auths``: {registry host: {username, password}} for private base images; never echoed."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidRequest("must be an object of registry host: {username, password}", field="registry_auths")
    if len(value) > MAX_REGISTRY_AUTHS:
        raise InvalidRequest(f"may name at most {MAX_REGISTRY_AUTHS} registries", field="registry_auths")
    auths: dict[str, dict[str, str]] = {}
    for host, auth in value.items():
        if len(host) > MAX_IMAGE_NAME_CHARS or not patterns.matches(patterns.REGISTRY_HOST, host):
            raise InvalidRequest(
                f"{host[:100]!r} is not a registry host (e.g. registry.example.com, host:5000, docker.io)",
                field="registry_auths",
            )
        if not isinstance(auth, dict) or set(auth) != {"username", "password"}:
            raise InvalidRequest(
                f'the entry for {host!r} must be {{"username": ..., "password": ...}}', field="registry_auths"
            )
        for key, limit in (("username", MAX_USERNAME_CHARS), ("password", MAX_PASSWORD_CHARS)):
            item = auth[key]
            if not isinstance(item, str) or not item or len(item) > limit or _has_control_chars(item):
                raise InvalidRequest(
                    f"the {key} for {host!r} must be 1 to {limit} characters without control characters",
                    field="registry_auths",
                )
        auths[host.lower()] = {"username": auth["username"], "password": auth["password"]}
    return auths


def validate_token(data: Mapping[str, Any], field: str) -> str:
    """An access token field (``github_token`` ...): printable ASCII without spaces, at most 255; never echoed."""
    if not _given(data, field):
        return ""
    value = _string(data, field)
    if not patterns.matches(patterns.TOKEN, value):
        raise InvalidRequest("must be 1 to 255 printable ASCII characters without spaces", field=field)
    return value


def validate_dockerfile(text: str, settings: Settings) -> str:
    """Dockerfile text: not blank, at most ``max_dockerfile_bytes`` UTF-8 bytes (413 beyond)."""
    if not re.search(r"\S", text):
        raise InvalidRequest("is empty", field="dockerfile")
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > settings.max_dockerfile_bytes:
        raise PayloadTooLarge(
            f"dockerfile: is {size} bytes, more than the limit of {settings.max_dockerfile_bytes}; "
            "send a tarball (tar_url, a multipart TarFile or POST /api/v1/uploads) instead"
        )
    return text


def validate_tar_url(url: str) -> str:
    """An absolute http(s) URL with a host, at most 2048 characters, no whitespace or credentials."""
    parts = url_parts(url, "tar_url")
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidRequest("must be an http:// or https:// URL", field="tar_url")
    if not parts.hostname:
        raise InvalidRequest("must name a host", field="tar_url")
    if "@" in parts.netloc:
        raise InvalidRequest(
            "must not contain credentials (user:password@); use a public or pre-signed URL", field="tar_url"
        )
    if not patterns.matches(patterns.TAR_URL, url):
        raise InvalidRequest(
            "must be a plain-ASCII http(s) URL: a host name, an optional port up to 65535, then a path "
            "(percent-encode anything else)",
            field="tar_url",
        )
    return url


def validate_git_ref(tag: str, field: str = "github_tag") -> str:
    """A branch, tag (per git's check-ref-format rules) or commit sha, at most 255 characters."""
    if not patterns.matches(patterns.GIT_REF, tag):
        raise InvalidRequest(
            "is not a valid git tag or branch name (no spaces, control characters, ~ ^ : ? * [ \\, "
            "'..', '@{', leading '-' or '/', trailing '/' or '.', at most 255 characters)",
            field=field,
        )
    return tag


def _all_given(data: Mapping[str, Any], fields: tuple[str, ...], what: str) -> None:
    missing = [name for name in fields if not _given(data, name)]
    if missing:
        raise InvalidRequest(
            f"a {what} source needs {', '.join(fields)} together; missing: {', '.join(missing)}", field=missing[0]
        )


def validate_gitlab(data: Mapping[str, Any]) -> dict[str, str]:
    """``gitlab_project`` (id or ``group/project`` path) and ``gitlab_ref`` (branch, tag or sha)."""
    _all_given(data, GITLAB_FIELDS, "GitLab")
    project = _string(data, "gitlab_project")
    if len(project) > MAX_GITLAB_PROJECT_CHARS or not patterns.matches(patterns.GITLAB_PROJECT, project):
        raise InvalidRequest(
            "must be a project id or its full path such as group/subgroup/project (letters, digits, '_', '.', '-')",
            field="gitlab_project",
        )
    return {"gitlab_project": project, "gitlab_ref": validate_git_ref(_string(data, "gitlab_ref"), "gitlab_ref")}


def validate_bitbucket(data: Mapping[str, Any]) -> dict[str, str]:
    """``bitbucket_workspace``, ``bitbucket_repo`` and ``bitbucket_ref`` (branch, tag or sha)."""
    _all_given(data, BITBUCKET_FIELDS, "Bitbucket")
    found = {}
    for field in ("bitbucket_workspace", "bitbucket_repo"):
        value = _string(data, field)
        if not patterns.matches(patterns.BITBUCKET_NAME, value):
            raise InvalidRequest("must be 1 to 100 letters, digits, '_', '.' or '-'", field=field)
        found[field] = value
    found["bitbucket_ref"] = validate_git_ref(_string(data, "bitbucket_ref"), "bitbucket_ref")
    return found


def validate_github(data: Mapping[str, Any]) -> dict[str, str]:
    """The three GitHub fields, all required together."""
    missing = [name for name in GITHUB_FIELDS if not _given(data, name)]
    if missing:
        raise InvalidRequest(
            "a GitHub source needs github_username, github_reponame and github_tag together; "
            f"missing: {', '.join(missing)}",
            field=missing[0],
        )
    user = _string(data, "github_username")
    repo = _string(data, "github_reponame")
    tag = _string(data, "github_tag")
    if len(user) > MAX_GITHUB_USERNAME_CHARS or not patterns.matches(patterns.GITHUB_USERNAME, user):
        raise InvalidRequest(
            "must be 1 to 39 letters, digits or single hyphens, not starting or ending with a hyphen",
            field="github_username",
        )
    if not patterns.matches(patterns.GITHUB_REPONAME, repo) or repo in (".", ".."):
        raise InvalidRequest("must be 1 to 100 letters, digits, '.', '_' or '-'", field="github_reponame")
    return {"github_username": user, "github_reponame": repo, "github_tag": validate_git_ref(tag)}


def validate_upload_id(value: str) -> str:
    """An upload id as returned by ``POST /api/v1/uploads`` (a uuid, normalised to lowercase)."""
    if not patterns.matches(patterns.UUID, value):
        raise InvalidRequest("is not an upload id from POST /api/v1/uploads", field="upload_id")
    return value.lower()


def _chosen_sources(data: Mapping[str, Any], archive_supplied: bool) -> list[str]:
    chosen = [name for name in ("dockerfile", "tar_url") if _given(data, name)]
    if any(_given(data, name) for name in GITHUB_FIELDS):
        chosen.append("github_*")
    if any(_given(data, name) for name in GITLAB_FIELDS):
        chosen.append("gitlab_*")
    if any(_given(data, name) for name in BITBUCKET_FIELDS):
        chosen.append("bitbucket_*")
    if _given(data, "upload_id"):
        chosen.append("upload_id")
    if archive_supplied:
        chosen.append("TarFile")
    return chosen


def validate_build(data: Any, settings: Settings, archive_supplied: bool = False) -> BuildRequest:
    """Check a build request's fields (the JSON body, or a multipart's Json part)."""
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object")
    request = _validate_build(data, settings, archive_supplied)
    notify = validate_notify_fields(data, settings)
    return dataclasses.replace(request, notify=notify) if notify else request


def _validate_build(data: dict[str, Any], settings: Settings, archive_supplied: bool) -> BuildRequest:
    image_name = validate_image_name(data)
    validate_registry_host(image_name, settings)
    chosen = _chosen_sources(data, archive_supplied)
    if not chosen:
        raise InvalidRequest(f"no build source given; {SOURCES_HELP}", field="source")
    if len(chosen) > 1:
        raise InvalidRequest(f"more than one build source given ({', '.join(chosen)}); {SOURCES_HELP}", field="source")
    source = chosen[0]
    credentials = validate_credentials(data, source)
    options = validate_options(data, settings, inline_dockerfile=source == "dockerfile")
    engine_fields = validate_engine_fields(data, settings)
    if engine_fields.secrets or engine_fields.ssh:
        credentials = dataclasses.replace(credentials, secrets=engine_fields.secrets, ssh=engine_fields.ssh)
        if len(sealing.sealed_json(credentials).encode("utf-8")) > MAX_SEALED_BYTES:
            raise InvalidRequest(
                f"secrets, ssh and the registry credentials together are too long to seal (KMS takes at most "
                f"{MAX_SEALED_BYTES} bytes of JSON)",
                field="secrets" if engine_fields.secrets else "ssh",
            )
    if source == "TarFile":
        return BuildRequest(image_name, SourceKind.UPLOAD, {}, credentials, options, engine_fields.engine)
    if source == "dockerfile":
        text = validate_dockerfile(_string(data, "dockerfile"), settings)
        return BuildRequest(
            image_name, SourceKind.DOCKERFILE, {"dockerfile": text}, credentials, options, engine_fields.engine
        )
    if source == "tar_url":
        url = validate_tar_url(_string(data, "tar_url"))
        return BuildRequest(
            image_name, SourceKind.TAR_URL, {"tar_url": url}, credentials, options, engine_fields.engine
        )
    if source == "upload_id":
        upload_id = validate_upload_id(_string(data, "upload_id"))
        return BuildRequest(
            image_name, SourceKind.UPLOAD, {"upload_id": upload_id}, credentials, options, engine_fields.engine
        )
    if source == "gitlab_*":
        return BuildRequest(
            image_name, SourceKind.GITLAB, validate_gitlab(data), credentials, options, engine_fields.engine
        )
    if source == "bitbucket_*":
        return BuildRequest(
            image_name, SourceKind.BITBUCKET, validate_bitbucket(data), credentials, options, engine_fields.engine
        )
    return BuildRequest(
        image_name, SourceKind.GITHUB, validate_github(data), credentials, options, engine_fields.engine
    )


def parse_job_id(value: str) -> str:
    """A job id from the path (normalised to lowercase); anything that is not a uuid is a 404."""
    if not patterns.matches(patterns.UUID, value or ""):
        raise JobNotFound("no job with that identifier (job identifiers are UUIDs)")
    return value.lower()


def parse_since(value: str | None) -> int | None:
    """The ``since`` log cursor: absent, or a non-negative integer below 10^10."""
    if value is None:
        return None
    if not _CURSOR_RE.fullmatch(value):
        raise InvalidRequest(
            "must be a non-negative integer cursor (the Next value of a previous answer)", field="since"
        )
    return int(value)
