"""Build options: how a context is built (build args, Dockerfile and context paths, target, cache, pull,
labels, extra tags, resource limits).

:func:`validate_options` checks the option fields of a build request (the JSON body,
or a multipart's ``Json`` part) with a 400 naming the field; :class:`BuildOptions` is
what is stored on the job item (``options``, defaults left out: none of it is secret)
and what the worker applies.  A field that is ``null`` (or ``""`` for a text field)
counts as not given, as the seed's page sent blanks.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from chalicelib.domain import image_ref, patterns
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.registry_hosts import registry_refusal
from chalicelib.domain.settings import Settings

MAX_BUILD_ARGS = 64
MAX_BUILD_ARG_VALUE_CHARS = 4096
MAX_LABELS = 64
MAX_LABEL_VALUE_CHARS = 4096
MAX_TAGS = 10
MAX_CACHE_FROM = 4
MIN_MEMORY_BYTES = 6 * 1024 * 1024  # the Docker daemon refuses less
MIN_CPUS = 0.01
DEFAULT_DOCKERFILE = "Dockerfile"

PATH_FIELDS = ("dockerfile_path", "context_path")
"""Options that only make sense for an archive source (not for inline ``dockerfile`` text)."""

_SECRET_LOOKING = re.compile(r"(?i)(token|passw|pwd|secret|key|credential|auth|private|cert)")
_UNITS = {"b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """A job's validated build options; the defaults are a plain ``docker build`` of ``Dockerfile`` at the root."""

    build_args: dict[str, str] = dataclasses.field(default_factory=dict)
    dockerfile_path: str = DEFAULT_DOCKERFILE
    context_path: str = ""
    target: str = ""
    no_cache: bool = False
    pull: bool | None = None  # None: the worker's default (fresh bases, issue 11)
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    tags: tuple[str, ...] = ()
    cache_from: tuple[
        str, ...
    ] = ()  # images whose inline cache a BuildKit build may reuse (pulled with the job's auths)
    memory: int = 0  # bytes; 0: the worker's default
    cpus: float = 0.0  # 0: the worker's default

    def to_item(self) -> dict[str, Any]:
        """The job item's ``options`` map: only what differs from the defaults."""
        defaults = BuildOptions()
        item: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value != getattr(defaults, field.name):
                item[field.name] = list(value) if isinstance(value, tuple) else value
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any] | None) -> BuildOptions:
        """Rebuild the options stored by :meth:`to_item` (unknown keys are ignored)."""
        item = item or {}
        return cls(
            build_args={str(k): str(v) for k, v in (item.get("build_args") or {}).items()},
            dockerfile_path=str(item.get("dockerfile_path") or DEFAULT_DOCKERFILE),
            context_path=str(item.get("context_path") or ""),
            target=str(item.get("target") or ""),
            no_cache=bool(item.get("no_cache", False)),
            pull=None if item.get("pull") is None else bool(item["pull"]),
            labels={str(k): str(v) for k, v in (item.get("labels") or {}).items()},
            tags=tuple(str(t) for t in item.get("tags") or ()),
            cache_from=tuple(str(r) for r in item.get("cache_from") or ()),
            memory=int(item.get("memory") or 0),
            cpus=float(item.get("cpus") or 0.0),
        )

    def secret_looking_args(self) -> list[str]:
        """Build-arg names that look like secrets (build args stay readable in the image's history)."""
        return [name for name in self.build_args if _SECRET_LOOKING.search(name)]


def _absent(value: Any) -> bool:
    return value is None or value == ""


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise InvalidRequest("must be a string", field=field)
    return value


def _string_map(
    value: Any, field: str, key_pattern: str, key_help: str, max_items: int, max_value: int
) -> dict[str, str]:
    """An object of string values with checked keys (build_args, labels)."""
    if not isinstance(value, dict):
        raise InvalidRequest("must be an object of name: value strings", field=field)
    if len(value) > max_items:
        raise InvalidRequest(f"may hold at most {max_items} entries", field=field)
    out: dict[str, str] = {}
    for key, item in value.items():
        if not patterns.matches(key_pattern, key):
            raise InvalidRequest(f"{key[:100]!r} is not a valid name ({key_help})", field=field)
        if not isinstance(item, str):
            raise InvalidRequest(f"the value of {key!r} must be a string", field=field)
        if len(item) > max_value or not patterns.matches(patterns.NO_CONTROL_CHARS, item):
            raise InvalidRequest(
                f"the value of {key!r} must be at most {max_value} characters without control characters", field=field
            )
        out[key] = item
    return out


def _path(value: Any, field: str) -> str:
    text = _text(value, field)
    if not patterns.matches(patterns.RELATIVE_PATH, text):
        raise InvalidRequest(
            "must be a relative path inside the archive (at most 255 characters; no leading or trailing '/', "
            "no '.', '..' or empty parts, no backslash or control characters)",
            field=field,
        )
    return text


def _bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidRequest("must be true or false", field=field)
    return value


