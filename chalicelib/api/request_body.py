"""The body of ``POST /api/v1/build``: content type, size, JSON or multipart → a :class:`BuildRequest`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from chalicelib.api import multipart
from chalicelib.api.validation import BuildRequest, validate_build
from chalicelib.domain import archive_format
from chalicelib.domain.errors import InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from chalicelib.domain.settings import Settings

JSON = "application/json"
MULTIPART = "multipart/form-data"
PARTS = ("TarFile", "Json")


@dataclasses.dataclass
class ParsedBuild:
    """A validated build request and, for multipart, the archive bytes."""

    request: BuildRequest
    archive: memoryview | None = None


def _too_large(size: int, settings: Settings) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"the request body is {size} bytes, more than the {settings.max_inline_bytes} bytes a request may carry; "
        "for a large archive ask POST /api/v1/uploads for an upload URL, upload the archive there, "
        "then submit the build with its upload_id"
    )


def check_declared_length(headers: Mapping[str, str], settings: Settings) -> None:
    """Refuse early (413) when Content-Length already says the body is too large."""
    declared = (headers.get("content-length") or "").strip()
    if declared.isdigit() and int(declared) > settings.max_inline_bytes:
        raise _too_large(int(declared), settings)


def media_type(headers: Mapping[str, str]) -> str:
    """The lowercased media type of the request (``application/json`` when no Content-Type is sent)."""
    value = headers.get("content-type") or JSON
    return value.split(";", 1)[0].strip().lower() or JSON


def declares_json(kind: str) -> bool:
    """Whether a media type says JSON (``application/json`` or a ``+json`` suffix type)."""
    return kind == JSON or kind.endswith("+json")


def parse_json(data: bytes | memoryview, field: str | None = None) -> Any:
    """Decode a UTF-8 JSON document; 400 naming ``field`` (or the body) when it is not one."""
    where = f"the {field} part" if field else "the request body"
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidRequest(f"{where} is not UTF-8 text", field=field) from None
    except json.JSONDecodeError as exc:
        raise InvalidRequest(
            f"{where} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})", field=field
        ) from None
    except ValueError:  # an integer longer than Python's int-digit limit (4,300 digits)
        raise InvalidRequest(f"{where} holds a number too long to read (more than 4300 digits)", field=field) from None
    except RecursionError:
        raise InvalidRequest(f"{where} is nested too deeply", field=field) from None


def _parse_multipart(body: bytes, content_type: str, settings: Settings) -> ParsedBuild:
    found: dict[str, multipart.Part] = {}
    for part in multipart.parse(body, content_type):
        if part.name not in PARTS:
            raise InvalidRequest(
                "unknown part; a multipart build has exactly the parts TarFile and Json", field=part.name
            )
        if part.name in found:
            raise InvalidRequest("appears more than once", field=part.name)
        found[part.name] = part
    for name in ("Json", "TarFile"):
        if name not in found:
            raise InvalidRequest("part is missing; a multipart build has the parts TarFile and Json", field=name)
    fields = parse_json(found["Json"].data, field="Json")
    if not isinstance(fields, dict):
        raise InvalidRequest("must be a JSON object with the build fields", field="Json")
    request = validate_build(fields, settings, archive_supplied=True)
    archive = found["TarFile"].data
    if not len(archive):
        raise InvalidRequest("is empty", field="TarFile")
    if archive_format.detect_format(bytes(archive[: archive_format.HEAD_BYTES])) is None:
        raise InvalidRequest("is neither a gzip nor a tar archive", field="TarFile")
    return ParsedBuild(request, archive)


def _parse_json_body(raw: bytes, kind: str) -> Any:
    """The JSON document of a non-multipart body, whatever its Content-Type (the seed's relaxed mode).

    Clients of the seed send JSON as ``application/x-www-form-urlencoded`` (``curl -d``, jQuery's
    default), ``text/plain`` or with no Content-Type; all of them are read as JSON.  A body that
    declared JSON and is not gets a 400 with the syntax error; a body of another type that is
    not JSON either is neither of the two accepted formats: 415.
    """
    try:
        return parse_json(raw)
    except InvalidRequest:
        if declares_json(kind):
            raise
        raise UnsupportedMediaType(
            f"the body (Content-Type {kind[:100]!r}) is neither JSON nor multipart/form-data; send the build "
            "fields as a JSON object (as application/json, or any type but multipart) or multipart/form-data "
            "(parts TarFile and Json)"
        ) from None


def parse_build_body(headers: Mapping[str, str], body: bytes | str | None, settings: Settings) -> ParsedBuild:
    """Validate the whole build request: size (413), format (415: neither JSON nor multipart), fields (400).

    Any body that is not ``multipart/form-data`` is read as JSON whatever its Content-Type.
    """
    check_declared_length(headers, settings)
    kind = media_type(headers)
    raw = body.encode("utf-8") if isinstance(body, str) else (body or b"")
    if len(raw) > settings.max_inline_bytes:
        raise _too_large(len(raw), settings)
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send the build fields as a JSON object")
    if kind == MULTIPART:
        return _parse_multipart(raw, headers.get("content-type", ""), settings)
    data = _parse_json_body(raw, kind)
    if not isinstance(data, dict):
        raise InvalidRequest("the request body must be a JSON object with the build fields")
    return ParsedBuild(validate_build(data, settings))
