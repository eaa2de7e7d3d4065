"""Scenario 2: a build that prints 200,000 numbered lines.

* time against the Docker CLI (classic builder; its output goes to a file);
* every line retrievable, in order, through ``GET /logs?since=`` paging;
* DynamoDB log writes per 16 KiB of log.  The moto server's request recorder
  (``/moto-api/recorder/*``) is switched on for the boatyard run: every
  ``BatchWriteItem`` request that reaches moto carrying this job's log chunks
  is counted from the recording (retries included), so nothing in the worker
  has to cooperate.  The recorder costs the boatyard side a little time
  (it appends each request to a file); that is left in.
"""

from __future__ import annotations

import base64
import json
import tempfile
import time
from pathlib import Path

import requests

from bench.breakdown import BoatyardRun, CliRun, ImageEvents, gap_note, summarize
from bench.client import BenchError, Client
from bench.context import BenchContext, Timer, nonce
from bench.report import ScenarioResult
from bench.scenarios.small import BREAKDOWN_NOTE
from bench.stack import BenchStack
from bench.stats import fmt, median

GOAL_RATIO = 1.3
FLUSH_BYTES = 16 * 1024


def dockerfile(base_image: str, token: str, lines: int) -> str:
    """Prints ``lines`` numbered lines (busybox seq), after a marker line unique to this build."""
    return f"FROM {base_image}\nRUN echo bench-{token} && seq 1 {lines}\n"


def numbered_lines_in_order(text: str, lines: int) -> tuple[bool, int]:
    """Whether the all-digit lines of ``text`` are exactly 1..lines in order; and how many there were."""
    numbers = [int(line.strip()) for line in text.splitlines() if line.strip().isdigit()]
    return numbers == list(range(1, lines + 1)), len(numbers)


def _recorder(stack: BenchStack, action: str) -> None:
    answer = requests.post(f"{stack.aws_endpoint}/moto-api/recorder/{action}", timeout=30)
    if answer.status_code != 200:
        raise BenchError(f"moto recorder {action} answered {answer.status_code}")


def count_batch_writes(recording: Path, table: str, job_id: str) -> tuple[int, int, int]:
    """(BatchWriteItem requests, log items put, total DynamoDB write requests) for ``job_id`` in the recording."""
    requests_count = items = writes = 0
    if not recording.exists():
        return 0, 0, 0
    with open(recording) as handle:
        for line in handle:
            entry = json.loads(line)
            headers = {k.lower(): v for k, v in entry.get("headers", {}).items()}
            target = headers.get("x-amz-target", "")
            if not target.startswith("DynamoDB_"):
                continue
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body).decode("utf-8", errors="replace")
            if job_id not in body:
                continue
            operation = target.split(".", 1)[1]
            if operation in ("BatchWriteItem", "PutItem", "UpdateItem", "DeleteItem"):
                writes += 1
            if operation != "BatchWriteItem":
                continue
            payload = json.loads(body)
            mine = [
                r
                for r in payload.get("RequestItems", {}).get(table, [])
                if r.get("PutRequest", {}).get("Item", {}).get("pk", {}).get("S") == job_id
            ]
            if mine:
                requests_count += 1
                items += len(mine)
    return requests_count, items, writes


def live_tail(ctx: BenchContext, stack: BenchStack, lines: int) -> dict:
    """Submit one more build and follow its log with ``?since`` while it runs (untimed)."""
    client = Client(stack.api_url)
    token = nonce()
    job_id = client.submit(
        ctx.build_body(ctx.image("loglines", "tail-" + token), dockerfile(ctx.svc.base_image, token, lines))
    )
    pages = 0
    cursor = "0"
    parts: list[str] = []
    complete = False
    start = time.monotonic()
    requests_made = 0
    while requests_made < 20_000 and time.monotonic() - start < 600:
        body = client.logs(job_id, cursor)
        requests_made += 1
        if body.get("Logs"):
            pages += 1
            parts.append(body["Logs"])
        cursor = str(body.get("Next", cursor))
        if body.get("Complete"):
            complete = True
            break
        if not body.get("Logs"):
            time.sleep(0.1)
    done = client.wait(job_id, interval=0.2)
    client.close()
    ok, count = numbered_lines_in_order("".join(parts), lines)
    ctx.log(
        f"  live tail: {count} numbered lines in {pages} pages ({requests_made} reads), in order {ok}, complete {complete}"
    )
    return {"ok": ok and complete and done.ok, "numbered": count, "pages": pages, "requests": requests_made}


