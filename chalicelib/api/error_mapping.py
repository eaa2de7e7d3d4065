"""Error mapping for route handlers, in one place.

:func:`json_errors` turns a :class:`BoatyardError` into its status and
``{"Code", "Message"}`` body (via :func:`chalicelib.domain.errors.error_body`), and any
other exception into a 500 with :data:`INTERNAL_ERROR_BODY`: the traceback is
logged on the server, never sent to the caller.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable, TypeVar, cast

from chalice import Response

from chalicelib.domain.errors import INTERNAL_ERROR_BODY, BoatyardError, error_body

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

JSON_HEADERS = {"Content-Type": "application/json"}


def error_response(err: BoatyardError) -> Response:
    """The HTTP answer for a deliberate error (with ``Retry-After`` when the error carries one)."""
    headers = dict(JSON_HEADERS)
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return Response(body=error_body(err), status_code=err.status, headers=headers)


def json_errors(handler: F) -> F:
    """Wrap a route handler so every failure is a JSON error answer (see module doc)."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except BoatyardError as err:
            if err.status >= 500:
                log.error("%s: %s %s", handler.__name__, err.code, err.message)
            return error_response(err)
        except Exception:  # noqa: BLE001 - the one catch-all: log it, answer without details
            log.exception("%s: unhandled error", handler.__name__)
            return Response(body=dict(INTERNAL_ERROR_BODY), status_code=500, headers=dict(JSON_HEADERS))

    return cast(F, wrapper)
