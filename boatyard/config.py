"""Where the API is and which key to send: flags, then environment, then ``~/.config/boatyard/config.toml``.

The file is TOML with top-level keys ``api`` (the service's base URL) and
``token`` (an API key, sent as ``Authorization: Bearer``)::

    api = "https://boatyard.example.com"
    token = "by_..."

A token in a file that others can read is refused (like ssh does with keys).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_API = "http://127.0.0.1:8000"
KNOWN_KEYS = {"api", "token"}


class ConfigError(Exception):
    """The configuration cannot be used (bad file, bad URL, unsafe token)."""


@dataclasses.dataclass(frozen=True)
class Config:
    """The resolved settings of one run."""

    api: str = DEFAULT_API
    token: str = ""
    source: str = "default"  # where ``api`` came from, for messages

    def __repr__(self) -> str:  # never print the token
        return f"Config(api={self.api!r}, token={'set' if self.token else 'unset'}, source={self.source!r})"


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$BOATYARD_CONFIG``, else ``$XDG_CONFIG_HOME/boatyard/config.toml``, else ``~/.config/boatyard/config.toml``."""
    env = os.environ if env is None else env
    if env.get("BOATYARD_CONFIG"):
        return Path(env["BOATYARD_CONFIG"]).expanduser()
    base = Path(env["XDG_CONFIG_HOME"]).expanduser() if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "boatyard" / "config.toml"


def read_file(path: Path) -> dict[str, Any]:
    """The settings in the TOML file at ``path`` ({} when it does not exist)."""
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
            mode = os.fstat(handle.fileno()).st_mode
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    unknown = sorted(set(data) - KNOWN_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(KNOWN_KEYS))}")
    for key in KNOWN_KEYS & set(data):
        if not isinstance(data[key], str):
            raise ConfigError(f"{path}: {key} must be a string")
    if data.get("token") and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(f"{path} holds an API key but others can read it; run: chmod 600 {path}")
    return data


def check_api_url(url: str, insecure: bool = False, token: bool = False) -> str:
    """The API base URL without a trailing slash; refuses non-HTTP(S) URLs, and a token over plain HTTP
    to a host that is not this machine unless ``insecure``."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"the API URL must be http(s)://host[:port], not {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("the API URL must not carry credentials, a query or a fragment")
    if token and parts.scheme == "http" and not insecure and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"refusing to send the API key over plain HTTP to {parts.hostname}; use https:// (or --insecure)"
        )
    return url.strip().rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve(
    api_flag: str | None = None, insecure: bool = False, env: Mapping[str, str] | None = None, path: Path | None = None
) -> Config:
    """Flags win over the environment (``BOATYARD_API``, ``BOATYARD_TOKEN``), which wins over the file."""
    env = os.environ if env is None else env
    path = path or config_path(env)
    data = read_file(path)
    if api_flag:
        api, source = api_flag, "--api"
    elif env.get("BOATYARD_API"):
        api, source = env["BOATYARD_API"], "BOATYARD_API"
    elif data.get("api"):
        api, source = data["api"], str(path)
    else:
        api, source = DEFAULT_API, "default"
    token = env.get("BOATYARD_TOKEN") or data.get("token") or ""
    return Config(check_api_url(api, insecure, bool(token)), token.strip(), source)
