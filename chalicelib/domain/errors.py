"""The one error hierarchy of boatyard: one root, two branches, no HTTP.

::

    BoatyardError                 every error boatyard raises on purpose: a stable ``code``, a ``message`` for the user
    ├── RequestError              the caller's request cannot be served as asked (the API answers it)
    │   ├── InvalidRequest        a malformed request or an invalid field (names the field)
    │   ├── Unauthorized          no API key, or one that is unknown, malformed or revoked
    │   ├── NotFound              nothing of that name here
    │   │   └── JobNotFound       no such job (or not the caller's); also chalicelib.api.static_ui.AssetNotFound
    │   ├── Conflict              the job cannot change that way now (e.g. cancelling an ended job)
    │   ├── PayloadTooLarge       a body or field over a limit
    │   ├── UnsupportedMediaType  a content type the endpoint does not take
    │   └── QuotaExceeded         over a quota; ``retry_after`` seconds
    ├── ServiceUnavailable        a backing service failed; retrying may work (API and worker alike)
    └── JobError                  running a job or changing its stored state; never an HTTP answer by itself
        ├── BuildFailed           a fetch, build or push failed: ``message`` follows ``Failed: `` in the status
        │                         (worker: InvalidContext, UrlRefused)
        └── TransitionConflict    a conditional phase change lost: the stored phase or lease was not the expected one

The HTTP status of each API error, and the shape of the answer, live only in
:mod:`chalicelib.api.error_mapping`.  Code that turns a :class:`JobError` into an
answer translates it into a :class:`RequestError` first (as cancelling turns a
lost :class:`TransitionConflict` into a :class:`Conflict`).
"""

from __future__ import annotations


class BoatyardError(Exception):
    """Base of every error boatyard raises on purpose."""

    code: str = "InternalError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestError(BoatyardError):
    """The caller's request cannot be served as asked; the API answers it (see chalicelib/api/error_mapping.py)."""


class InvalidRequest(RequestError):
    """The request is malformed or a field is invalid.  Names the field."""

    code = "InvalidRequest"

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


class NotFound(RequestError):
    """Nothing of that name here (a job, a UI file)."""

    code = "NotFound"


class JobNotFound(NotFound):
    """No job has that identifier."""


class Unauthorized(RequestError):
    """No API key, or one that is unknown, malformed or revoked.  Says nothing about which."""

    code = "Unauthorized"


class Conflict(RequestError):
    """The job cannot change that way now (cancelling a job that has already ended)."""

    code = "Conflict"


class QuotaExceeded(RequestError):
    """The caller is over one of its quotas; ``retry_after`` seconds until it may try again."""

    code = "TooManyRequests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, int(retry_after))


class PayloadTooLarge(RequestError):
    """The request body or a field exceeds a limit."""

    code = "PayloadTooLarge"


class UnsupportedMediaType(RequestError):
    """The Content-Type is not one the endpoint accepts."""

    code = "UnsupportedMediaType"


class ServiceUnavailable(BoatyardError):
    """A backing service failed; the caller (or the worker) may retry."""

    code = "ServiceUnavailable"


class JobError(BoatyardError):
    """Running a job or changing its stored state went wrong; never an HTTP answer by itself."""


class BuildFailed(JobError):
    """A build, push or source fetch failed; ``message`` is what the user sees after ``Failed: ``."""

    code = "BuildFailed"


class TransitionConflict(JobError):
    """A conditional phase change lost: the stored phase or lease was not the expected one."""

    code = "TransitionConflict"
