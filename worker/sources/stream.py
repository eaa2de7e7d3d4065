"""A read-only stream wrapper that turns transport errors into a clear job failure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.domain.errors import BuildFailed
from worker.netguard import describe_error


class SafeStream:
    """``read(n)`` on ``source``; the listed exception types become :class:`BuildFailed`."""

    def __init__(
        self,
        source: Any,
        what: str,
        errors: tuple[type[BaseException], ...],
        read: Callable[[int], bytes] | None = None,
    ) -> None:
        self._read: Callable[[int], bytes] = read or source.read
        self._what = what
        self._errors = errors + (OSError,)

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes."""
        try:
            return self._read(size)
        except BuildFailed:
            raise
        except self._errors as exc:
            raise BuildFailed(f"{self._what} was interrupted ({describe_error(exc)}); try again") from None
