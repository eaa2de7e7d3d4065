"""Job logs in DynamoDB: batched chunk writes and cursor reads.

Layout (DESIGN.md): items ``(pk=<job_id>, sk="log#<10-digit seq>")`` each with
at most ``log_chunk_bytes`` (32 KB) of UTF-8 text in ``data``.  Writers buffer
and flush on size (``log_flush_bytes``) or age (``log_flush_seconds``), never one
write per line; a job's log stops at ``log_cap_bytes`` with an explicit marker.
The read cursor is the sequence number of the last chunk a caller has.

A worker's writer is *fenced* (:class:`LogFence`): each batch of chunks is one
``TransactWriteItems`` that also checks the job item (this worker's lease, this
attempt, a live phase) and creates each chunk only if its key is new.  A worker that
lost its lease, or whose job was cancelled or already ended, can neither
overwrite a newer attempt's chunks nor extend a log the API has called Complete:
its write fails with :class:`~chalicelib.domain.errors.TransitionConflict` and its
buffer is dropped.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import ServiceUnavailable, TransitionConflict
from chalicelib.domain.jobs import LIVE_PHASES, ttl_epoch
from chalicelib.domain.settings import Settings
from chalicelib.stores import dynamo
from chalicelib.stores.aws_errors import aws_error_code, cancellation_codes

SEQ_DIGITS = 10
LIVE_PHASE_VALUES = sorted(p.value for p in LIVE_PHASES)
MAX_BATCH = 25
TRANSACTION_TRIES = 8


@dataclasses.dataclass(frozen=True)
class LogFence:
    """Who may write a job's log: the lease holder (``owner``) of one ``attempt``, while the job is live."""

    owner: str
    attempt: int


def log_sort_key(seq: int) -> str:
    """The sort key of chunk ``seq``."""
    return f"log#{seq:0{SEQ_DIGITS}d}"


def truncation_marker(cap_bytes: int) -> str:
    """The line that ends a log cut at the cap."""
    return f"\n[boatyard] log truncated: it reached the limit of {cap_bytes} bytes; later output was dropped.\n"


