"""The heartbeat of a running job: keep its message invisible and its lease alive.

Every ``heartbeat_seconds`` it extends the SQS message's visibility and renews
the job's lease in DynamoDB.  If the lease is lost (another worker took the
job after this one stalled, or the job was cancelled) it aborts the job.
Once the job is aborted (timeout, lost lease, shutdown) it renews nothing: a
job stuck after its abort cannot keep its slot, its lease runs out and the
job store hands it on.
"""

from __future__ import annotations

import logging
import threading

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.stores.jobs import JobStore
from chalicelib.stores.queue import JobQueue
from worker.job.control import AbortKind, JobControl

log = logging.getLogger(__name__)


class Heartbeat:
    """A daemon thread renewing one job's message visibility and lease."""

    def __init__(
        self,
        jobs: JobStore,
        job_queue: JobQueue,
        job_id: str,
        worker_id: str,
        receipt_handle: str,
        control: JobControl,
        interval: float,
        lease_seconds: int,
    ) -> None:
        self._jobs = jobs
        self._queue = job_queue
        self.job_id = job_id
        self.worker_id = worker_id
        self.receipt_handle = receipt_handle
        self.control = control
        self.interval = interval
        self.lease_seconds = lease_seconds
        self.beats = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{job_id[:8]}", daemon=True)

    def start(self) -> Heartbeat:
        """Begin beating."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop beating (waits for a beat in progress)."""
        self._stop.set()
        self._thread.join(timeout=30)

    def beat(self) -> bool:
        """One renewal; returns False when the lease is lost (and aborts the job) or the job was aborted."""
        if self.control.aborted:
            log.info("job %s: aborted (%s); the lease is no longer renewed", self.job_id, self.control.kind)
            return False
        try:
            self._queue.extend(self.receipt_handle, self.lease_seconds)
        except (ClientError, BotoCoreError) as exc:
            log.warning("job %s: could not extend the message visibility: %s", self.job_id, exc)
        try:
            kept = self._jobs.renew_lease(self.job_id, self.worker_id, self.lease_seconds)
        except (ClientError, BotoCoreError) as exc:
            log.warning("job %s: could not renew the lease (will retry): %s", self.job_id, exc)
            return True
        self.beats += 1
        if not kept:
            log.warning("job %s: lease lost; stopping the build", self.job_id)
            self.control.abort(AbortKind.LEASE_LOST, "the job's lease was lost")
        return kept

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.beat():
                return

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
