"""Where the time of one build goes, from Docker's own events (both sides, same clock).

The daemon reports ``tag`` (the build committed its last step and tagged the
image) and ``push`` (the push completed) for every image; with the job's
server timestamps and the client's wall clock that splits a boatyard build
into until-CreatedAt / queue / fetch+build / push / bookkeeping / seen-by-client, and a
CLI build into build / push / exit.  Events are matched by image reference,
so other users of the same daemon do not disturb the figures.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import tempfile
import time

from bench.client import Finished, parse_ts
from bench.stats import median


class ImageEvents:
    """Follows the daemon's image ``tag``/``push`` events live while a scenario runs.

    (``docker events --since`` only replays the daemon's last 256 events, too few on
    a daemon shared with test suites, so the stream is subscribed to up front.)
    ``with ImageEvents(env) as events: ...; events.times(refs)``.
    """

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._file = tempfile.TemporaryFile()
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> ImageEvents:
        self._proc = subprocess.Popen(
            [
                "docker",
                "events",
                "--filter",
                "type=image",
                "--filter",
                "event=tag",
                "--filter",
                "event=push",
                "--format",
                "{{json .}}",
            ],
            stdout=self._file,
            stderr=subprocess.DEVNULL,
            env=self.env,
        )
        time.sleep(0.3)  # subscribed before the first build
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """End the ``docker events`` process this object started."""
        if self._proc is not None and self._proc.poll() is None:
            time.sleep(0.3)  # let the last events arrive
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)

    def times(self, refs: set[str]) -> dict[str, dict[str, float]]:
        """``{ref: {"tag": epoch, "push": epoch}}`` for the images in ``refs`` (call after :meth:`stop`)."""
        self._file.seek(0)
        found: dict[str, dict[str, float]] = {}
        for raw in self._file.read().decode(errors="replace").splitlines():
            try:
                event = json.loads(raw)
            except ValueError:
                continue
            action = event.get("Action") or event.get("status")
            ref = event.get("Actor", {}).get("Attributes", {}).get("name") if action == "tag" else event.get("id")
            if ref in refs:
                found.setdefault(ref, {}).setdefault(action, int(event["timeNano"]) / 1e9)
        self._file.close()
        return found


@dataclasses.dataclass
class BoatyardRun:
    """One boatyard build as the client saw it (wall clock) and its image reference."""

    ref: str
    submitted: float  # time.time() just before the POST
    seen: float  # time.time() when a poll read Finished
    done: Finished


@dataclasses.dataclass
class CliRun:
    """One Docker CLI build + push (wall clock)."""

    ref: str
    started: float
    ended: float


def summarize(
    by_runs: list[BoatyardRun], cli_runs: list[CliRun], events: dict[str, dict[str, float]]
) -> tuple[str, str, dict]:
    """Two one-line breakdowns (medians, seconds) and the per-run numbers."""
    by_parts: dict[str, list[float]] = {
        k: [] for k in ("to CreatedAt", "queue", "fetch+build", "push", "to Finished", "seen")
    }
    for run in by_runs:
        ev = events.get(run.ref, {})
        created = parse_ts(run.done.status.get("CreatedAt"))
        started = parse_ts(run.done.status.get("StartedAt"))
        finished = parse_ts(run.done.status.get("FinishedAt"))
        if not (created and started and finished and "tag" in ev and "push" in ev):
            continue
        by_parts["to CreatedAt"].append(created - run.submitted)
        by_parts["queue"].append(started - created)
        by_parts["fetch+build"].append(ev["tag"] - started)
        by_parts["push"].append(ev["push"] - ev["tag"])
        by_parts["to Finished"].append(finished - ev["push"])
        by_parts["seen"].append(run.seen - finished)
    cli_parts: dict[str, list[float]] = {k: [] for k in ("build", "push", "exit")}
    for cli_run in cli_runs:
        ev = events.get(cli_run.ref, {})
        if "tag" not in ev or "push" not in ev:
            continue
        cli_parts["build"].append(ev["tag"] - cli_run.started)
        cli_parts["push"].append(ev["push"] - ev["tag"])
        cli_parts["exit"].append(cli_run.ended - ev["push"])

    def line(parts: dict[str, list[float]]) -> str:
        if not any(parts.values()):
            return "n/a (no Docker events matched)"
        return " + ".join(f"{name} {median(values):.3f}" for name, values in parts.items()) + " s"

    return line(by_parts), line(cli_parts), {"boatyard": by_parts, "cli": cli_parts}


def gap_note(parts: dict) -> str:
    """One sentence: how the medians of the two breakdowns differ, part by part."""
    by, cli = parts.get("boatyard", {}), parts.get("cli", {})
    if not by or not cli or not all(by.values()) or not all(cli.values()):
        return "No breakdown: Docker events did not match every run."

    def m(values: list[float]) -> float:
        return median(values)

    build_gap = m(by["fetch+build"]) - m(cli["build"])
    push_gap = m(by["push"]) - m(cli["push"])
    rest = m(by["to CreatedAt"]) + m(by["queue"]) + m(by["to Finished"])
    return (
        f"Gap to the CLI, by part (medians): boatyard's fetch+build is {build_gap * 1000:+.0f} ms against the CLI's "
        f"build (which includes starting the `docker` process), its push {push_gap * 1000:+.0f} ms against the "
        f"CLI's push, API stamping + queue + final write add {rest * 1000:.0f} ms, and the 0.1 s status polling "
        f"adds {m(by['seen']) * 1000:.0f} ms before the client sees Finished."
    )
