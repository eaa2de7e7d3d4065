"""The stores of the running test: one :class:`~chalicelib.stores.services.Services` per test, on moto.

The product keeps no module-level clients or settings (issue 16 item 2): every app, worker and
store is handed a ``Services``.  The ``aws_env`` fixture makes one inside ``mock_aws`` and makes it
*active* here for the test's duration, so helpers and tests reach the same stores the app and the
worker of that test use: ``stores().jobs.get_job(job_id)``.

A test that changes a setting calls :func:`reconfigure` (set the variables, then a new ``Services``
over the same clients, now active); apps and workers made after that see the new settings, ones
made before keep theirs, exactly as a deployed process keeps the settings it started with.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.domain.settings import Settings, load_settings
from chalicelib.stores.services import Services

_active: list[Services] = []


def stores() -> Services:
    """The running test's stores (``aws_env`` must be in use)."""
    if not _active:
        raise RuntimeError("no active stores: the test needs the aws_env fixture")
    return _active[-1]


def settings() -> Settings:
    """The running test's settings."""
    return stores().settings


@contextlib.contextmanager
def activated(services: Services) -> Iterator[Services]:
    """Make ``services`` the running test's stores until the block ends."""
    depth = len(_active)
    _active.append(services)
    try:
        yield services
    finally:
        del _active[depth:]  # whatever reconfigure put in its place


def make_app() -> Any:
    """The Chalice app made now over the running test's stores and settings."""
    from app import create_app

    services = stores()
    return create_app(services)


class FollowingClient:
    """A chalice.test.Client whose app is remade whenever the test reconfigures, as a redeploy would be.

    ``http``, ``events`` and ``lambda_`` are those of a Client on :func:`make_app` over the
    running test's stores *now*: a test that changes a setting mid-way talks to an app that has it.
    """

    def __init__(self, **client_options: Any) -> None:
        self._options = client_options
        self._built_for: Services | None = None
        self._client: Client | None = None

    def _current(self) -> Client:
        services = stores()
        if self._client is None or services is not self._built_for:
            self.close()
            self._client = Client(make_app(), **self._options)
            self._client.__enter__()
            self._built_for = services
        return self._client

    @property
    def http(self) -> Any:
        """The HTTP test client."""
        return self._current().http

    @property
    def events(self) -> Any:
        """Test events (SQS and others)."""
        return self._current().events

    @property
    def lambda_(self) -> Any:
        """Invokes a Lambda function of the app."""
        return self._current().lambda_

    def close(self) -> None:
        """End the current Client."""
        if self._client is not None:
            self._client.__exit__(None, None, None)
            self._client = None


@contextlib.contextmanager
def api_client(**client_options: Any) -> Iterator[FollowingClient]:
    """A :class:`FollowingClient` for the block."""
    following = FollowingClient(**client_options)
    try:
        yield following
    finally:
        following.close()


def offline_app() -> Any:
    """An app over the environment's settings now, for routes that reach no AWS service (no moto needed)."""
    from app import create_app

    return create_app(Services.from_environment())


def reconfigure(monkeypatch: pytest.MonkeyPatch | None = None, **env: object) -> Services | None:
    """Set ``env`` (names as given; ``None`` removes one), then re-read the settings into new active stores.

    Before ``aws_env`` started there are no stores yet: the variables are set, and read when it starts.
    """
    for name, value in env.items():
        if monkeypatch is None:
            raise ValueError("setting variables needs the test's monkeypatch")
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, str(value))
    if not _active:
        return None
    current = _active[-1]
    fresh = Services(load_settings(), current.clients)
    _active[_active.index(current)] = fresh
    return fresh
