"""The per-image-name lock: one pusher per name across threads and processes; a stopped job stops waiting."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest

from worker.build.targetlock import target_lock
from worker.job.control import Aborted, AbortKind, JobControl


def test_one_holder_per_name_across_threads_other_names_pass(tmp_path):
    inside: list[str] = []
    overlap: list[bool] = []

    def hold(name: str, tag: str) -> None:
        with target_lock(name, str(tmp_path), JobControl()):
            overlap.append(any(t.startswith(name) for t in inside))
            inside.append(f"{name}/{tag}")
            time.sleep(0.3)
            inside.remove(f"{name}/{tag}")

    threads = [threading.Thread(target=hold, args=("a:1", str(n))) for n in range(3)]
    threads.append(threading.Thread(target=hold, args=("b:1", "x")))
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert overlap == [False] * 4
    assert time.monotonic() - started >= 0.9  # the three holders of "a:1" took turns


def _hold_in_child(lock_dir: str, ready, release) -> None:  # ready, release: multiprocessing events
    with target_lock("shared:latest", lock_dir, JobControl()):
        ready.set()
        release.wait(30)


def test_another_process_holding_the_name_makes_a_job_wait_and_a_stop_ends_the_wait(tmp_path):
    context = multiprocessing.get_context("spawn")
    ready, release = context.Event(), context.Event()
    child = context.Process(target=_hold_in_child, args=(str(tmp_path), ready, release))
    child.start()
    try:
        assert ready.wait(30)
        control = JobControl()
        threading.Timer(0.5, control.abort, (AbortKind.TIMEOUT, "timed out after 1 s")).start()
        started = time.monotonic()
        with pytest.raises(Aborted):
            with target_lock("shared:latest", str(tmp_path), control):
                pytest.fail("got a lock another process holds")
        assert 0.4 <= time.monotonic() - started < 5
    finally:
        release.set()
        child.join(30)
    with target_lock("shared:latest", str(tmp_path), JobControl()):  # free again once the holder is gone
        pass