def split_utf8(text: str, limit: int) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` UTF-8 bytes, preferring line ends."""
    pieces: list[str] = []
    data = text.encode("utf-8")
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        if end < len(data):
            newline = data.rfind(b"\n", start, end)
            if newline >= start + limit // 2:
                end = newline + 1
            else:
                while end > start and (data[end] & 0xC0) == 0x80:  # not inside a code point
                    end -= 1
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    return pieces


@dataclasses.dataclass
class Chunk:
    """One stored log chunk."""

    seq: int
    data: str


@dataclasses.dataclass
class LogPage:
    """What a read returns: the text, the cursor after it, and whether more is stored."""

    text: str
    next_cursor: int
    more: bool


class LogWriter:
    """Buffers a job's log text and writes it as ordered chunks in batches.

    Thread-safe.  The build loop calls :meth:`write`, which only buffers: once
    started (:meth:`start`), a background thread writes the buffer when it
    holds ``log_flush_bytes`` or its oldest text is ``log_flush_seconds`` old,
    so the build's output is never held up by a DynamoDB round trip.  ``write``
    waits only when more than ``MAX_PENDING_BYTES`` are waiting (backpressure).
    One writer at a time takes the buffer and numbers its chunks, so chunks are
    stored in the order the text came.  A write that failed is raised by the
    next :meth:`write`, :meth:`flush` or :meth:`close`.  Call :meth:`close` to
    flush everything before the job's terminal write.
    """

    MAX_PENDING_BYTES = 1024 * 1024

    def __init__(
        self,
        dynamodb: Any,
        settings: Settings,
        job_id: str,
        start_seq: int,
        already_written: int = 0,
        redact: Callable[[str], str] | None = None,
        fence: LogFence | None = None,
    ) -> None:
        """A writer of ``job_id``'s log whose next chunk is ``start_seq + 1``; made by :meth:`LogStore.writer`."""
        self.job_id = job_id
        self.fence = fence  # None: unconditional batch writes (tools and tests that own the job outright)
        self.settings = settings
        self._dynamodb = dynamodb
        self._seq = start_seq
        self._buffer: list[str] = []
        self._buffered_bytes = 0
        self._oldest: float | None = None
        self._accepted = already_written  # bytes taken into the log, written or not: what the cap counts
        self._truncated = self._accepted >= self.settings.log_cap_bytes
        self._redact = redact
        self._lock = threading.Condition(threading.RLock())  # guards the buffer
        self._write_lock = threading.Lock()  # one writer at a time: takes the buffer, numbers, stores
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self.batch_calls = 0  # BatchWriteItem requests sent (for benchmarks)
        self.dropped_bytes = 0
        self._abandoned = False

    @property
    def truncated(self) -> bool:
        """True once the cap was reached."""
        return self._truncated

    @property
    def bytes_accepted(self) -> int:
        """Bytes of log this job holds, written or buffered (what the cap counts)."""
        return self._accepted

    def write(self, text: str) -> None:
        """Add text to the log (redacted); the background thread writes it out."""
        if not text:
            return
        if self._redact is not None:
            text = self._redact(text)
        self._raise_error()
        with self._lock:
            if self._abandoned:
                return
            if self._truncated:
                self.dropped_bytes += len(text.encode("utf-8"))
                return
            size = len(text.encode("utf-8"))
            room = self.settings.log_cap_bytes - self._accepted
            if size > room:
                kept = text.encode("utf-8")[: max(room, 0)].decode("utf-8", errors="ignore")
                self.dropped_bytes += size - len(kept.encode("utf-8"))
                self._append(kept)
                self._append(truncation_marker(self.settings.log_cap_bytes))
                self._truncated = True
            else:
                self._append(text)
            full = self._buffered_bytes >= self.settings.log_flush_bytes
            if full and self._thread is not None:
                self._lock.notify_all()
                while self._buffered_bytes > self.MAX_PENDING_BYTES and self._error is None and self._thread.is_alive():
                    self._lock.wait(0.5)
                return
        if full or self._truncated:
            self.flush()  # not started: write on the caller's thread

    def _append(self, text: str) -> None:
        if not text:
            return
        if self._oldest is None:
            self._oldest = time.monotonic()
        self._buffer.append(text)
        size = len(text.encode("utf-8"))
        self._buffered_bytes += size
        self._accepted += size

    def _take(self) -> str:
        with self._lock:
            text = "".join(self._buffer)
            self._buffer.clear()
            self._buffered_bytes = 0
            self._oldest = None
            self._lock.notify_all()  # wake writers waiting on backpressure
            return text

    def _due(self) -> bool:
        with self._lock:
            if self._buffered_bytes >= self.settings.log_flush_bytes:
                return True
            return self._oldest is not None and time.monotonic() - self._oldest >= self.settings.log_flush_seconds

    def flush(self) -> None:
        """Write out everything buffered, on this thread; raises a failure of an earlier write."""
        self._raise_error()
        with self._write_lock:
            self._store(self._take())

    def flush_if_due(self) -> None:
        """Write out the buffer if it is full or its oldest text is older than the flush interval."""
        if self._due():
            with self._write_lock:
                if self._due():
                    self._store(self._take())

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _store(self, text: str) -> None:
        if not text or self._abandoned:
            return
        expires = ttl_epoch(self.settings.job_ttl_days)
        items = []
        for piece in split_utf8(text, self.settings.log_chunk_bytes):
            self._seq += 1
            items.append(
                {
                    "PutRequest": {
                        "Item": dynamo.serialize(
                            {"pk": self.job_id, "sk": log_sort_key(self._seq), "data": piece, "expires_at": expires}
                        )
                    }
                }
            )
        for start in range(0, len(items), MAX_BATCH):
            if self.fence is not None:
                self._fenced_write(items[start : start + MAX_BATCH], self.fence)
            else:
                self._batch_write(items[start : start + MAX_BATCH])

    def _fenced_write(self, requests: list[dict[str, Any]], fence: LogFence) -> None:
        """Store chunks in one transaction that holds only while ``fence`` owns the live job; new keys only."""
        table = self.settings.table_name
        values = {":me": {"S": fence.owner}, ":attempt": {"N": str(fence.attempt)}}
        live = []
        for i, phase in enumerate(LIVE_PHASE_VALUES):
            values[f":live{i}"] = {"S": phase}
            live.append(f":live{i}")
        actions: list[dict[str, Any]] = [
            {
                "ConditionCheck": {
                    "TableName": table,
                    "Key": dynamo.job_key(self.job_id),
                    "ConditionExpression": f"#owner = :me AND #attempt = :attempt AND #phase IN ({', '.join(live)})",
                    "ExpressionAttributeNames": {"#owner": "lease_owner", "#attempt": "attempt", "#phase": "phase"},
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        for request in requests:  # Update, not Put: the worker's role has no PutItem (it cannot write job records)
            item = request["PutRequest"]["Item"]
            actions.append(
                {
                    "Update": {
                        "TableName": table,
                        "Key": {"pk": item["pk"], "sk": item["sk"]},
                        "UpdateExpression": "SET #data = :data, expires_at = :expires",
                        "ConditionExpression": "attribute_not_exists(sk)",
                        "ExpressionAttributeNames": {"#data": "data"},
                        "ExpressionAttributeValues": {":data": item["data"], ":expires": item["expires_at"]},
                    }
                }
            )
        client = self._dynamodb
        delay = 0.05
        for _ in range(TRANSACTION_TRIES):
            self.batch_calls += 1
            try:  # the token makes botocore's own retries of this request idempotent
                client.transact_write_items(TransactItems=actions, ClientRequestToken=uuid.uuid4().hex)
                return
            except ClientError as exc:
                code = aws_error_code(exc) or "error"
                reasons = cancellation_codes(exc)
                if code == "TransactionCanceledException" and "ConditionalCheckFailed" in reasons:
                    with self._lock:
                        self._abandoned = True
                    raise TransitionConflict(
                        f"job {self.job_id}: the log belongs to another attempt or the job ended; this writer stops"
                    ) from None
                if code not in (
                    "TransactionCanceledException",
                    "TransactionConflictException",
                    "TransactionInProgressException",
                ):
                    raise ServiceUnavailable(f"could not store the build log (DynamoDB answered {code})") from exc
            except BotoCoreError as exc:
                raise ServiceUnavailable(
                    f"could not store the build log (DynamoDB unreachable: {type(exc).__name__})"
                ) from exc
            time.sleep(delay)  # a concurrent write to the job item (heartbeat, transition): try again
            delay = min(delay * 2, 1.0)
        raise ServiceUnavailable("could not store the build log (DynamoDB kept cancelling the write)")

    def abandon(self) -> None:
        """Stop writing for good and drop what is buffered (the job is no longer this writer's)."""
        with self._lock:
            self._abandoned = True
            self._buffer.clear()
            self._buffered_bytes = 0
            self._oldest = None
            self._lock.notify_all()
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=60)

    def _batch_write(self, requests: list[dict[str, Any]]) -> None:
        client = self._dynamodb
        table = self.settings.table_name
        pending = requests
        delay = 0.05
        for _ in range(12):
            self.batch_calls += 1
            try:
                answer = client.batch_write_item(RequestItems={table: pending})
            except ClientError as exc:  # botocore already retried throttling with backoff
                code = aws_error_code(exc) or "error"
                raise ServiceUnavailable(f"could not store the build log (DynamoDB answered {code})") from exc
            except BotoCoreError as exc:
                raise ServiceUnavailable(
                    f"could not store the build log (DynamoDB unreachable: {type(exc).__name__})"
                ) from exc
            unprocessed = answer.get("UnprocessedItems", {}).get(table, [])
            if not unprocessed:
                return
            pending = unprocessed
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        raise ServiceUnavailable(f"could not store the build log (DynamoDB left {len(pending)} chunks unprocessed)")

    def start(self) -> LogWriter:
        """Start the background thread that writes full or old buffers."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"logflush-{self.job_id[:8]}", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        tick = max(min(self.settings.log_flush_seconds / 4, 0.25), 0.01)
        while not self._stop.is_set():
            with self._lock:
                if not self._due():
                    self._lock.wait(tick)
            if self._stop.is_set():
                return
            try:
                self.flush_if_due()
            except BaseException as exc:  # noqa: BLE001 - kept for the build loop's next write, flush or close
                self._error = exc
                with self._lock:
                    self._lock.notify_all()
                return

    def close(self) -> None:
        """Stop the background thread and write what is left; raises a failed write."""
        self._stop.set()
        with self._lock:
            self._lock.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=60)
        self.flush()

    def __enter__(self) -> LogWriter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class LogStore:
    """A job's log chunks in the table: read them, count them, and open a writer."""

    def __init__(self, dynamodb: Any, settings: Settings) -> None:
        self._dynamodb = dynamodb
        self._settings = settings

    def writer(
        self,
        job_id: str,
        *,
        start_seq: int | None = None,
        already_written: int = 0,
        redact: Callable[[str], str] | None = None,
        fence: LogFence | None = None,
    ) -> LogWriter:
        """A :class:`LogWriter` of ``job_id``'s log, appending after its newest chunk unless ``start_seq`` is given.

        ``fence`` makes every batch conditional on the job's lease (the worker); without it writes are
        unconditional (tools and tests that own the job outright).
        """
        seq = self.last_sequence(job_id) if start_seq is None else start_seq
        return LogWriter(self._dynamodb, self._settings, job_id, seq, already_written, redact, fence)

    def last_sequence(self, job_id: str) -> int:
        """The sequence number of the newest chunk of a job (0 if none)."""
        answer = self._dynamodb.query(
            TableName=self._settings.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :log)",
            ExpressionAttributeValues={":pk": {"S": job_id}, ":log": {"S": "log#"}},
            ScanIndexForward=False,
            Limit=1,
            ConsistentRead=True,
            ProjectionExpression="sk",
        )
        items = answer.get("Items", [])
        return int(items[0]["sk"]["S"].split("#", 1)[1]) if items else 0

    def stored_bytes(self, job_id: str) -> int:
        """How many bytes of log a job has stored (used to resume the cap on a retry)."""
        return sum(len(c.data.encode("utf-8")) for c in self.iter_chunks(job_id, 0))

    def iter_chunks(self, job_id: str, since: int) -> Iterator[Chunk]:
        """Chunks with ``seq > since``, in order, reading page by page."""
        kwargs = {
            "TableName": self._settings.table_name,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :lo AND :hi",
            "ExpressionAttributeValues": {
                ":pk": {"S": job_id},
                ":lo": {"S": log_sort_key(since + 1)},
                ":hi": {"S": log_sort_key(10**SEQ_DIGITS - 1)},
            },
            "ConsistentRead": True,
        }
        client = self._dynamodb
        while True:
            answer = client.query(**kwargs)
            for item in answer.get("Items", []):
                yield Chunk(int(item["sk"]["S"].split("#", 1)[1]), item["data"]["S"])
            if "LastEvaluatedKey" not in answer:
                return
            kwargs["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def read_logs(self, job_id: str, since: int = 0, max_bytes: int | None = None) -> LogPage:
        """Log text after cursor ``since``, at most ``max_bytes`` (whole chunks; at least one)."""
        limit = max_bytes if max_bytes is not None else self._settings.max_log_response_bytes
        parts: list[str] = []
        size = 0
        cursor = since
        for chunk in self.iter_chunks(job_id, since):
            chunk_size = len(chunk.data.encode("utf-8"))
            if parts and size + chunk_size > limit:
                return LogPage("".join(parts), cursor, True)
            parts.append(chunk.data)
            size += chunk_size
            cursor = chunk.seq
        return LogPage("".join(parts), cursor, False)
