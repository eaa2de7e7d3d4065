"""The one place AWS clients are made.

boto3 reads ``AWS_ENDPOINT_URL`` (and per-service ``AWS_ENDPOINT_URL_<SVC>``)
natively, so the same code talks to AWS, to a moto server, or runs inside
``moto.mock_aws``.  An :class:`AwsClients` makes each client once, for its
region; the process's one :class:`~chalicelib.stores.services.Services` owns it.
There is no module-level cache: a test that changes the endpoint makes new ones.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

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

# boto3's default session is not thread-safe while creating clients: one lock for every instance
_CREATE_LOCK = threading.Lock()


class AwsClients:
    """boto3 clients for one region, each made on first use and then shared (clients are thread-safe)."""

    def __init__(self, region: str) -> None:
        self.region = region
        self._made: dict[tuple[str, bool], Any] = {}

    def client(self, service: str) -> Any:
        """A client for ``service`` (endpoint from the environment), with retries and timeouts for the service."""
        return self._get(service, quick=False)

    def quick(self, service: str) -> Any:
        """A client whose calls give up within seconds (2 tries, 2 s connect, 3 s read): for best-effort side calls."""
        return self._get(service, quick=True)

    def _get(self, service: str, quick: bool) -> Any:
        key = (service, quick)
        found = self._made.get(key)
        if found is None:
            with _CREATE_LOCK:
                found = self._made.get(key)
                if found is None:
                    config = _QUICK_CONFIG if quick else _SERVICE_CONFIG.get(service, _CONFIG)
                    session: Any = boto3.session.Session()  # any service by name (the stubs type each literal)
                    found = self._made[key] = session.client(service, region_name=self.region, config=config)
        return found
