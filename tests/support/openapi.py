"""openapi.yaml as the tests read it: its path, a validator for one of its schemas, and checking a real answer
against the schema documented for it (used by tests/unit/test_openapi.py and the tests/aws API tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

DOC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"


def schema_validator(doc: dict[str, Any], name: str) -> jsonschema.Draft202012Validator:
    """A validator for ``#/components/schemas/<name>`` with the document's refs resolvable."""
    schema = {"$ref": f"#/components/schemas/{name}", "components": doc["components"]}
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def documented_schema(doc: dict[str, Any], path: str, method: str, status: int) -> str:
    """The schema name documented for that answer."""
    response = doc["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]


def check_answer(doc: dict[str, Any], path: str, method: str, response: Any) -> None:
    """A test-client response is JSON and matches the schema documented for its path, method and status."""
    name = documented_schema(doc, path, method, response.status_code)
    errors = [e.message for e in schema_validator(doc, name).iter_errors(json.loads(response.body))]
    assert not errors, (name, errors, response.body)
    assert response.headers["Content-Type"] == "application/json"
