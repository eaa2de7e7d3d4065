"""A build that prints 200,000 lines keeps every line, in order, in the stored log — in few batched writes."""

from __future__ import annotations

import json
import pathlib
import time

import pytest

from tests.nonce import RUN_NONCE
from tests.support import worker_jobs

pytestmark = pytest.mark.docker

LINES = 200_000


def test_200k_lines_are_all_stored_in_order(make_worker, registry, base_image, test_password):
    job_id = worker_jobs.submit(
        worker_jobs.image_for(registry.host, "manylines"),
        dockerfile=f"FROM {base_image}\nRUN : {RUN_NONCE} && seq 1 {LINES}\n",
        username=registry.username,
        password=test_password,
    )
    started = time.monotonic()
    results = worker_jobs.run_until_terminal(make_worker(), job_id, timeout=600)
    elapsed = time.monotonic() - started
    assert worker_jobs.status(job_id) == "Finished"
    logs = worker_jobs.full_log(job_id)
    numbers = [line for line in logs.splitlines() if line.isdigit()]
    assert numbers == [str(i) for i in range(1, LINES + 1)]
    finished = [r for r in results if r.outcome.value == "finished"][0]
    # batched: one BatchWriteItem per ~16 KB flush or per second, never one per line
    assert finished.log_batch_calls < len(logs.encode()) // 8000 + 20
    figures = {
        "lines": LINES,
        "log_bytes": len(logs.encode()),
        "seconds_end_to_end": round(elapsed, 2),
        "dynamodb_batch_writes": finished.log_batch_calls,
    }
    out = pathlib.Path("test-artifacts")
    out.mkdir(exist_ok=True)
    (out / "worker-200k-lines.json").write_text(json.dumps(figures, indent=2))
    print(figures)
