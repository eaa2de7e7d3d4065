"""worker/job/metrics.py: EMF documents that CloudWatch accepts, with low-cardinality dimensions only."""

from __future__ import annotations

import json

import pytest

from chalicelib.domain.jobs import Job, SourceKind
from tests.support.emf import dimension_values, emf_problems
from tests.support.probes import REASON_CLASSES
from worker.job import metrics


def _job(attempt: int = 1, created_at: str = "2026-01-01T00:00:00Z") -> Job:
    return Job(
        "7d0c9d6e-0000-4000-8000-000000000001",
        "registry.example/team/app:1",
        SourceKind.UPLOAD,
        {},
        attempt=attempt,
        created_at=created_at,
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_finished_job_has_every_phase_time_and_a_valid_document():
    clock = FakeClock()
    timings = metrics.JobTimings(_job(), clock=clock, wall=lambda: 1767225600.0 + 42.5)  # 42.5 s after created_at
    for phase, seconds in (("fetch", 1.5), ("build", 20.0), ("push", 3.25), ("done", 0)):
        timings.enter(phase)
        clock.now += seconds
    timings.context_bytes = 2048
    doc = metrics.document(timings, "finished", None, 777, "boatyard-prod", now_ms=1767225642500)
    assert emf_problems(doc) == []
    assert (doc["FetchSeconds"], doc["BuildSeconds"], doc["PushSeconds"]) == (1.5, 20.0, 3.25)
    assert doc["QueueWaitSeconds"] == 42.5
    assert (doc["JobsEnded"], doc["JobsFailed"], doc["ContextBytes"], doc["LogBytes"]) == (1, 0, 2048, 777)
    assert dimension_values(doc) == {
        "Stack": "boatyard-prod",
        "Outcome": "finished",
        "Phase": "done",
        "ReasonClass": "none",
    }
    assert {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]} == set(metrics.METRIC_UNITS)


def test_a_failed_build_counts_as_ended_and_failed_with_the_phase_it_reached():
    timings = metrics.JobTimings(_job(attempt=2))
    timings.enter("fetch")
    timings.enter("build")
    doc = metrics.document(timings, "failed", "The command '/bin/sh -c false' returned a non-zero code: 1", 10, "s")
    assert emf_problems(doc) == []
    assert (
        "QueueWaitSeconds" not in doc and "BuildSeconds" not in doc and "FetchSeconds" in doc
    )  # retries: no queue wait
    assert (doc["JobsEnded"], doc["JobsFailed"], doc["Phase"], doc["ReasonClass"]) == (1, 1, "build", "build")


@pytest.mark.parametrize(
    "outcome, phase, reason, expected",
    [
        ("failed", "fetch", "could not download https://x/y.tgz: the server answered HTTP 404 Not Found", "source"),
        ("failed", "push", "unauthorized: authentication required", "push"),
        ("failed", "build", "the build timed out after 3600 s", "timeout"),
        (
            "failed",
            "claim",
            "could not decrypt the registry credentials of this job; submit the build again",
            "credentials",
        ),
        ("failed", "claim", "the job waited in the queue longer than 86400 s; submit the build again", "queue_timeout"),
        ("failed", "build", "internal error in the worker (KeyError); it has been logged", "internal"),
        (
            "failed",
            "fetch",
            "the build service could not complete GetObject (SlowDown); this is on our side",
            "service",
        ),
        ("released", "build", None, "shutdown"),
        ("lost", "push", None, "lost"),
    ],
)
def test_reasons_fall_into_a_small_fixed_set_of_classes(outcome, phase, reason, expected):
    assert metrics.reason_class(outcome, phase, reason) == expected
    assert expected in REASON_CLASSES


def test_hostile_reason_text_never_reaches_a_dimension(test_password):
    timings = metrics.JobTimings(_job())
    timings.enter("fetch")
    reason = f"could not download https://user:{test_password}@evil.example/{'x' * 5000}"
    doc = metrics.document(timings, "failed", reason, 0, "stack")
    assert emf_problems(doc) == []
    text = json.dumps(doc)
    assert test_password not in text and "evil.example" not in text
    assert set(dimension_values(doc).values()) <= {"stack", "failed", "fetch", "source"}


def test_unknown_phases_and_outcomes_are_refused():
    timings = metrics.JobTimings(_job())
    with pytest.raises(ValueError):
        timings.enter("pushing-to-" + "x")
    with pytest.raises(ValueError):
        metrics.document(timings, "exploded", None, 0, "s")


def test_the_validator_catches_what_it_must():
    assert emf_problems({"no": "aws"})
    good = metrics.document(metrics.JobTimings(_job()), "finished", None, 1, "s")
    bad = json.loads(json.dumps(good))
    bad["Stack"] = 5  # dimension value not a string
    bad["LogBytes"] = "many"  # metric value not a number
    bad["_aws"]["CloudWatchMetrics"][1]["Metrics"][0]["Unit"] = "Parsecs"
    problems = emf_problems(bad)
    assert len(problems) >= 3, problems


def test_write_puts_one_line_on_stderr_and_emit_survives_a_bad_document(capsys):
    timings = metrics.JobTimings(_job())
    metrics.emit(timings, "finished", None, 3, "s")
    metrics.emit(timings, "not-an-outcome", None, 3, "s")  # logged, not raised
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith('{"_aws"')]
    assert len(lines) == 1 and emf_problems(json.loads(lines[0])) == []
