"""A strict, small multipart/form-data parser (RFC 7578) for ``POST /api/v1/build``.

The whole body is already in memory (API Gateway hands Lambda the body in one
piece, capped by ``max_inline_bytes``), so parts are returned as ``memoryview``
slices of it: nothing is copied.  Errors are :class:`InvalidRequest` naming
what is wrong.
"""

from __future__ import annotations

import dataclasses
import re
from email.message import Message
from email.utils import collapse_rfc2231_value

from chalicelib.domain.errors import InvalidRequest

_BOUNDARY_RE = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")
_MAX_HEADER_BYTES = 8 * 1024


@dataclasses.dataclass
class Part:
    """One form field: its name, optional filename and content type, and its bytes."""

    name: str
    filename: str | None
    content_type: str | None
    data: memoryview


def _parse_header_value(value: str, header: str = "content-type") -> tuple[str, dict[str, str]]:
    """``main; a=b; c="d"`` → (``main`` lowercased, params) with the stdlib's parameter rules (quotes, RFC 2231)."""
    msg = Message()
    msg[header] = value
    params = {k.lower(): collapse_rfc2231_value(v) for k, v in msg.get_params(failobj=[], header=header)[1:]}
    return value.split(";", 1)[0].strip().lower(), params


def boundary_of(content_type: str) -> str:
    """The boundary parameter of a multipart Content-Type header."""
    _, params = _parse_header_value(content_type)
    boundary = params.get("boundary", "")
    if not _BOUNDARY_RE.fullmatch(boundary):
        raise InvalidRequest("multipart/form-data needs a valid boundary parameter", field="Content-Type")
    return boundary


def _part_headers(raw: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in raw.split(b"\r\n"):
        if not line:
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidRequest("a multipart part header is not UTF-8") from None
        name, sep, value = text.partition(":")
        if not sep:
            raise InvalidRequest(f"malformed multipart part header {text[:80]!r}")
        headers[name.strip().lower()] = value.strip()
    return headers


def _make_part(body: memoryview, start: int, end: int) -> Part:
    raw = body[start:end]
    split = bytes(raw[: _MAX_HEADER_BYTES + 4]).find(b"\r\n\r\n")
    if split == -1:
        raise InvalidRequest("a multipart part has no blank line after its headers")
    headers = _part_headers(bytes(raw[:split]))
    disposition = headers.get("content-disposition")
    if disposition is None:
        raise InvalidRequest("a multipart part has no Content-Disposition header")
    kind, params = _parse_header_value(disposition, "content-disposition")
    if kind != "form-data" or not params.get("name"):
        raise InvalidRequest("a multipart part is not form-data with a name")
    return Part(params["name"], params.get("filename"), headers.get("content-type"), raw[split + 4 :])


def parse(body: bytes, content_type: str) -> list[Part]:
    """Split a multipart/form-data ``body`` into its parts (in order)."""
    boundary = boundary_of(content_type).encode("ascii")
    view = memoryview(body)
    opening = b"--" + boundary
    delimiter = b"\r\n--" + boundary
    if body.startswith(opening):
        pos = len(opening)
    else:  # a preamble before the first delimiter is allowed and ignored
        found = body.find(delimiter)
        if found == -1:
            raise InvalidRequest("the multipart body does not contain its boundary")
        pos = found + len(delimiter)
    parts: list[Part] = []
    while True:
        if body.startswith(b"--", pos):
            return parts  # close delimiter; an epilogue after it is ignored
        line_end = body.find(b"\r\n", pos)
        if line_end == -1 or body[pos:line_end].strip(b" \t"):
            raise InvalidRequest("the multipart body is malformed after a boundary")
        start = line_end + 2
        end = body.find(delimiter, start)
        if end == -1:
            raise InvalidRequest("the multipart body ends without its closing boundary")
        parts.append(_make_part(view, start, end))
        pos = end + len(delimiter)
