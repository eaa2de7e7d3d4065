// Follows one job: polls its status and tails its log with the `since`
// cursor, until the job is terminal and its log is complete.

import {ApiError, getLogs, getStatus} from "./api.js";

export const TERMINAL_PHASES = new Set(["finished", "failed", "cancelled"]);
const POLL_MS = 1000;
const DRAIN_MS = 150;          // a terminal job whose log is not complete yet
const CONTINUATION_NOTE = /\n\[boatyard\] the log is longer than one answer; read the rest with GET \S+\n$/;
const HIDDEN_POLL_MS = 5000;
const MAX_BACKOFF_MS = 15000;

/** The phase of a status body; derived from the seed's Status word when Phase is missing. */
export function phaseOf(status) {
  if (status.Phase) return status.Phase;
  const word = String(status.Status || "");
  if (word === "Finished") return "finished";
  if (word === "Pushing") return "pushing";
  if (word === "Cancelled") return "cancelled";
  if (word.startsWith("Failed")) return "failed";
  return "building";
}

export class JobWatcher {
  /**
   * handlers: onStatus(status, phase), onLogText(text), onLogReplace(text),
   * onTrouble(apiError | null), onGone(apiError), onDone().
   */
  constructor(jobId, handlers) {
    this.jobId = jobId;
    this.h = handlers;
    this.cursor = null;       // `Next` from the last logs answer
    this.legacyText = null;   // whole log, when the API has no cursor
    this.stopped = false;
    this.timer = null;
    this.failures = 0;
  }

  start() {
    this.tick();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Polls now instead of waiting (e.g. when the tab becomes visible again). */
  poke() {
    if (this.stopped || this.busy) return;
    clearTimeout(this.timer);
    this.tick();
  }

  schedule(ms) {
    if (!this.stopped) this.timer = setTimeout(() => this.tick(), ms);
  }

  async tick() {
    if (this.stopped) return;
    this.busy = true;
    try {
      this.schedule(await this.poll());
    } finally {
      this.busy = false;
    }
  }

  /** One status + logs round; returns how long to wait before the next (ignored once stopped). */
  async poll() {
    let delay = POLL_MS;
    try {
      // Status first, then logs: when the status read says terminal, the log
      // read that follows it can say whether everything has been seen.
      const status = await getStatus(this.jobId);
      if (this.stopped) return 0;
      const phase = phaseOf(status);
      this.h.onStatus(status, phase);

      const logs = await getLogs(this.jobId, this.cursor);
      if (this.stopped) return 0;
      let text = typeof logs.Logs === "string" ? logs.Logs : "";
      if (typeof logs.Next === "string" && logs.Next !== "") {
        // A first read of a long log ends with a note on how to read the rest; we read the rest anyway.
        text = text.replace(CONTINUATION_NOTE, "");
        if (text) this.h.onLogText(text);
        this.cursor = logs.Next;
      } else if (text !== this.legacyText) {
        // No cursor: the answer is the whole log so far.
        this.legacyText = text;
        this.h.onLogReplace(text);
      }
      if (this.failures) this.h.onTrouble(null);
      this.failures = 0;

      if (TERMINAL_PHASES.has(phase)) {
        // Without a Complete flag, a log read made after a terminal status has it all.
        if (logs.Complete === true || logs.Complete === undefined) {
          this.stopped = true;
          this.h.onDone();
          return 0;
        }
        delay = DRAIN_MS;
      } else if (document.hidden) {
        delay = HIDDEN_POLL_MS;   // nobody is looking: go easy on the API
      }
    } catch (err) {
      if (this.stopped) return 0;
      if (err instanceof ApiError && err.status === 404) {
        this.stopped = true;
        this.h.onGone(err);
        return 0;
      }
      this.failures += 1;
      this.h.onTrouble(err);
      delay = Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** this.failures);
    }
    return delay;
  }
}
