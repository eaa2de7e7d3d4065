"""Load: 200 builds submitted at once over real HTTP to a local stack with two worker processes.

Every job must end Finished; none lost (every job terminal, queues drained), none built
twice (one registry tag per job, Attempt 1, one "Successfully built" per log), none stuck.
"""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import pytest
import requests

from tests.faults.helpers import job_items, queue_depth
from tests.support import faults
from tests.support.http_jobs import TERMINAL_PREFIXES, credentials, logs, status

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.e2e]

JOBS = 200
DEADLINE_SECONDS = 600  # ~10 minutes on 2 cores is the budget; later than this a live job counts as stuck


@pytest.mark.timeout(1200)
def test_200_concurrent_builds_all_finish_once(make_stack, registry, base_image):
    stack = make_stack(
        "load",
        workers=2,
        env={
            "BOATYARD_WORKER_CONCURRENCY": "2",
            "BOATYARD_VISIBILITY_TIMEOUT_SECONDS": "30",
            "BOATYARD_HEARTBEAT_SECONDS": "5",
        },
    )
    api = stack.api_url
    repository = f"faults/load-{uuid.uuid4().hex[:8]}"
    creds = credentials(registry)
    started = time.monotonic()

    resets: list[int] = []

    def submit_one(n: int) -> tuple[int, str | None, str]:
        body = {
            "image_name": f"{registry.host}/{repository}:n{n}",
            "dockerfile": f"FROM {base_image}\nRUN echo load-{n}\n",
            **creds,
        }
        why = ""
        for attempt in range(5):
            try:
                answer = requests.post(f"{api}/api/v1/build", json=body, timeout=120)
            except requests.ConnectionError as exc:
                # `chalice local` (the local stack's API server) listens with a backlog of 5: a burst of
                # connections is reset before the request is read.  A client retries; the phantom-job
                # count below proves no reset request was stored (a retry would otherwise build twice).
                resets.append(n)
                why = f"{type(exc).__name__}: {str(exc)[:120]}"
                time.sleep(0.2 * (attempt + 1))
                continue
            if answer.status_code != 202:
                return n, None, f"{answer.status_code} {answer.text[:200]}"
            return n, answer.json()["JobIdentifier"], ""
        return n, None, why

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        submitted = list(pool.map(submit_one, range(JOBS)))
    refused = [(n, why) for n, job, why in submitted if job is None]
    jobs = {n: job for n, job, _ in submitted if job is not None}
    submit_seconds = time.monotonic() - started

    # wait until every job is terminal (read from the stack's own table: one scan per round)
    deadline = started + DEADLINE_SECONDS
    items: dict = {}
    while time.monotonic() < deadline:
        items = job_items(stack.aws_endpoint)
        live = [
            j
            for j in jobs.values()
            if j not in items or items[j]["phase"] in ("queued", "fetching", "building", "pushing")
        ]
        if not live:
            break
        time.sleep(2)
    run_seconds = time.monotonic() - started

    # what a user sees: the status answer of every job
    session = requests.Session()
    answers = {n: status(api, job, session) for n, job in jobs.items()}
    finished = [n for n, a in answers.items() if a["Status"] == "Finished"]
    terminal = [n for n, a in answers.items() if a["Status"].startswith(TERMINAL_PREFIXES)]
    stuck = [n for n, a in answers.items() if not a["Status"].startswith(TERMINAL_PREFIXES)]
    failed = {n: a["Status"] for n, a in answers.items() if a["Status"].startswith("Failed")}
    lost = JOBS - len(jobs) + sum(1 for j in jobs.values() if j not in items)
    phantoms = [j for j in items if j not in set(jobs.values())]
    retried = {n: a.get("Attempt") for n, a in answers.items() if a.get("Attempt") != 1}

    tags = faults.registry_tags(registry, repository)
    pushed_twice = len(tags) - len(set(tags))
    built_twice = []
    for n in finished:
        text = logs(api, jobs[n], session)
        if text.count("Successfully built") != 1 or f"load-{n}" not in text:
            built_twice.append(n)
    depth = queue_depth(stack.aws_endpoint)
    drain_deadline = time.monotonic() + 30
    while any(depth.values()) and not stuck and time.monotonic() < drain_deadline:
        time.sleep(1)
        depth = queue_depth(stack.aws_endpoint)

    line = faults.report(
        f"LOAD: {JOBS} submitted ({len(refused)} refused, {len(resets)} connection resets retried, "
        f"{len(phantoms)} phantom jobs), {len(terminal)} terminal, {len(finished)} finished, "
        f"{len(failed)} failed, {lost} lost, {len(built_twice) + pushed_twice} built twice, {len(retried)} retried, "
        f"{len(stuck)} stuck, {len(set(tags))} tags pushed, queues {depth}; "
        f"submit {submit_seconds:.0f} s, all terminal after {run_seconds:.0f} s (2 workers x 2 slots)"
    )
    assert not refused, f"{line}\nrefused submissions: {refused[:5]}"
    assert not stuck, f"{line}\nstuck: {[(n, answers[n]['Status']) for n in stuck[:5]]}"
    assert not failed, f"{line}\nfailed: {list(failed.items())[:5]}"
    assert lost == 0 and not phantoms, line
    assert sorted(tags) == sorted(f"n{n}" for n in range(JOBS)), (
        f"{line}\nmissing tags: {sorted(set(f'n{n}' for n in range(JOBS)) - set(tags))[:10]}"
    )
    assert not built_twice and not retried, (
        f"{line}\nbuilt twice: {built_twice[:5]}, retried: {list(retried.items())[:5]}"
    )
    assert not any(depth.values()), line
    assert all(a.get("ImageDigest", "").startswith("sha256:") for a in answers.values()), line
