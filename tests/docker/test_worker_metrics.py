"""The EMF documents a worker writes for real builds (real daemon and registry): valid, low-cardinality, no secrets."""

from __future__ import annotations

import json

import pytest

from tests.support import worker_jobs
from tests.support.emf import dimension_values, emf_problems
from tests.support.probes import REASON_CLASSES
from worker.job import metrics

pytestmark = pytest.mark.docker


def _documents(err: str) -> list[dict]:
    return [json.loads(line) for line in err.splitlines() if line.startswith('{"_aws"')]


def test_a_finished_and_a_failed_build_write_valid_documents(
    make_worker, registry, base_image, test_password, capsys, monkeypatch
):
    worker_jobs.set_env(monkeypatch, BOATYARD_STACK_NAME="boatyard-metrics-test")
    good = worker_jobs.image_for(registry.host, "metrics-ok")
    bad = worker_jobs.image_for(registry.host, "metrics-bad")
    ok_id = worker_jobs.submit(
        good, dockerfile=f"FROM {base_image}\nRUN echo built\n", username=registry.username, password=test_password
    )
    bad_id = worker_jobs.submit(
        bad, dockerfile=f"FROM {base_image}\nRUN exit 3\n", username=registry.username, password=test_password
    )
    worker = make_worker()
    worker_jobs.run_until_terminal(worker, ok_id)
    worker_jobs.run_until_terminal(worker, bad_id)
    assert worker_jobs.status(ok_id) == "Finished"
    assert worker_jobs.status(bad_id).startswith("Failed:")

    documents = {doc["JobId"]: doc for doc in _documents(capsys.readouterr().err)}
    assert set(documents) == {ok_id, bad_id}
    for job_id, image in ((ok_id, good), (bad_id, bad)):
        doc = documents[job_id]
        assert emf_problems(doc) == [], doc
        dimensions = dimension_values(doc)
        assert set(dimensions) == {"Stack", "Outcome", "Phase", "ReasonClass"}
        assert dimensions["Stack"] == "boatyard-metrics-test"
        assert dimensions["ReasonClass"] in REASON_CLASSES and dimensions["Phase"] in metrics.PHASES
        for value in dimensions.values():
            for secret in (job_id, image, image.rsplit(":", 1)[0], registry.username, test_password):
                assert secret not in value
        assert test_password not in json.dumps(doc)
        assert doc["QueueWaitSeconds"] >= 0 and doc["FetchSeconds"] >= 0 and doc["ContextBytes"] > 0
        assert doc["LogBytes"] > 0 and doc["JobsEnded"] == 1

    finished, failed = documents[ok_id], documents[bad_id]
    assert (finished["Outcome"], finished["Phase"], finished["ReasonClass"], finished["JobsFailed"]) == (
        "finished",
        "done",
        "none",
        0,
    )
    assert finished["BuildSeconds"] > 0 and finished["PushSeconds"] > 0
    assert (failed["Outcome"], failed["Phase"], failed["ReasonClass"], failed["JobsFailed"]) == (
        "failed",
        "build",
        "build",
        1,
    )
    assert "PushSeconds" not in failed