def _tags(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise InvalidRequest("must be a list of tags", field="tags")
    if len(value) > MAX_TAGS:
        raise InvalidRequest(f"may hold at most {MAX_TAGS} tags", field="tags")
    for tag in value:
        if not isinstance(tag, str) or not patterns.matches(patterns.IMAGE_TAG, tag):
            shown = repr(tag)[:140]
            raise InvalidRequest(
                f"{shown} is not a valid tag (1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-')",
                field="tags",
            )
    if len(set(value)) != len(value):
        raise InvalidRequest("lists a tag more than once", field="tags")
    return tuple(value)


def _cache_from(value: Any, settings: Settings) -> tuple[str, ...]:
    """``cache_from``: image references (``[registry/]path[:tag]``) on registries a build may reach."""
    field = "cache_from"
    if not isinstance(value, list):
        raise InvalidRequest("must be a list of image references", field=field)
    if len(value) > MAX_CACHE_FROM:
        raise InvalidRequest(f"may hold at most {MAX_CACHE_FROM} images", field=field)
    for ref in value:
        shown = repr(ref)[:300]
        if not isinstance(ref, str) or len(ref) > image_ref.NAME_TOTAL_LENGTH_MAX:
            raise InvalidRequest(f"{shown} is not an image reference of at most 255 characters", field=field)
        try:
            parsed = image_ref.parse_image_ref(ref)
        except image_ref.InvalidReference as exc:
            raise InvalidRequest(f"{shown} is not a valid image reference: {exc}", field=field) from None
        if not patterns.matches(patterns.IMAGE_NAME, ref):
            raise InvalidRequest(f"{shown} is not a valid image reference", field=field)
        refused = None if settings.allow_private_registries else registry_refusal(parsed.domain)
        if refused:
            raise InvalidRequest(
                f"{shown}: {refused}; cache images come only from registries on public addresses", field=field
            )
    if len(set(value)) != len(value):
        raise InvalidRequest("lists an image more than once", field=field)
    return tuple(value)


def parse_memory(value: Any, settings: Settings) -> int:
    """``memory``: bytes as an integer, or a string like ``512m`` / ``2g``; within the operator's maximum."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidRequest("must be a number of bytes or a size such as '512m' or '2g'", field="memory")
    if isinstance(value, str):
        if not patterns.matches(patterns.MEMORY, value):
            raise InvalidRequest("must be a size such as '512m' or '2g' (units b, k, m, g)", field="memory")
        unit = value[-1].lower() if value[-1].isalpha() else "b"
        size = int(value.rstrip("bkmgBKMG")) * _UNITS[unit]
    else:
        size = value
    if size < MIN_MEMORY_BYTES:
        raise InvalidRequest(f"must be at least {MIN_MEMORY_BYTES} bytes (6m)", field="memory")
    if size > settings.max_build_memory_bytes:
        raise InvalidRequest(
            f"is more than this service's maximum of {settings.max_build_memory_bytes} bytes per build", field="memory"
        )
    return size


def parse_cpus(value: Any, settings: Settings) -> float:
    """``cpus``: how many CPUs the build's RUN steps may use (e.g. 0.5, 2), within the operator's maximum."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequest("must be a number of CPUs such as 0.5 or 2", field="cpus")
    cpus = float(value)
    if not cpus >= MIN_CPUS:  # also refuses NaN
        raise InvalidRequest(f"must be at least {MIN_CPUS}", field="cpus")
    if cpus > settings.max_build_cpus:
        raise InvalidRequest(
            f"is more than this service's maximum of {settings.max_build_cpus} CPUs per build", field="cpus"
        )
    return cpus


def _refuse_path_fields(data: Mapping[str, Any]) -> None:
    """An inline Dockerfile is the whole context: no field may point inside an archive."""
    for field in PATH_FIELDS:
        if not _absent(data.get(field)):
            raise InvalidRequest(
                "applies to archive sources only (tar_url, GitHub, uploads); the dockerfile source has one file",
                field=field,
            )


def _stage_name(value: Any) -> str:
    """The ``target`` field: a build stage's name."""
    target = _text(value, "target")
    if not patterns.matches(patterns.STAGE_NAME, target):
        raise InvalidRequest("must be a stage name: a letter, then letters, digits, '_', '.' or '-'", field="target")
    return target


def validate_options(data: Mapping[str, Any], settings: Settings, inline_dockerfile: bool = False) -> BuildOptions:
    """The build options of a request; 400 naming the field for anything invalid."""
    if inline_dockerfile:
        _refuse_path_fields(data)
    found: dict[str, Any] = {}
    value = data.get("build_args")
    if value is not None:
        found["build_args"] = _string_map(
            value,
            "build_args",
            patterns.BUILD_ARG_NAME,
            "letters, digits and '_', not starting with a digit",
            MAX_BUILD_ARGS,
            MAX_BUILD_ARG_VALUE_CHARS,
        )
    for field in PATH_FIELDS:
        if not _absent(data.get(field)):
            found[field] = _path(data[field], field)
    if not _absent(data.get("target")):
        found["target"] = _stage_name(data["target"])
    for field in ("no_cache", "pull"):
        if data.get(field) is not None:
            found[field] = _bool(data[field], field)
    value = data.get("labels")
    if value is not None:
        found["labels"] = _string_map(
            value,
            "labels",
            patterns.LABEL_KEY,
            "letters, digits, '.', '_', '-', '/', not starting with a symbol",
            MAX_LABELS,
            MAX_LABEL_VALUE_CHARS,
        )
    if data.get("tags") is not None:
        found["tags"] = _tags(data["tags"])
    found.update(_cache_and_resources(data, settings))
    return BuildOptions(**found)


def _cache_and_resources(data: Mapping[str, Any], settings: Settings) -> dict[str, Any]:
    """The checked ``cache_from``, ``memory`` and ``cpus`` of a request (those it names)."""
    found: dict[str, Any] = {}
    if data.get("cache_from") is not None:
        found["cache_from"] = _cache_from(data["cache_from"], settings)
    if not _absent(data.get("memory")):
        found["memory"] = parse_memory(data["memory"], settings)
    if data.get("cpus") is not None:
        found["cpus"] = parse_cpus(data["cpus"], settings)
    return found
