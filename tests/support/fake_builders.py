"""Builders without Docker for in-process worker tests: they stand in for worker.build.builder.Builder.

* :class:`UntilAbortedBuilder` — a build that runs until the job is aborted (``started`` is set once it runs).
* :class:`QuickBuilder` — a build and push that succeed at once.
"""

from __future__ import annotations

import threading


class UntilAbortedBuilder:
    """Stands in for worker.build.builder.Builder: a build that runs until the job is aborted."""

    def __init__(self) -> None:
        self.started = threading.Event()

    def build(self, context, image, write, control, registry_auths=None, plan=None) -> str:
        write("Step 1/1 : RUN sleep forever\n")
        self.started.set()
        while not control.wait(0.05):
            pass
        control.check()
        raise AssertionError("unreachable")

    def publish(self, image_id, ref, credentials, write, control) -> str:
        raise AssertionError("never pushed")

    def remove_image(self, image: str) -> None:
        pass

    def keep_disk_budget(self, force: bool = False) -> int:
        return 0


class QuickBuilder(UntilAbortedBuilder):
    """A build and push that succeed at once."""

    def build(self, context, image, write, control, registry_auths=None, plan=None) -> str:
        write("Step 1/1 : RUN true\n")
        return "sha256:" + "1" * 64

    def publish(self, image_id, ref, credentials, write, control) -> str:
        write("pushed\n")
        return "sha256:" + "2" * 64