def run(ctx: BenchContext) -> ScenarioResult:
    """Interleave boatyard and CLI runs of the 200k-line build; check the log and count the writes."""
    lines = ctx.options.log_lines
    result = ScenarioResult(
        "logs", f"Build printing {lines:,} lines: time, log completeness, DynamoDB writes", short=f"{lines:,} log lines"
    )
    runs = ctx.options.runs
    by_times, raw_times, ratios = [], [], []
    batch_requests, log_items, log_bytes, all_writes, read_seconds, read_requests = [], [], [], [], [], []
    in_order: list[bool] = []
    server_s: list[float] = []
    by_runs: list[BoatyardRun] = []
    cli_runs: list[CliRun] = []
    counted: list[int] = []
    with ctx.stack("logs") as stack, ImageEvents(ctx.docker.env) as watcher:
        client = Client(stack.api_url)
        table = stack.stack.resources.get("table", "boatyard-jobs")

        def boatyard() -> float:
            token = nonce()
            image = ctx.image("loglines", "by-" + token)
            stack.recording.unlink(missing_ok=True)
            _recorder(stack, "reset-recording")
            _recorder(stack, "start-recording")
            submitted = time.time()
            try:
                with Timer() as timer:
                    job_id = client.submit(ctx.build_body(image, dockerfile(ctx.svc.base_image, token, lines)))
                    done = client.wait(job_id, interval=0.1)
                seen = time.time()
            finally:
                _recorder(stack, "stop-recording")
            by_runs.append(BoatyardRun(image, submitted, seen, done))
            if not done.ok:
                raise BenchError(f"boatyard job {job_id} ended {done.status.get('Status')!r}")
            server_s.append(done.span("CreatedAt", "FinishedAt") or float("nan"))
            read = client.read_all_logs(job_id)
            ok, count = numbered_lines_in_order(read.text, lines)
            in_order.append(ok and read.complete)
            counted.append(count)
            read_seconds.append(read.seconds)
            read_requests.append(read.requests)
            size = len(read.text.encode("utf-8"))
            log_bytes.append(size)
            reqs, items, writes = count_batch_writes(stack.recording, table, job_id)
            batch_requests.append(reqs)
            log_items.append(items)
            all_writes.append(writes)
            stack.recording.unlink(missing_ok=True)
            return timer.seconds

        def raw() -> float:
            token = nonce()
            tag = ctx.image("loglines", "cli-" + token)
            with tempfile.TemporaryDirectory(prefix="bench-ctx-") as tmp:
                (Path(tmp) / "Dockerfile").write_text(dockerfile(ctx.svc.base_image, token, lines))
                out = Path(tmp) / "build-output.txt"
                started = time.time()
                try:
                    build, push = ctx.docker.build_push(tag, context_dir=Path(tmp), output=out)
                    cli_runs.append(CliRun(tag, started, time.time()))
                finally:
                    ctx.docker.remove(tag)
                ok, count = numbered_lines_in_order(out.read_text(errors="replace"), lines)
                if not ok:
                    raise BenchError(f"the CLI's own output had {count} numbered lines, not 1..{lines} in order")
            return build + push

        if ctx.options.warmup:
            ctx.log("  warm-up (not counted)")
            boatyard()
            raw()
            for series in (
                batch_requests,
                log_items,
                log_bytes,
                all_writes,
                read_seconds,
                read_requests,
                in_order,
                counted,
                server_s,
                by_runs,
                cli_runs,
            ):
                series.clear()
        for index in range(runs):
            first_raw = index % 2 == 1
            if first_raw:
                cli = raw()
            by = boatyard()
            if not first_raw:
                cli = raw()
            by_times.append(by)
            raw_times.append(cli)
            ratios.append(by / cli)
            ctx.log(
                f"  run {index + 1}/{runs}: boatyard {by:.2f} s, CLI {cli:.2f} s, ratio {by / cli:.2f}; "
                f"log {log_bytes[-1]} B in {read_requests[-1]} reads, {counted[-1]} numbered lines, in order {in_order[-1]}; "
                f"BatchWriteItem {batch_requests[-1]} ({log_items[-1]} chunks)"
            )
            time.sleep(0.2)
        tail = live_tail(ctx, stack, lines)
        client.close()
        watcher.stop()
    events = watcher.times({r.ref for r in by_runs} | {r.ref for r in cli_runs})
    by_line, cli_line, parts = summarize(by_runs, cli_runs, events)
    ratio = median(ratios)
    result.add("boatyard submit → Finished", fmt(median(by_times), 2, " s"))
    result.add("docker build + push (CLI)", fmt(median(raw_times), 2, " s"))
    result.add("ratio boatyard / CLI", fmt(ratio, 2), f"≤ {GOAL_RATIO}", ratio <= GOAL_RATIO)
    all_ok = all(in_order) and len(in_order) == runs
    result.add(
        "lines 1..N retrievable in order via ?since paging",
        f"{'all' if all_ok else 'NOT all'} runs ({min(counted, default=0):,}–{max(counted, default=0):,} numbered lines found)",
        f"all {lines:,}, in order",
        all_ok,
    )
    result.add(
        "live tail: lines 1..N in order, following the running build with ?since",
        f"{'yes' if tail['ok'] else 'NO'}: {tail['numbered']:,} numbered lines in {tail['pages']} non-empty pages "
        f"({tail['requests']} reads)",
        f"all {lines:,}, in order",
        tail["ok"],
    )
    result.add(
        "log size / reads to page through it",
        f"{median(log_bytes) / 1024:.0f} KiB / {median(read_requests):.0f} reads in {median(read_seconds):.2f} s",
    )
    per_16k = [r / (b / FLUSH_BYTES) for r, b in zip(batch_requests, log_bytes, strict=True) if b]
    worst = max(per_16k, default=float("nan"))
    result.add(
        "DynamoDB BatchWriteItem requests per 16 KiB of log",
        f"{fmt(median(per_16k), 2)} (median; worst run {fmt(worst, 2)}; {median(batch_requests):.0f} requests, "
        f"{median(log_items):.0f} chunks)",
        "≤ 1",
        bool(per_16k) and worst <= 1.0,
    )
    result.add("all DynamoDB writes naming the job (incl. job item updates)", f"{median(all_writes):.0f}")
    result.add("boatyard CreatedAt → FinishedAt (server clock)", fmt(median(server_s), 2, " s"))
    result.add(
        "ratio server-side (CreatedAt → FinishedAt) / CLI (informational: without the client's polling)",
        fmt(median([s / r for s, r in zip(server_s, raw_times, strict=True)]), 2),
    )
    result.add("where boatyard's time goes (medians)", by_line)
    result.add("where the CLI's time goes (medians)", cli_line)
    result.notes += [
        f"{runs} interleaved runs (order alternates)"
        + (", after one uncounted warm-up of each side" if ctx.options.warmup else ", no warm-up")
        + "; each run builds a fresh RUN step on both sides (nonce), so neither hits the cache.",
        f"Dockerfile: `RUN echo bench-<nonce> && seq 1 {lines}` on the busybox base; the CLI's build output goes "
        "to a file and is checked the same way.",
        "Log completeness: the log is read from cursor 0 with `?since=<Next>` until `Complete` is true; the "
        "all-digit lines must be exactly 1..N in order.",
        "Live tail: one more (untimed) boatyard run whose log is followed from cursor 0 while it builds, "
        "reading `?since=<Next>` again at once after a non-empty answer and after 0.1 s after an empty one, until "
        "`Complete`; the concatenated pages are checked the same way. (After the build, the whole log fits one "
        "answer of at most 4 MiB, so the post-hoc read is a single page.)",
        "DynamoDB writes: counted from moto's request recorder (every request that reached the moto server "
        "while the job ran), BatchWriteItem requests carrying this job's log chunks; the goal is judged on the "
        "worst run. Default log settings (chunk 32 KiB, flush at 16 KiB or 1 s).",
        "per-run ratios: " + ", ".join(f"{r:.2f}" for r in ratios),
        BREAKDOWN_NOTE,
        gap_note(parts),
        "How the worker writes the log: LogWriter.write only buffers; a background writer stores the buffer "
        "once it holds 16 KiB or its oldest text is 1 s old (chalicelib/stores/logs.py), so reading the build's "
        "output does not wait for BatchWriteItem round trips (unless more than 1 MiB is pending).",
    ]
    result.raw = {
        "breakdown": parts,
        "boatyard_s": by_times,
        "cli_s": raw_times,
        "ratios": ratios,
        "batch_requests": batch_requests,
        "log_items": log_items,
        "log_bytes": log_bytes,
        "read_s": read_seconds,
        "read_requests": read_requests,
        "numbered_lines": counted,
        "in_order": in_order,
        "all_writes": all_writes,
    }
    return result
