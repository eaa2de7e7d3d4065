"""The worker process: poll the queue, run up to N jobs at once, sweep dead letters, stop gracefully.

Only as many messages are received as there are free build slots, so a busy
worker leaves messages for other workers.  On SIGTERM/SIGINT it takes no new
jobs, lets running builds finish within ``shutdown_grace_seconds``, then
aborts the rest and gives their messages back.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import socket
import threading
import time
import uuid

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.errors import TransitionConflict
from chalicelib.stores.queue import Delivery
from chalicelib.stores.services import Services
from worker.build.builder import Builder
from worker.job.control import AbortKind, JobControl
from worker.job.runner import JobRunner, ProcessResult

log = logging.getLogger(__name__)

DLQ_REASON = (
    "the job could not be processed: its queue message was delivered too many times without the job "
    "finishing and was moved to the dead-letter queue; submit the build again"
)


def make_worker_id() -> str:
    """``hostname:pid:short-uuid``: unique per worker process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Worker:
    """A pool of build slots fed from the job queue."""

    def __init__(
        self,
        services: Services,
        poll_wait_seconds: int = 20,
        dlq_sweep_seconds: float = 300.0,
        builder: Builder | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.services = services
        self.settings = services.settings
        self.worker_id = worker_id or make_worker_id()
        self.builder = builder or Builder(self.settings)
        self.runner = JobRunner(services, self.worker_id, self.builder)
        self.poll_wait_seconds = poll_wait_seconds
        self.dlq_sweep_seconds = dlq_sweep_seconds
        self.slots = max(1, self.settings.worker_concurrency)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=self.slots, thread_name_prefix="job")
        self._active: dict[concurrent.futures.Future[ProcessResult], JobControl] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._next_sweep = 0.0
        self._drain_deadline: float | None = None  # monotonic; running builds are given back after it
        self._interrupted = False  # the host is going away (spot): unfinished builds use up their attempt
        self._drain_lock = threading.Lock()  # not taken by the plain signal-handler path (no re-entry there)

    # --- slots ----------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stopping.is_set()

    def free_slots(self) -> int:
        """How many more jobs this worker can run now."""
        with self._lock:
            return self.slots - len(self._active)

    def active_futures(self) -> list[concurrent.futures.Future[ProcessResult]]:
        """The jobs running now."""
        with self._lock:
            return list(self._active)

    def submit(self, delivery: Delivery) -> concurrent.futures.Future[ProcessResult]:
        """Run one delivery in a free slot (the caller checks :meth:`free_slots`)."""
        control = JobControl()
        future = self._pool.submit(self.runner.process, delivery, control)
        with self._lock:
            self._active[future] = control
        future.add_done_callback(self._done)
        return future

    def _done(self, future: concurrent.futures.Future[ProcessResult]) -> None:
        with self._lock:
            self._active.pop(future, None)
        if future.exception() is not None:
            log.error("a job thread crashed", exc_info=future.exception())

    # --- polling --------------------------------------------------------------------------

    def poll(self, wait_seconds: int | None = None) -> list[concurrent.futures.Future[ProcessResult]]:
        """Receive up to the number of free slots (long poll) and start them."""
        free = self.free_slots()
        if free <= 0 or self.stopping:
            return []
        wait = self.poll_wait_seconds if wait_seconds is None else wait_seconds
        deliveries = self.services.queue.receive(free, wait, self.settings.visibility_timeout_seconds)
        futures = []
        for delivery in deliveries:
            if self.stopping:  # stop arrived during the long poll: give the message straight back
                self.services.queue.extend(delivery.receipt_handle, 0)
                continue
            futures.append(self.submit(delivery))
        return futures

    def run_forever(self) -> None:
        """Poll until :meth:`request_stop`, then shut down gracefully."""
        log.info(
            "worker %s started: %d slots, docker %s, queue %s",
            self.worker_id,
            self.slots,
            self.settings.docker_host,
            self.settings.queue_name,
        )
        backoff = 1.0
        while not self.stopping:
            try:
                self.maybe_sweep()
                if self.free_slots() > 0:
                    self.poll()
                else:
                    concurrent.futures.wait(
                        self.active_futures(), timeout=1.0, return_when=concurrent.futures.FIRST_COMPLETED
                    )
                backoff = 1.0
            except (ClientError, BotoCoreError) as exc:
                log.warning("queue or store unavailable (%s); retrying in %.0f s", type(exc).__name__, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        self.shutdown()

    def request_stop(self, *_: object, grace_seconds: float | None = None, interrupted: bool = False) -> None:
        """Take no new jobs (signal handler).

        ``grace_seconds`` shortens the time running builds get (also during a shutdown already under way);
        ``interrupted`` (a spot interruption notice, worker/job/spot.py) gives unfinished builds back as a used attempt.
        """
        if grace_seconds is not None or interrupted:  # the spot watch's thread, never a signal handler
            with self._drain_lock:
                if grace_seconds is not None:
                    self._shorten_drain(time.monotonic() + max(0.0, grace_seconds))
                self._interrupted = self._interrupted or interrupted
        if not self._stopping.is_set():
            log.info("stop requested; finishing %d running job(s)", len(self.active_futures()))
        self._stopping.set()

    def _shorten_drain(self, deadline: float) -> None:
        self._drain_deadline = deadline if self._drain_deadline is None else min(self._drain_deadline, deadline)

    def shutdown(self, grace_seconds: float | None = None) -> None:
        """Wait for running jobs up to the grace period, then abort and give back the rest."""
        self._stopping.set()
        grace = self.settings.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        with self._drain_lock:
            self._shorten_drain(time.monotonic() + grace)
        assert self._drain_deadline is not None
        pending = set(self.active_futures())
        while pending and time.monotonic() < self._drain_deadline:  # re-read: a spot notice may shorten it
            _done, pending = concurrent.futures.wait(
                pending, timeout=min(1.0, max(0.0, self._drain_deadline - time.monotonic()))
            )
        if pending:
            with self._lock:
                controls = [self._active[f] for f in pending if f in self._active]
            kind, why = (
                (AbortKind.INTERRUPTED, "this build host is being reclaimed by EC2 (spot interruption)")
                if self._interrupted
                else (AbortKind.SHUTDOWN, "the worker is shutting down")
            )
            for control in controls:
                control.abort(kind, why)
            concurrent.futures.wait(pending, timeout=120)
        self._pool.shutdown(wait=True)
        log.info("worker %s stopped", self.worker_id)

    # --- dead letters ---------------------------------------------------------------------

    def maybe_sweep(self) -> None:
        """Run :meth:`sweep_dead_letters` when it is due."""
        now = time.monotonic()
        if now < self._next_sweep:
            return
        self._next_sweep = now + self.dlq_sweep_seconds
        try:
            self.sweep_dead_letters()
        except (ClientError, BotoCoreError) as exc:
            log.warning("dead-letter sweep failed: %s", exc)

    def sweep_dead_letters(self) -> int:
        """Fail every live job named in a dead-letter message whose lease is free; returns how many."""
        url = self.services.queue.dead_letter_url()
        failed = 0
        for _ in range(100):  # at most 1,000 messages a sweep
            deliveries = self.services.queue.receive(10, 0, 60, url=url)
            if not deliveries:
                break
            for delivery in deliveries:
                if delivery.message is None:
                    continue  # poison stays for an operator to look at
                job = self.services.jobs.find_job(delivery.message.job_id)
                if job is not None and job.phase.is_live:
                    if job.lease_expires >= time.time():
                        continue  # a worker holds it now; look again next sweep
                    try:
                        self.services.jobs.fail(job.job_id, DLQ_REASON, expect_expired_lease=True)
                        failed += 1
                        log.warning("job %s failed by the dead-letter sweep", job.job_id)
                    except TransitionConflict:
                        continue
                self.services.queue.delete(delivery.receipt_handle, url=url)
        return failed
