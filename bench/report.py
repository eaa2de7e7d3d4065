"""Results of the scenarios and the markdown report (BENCHMARKS.md)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


@dataclasses.dataclass
class Row:
    """One figure: what was measured, its value, and the goal it is held against (if any)."""

    metric: str
    value: str
    goal: str = ""
    met: bool | None = None  # None: informational, no goal

    @property
    def verdict(self) -> str:
        """``met`` / ``NOT met`` / empty."""
        if self.met is None:
            return ""
        return "met" if self.met else "**NOT met**"


@dataclasses.dataclass
class ScenarioResult:
    """What one scenario measured."""

    key: str
    title: str
    rows: list[Row] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    raw: dict[str, Any] = dataclasses.field(default_factory=dict)  # per-run numbers, kept in the JSON
    error: str = ""
    seconds: float = 0.0
    short: str = ""  # the scenario column of the table (``title`` heads its notes)

    def add(self, metric: str, value: str, goal: str = "", met: bool | None = None) -> None:
        """Append a row."""
        self.rows.append(Row(metric, value, goal, met))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(
    machine: dict[str, str], results: list[ScenarioResult], options: dict[str, Any], command: str, total_seconds: float
) -> str:
    """The whole BENCHMARKS.md text."""
    out: list[str] = ["# boatyard benchmarks", ""]
    out.append(
        "Written by `python -m bench` (`make bench`); do not edit by hand. Each figure is the median of "
        "the runs stated; each boatyard/Docker CLI ratio is the median of per-run ratios, the two sides "
        "interleaved in the same run (alternating which goes first). Nothing was tuned for the benchmark: "
        "the stack runs with its default settings except where a row says otherwise."
    )
    out += ["", f"Command: `{command}` — {options_summary(options)}; wall time {total_seconds / 60:.1f} min.", ""]
    if options.get("quick"):
        out += [
            "**This is a `--quick` smoke run: sizes and counts are reduced; the figures are not the benchmark.**",
            "",
        ]
    out += ["## Machine", "", "| | |", "| --- | --- |"]
    out += [f"| {_cell(k)} | {_cell(v)} |" for k, v in machine.items()]
    out += [
        "",
        "## Results",
        "",
        "| # | scenario | figure | value | goal | goal met? |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for index, result in enumerate(results, 1):
        if result.error:
            out.append(
                f"| {index} | {_cell(result.short or result.title)} | scenario failed | {_cell(result.error[:300])} | | **NOT met** |"
            )
        for row in result.rows:
            cells = [str(index), _cell(result.short or result.title), _cell(row.metric), _cell(row.value)]
            out.append(f"| {' | '.join(cells)} | {_cell(row.goal)} | {row.verdict} |")
    goals = [row for r in results for row in r.rows if row.met is not None]
    met = sum(1 for row in goals if row.met)
    failed = sum(1 for r in results if r.error)
    out += ["", f"Goals met: {met} of {len(goals)}" + (f"; {failed} scenario(s) failed to run." if failed else "."), ""]
    out += ["## Notes", ""]
    for index, result in enumerate(results, 1):
        out.append(f"### {index}. {result.title} ({result.seconds:.0f} s)")
        out.append("")
        out += [f"- {note}" for note in result.notes] or ["- (none)"]
        if result.error:
            out.append(f"- error: `{result.error}`")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def options_summary(options: dict[str, Any]) -> str:
    """The options as one line."""
    keys = ("runs", "jobs", "log_lines", "upload_mib", "upload_runs", "concurrency_levels", "api_seconds")
    return ", ".join(f"{k.replace('_', ' ')}={options[k]}" for k in keys if k in options)


def write(path: Path, text: str) -> None:
    """Write the report atomically."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: Path, machine: dict[str, str], results: list[ScenarioResult], options: dict[str, Any]) -> None:
    """The raw per-run numbers, for whoever wants to look closer (not committed; under var/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {"machine": machine, "options": options, "results": [dataclasses.asdict(r) for r in results]},
            indent=2,
            default=str,
        )
    )
