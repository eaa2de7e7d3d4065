// Recent jobs, kept in this browser (localStorage). Only the fields listed in
// KEPT are ever written: never credentials.

const KEY = "boatyard.recentJobs.v1";
const MAX = 25;
const KEPT = ["id", "imageName", "source", "createdAt", "status", "phase"];

function pick(entry) {
  const out = {};
  for (const key of KEPT) if (entry[key] !== undefined && entry[key] !== null) out[key] = String(entry[key]);
  return out;
}

/** The remembered jobs, newest first. */
export function loadRecent() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(list) ? list.filter((e) => e && typeof e.id === "string").map(pick) : [];
  } catch (_) {
    return [];
  }
}

function save(list) {
  try {
    localStorage.setItem(KEY, JSON.stringify(list.slice(0, MAX).map(pick)));
  } catch (_) {
    // Storage full or disabled (private mode): the list is a convenience only.
  }
}

/** Adds a job to the top of the list (or moves it there) and merges the fields given. */
export function rememberJob(entry) {
  const list = loadRecent();
  const old = list.find((e) => e.id === entry.id) || {};
  save([{...old, ...pick(entry)}, ...list.filter((e) => e.id !== entry.id)]);
}

/** Updates a remembered job in place (no-op if it is not in the list). */
export function updateJob(id, fields) {
  const list = loadRecent();
  const index = list.findIndex((e) => e.id === id);
  if (index === -1) return;
  const merged = {...list[index], ...pick(fields)};
  if (KEPT.every((k) => merged[k] === list[index][k])) return;
  list[index] = merged;
  save(list);
}

export function clearRecent() {
  try { localStorage.removeItem(KEY); } catch (_) { /* ignore */ }
}

export const STORAGE_KEY = KEY;
