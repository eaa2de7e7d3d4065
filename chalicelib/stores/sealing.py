"""Registry credentials and build secrets sealed with KMS for the trip through SQS.

The API seals ``{username, password, email}`` — plus, when given, the
``registry_auths`` of base-image registries and the token of a private git
source (``github_token``, ``gitlab_token`` or ``bitbucket_app_password``) — with the
job id as KMS encryption context; only the worker unseals them, in memory,
for the pull/fetch/push that needs them.  :class:`Credentials` never shows a
secret in ``repr``.
BuildKit build ``secrets`` ({id: value}) and an ``ssh`` key travel the same way,
for the build only.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from typing import Any

from chalicelib.domain.settings import Settings


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Registry credentials for one push."""

    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    email: str = ""
    # {registry host: {"username": ..., "password": ...}} for private base images on other registries
    registry_auths: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict, repr=False)
    source_token: str = dataclasses.field(default="", repr=False)  # a private repository's token / app password
    source_user: str = ""  # the user that goes with source_token (Bitbucket app passwords)
    secrets: dict[str, str] = dataclasses.field(default_factory=dict, repr=False)  # BuildKit build secrets {id: value}
    ssh: str = dataclasses.field(default="", repr=False)  # a private key for BuildKit's --ssh default

    @property
    def present(self) -> bool:
        """True when there is something to log in with."""
        return bool(self.username or self.password)

    @property
    def to_seal(self) -> bool:
        """True when the job has anything worth sealing."""
        return bool(self.present or self.email or self.registry_auths or self.source_token or self.secrets or self.ssh)

    def secret_pairs(self) -> list[tuple[str, str]]:
        """Every (username, secret) this job carries, for redaction (the token's user is GitHub's)."""
        pairs = [(self.username, self.password)]
        pairs += [(auth.get("username", ""), auth.get("password", "")) for auth in self.registry_auths.values()]
        pairs += [(self.source_user or "x-access-token", self.source_token)]
        return [(user, secret) for user, secret in pairs if secret]


def sealed_json(credentials: Credentials) -> str:
    """The plaintext that :meth:`Sealer.seal` encrypts (empty extras left out; KMS takes at most 4096 bytes)."""
    data = dataclasses.asdict(credentials)
    for key in ("registry_auths", "source_token", "source_user", "secrets", "ssh"):
        if not data[key]:
            del data[key]
    return json.dumps(data)


def credentials_from_json(plaintext: bytes | str) -> Credentials:
    """The :class:`Credentials` of what :func:`sealed_json` wrote (after decryption)."""
    data = json.loads(plaintext)
    auths = data.get("registry_auths") or {}
    secrets = data.get("secrets") or {}
    return Credentials(
        str(data.get("username", "")),
        str(data.get("password", "")),
        str(data.get("email", "")),
        registry_auths={
            str(host): {"username": str(auth.get("username", "")), "password": str(auth.get("password", ""))}
            for host, auth in auths.items()
        },
        source_token=str(data.get("source_token", "")),
        source_user=str(data.get("source_user", "")),
        secrets={str(key): str(value) for key, value in secrets.items()} if isinstance(secrets, dict) else {},
        ssh=str(data.get("ssh", "")),
    )


class Sealer:
    """Seals and unseals a job's registry credentials with KMS (the job id is the encryption context)."""

    def __init__(self, kms: Any, settings: Settings) -> None:
        self._kms = kms
        self._settings = settings

    def seal(self, job_id: str, credentials: Credentials) -> str:
        """Encrypt credentials for ``job_id``; returns base64 ciphertext."""
        plaintext = sealed_json(credentials).encode("utf-8")
        answer = self._kms.encrypt(
            KeyId=self._settings.kms_key_id,
            Plaintext=plaintext,
            EncryptionContext={"job_id": job_id},
        )
        return base64.b64encode(answer["CiphertextBlob"]).decode("ascii")

    def unseal(self, job_id: str, sealed: str) -> Credentials:
        """Decrypt what :meth:`seal` made for the same ``job_id``."""
        if not sealed:
            return Credentials()
        answer = self._kms.decrypt(
            CiphertextBlob=base64.b64decode(sealed),
            EncryptionContext={"job_id": job_id},
        )
        return credentials_from_json(answer["Plaintext"])
