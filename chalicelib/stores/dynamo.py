"""Small helpers over the low-level DynamoDB client: (de)serialising items."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from chalicelib.stores.aws_errors import aws_error_code

_SER = TypeSerializer()
_DESER = TypeDeserializer()


def _to_dynamo_number(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo_number(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_dynamo_number(v) for v in value]
    return value


def serialize(item: dict[str, Any]) -> dict[str, Any]:
    """Python values → DynamoDB attribute values."""
    return {k: _SER.serialize(_to_dynamo_number(v)) for k, v in item.items()}


def deserialize(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values → Python values (numbers become int or float)."""
    out = {k: _DESER.deserialize(v) for k, v in item.items()}
    return {k: _from_decimal(v) for k, v in out.items()}


def _from_decimal(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_decimal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_decimal(v) for v in value]
    return value


def value(v: Any) -> dict[str, Any]:
    """One Python value → one DynamoDB attribute value."""
    serialized: dict[str, Any] = dict(_SER.serialize(_to_dynamo_number(v)))
    return serialized


def job_key(job_id: str) -> dict[str, Any]:
    """The key of a job's item in the table (low-level form): ``pk`` the job id, ``sk`` ``job``."""
    return {"pk": {"S": job_id}, "sk": {"S": "job"}}


def is_conditional_failure(exc: Exception) -> bool:
    """True for a ConditionalCheckFailedException from botocore."""
    return aws_error_code(exc) == "ConditionalCheckFailedException"
