"""One pusher at a time per image name on a host: a thread lock plus a file lock.

Publishing a job's image gives it the user's name for as long as the push takes
(tag → push → untag).  Two jobs pushing the same name on one host must not
interleave, whether they run on two threads of one worker (the thread lock) or
in two worker processes that share the Docker daemon (``flock`` on a file per
name under ``BOATYARD_IMAGE_LOCK_DIR``).  Waiting is polled so the job's
:class:`~worker.job.control.JobControl` (timeout, lost lease, shutdown) still ends it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
from typing import Iterator

from worker.job.control import JobControl

POLL_SECONDS = 0.2

_registry_lock = threading.Lock()
_thread_locks: dict[str, tuple[threading.Lock, int]] = {}  # name -> (lock, holders + waiters)


def _thread_lock(name: str) -> threading.Lock:
    with _registry_lock:
        lock, users = _thread_locks.get(name, (threading.Lock(), 0))
        _thread_locks[name] = (lock, users + 1)
        return lock


def _release_thread_lock(name: str) -> None:
    with _registry_lock:
        lock, users = _thread_locks[name]
        if users <= 1:
            del _thread_locks[name]
        else:
            _thread_locks[name] = (lock, users - 1)


def lock_path(lock_dir: str, name: str) -> str:
    """The lock file of an image name (a hash: names hold ``/`` and ``:``)."""
    return os.path.join(lock_dir, hashlib.sha256(name.encode("utf-8")).hexdigest() + ".lock")


@contextlib.contextmanager
def target_lock(name: str, lock_dir: str, control: JobControl) -> Iterator[None]:
    """Hold the host-wide lock of image ``name``; raises :class:`~worker.job.control.Aborted` if the job is stopped while waiting."""
    lock = _thread_lock(name)
    try:
        while not lock.acquire(timeout=POLL_SECONDS):
            control.check()
        try:
            os.makedirs(lock_dir, mode=0o700, exist_ok=True)
            fd = os.open(lock_path(lock_dir, name), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                while True:
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        break
                    except BlockingIOError:
                        if control.wait(POLL_SECONDS):
                            control.check()
                control.check()
                yield
            finally:
                os.close(fd)  # closing the descriptor releases the flock
        finally:
            lock.release()
    finally:
        _release_thread_lock(name)
