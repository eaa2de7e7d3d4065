"""``--secret``, ``--ssh``, ``--engine`` and ``--cache-from`` of ``boatyard build``, read like ``docker build`` reads them.

Secret values and the key are read here, on the user's machine, and become the build
request's ``secrets`` ({id: value}) and ``ssh`` fields; no message of this module ever
holds a value (only ids, file names and variable names).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class UsageError(ValueError):
    """A flag that cannot be used as given (the CLI reports it as a usage error); never holds a value."""


SECRET_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", re.ASCII)
MAX_SECRET_CHARS = 3072
MAX_SSH_KEY_BYTES = 16 * 1024
ENGINES = ("classic", "buildkit")


def _fields(flag: str, spec: str) -> dict[str, str]:
    """``k=v,k=v`` → {k: v}; a bare word is ``id`` (docker's ``--secret mysecret``)."""
    found: dict[str, str] = {}
    for part in spec.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep:
            key, value = ("id", part.strip()) if not found else (key, "")
        if not key or not value:
            raise UsageError(f"{flag} {_shown(spec)}: expected key=value pairs such as id=ID,src=FILE")
        if key in found:
            raise UsageError(f"{flag}: {key} is given twice")
        found[key] = value
    return found


def _shown(spec: str) -> str:
    """A flag's argument for a message, without anything after ``=`` that could be a value."""
    return repr(",".join(part.split("=", 1)[0] + ("=..." if "=" in part else "") for part in spec.split(",")))


def _read_text(path: str, flag: str, what: str, limit: int) -> str:
    """The UTF-8 text of a file; ``what`` names it in messages (the path itself is not repeated: a mistyped
    ``src=`` may be the secret)."""
    file = Path(os.path.expanduser(path))
    try:
        if file.stat().st_size > limit:
            raise UsageError(f"{flag}: {what} is larger than {limit} bytes")
        return file.read_text(encoding="utf-8")
    except UsageError:
        raise
    except UnicodeDecodeError:
        raise UsageError(f"{flag}: {what} is not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{flag}: cannot read {what} ({exc.strerror})") from None


def parse_secret(spec: str, env: Mapping[str, str] | None = None) -> tuple[str, str]:
    """One ``--secret``: ``id=ID,src=FILE`` (or ``source=``), ``id=ID,env=VAR``, ``type=file|env``, or ``id=ID``
    alone (the variable ``ID``, as docker does); returns (id, value)."""
    env = os.environ if env is None else env
    fields = _fields("--secret", spec)
    unknown = set(fields) - {"id", "src", "source", "env", "type"}
    if unknown:
        raise UsageError(f"--secret: unknown key {sorted(unknown)[0]!r} (use id=, src= or env=)")
    secret_id = fields.get("id", "")
    if not SECRET_ID.fullmatch(secret_id):
        raise UsageError(
            "--secret: id= must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    kind = fields.get("type", "env" if "env" in fields else "file" if {"src", "source"} & set(fields) else "")
    src = fields.get("src") or fields.get("source")
    if kind not in ("", "file", "env"):
        raise UsageError(f"--secret id={secret_id}: type must be file or env")
    if kind == "file" or (not kind and src):
        if not src:
            raise UsageError(f"--secret id={secret_id}: type=file needs src=FILE")
        value = _read_text(src, "--secret", f"the src= file of id={secret_id}", MAX_SECRET_CHARS * 4)
    else:
        name = fields.get("env") or src or secret_id
        if name not in env:
            raise UsageError(f"--secret id={secret_id}: the environment variable {name} is not set")
        value = env[name]
    if not value:
        raise UsageError(f"--secret id={secret_id}: the secret is empty")
    if len(value) > MAX_SECRET_CHARS or "\x00" in value:
        raise UsageError(f"--secret id={secret_id}: a secret may be at most {MAX_SECRET_CHARS} characters of text")
    return secret_id, value


def parse_ssh(spec: str) -> str:
    """``--ssh default=KEYFILE``: the key file's text (an agent socket cannot be sent to a remote build)."""
    ssh_id, sep, path = spec.partition("=")
    if ssh_id.strip() != "default":
        raise UsageError("--ssh: only the default id is supported (--ssh default=KEYFILE)")
    if not sep or not path.strip() or "," in path:
        raise UsageError(
            "--ssh default: give one private key file (--ssh default=~/.ssh/id_ed25519); "
            "an SSH agent cannot be forwarded to a remote build"
        )
    key = _read_text(path.strip(), "--ssh", "the key file", MAX_SSH_KEY_BYTES)
    if "PRIVATE KEY-----" not in key:
        raise UsageError(f"--ssh: {path.strip()} is not a private key file (-----BEGIN ... PRIVATE KEY-----)")
    if "ENCRYPTED" in key:  # PEM keys say so; an encrypted OpenSSH-format key is refused by the build
        raise UsageError(f"--ssh: {path.strip()} is encrypted; give a key without a passphrase (a deploy key)")
    return key


def buildkit_fields(args: Any, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The request fields of ``--engine``, ``--cache-from``, ``--secret`` and ``--ssh`` (only those given)."""
    fields: dict[str, Any] = {}
    if getattr(args, "engine", None):
        fields["engine"] = args.engine
    cache_from = list(dict.fromkeys(getattr(args, "cache_from", None) or []))
    if cache_from:
        fields["cache_from"] = cache_from
    secrets: dict[str, str] = {}
    for spec in getattr(args, "secret", None) or []:
        secret_id, value = parse_secret(spec, env)
        if secret_id in secrets:
            raise UsageError(f"--secret id={secret_id} is given twice")
        secrets[secret_id] = value
    if secrets:
        fields["secrets"] = secrets
    specs = getattr(args, "ssh", None) or []
    if len(specs) > 1:
        raise UsageError("--ssh: give one key (--ssh default=KEYFILE)")
    if specs:
        fields["ssh"] = parse_ssh(specs[0])
    if fields.get("engine") == "classic":
        needs = [name for name in ("secrets", "ssh", "cache_from") if name in fields]
        if needs:
            flag = {"secrets": "--secret", "ssh": "--ssh", "cache_from": "--cache-from"}[needs[0]]
            raise UsageError(f"{flag} needs the buildkit engine; leave out --engine classic")
    return fields
