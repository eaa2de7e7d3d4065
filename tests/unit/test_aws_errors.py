"""One reader of AWS error codes: what a store decides on is the code botocore reports, or nothing."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.stores.aws_errors import NOT_FOUND_CODES, aws_error_code, cancellation_codes


def _client_error(error: dict | None, **extra) -> ClientError:
    response: Any = {**({"Error": error} if error is not None else {}), **extra}  # malformed ones too, on purpose
    return ClientError(response, "TransactWriteItems")


def test_the_code_of_a_client_error_is_read():
    assert aws_error_code(_client_error({"Code": "ConditionalCheckFailedException", "Message": "x"})) == (
        "ConditionalCheckFailedException"
    )
    assert aws_error_code(_client_error({"Code": "404", "Message": "Not Found"})) in NOT_FOUND_CODES


def test_errors_without_a_code_have_none():
    assert aws_error_code(_client_error(None)) is None
    assert aws_error_code(_client_error({"Message": "no code"})) is None
    assert aws_error_code(_client_error({"Code": ""})) is None
    assert aws_error_code(EndpointConnectionError(endpoint_url="http://127.0.0.1:1")) is None
    assert aws_error_code(ValueError("not from AWS")) is None


def test_cancellation_codes_are_per_item_and_only_for_a_cancelled_transaction():
    cancelled = _client_error(
        {"Code": "TransactionCanceledException"},
        CancellationReasons=[{"Code": "None"}, {"Code": "ConditionalCheckFailed"}, {}],
    )
    assert cancellation_codes(cancelled) == ["None", "ConditionalCheckFailed", ""]
    other = _client_error({"Code": "ValidationException"}, CancellationReasons=[{"Code": "ConditionalCheckFailed"}])
    assert cancellation_codes(other) == []
    assert cancellation_codes(_client_error({"Code": "TransactionCanceledException"})) == []
