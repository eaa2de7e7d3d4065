"""Validation of the build-engine fields of a build request: ``engine``, ``secrets``, ``ssh``.

``engine`` must be one the deployment allows (``BOATYARD_ALLOWED_ENGINES``).
``secrets`` ({id: value}) and ``ssh`` (a private key) only work with BuildKit,
and so does the build option ``cache_from`` (BuildKit's inline cache), so they
are refused where BuildKit is not allowed or the job asks for the classic engine.
Values of ``secrets`` and ``ssh`` are never echoed.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.settings import Settings

MAX_SECRETS = 16
MAX_SECRET_CHARS = 3072
MAX_SSH_KEY_CHARS = 3500
SECRET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
_BAD_SECRET_CHARS = re.compile(r"[\x00\ud800-\udfff]")
_BAD_KEY_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_PRIVATE_KEY = re.compile(
    r"\A\s*-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\r?\n.*-----END [A-Z0-9 ]*PRIVATE KEY-----\s*\Z", re.S
)


@dataclasses.dataclass(frozen=True)
class EngineFields:
    """The validated engine fields (secrets and key are sealed, never stored)."""

    engine: str = ""
    secrets: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    ssh: str = dataclasses.field(default="", repr=False)


def _present(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name)
    return value is not None and value != "" and value != {}


def validate_engine(data: Mapping[str, Any], settings: Settings) -> str:
    """``engine``: absent (the deployment decides) or one of the allowed engines."""
    if not _present(data, "engine"):
        return ""
    value = data["engine"]
    allowed = ", ".join(settings.allowed_engines)
    if not isinstance(value, str) or value.strip().lower() not in settings.allowed_engines:
        shown = value[:40] if isinstance(value, str) else type(value).__name__
        raise InvalidRequest(
            f"must be one of the engines this deployment allows ({allowed}), not {shown!r}", field="engine"
        )
    return value.strip().lower()


def validate_secrets(data: Mapping[str, Any]) -> dict[str, str]:
    """``secrets``: an object of at most 16 ``id: value`` strings (ids as BuildKit's ``--secret id=``)."""
    if not _present(data, "secrets"):
        return {}
    value = data["secrets"]
    if not isinstance(value, dict):
        raise InvalidRequest("must be an object of secret id to secret value", field="secrets")
    if len(value) > MAX_SECRETS:
        raise InvalidRequest(f"may hold at most {MAX_SECRETS} secrets", field="secrets")
    secrets: dict[str, str] = {}
    for key, secret in value.items():
        if not isinstance(key, str) or not SECRET_ID.fullmatch(key):
            raise InvalidRequest(
                "ids must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit", field="secrets"
            )
        if not isinstance(secret, str) or not secret:
            raise InvalidRequest(f"the value of {key!r} must be a non-empty string", field="secrets")
        if len(secret) > MAX_SECRET_CHARS or _BAD_SECRET_CHARS.search(secret):
            raise InvalidRequest(
                f"the value of {key!r} must be at most {MAX_SECRET_CHARS} characters of valid text without NUL",
                field="secrets",
            )
        secrets[key] = secret
    return secrets


def validate_ssh(data: Mapping[str, Any]) -> str:
    """``ssh``: an unencrypted private key in PEM/OpenSSH form, for BuildKit's ``--ssh default``."""
    if not _present(data, "ssh"):
        return ""
    value = data["ssh"]
    if not isinstance(value, str) or len(value) > MAX_SSH_KEY_CHARS or _BAD_KEY_CHARS.search(value):
        raise InvalidRequest(f"must be a private key of at most {MAX_SSH_KEY_CHARS} characters", field="ssh")
    if not _PRIVATE_KEY.match(value):
        raise InvalidRequest("must be a private key (-----BEGIN ... PRIVATE KEY----- ... -----END ...)", field="ssh")
    return value


def validate_engine_fields(data: Mapping[str, Any], settings: Settings) -> EngineFields:
    """All three fields, and the rule that secrets, an SSH key and ``cache_from`` images need BuildKit."""
    engine = validate_engine(data, settings)
    secrets = validate_secrets(data)
    ssh = validate_ssh(data)
    cache_from = data.get("cache_from")  # a build option (validated with the options); BuildKit reads inline caches
    for name, given in (
        ("secrets", secrets),
        ("ssh", ssh),
        ("cache_from", isinstance(cache_from, list) and cache_from),
    ):
        if not given:
            continue
        if "buildkit" not in settings.allowed_engines:
            raise InvalidRequest("needs the buildkit engine, which this deployment does not allow", field=name)
        if engine == "classic":
            raise InvalidRequest("needs the buildkit engine; the classic engine cannot pass it to a build", field=name)
    return EngineFields(engine, secrets, ssh)
