"""Build metrics in CloudWatch Embedded Metric Format (EMF): one JSON document per job on the log stream.

The worker's stderr goes to a log file that the CloudWatch agent ships to the
worker log group (infra/resources.yaml); CloudWatch Logs extracts the metrics
from each document, so publishing costs no API call.  One document per job
that this worker ran (claimed):

- namespace ``Boatyard``, dimension set ``[Stack]``: ``JobsEnded`` and
  ``JobsFailed`` (counts; a released or lost job did not end here),
  ``QueueWaitSeconds`` (submission to first start, first attempts only),
  ``FetchSeconds`` / ``BuildSeconds`` / ``PushSeconds`` (each phase that
  completed), ``ContextBytes`` (compressed bytes of the context read),
  ``LogBytes`` (log bytes the job wrote);
- dimension set ``[Stack, Outcome, Phase, ReasonClass]``: ``JobOutcomes``.

Dimensions stay low-cardinality: the stack name and three small enumerations.
Job ids, image names, URLs and reasons are never dimension values (the job id
is a plain property, for CloudWatch Logs Insights).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from chalicelib.domain.jobs import Job

log = logging.getLogger(__name__)

NAMESPACE = "Boatyard"
STACK_DIMENSION = "Stack"
OUTCOME_DIMENSIONS = (STACK_DIMENSION, "Outcome", "Phase", "ReasonClass")
# every metric the worker publishes, with its CloudWatch unit (infra's alarms and dashboard use these names)
METRIC_UNITS: dict[str, str] = {
    "JobsEnded": "Count",
    "JobsFailed": "Count",
    "QueueWaitSeconds": "Seconds",
    "FetchSeconds": "Seconds",
    "BuildSeconds": "Seconds",
    "PushSeconds": "Seconds",
    "ContextBytes": "Bytes",
    "LogBytes": "Bytes",
    "JobOutcomes": "Count",
}
PHASES = ("claim", "fetch", "build", "push", "done")
_PHASE_METRIC = {"fetch": "FetchSeconds", "build": "BuildSeconds", "push": "PushSeconds"}
OUTCOMES = ("finished", "failed", "released", "lost")

_WRITE_LOCK = threading.Lock()


def _parse_iso(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class JobTimings:
    """Phase clock of one claimed job: :meth:`enter` at each phase boundary."""

    def __init__(
        self, job: Job, clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time
    ) -> None:
        self.job_id = job.job_id
        self.attempt = job.attempt
        self.queue_wait: float | None = None
        if job.attempt <= 1:
            try:
                self.queue_wait = max(0.0, wall() - _parse_iso(job.created_at))
            except ValueError:
                self.queue_wait = None
        self.phase = "claim"
        self.context_bytes: int | None = None
        self.durations: dict[str, float] = {}
        self._clock = clock
        self._since = clock()

    def enter(self, phase: str) -> None:
        """The job moved on to ``phase`` (one of :data:`PHASES`): the previous phase's time is recorded."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        now = self._clock()
        if self.phase in _PHASE_METRIC:
            self.durations[self.phase] = now - self._since
        self.phase, self._since = phase, now


def reason_class(outcome: str, phase: str, reason: str | None) -> str:
    """A small, fixed class for a job's end (never the reason text itself, which names user input)."""
    if outcome == "finished":
        return "none"
    if outcome == "released":
        return "shutdown"
    if outcome == "lost":
        return "lost"
    text = (reason or "").lower()
    if "waited in the queue" in text:
        return "queue_timeout"
    if "timed out" in text or "timeout" in text or "took longer than" in text:
        return "timeout"
    if "could not decrypt" in text:
        return "credentials"
    if "internal error" in text:
        return "internal"
    if "on our side" in text or "unavailable" in text or "storage" in text:
        return "service"
    return {"claim": "other", "fetch": "source", "build": "build", "push": "push"}.get(phase, "other")


def document(
    timings: JobTimings, outcome: str, reason: str | None, log_bytes: int, stack: str, now_ms: int | None = None
) -> dict[str, Any]:
    """The EMF document of one job's end (see the module doc)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    values: dict[str, float] = {
        "JobsEnded": 1 if outcome in ("finished", "failed") else 0,
        "JobsFailed": 1 if outcome == "failed" else 0,
        "LogBytes": max(0, int(log_bytes)),
        "JobOutcomes": 1,
    }
    if timings.queue_wait is not None:
        values["QueueWaitSeconds"] = round(timings.queue_wait, 3)
    for phase, seconds in timings.durations.items():
        values[_PHASE_METRIC[phase]] = round(seconds, 3)
    if timings.context_bytes is not None:
        values["ContextBytes"] = int(timings.context_bytes)
    per_stack = [name for name in METRIC_UNITS if name in values and name != "JobOutcomes"]
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": int(time.time() * 1000) if now_ms is None else now_ms,
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [[STACK_DIMENSION]],
                    "Metrics": [{"Name": name, "Unit": METRIC_UNITS[name]} for name in per_stack],
                },
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [list(OUTCOME_DIMENSIONS)],
                    "Metrics": [{"Name": "JobOutcomes", "Unit": "Count"}],
                },
            ],
        },
        STACK_DIMENSION: stack,
        "Outcome": outcome,
        "Phase": timings.phase,
        "ReasonClass": reason_class(outcome, timings.phase, reason),
        # properties (not dimensions): for CloudWatch Logs Insights
        "JobId": timings.job_id,
        "Attempt": timings.attempt,
        **values,
    }
    return doc


def write(doc: dict[str, Any]) -> None:
    """One document as one line on stderr (the worker's log stream)."""
    line = json.dumps(doc, separators=(",", ":"), ensure_ascii=True) + "\n"
    with _WRITE_LOCK:
        sys.stderr.write(line)
        sys.stderr.flush()


def emit(timings: JobTimings, outcome: str, reason: str | None, log_bytes: int, stack: str) -> None:
    """Write the job's EMF document; metrics never change a job's outcome, so errors are only logged."""
    try:
        write(document(timings, outcome, reason, log_bytes, stack))
    except Exception:  # a metrics bug must not fail a build
        log.exception("could not write the job's metrics")
