"""Checking that a webhook delivery comes from the git host that knows the trigger's secret.

- GitHub: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``.
- GitLab: ``X-Gitlab-Token: <the secret>`` (GitLab sends the secret itself).
- Bitbucket: ``X-Hub-Signature: sha256=<hex HMAC-SHA256 of the raw body>``.

Every comparison is constant-time (:func:`hmac.compare_digest`); the caller
answers every failure — unknown trigger, missing header, wrong signature — the
same way, so the answer tells nothing about which.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from chalicelib.domain.hook_payloads import BITBUCKET, GITHUB, GITLAB

SIGNATURE_HEADERS = {GITHUB: "x-hub-signature-256", GITLAB: "x-gitlab-token", BITBUCKET: "x-hub-signature"}


def body_signature(secret: str, body: bytes) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``body`` under ``secret``, as GitHub and Bitbucket send it."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def signed_headers(host: str, secret: str, body: bytes) -> dict[str, str]:
    """The header a host would send for ``body`` (tests, the UI's docs, the CLI)."""
    value = secret if host == GITLAB else body_signature(secret, body)
    return {SIGNATURE_HEADERS[host]: value}


def verify(host: str, secret: str, headers: Mapping[str, str], body: bytes) -> bool:
    """True when the delivery carries the right signature for ``secret`` (``headers`` with lowercase names)."""
    given = (headers.get(SIGNATURE_HEADERS[host]) or "").strip()
    if not given or not secret:
        return False
    expected = secret if host == GITLAB else body_signature(secret, body)
    if host != GITLAB:
        given = given.lower()
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8"))
