"""Keeping registry credentials out of every log the worker writes.

:class:`Redactor` replaces the password and the encodings it could appear in:
base64 of the password and of ``user:password`` (a Basic auth header) in
standard and URL-safe alphabets, with and without padding; JSON escapes as
Python writes them and as Go writes them (``\u003c``, ``\u003e``,
``\u0026``, non-ASCII kept), with lower- and upper-case hex; URL escapes with
upper- and lower-case hex.  A form shorter than :data:`MIN_SUBSTRING_CHARS`
is replaced only where it stands as a whole token (not inside a longer run of
letters, digits or ``_``): a one-letter password must not blank out every
occurrence of that letter, which would both wreck the log and tell whoever
reads it the password.  :class:`RedactingSink` feeds text to a log writer in
whole lines so that a secret split across two stream messages is still found.
:data:`SECRETS` is a process-wide registry the stderr log handler consults.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import urllib.parse
from collections.abc import Callable, Iterable

MARK = "[redacted]"
MIN_SUBSTRING_CHARS = 6
"""Forms of a secret shorter than this are redacted only as whole tokens."""
_GO_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_HEX_ESCAPE = re.compile(r"%[0-9A-F]{2}|\\u[0-9a-fA-F]{4}")


def _json_forms(password: str) -> set[str]:
    """The password inside a JSON string, as Python (ASCII-only) and Go (HTML-safe, UTF-8) write it."""
    forms = set()
    for ascii_only in (True, False):
        plain = json.dumps(password, ensure_ascii=ascii_only)[1:-1]
        forms.add(plain)
        forms.add("".join(_GO_ESCAPES.get(c, c) for c in plain))
    return forms


def _hex_cases(text: str) -> set[str]:
    """``text`` with the hex digits of its ``%XX`` and ``\\uXXXX`` escapes in lower and in upper case."""
    lower = _HEX_ESCAPE.sub(
        lambda m: m.group(0)[:2] + m.group(0)[2:].lower() if m.group(0)[0] == "\\" else m.group(0).lower(), text
    )
    upper = _HEX_ESCAPE.sub(
        lambda m: m.group(0)[:2] + m.group(0)[2:].upper() if m.group(0)[0] == "\\" else m.group(0).upper(), text
    )
    return {text, lower, upper}


def secret_forms(username: str, password: str) -> list[str]:
    """Every string form of the password worth hiding, longest first."""
    if not password:
        return []
    escaped = {urllib.parse.quote(password, safe=""), urllib.parse.quote_plus(password)} | _json_forms(password)
    forms = {password}
    for text in escaped:
        forms |= _hex_cases(text)
    for raw in (password, f"{username}:{password}"):
        data = raw.encode("utf-8")
        for encoded in (base64.b64encode(data), base64.urlsafe_b64encode(data)):
            text = encoded.decode("ascii")
            forms.add(text)
            forms.add(text.rstrip("="))
    return sorted((f for f in forms if f), key=len, reverse=True)


MIN_LINE_CHARS = 8  # lines of a multi-line secret (an SSH key) this long are hidden one by one too


def build_secret_forms(values: Iterable[str]) -> list[str]:
    """Forms worth hiding of build secrets: each value as :func:`secret_forms` sees a password, and each
    line of a multi-line value (a build's output shows a printed file line by line, with prefixes)."""
    forms: set[str] = set()
    for value in values:
        forms.update(secret_forms("", value))
        forms.update(secret_forms("", value.strip()))
        for line in value.splitlines():
            if len(line.strip()) >= MIN_LINE_CHARS:
                forms.add(line.strip())
    return sorted(forms, key=len, reverse=True)


class Redactor:
    """A callable that hides a fixed set of secrets in text (short ones only as whole tokens)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        unique = sorted({s for s in secrets if s}, key=len, reverse=True)
        self.secrets = [s for s in unique if len(s) >= MIN_SUBSTRING_CHARS]
        self.tokens = [s for s in unique if len(s) < MIN_SUBSTRING_CHARS]
        self._token_re = (
            re.compile(r"(?<!\w)(?:" + "|".join(re.escape(t) for t in self.tokens) + r")(?!\w)")
            if self.tokens
            else None
        )
        self.max_len = max((len(s) for s in unique), default=0) + (1 if self.tokens else 0)

    @classmethod
    def for_pairs(cls, pairs: Iterable[tuple[str, str]], build_secrets: Iterable[str] = ()) -> Redactor:
        """The redactor for every (username, secret) of a job (push password, base registries, tokens) and
        its BuildKit build secrets and SSH key."""
        forms = [form for username, secret in pairs for form in secret_forms(username, secret)]
        return cls(forms + build_secret_forms(build_secrets))

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MARK)
        if self._token_re is not None:
            text = self._token_re.sub(MARK, text)
        return text


class RedactingSink:
    """Line-buffers text, redacts it and hands it to ``write`` (a LogWriter's).

    A partial line longer than ``max_partial`` characters is written anyway,
    keeping back only as many characters as a secret could still need.
    """

    def __init__(self, write: Callable[[str], None], redactor: Redactor, max_partial: int = 8192) -> None:
        self._write = write
        self._redactor = redactor
        self._max_partial = max_partial
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> None:
        """Add text; complete lines go out at once."""
        if not text:
            return
        with self._lock:
            buffer = self._partial + text
            cut = buffer.rfind("\n")
            if cut >= 0:
                self._write(self._redactor(buffer[: cut + 1]))
                buffer = buffer[cut + 1 :]
            if len(buffer) > self._max_partial:
                redacted = self._redactor(buffer)
                keep = max(self._redactor.max_len - 1, 0)
                if keep:
                    self._write(redacted[:-keep])
                    buffer = redacted[-keep:]
                else:
                    self._write(redacted)
                    buffer = ""
            self._partial = buffer

    def line(self, text: str) -> None:
        """Write one line of boatyard's own (ends any partial line first)."""
        with self._lock:
            pending, self._partial = self._partial, ""
        if pending:
            self._write(self._redactor(pending + "\n"))
        self.write(text.rstrip("\n") + "\n")

    def flush(self) -> None:
        """Write out a pending partial line."""
        with self._lock:
            pending, self._partial = self._partial, ""
        if pending:
            self._write(self._redactor(pending))


class _SecretRegistry:
    """The secrets of the jobs running in this process, for the stderr log filter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: dict[int, Redactor] = {}

    def add(self, redactor: Redactor) -> None:
        with self._lock:
            self._active[id(redactor)] = redactor

    def remove(self, redactor: Redactor) -> None:
        with self._lock:
            self._active.pop(id(redactor), None)

    def redact(self, text: str) -> str:
        with self._lock:
            redactors = list(self._active.values())
        for redactor in redactors:
            text = redactor(text)
        return text


SECRETS = _SecretRegistry()


class SecretFilter(logging.Filter):
    """A logging filter that redacts the secrets of running jobs from every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string (or __str__) is not ours to fix here
            return True
        cleaned = SECRETS.redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = SECRETS.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True
