"""Who is calling: the authorizer's decision and the principal the routes receive.

``BOATYARD_AUTH=keys``: every API route is guarded by a Chalice built-in
authorizer (``app.py``), which calls :meth:`Authenticator.authorize`; API Gateway caches its
answer for ``auth_cache_seconds`` and hands the routes the principal in
``requestContext.authorizer`` (owner, scope, key id: never the token).
``BOATYARD_AUTH=none``: no authorizer, every caller is ``anonymous``.

A rejected key answers 401 ``{Code, Message}``: deployed, API Gateway's
UNAUTHORIZED gateway response (infra/resources.yaml) shapes it; under
``chalice local`` and ``chalice.test.Client`` :func:`mirror_gateway_responses`
makes chalice's local gateway give the same answer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import Any

from chalicelib.domain.errors import Unauthorized
from chalicelib.domain.settings import Settings
from chalicelib.stores.apikeys import ANONYMOUS, ApiKeys, Principal, bearer_token, token_hash

log = logging.getLogger(__name__)

UNAUTHORIZED_BODY = {"Code": "Unauthorized", "Message": "send a valid API key as 'Authorization: Bearer <key>'"}


class AuthorizerRejected(Exception):
    """Raised by the authorizer to reject a request: API Gateway answers 401 for the message ``Unauthorized``."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def keys_required(settings: Settings) -> bool:
    """True when API keys guard the API (``BOATYARD_AUTH=keys``)."""
    return settings.auth_mode == "keys"


def cache_seconds(settings: Settings) -> float:
    """How long this process may reuse a key's verdict: API Gateway's TTL, but only where no API Gateway caches.

    In Lambda, API Gateway already caches the authorizer's answer for ``auth_cache_seconds``;
    a second cache behind it could stretch a revocation to twice that.  Under ``chalice local``
    (and in-process tests) this cache stands in for API Gateway's, so a revoked key still stops
    working within ``auth_cache_seconds``.
    """
    return 0.0 if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") else float(settings.auth_cache_seconds)


class Authenticator:
    """The authorizer's check of a bearer key, with the verdicts of accepted keys kept for ``cache_seconds``."""

    CACHE_MAX = 1024

    def __init__(self, apikeys: ApiKeys, cache_seconds: float) -> None:
        self._apikeys = apikeys
        self._seconds = cache_seconds
        self._cache: dict[str, tuple[Principal, float]] = {}
        self._lock = threading.Lock()

    def authorize(self, header: str | None) -> Principal:
        """The principal of an ``Authorization`` header's key; :class:`AuthorizerRejected` if it is not a valid one.

        Only accepted keys are cached (by the token's hash, never the token), so a
        wrong key always costs a lookup and a revoked one is refused within the TTL.
        """
        try:
            token = bearer_token(header)
            digest = token_hash(token)
            principal = self._cached(digest)
            if principal is None:
                principal = self._apikeys.verify(token)
                if self._seconds > 0:
                    self._remember(digest, principal)
            return principal
        except Unauthorized:
            log.info("authorizer: rejected a request (missing, invalid or revoked key)")
            raise AuthorizerRejected() from None

    def forget(self) -> None:
        """Drop every cached verdict (a revoked key is refused at once)."""
        with self._lock:
            self._cache.clear()

    def _cached(self, digest: str) -> Principal | None:
        with self._lock:
            hit = self._cache.get(digest)
            if hit is None or hit[1] < time.monotonic():
                self._cache.pop(digest, None)
                return None
            return hit[0]

    def _remember(self, digest: str, principal: Principal) -> None:
        with self._lock:
            if len(self._cache) >= self.CACHE_MAX:
                self._cache.clear()
            self._cache[digest] = (principal, time.monotonic() + self._seconds)


def principal_context(principal: Principal) -> dict[str, str]:
    """What the authorizer passes on to the routes (strings only: API Gateway's rule)."""
    return {"owner": principal.owner, "scope": principal.scope, "key_id": principal.key_id}


def caller(request: Any, settings: Settings) -> Principal:
    """The principal of a route's request: from the authorizer's context, or anonymous without keys."""
    if not keys_required(settings):
        return ANONYMOUS
    context = ((getattr(request, "context", None) or {}).get("authorizer")) or {}
    owner = context.get("owner") or context.get("principalId")
    if not owner:  # a route without the authorizer in keys mode is a wiring bug: refuse, never default open
        raise Unauthorized("this request carries no authorized principal")
    return Principal(str(owner), str(context.get("scope") or "user"), str(context.get("key_id") or ""))


_mirrored = False  # chalice's local gateway is patched once per process


def mirror_gateway_responses() -> None:
    """Make chalice's local gateway answer a rejected key like deployed API Gateway does: 401 ``{Code, Message}``.

    chalice.local answers a missing header with ``{"message": "Unauthorized"}`` and lets an
    authorizer's exception escape (a 500).  Only the local gateway is patched; in Lambda
    ``chalice.local`` is not packaged and this does nothing.
    """
    try:
        from chalice import local
    except ImportError:  # in Lambda
        return
    global _mirrored
    if _mirrored:
        return
    gateway = local.LocalGatewayAuthorizer
    original = gateway.authorize

    def authorize(self: Any, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        try:
            return original(self, raw_path, lambda_event, lambda_context)
        except (local.NotAuthorizedError, AuthorizerRejected):
            raise local.NotAuthorizedError(
                {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"},
                json.dumps(UNAUTHORIZED_BODY).encode(),
            ) from None

    gateway.authorize = authorize  # type: ignore[method-assign]  # the patch this function exists to make
    _mirrored = True
