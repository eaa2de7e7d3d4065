"""The one place AWS clients are made.

boto3 reads ``AWS_ENDPOINT_URL`` (and per-service ``AWS_ENDPOINT_URL_<SVC>``)
natively, so the same code talks to AWS, to a moto server, or runs inside
``moto.mock_aws``.  Clients are cached per thread-safe ``(service, region)``;
tests call :func:`reset_clients` when they switch endpoints.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.domain.settings import get_settings

_LOCK = threading.Lock()
_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=32,
)


# S3 presigned POSTs must be SigV4: regions opened since 2014 accept nothing older.
_SERVICE_CONFIG = {"s3": _CONFIG.merge(Config(signature_version="s3v4"))}
# calls made on the side of something more important (a job's phase change): short and few tries
_QUICK_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=3)


@functools.cache
def _cached_client(service: str, region: str, quick: bool = False) -> Any:
    with _LOCK:  # boto3's default session is not thread-safe while creating clients
        config = _QUICK_CONFIG if quick else _SERVICE_CONFIG.get(service, _CONFIG)
        session: Any = boto3.session.Session()  # any service by name (the stubs type each literal name)
        return session.client(service, region_name=region, config=config)


def client(service: str) -> Any:
    """A boto3 client for ``service`` in the configured region (endpoint from the environment)."""
    return _cached_client(service, get_settings().region)


def quick_client(service: str) -> Any:
    """A client whose calls give up within seconds (2 tries, 2 s connect, 3 s read): for best-effort side calls."""
    return _cached_client(service, get_settings().region, True)


def reset_clients() -> None:
    """Forget cached clients (after the endpoint or the settings changed)."""
    _cached_client.cache_clear()
