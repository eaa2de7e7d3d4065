"""One error hierarchy, two branches: the API's errors have an HTTP answer (given only by
chalicelib/api/error_mapping.py), the worker-side failures have none (issue 16 item 4)."""

from __future__ import annotations

import importlib
import json
import pkgutil

import pytest

import chalicelib
import worker
from chalicelib.api.error_mapping import HTTP_STATUS, error_response, http_status, json_errors
from chalicelib.api.static_ui import AssetNotFound
from chalicelib.domain import errors
from chalicelib.domain.errors import (
    BoatyardError,
    BuildFailed,
    Conflict,
    InvalidRequest,
    JobError,
    JobNotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RequestError,
    ServiceUnavailable,
    TransitionConflict,
    Unauthorized,
    UnsupportedMediaType,
)


def _all_errors() -> list[type[BoatyardError]]:
    """Every BoatyardError class of chalicelib/ and worker/ (each module imported first)."""
    for package in (chalicelib, worker):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if not module.name.endswith("__main__"):
                importlib.import_module(module.name)
    found, todo = [], [BoatyardError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (InvalidRequest("bad", field="image_name"), 400, "InvalidRequest"),
        (Unauthorized("who?"), 401, "Unauthorized"),
        (JobNotFound("no job"), 404, "NotFound"),
        (AssetNotFound("no such file"), 404, "NotFound"),
        (Conflict("already ended"), 409, "Conflict"),
        (PayloadTooLarge("too big"), 413, "PayloadTooLarge"),
        (UnsupportedMediaType("text/plain"), 415, "UnsupportedMediaType"),
        (QuotaExceeded("slow down", retry_after=7), 429, "TooManyRequests"),
        (ServiceUnavailable("later"), 503, "ServiceUnavailable"),
    ],
)
def test_each_api_error_keeps_its_answer(error, status, code):
    response = error_response(error)
    assert response.status_code == status
    assert response.body == {"Code": code, "Message": error.message}
    assert response.headers.get("Retry-After") == ("7" if status == 429 else None)


def test_every_request_error_has_an_http_status_and_no_job_error_has_one():
    classes = _all_errors()
    assert {cls.__name__ for cls in classes} >= {"InvalidContext", "UrlRefused", "AssetNotFound"}
    for cls in classes:
        if issubclass(cls, RequestError) and cls is not RequestError:  # a new API error needs its line in HTTP_STATUS
            assert http_status(cls.__new__(cls)) is not None, cls
        if issubclass(cls, JobError):
            assert http_status(cls.__new__(cls)) is None, cls
            assert not issubclass(cls, RequestError), cls
        assert "status" not in vars(cls), f"{cls.__name__}: HTTP status lives only in chalicelib/api/error_mapping.py"


def test_worker_side_failures_are_their_own_branch():
    from worker.context.tarstream import InvalidContext
    from worker.netguard import UrlRefused

    for cls in (BuildFailed, TransitionConflict, InvalidContext, UrlRefused):
        assert issubclass(cls, JobError) and issubclass(cls, BoatyardError) and not issubclass(cls, RequestError)
    assert set(HTTP_STATUS) <= {
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, BoatyardError)
    }


@pytest.mark.parametrize("failure", [BuildFailed("push failed"), TransitionConflict("lost the lease")])
def test_a_job_error_reaching_a_route_is_a_bare_500(failure, caplog):
    @json_errors
    def route():
        raise failure

    response = route()
    assert response.status_code == 500 and response.body["Code"] == "InternalError"
    assert failure.message not in json.dumps(response.body)
    assert "reached the route unanswered" in caplog.text
