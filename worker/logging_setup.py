"""Structured logging for the worker: one JSON object per line on stderr, secrets redacted."""

from __future__ import annotations

import json
import logging
import sys

from worker.redact import SecretFilter


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "thread", "msg", ["exc"]}`` per record."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO") -> None:
    """Send all logging to stderr as JSON lines through the secret filter."""
    JsonFormatter.converter = __import__("time").gmtime
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(SecretFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("botocore", "boto3", "urllib3", "docker", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
