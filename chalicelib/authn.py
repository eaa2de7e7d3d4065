"""Who is calling: the authorizer's decision and the principal the routes receive.

``BOATYARD_AUTH=keys``: every API route is guarded by a Chalice built-in
authorizer (``app.py``), which calls :func:`authorize`; API Gateway caches its
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
from typing import Any

from chalicelib import apikeys
from chalicelib.apikeys import ANONYMOUS, Principal
from chalicelib.errors import Unauthorized
from chalicelib.settings import get_settings

log = logging.getLogger("boatyard.auth")

UNAUTHORIZED_BODY = {"Code": "Unauthorized", "Message": "send a valid API key as 'Authorization: Bearer <key>'"}


class AuthorizerRejected(Exception):
    """Raised by the authorizer to reject a request: API Gateway answers 401 for the message ``Unauthorized``."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def keys_required() -> bool:
    """True when API keys guard the API (``BOATYARD_AUTH=keys``)."""
    return get_settings().auth_mode == "keys"


def authorize(header: str | None) -> Principal:
    """The principal of an ``Authorization`` header's key; :class:`AuthorizerRejected` if it is not a valid one."""
    try:
        return apikeys.verify(apikeys.bearer_token(header))
    except Unauthorized:
        log.info("authorizer: rejected a request (missing, invalid or revoked key)")
        raise AuthorizerRejected() from None


def principal_context(principal: Principal) -> dict[str, str]:
    """What the authorizer passes on to the routes (strings only: API Gateway's rule)."""
    return {"owner": principal.owner, "scope": principal.scope, "key_id": principal.key_id}


def caller(request: Any) -> Principal:
    """The principal of a route's request: from the authorizer's context, or anonymous without keys."""
    if not keys_required():
        return ANONYMOUS
    context = ((getattr(request, "context", None) or {}).get("authorizer")) or {}
    owner = context.get("owner") or context.get("principalId")
    if not owner:  # a route without the authorizer in keys mode is a wiring bug: refuse, never default open
        raise Unauthorized("this request carries no authorized principal")
    return Principal(str(owner), str(context.get("scope") or "user"), str(context.get("key_id") or ""))


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
    gateway = local.LocalGatewayAuthorizer
    if getattr(gateway, "_boatyard_mirrored", False):
        return
    original = gateway.authorize

    def authorize(self: Any, raw_path: str, lambda_event: Any, lambda_context: Any) -> Any:
        try:
            return original(self, raw_path, lambda_event, lambda_context)
        except (local.NotAuthorizedError, AuthorizerRejected):
            raise local.NotAuthorizedError(
                {"Content-Type": "application/json", "WWW-Authenticate": "Bearer"},
                json.dumps(UNAUTHORIZED_BODY).encode(),
            ) from None

    gateway.authorize = authorize
    gateway._boatyard_mirrored = True
