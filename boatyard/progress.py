"""Progress of the upload on stderr: a rich bar (bytes, rate, ETA) on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def human_bytes(count: float) -> str:
    """``1.5 MiB``-style sizes."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} GiB"


class ByteProgress:
    """``with ByteProgress("Uploading", total) as p: p.update(sent)``; silent when ``enabled`` is false.

    On a terminal it draws a rich progress bar; otherwise it prints a line at most every
    ``interval`` seconds (and one at the end), fit for CI logs.
    """

    def __init__(
        self, label: str, total: int, enabled: bool = True, stream: TextIO | None = None, interval: float = 5.0
    ) -> None:
        self.label = label
        self.total = max(total, 1)
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.interval = interval
        self.tty = self.enabled and self.stream.isatty()
        self._bar: Any = None
        self._task: Any = None
        self._started = 0.0
        self._last_line = 0.0
        self._done = 0

    def __enter__(self) -> ByteProgress:
        self._started = self._last_line = time.monotonic()
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total)
        return self

    def update(self, done: int) -> None:
        """``done`` bytes of ``total`` are through."""
        self._done = done
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(self._task, completed=done)
            return
        now = time.monotonic()
        if now - self._last_line >= self.interval:
            self._last_line = now
            self._line(now)

    def _line(self, now: float) -> None:
        elapsed = max(now - self._started, 1e-6)
        rate = self._done / elapsed
        left = (self.total - self._done) / rate if rate > 0 else float("inf")
        eta = f", {left:.0f} s left" if left != float("inf") and self._done < self.total else ""
        percent = 100.0 * self._done / self.total
        print(
            f"{self.label}: {human_bytes(self._done)} of {human_bytes(self.total)} ({percent:.0f}%), "
            f"{human_bytes(rate)}/s{eta}",
            file=self.stream,
            flush=True,
        )

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.enabled and exc[0] is None:
            self._line(time.monotonic())
