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

from bench.client import Finished, parse_ts
from bench.stats import median


def image_events(since: float, until: float, refs: set[str], env: dict[str, str]) -> dict[str, dict[str, float]]:
    """``{ref: {"tag": epoch, "push": epoch}}`` for the images in ``refs`` between ``since`` and ``until``."""
    answer = subprocess.run(
        ["docker", "events", "--since", f"{since:.3f}", "--until", f"{until:.3f}", "--filter", "type=image",
         "--filter", "event=tag", "--filter", "event=push", "--format", "{{json .}}"],
        capture_output=True, text=True, timeout=60, env=env,
    )
    found: dict[str, dict[str, float]] = {}
    for line in answer.stdout.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        action = event.get("Action") or event.get("status")
        ref = event.get("Actor", {}).get("Attributes", {}).get("name") if action == "tag" else event.get("id")
        if ref in refs:
            found.setdefault(ref, {}).setdefault(action, int(event["timeNano"]) / 1e9)
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


def summarize(by_runs: list[BoatyardRun], cli_runs: list[CliRun], events: dict[str, dict[str, float]]) -> tuple[str, str, dict]:
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
    for run in cli_runs:
        ev = events.get(run.ref, {})
        if "tag" not in ev or "push" not in ev:
            continue
        cli_parts["build"].append(ev["tag"] - run.started)
        cli_parts["push"].append(ev["push"] - ev["tag"])
        cli_parts["exit"].append(run.ended - ev["push"])

    def line(parts: dict[str, list[float]]) -> str:
        if not any(parts.values()):
            return "n/a (no Docker events matched)"
        return " + ".join(f"{name} {median(values):.3f}" for name, values in parts.items()) + " s"

    return line(by_parts), line(cli_parts), {"boatyard": by_parts, "cli": cli_parts}
