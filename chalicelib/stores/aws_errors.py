"""What an AWS error says, read in one place: botocore's ``ClientError.response["Error"]["Code"]``.

Every store and the worker decide on the code of an AWS answer (a missing S3 key, a failed
DynamoDB condition, a cancelled transaction); they ask :func:`aws_error_code` instead of
digging through the response dict, so an error without a code (or not a ``ClientError`` at
all) is handled the same way everywhere: it has no code.
"""

from __future__ import annotations

from typing import Any

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
"""What S3 answers for a missing object (``HeadObject`` has no body, so only the status code)."""


def aws_error_code(exc: BaseException) -> str | None:
    """The AWS error code of ``exc`` (e.g. ``"ConditionalCheckFailedException"``); None when it has none."""
    response: Any = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error")
    if not isinstance(error, dict):
        return None
    code = error.get("Code")
    return str(code) if code not in (None, "") else None


def cancellation_codes(exc: BaseException) -> list[str]:
    """The per-item reason codes of a cancelled DynamoDB transaction, in item order ("" for an item
    that was not the cause); empty for any other error."""
    if aws_error_code(exc) != "TransactionCanceledException":
        return []
    response: Any = getattr(exc, "response", None) or {}
    return [str((reason or {}).get("Code") or "") for reason in response.get("CancellationReasons") or []]
