"""Errors → HTTP answers, in one place: the only module that knows an error's HTTP status.

:func:`json_errors` turns a :class:`~chalicelib.domain.errors.RequestError` (or a
:class:`~chalicelib.domain.errors.ServiceUnavailable`) into its status from :data:`HTTP_STATUS` and a
``{"Code", "Message"}`` body (:func:`error_body`), and anything else into a 500 with
:data:`INTERNAL_ERROR_BODY`: the traceback is logged on the server, never sent to the caller.  A
:class:`~chalicelib.domain.errors.JobError` that reaches a route is a bug in the route (it should have
been translated into a request error), so it is answered as one.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

from chalice import Response

from chalicelib.domain.errors import (
    BoatyardError,
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    ServiceUnavailable,
    Unauthorized,
    UnsupportedMediaType,
)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

JSON_HEADERS = {"Content-Type": "application/json"}

HTTP_STATUS: dict[type[BoatyardError], int] = {
    InvalidRequest: 400,
    Unauthorized: 401,
    NotFound: 404,
    Conflict: 409,
    PayloadTooLarge: 413,
    UnsupportedMediaType: 415,
    QuotaExceeded: 429,
    ServiceUnavailable: 503,
}
"""The status of every error the API answers (a subclass answers as its nearest listed base)."""

INTERNAL_ERROR_BODY: dict[str, Any] = {
    "Code": "InternalError",
    "Message": "The server failed to handle the request; it has been logged.",
}


def http_status(err: BaseException) -> int | None:
    """The HTTP status ``err`` is answered with, or None when it is not an error the API answers (→ 500)."""
    for cls in type(err).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return None


def error_body(err: BoatyardError) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"Code": err.code, "Message": err.message}


def error_response(err: BoatyardError) -> Response:
    """The HTTP answer for a deliberate error (with ``Retry-After`` when the error carries one)."""
    status = http_status(err)
    if status is None:
        return Response(body=dict(INTERNAL_ERROR_BODY), status_code=500, headers=dict(JSON_HEADERS))
    headers: dict[str, str | list[str]] = dict(JSON_HEADERS)
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(body=error_body(err), status_code=status, headers=headers)


def json_errors(handler: F) -> F:
    """Wrap a route handler so every failure is a JSON error answer (see module doc)."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except BoatyardError as err:
            status = http_status(err)
            if status is None:
                log.exception("%s: %s reached the route unanswered", handler.__name__, type(err).__name__)
            elif status >= 500:
                log.error("%s: %s %s", handler.__name__, err.code, err.message)
            return error_response(err)
        except Exception:  # the one catch-all: log it, answer without details
            log.exception("%s: unhandled error", handler.__name__)
            return Response(body=dict(INTERNAL_ERROR_BODY), status_code=500, headers=dict(JSON_HEADERS))

    return cast(F, wrapper)
