"""Registry credentials sealed with KMS for the trip through SQS.

The API seals ``{username, password, email}`` with the job id as KMS
encryption context; only the worker unseals them, in memory, for the push.
:class:`Credentials` never shows the password in ``repr``.
"""
from __future__ import annotations

import base64
import dataclasses
import json

from chalicelib import aws
from chalicelib.settings import get_settings


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Registry credentials for one push."""

    username: str = ""
    password: str = dataclasses.field(default="", repr=False)
    email: str = ""

    @property
    def present(self) -> bool:
        """True when there is something to log in with."""
        return bool(self.username or self.password)


def seal(job_id: str, credentials: Credentials) -> str:
    """Encrypt credentials for ``job_id``; returns base64 ciphertext."""
    plaintext = json.dumps(dataclasses.asdict(credentials)).encode("utf-8")
    answer = aws.client("kms").encrypt(
        KeyId=get_settings().kms_key_id,
        Plaintext=plaintext,
        EncryptionContext={"job_id": job_id},
    )
    return base64.b64encode(answer["CiphertextBlob"]).decode("ascii")


def unseal(job_id: str, sealed: str) -> Credentials:
    """Decrypt what :func:`seal` made for the same ``job_id``."""
    if not sealed:
        return Credentials()
    answer = aws.client("kms").decrypt(
        CiphertextBlob=base64.b64decode(sealed),
        EncryptionContext={"job_id": job_id},
    )
    data = json.loads(answer["Plaintext"])
    return Credentials(str(data.get("username", "")), str(data.get("password", "")), str(data.get("email", "")))
