"""The one error hierarchy of boatyard and its mapping to HTTP answers.

Every error a caller can cause is a :class:`BoatyardError` subclass carrying
its HTTP status and a stable ``Code``.  :func:`error_body` is the only place
that shapes an error for the wire: ``{"Code": ..., "Message": ...}``.
"""
from __future__ import annotations

from typing import Any


class BoatyardError(Exception):
    """Base of every error boatyard raises on purpose."""

    status: int = 500
    code: str = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidRequest(BoatyardError):
    """The request is malformed or a field is invalid (400).  Names the field."""

    status = 400
    code = "InvalidRequest"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class JobNotFound(BoatyardError):
    """No job has that identifier (404)."""

    status = 404
    code = "NotFound"


class Unauthorized(BoatyardError):
    """No API key, or one that is unknown, malformed or revoked (401).  Says nothing about which."""

    status = 401
    code = "Unauthorized"


class QuotaExceeded(BoatyardError):
    """The caller is over one of its quotas (429); ``retry_after`` seconds until it may try again."""

    status = 429
    code = "TooManyRequests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class PayloadTooLarge(BoatyardError):
    """The request body or a field exceeds a limit (413)."""

    status = 413
    code = "PayloadTooLarge"


class UnsupportedMediaType(BoatyardError):
    """The Content-Type is not one the endpoint accepts (415)."""

    status = 415
    code = "UnsupportedMediaType"


class ServiceUnavailable(BoatyardError):
    """A backing service failed; the caller may retry (503)."""

    status = 503
    code = "ServiceUnavailable"


class TransitionConflict(BoatyardError):
    """A conditional phase change lost: the stored phase or lease was not the expected one."""

    status = 409
    code = "Conflict"


class BuildFailed(BoatyardError):
    """A build, push or source fetch failed; ``message`` is what the user sees after ``Failed: ``."""

    status = 422
    code = "BuildFailed"


def error_body(err: BoatyardError) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"Code": err.code, "Message": err.message}


INTERNAL_ERROR_BODY: dict[str, Any] = {
    "Code": "InternalError",
    "Message": "The server failed to handle the request; it has been logged.",
}
