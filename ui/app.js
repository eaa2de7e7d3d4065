// boatyard web UI: the build form, the job view (#job=<id>) and the recent jobs list.

import {
  ApiError, apiBase, cancelJob, clockSkewMs, createUpload, getApiKey, listJobs, setApiKey, submitBuild, uploadFile,
} from "./api.js";
import {checkForm} from "./validate.js";
import {OPTION_FIELDS, SECRET_FIELDS, readOptions, secretLookingArgs} from "./options.js";
import {LogPane} from "./logpane.js";
import {JobWatcher, TERMINAL_PHASES} from "./watcher.js";
import {clearRecent, loadRecent, rememberJob, STORAGE_KEY, updateJob} from "./recent.js";
import {refreshTriggers, setupTriggers} from "./triggers.js";

const $ = (id) => document.getElementById(id);

const form = $("build-form");
const submitButton = $("submit");
const formError = $("form-error");
const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
const FIELD_IDS = [
  "image_name", "username", "password", "email", "dockerfile",
  "github_username", "github_reponame", "github_tag", "github_token", "tar_url", "upload_file", ...OPTION_FIELDS,
];
// Fields the API may name in a refusal, mapped to the input that shows it.
const API_FIELD_TO_INPUT = {upload_id: "upload_file", TarFile: "upload_file", file: "upload_file"};
const PHASE_ORDER = ["queued", "fetching", "building", "pushing", "finished"];
const PHASE_WORDS = {
  queued: "Queued — waiting for a worker",
  fetching: "Fetching the source",
  building: "Building",
  pushing: "Pushing to the registry",
  finished: "Finished — image pushed",
  failed: "Failed",
  cancelled: "Cancelled",
};

/* ------------------------------------------------------------------ tabs */

function currentSource() {
  const selected = tabs.find((t) => t.getAttribute("aria-selected") === "true");
  return selected.dataset.source;
}

function selectTab(tab, focus) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute("aria-selected", String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute("aria-controls")).hidden = !on;
  }
  $("options-paths").hidden = $("paths-hint").hidden = tab.dataset.source === "dockerfile";  // archives only
  if (focus) tab.focus();
}

for (const tab of tabs) {
  tab.addEventListener("click", () => selectTab(tab, false));
  tab.addEventListener("keydown", (event) => {
    const i = tabs.indexOf(tab);
    const next = {
      ArrowRight: tabs[(i + 1) % tabs.length],
      ArrowLeft: tabs[(i - 1 + tabs.length) % tabs.length],
      Home: tabs[0],
      End: tabs[tabs.length - 1],
    }[event.key];
    if (next) {
      event.preventDefault();
      selectTab(next, true);
    }
  });
}

/* ----------------------------------------------------------- field errors */

function showFieldError(field, message) {
  const input = $(field);
  const box = $(`${field}-error`);
  if (!input || !box) return false;
  input.setAttribute("aria-invalid", "true");
  box.textContent = message;
  box.hidden = false;
  return true;
}

function clearFieldError(field) {
  const input = $(field);
  const box = $(`${field}-error`);
  if (input) input.removeAttribute("aria-invalid");
  if (box) { box.textContent = ""; box.hidden = true; }
}

function clearErrors() {
  FIELD_IDS.forEach(clearFieldError);
  formError.hidden = true;
  formError.textContent = "";
}

function showFormError(message) {
  formError.textContent = message;
  formError.hidden = false;
}

// A build arg whose name looks like a secret gets a warning while it is typed.
$("build_args").addEventListener("input", () => {
  const names = $("build_args").value.split(/\r?\n/).map((line) => line.split("=", 1)[0].trim()).filter(Boolean);
  const secret = secretLookingArgs(Object.fromEntries(names.map((name) => [name, ""])));
  const warning = $("build_args-warning");
  warning.hidden = !secret.length;
  warning.textContent = secret.length
    ? `${secret.join(", ")} looks like a secret: anyone who pulls the image can read build args. Don't pass secrets this way.`
    : "";
});

// A field's error goes away as soon as the user edits it.
for (const field of FIELD_IDS) {
  const input = $(field);
  input.addEventListener(input.type === "file" ? "change" : "input", () => clearFieldError(field));
}

/** Focuses a field, switching to the tab that holds it first. */
function focusField(field) {
  const input = $(field);
  const panel = input.closest('[role="tabpanel"]');
  if (panel && panel.hidden) selectTab(tabs.find((t) => t.getAttribute("aria-controls") === panel.id), false);
  const details = input.closest("details");
  if (details) details.open = true;
  input.focus();
}

/** Shows an API refusal next to the field it names, or above the form. */
function showApiError(err) {
  let field = err.field ? (API_FIELD_TO_INPUT[err.field] || err.field) : null;
  if (field && !FIELD_IDS.includes(field)) field = null;
  if (field && showFieldError(field, err.fieldMessage)) {
    focusField(field);
    return;
  }
  showFormError(err.status ? `The build service refused the request: ${err.message}` : err.message);
  formError.focus();
}

/* ----------------------------------------------------------------- submit */

function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB", "TB"];
  let value = n;
  let unit = "B";
  for (const u of units) {
    if (value < 1024) break;
    value /= 1024;
    unit = u;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${unit}`;
}

function readValues() {
  const values = {};
  for (const field of FIELD_IDS) {
    if (field !== "upload_file" && !SECRET_FIELDS.includes(field)) values[field] = $(field).value;
  }
  values.file = $("upload_file").files[0] || null;
  values.no_cache = $("no_cache").checked;
  values.pull = $("pull").checked;
  values.secrets = Array.from(document.querySelectorAll(".secret-row"), (row) => ({
    id: row.querySelector(".secret-id").value, value: row.querySelector(".secret-value").value,
  }));
  return values;
}

const MAX_KEY_FILE_BYTES = 16 * 1024;

/** The SSH key file's text ("" when none is chosen; a file too large to be a key is not read). */
async function readKeyFile() {
  const file = $("ssh").files[0];
  if (!file) return "";
  return file.size > MAX_KEY_FILE_BYTES ? "(too large)" : file.text();
}

/** Secret values and the key file are not left in the page once they have been sent. */
function forgetSecrets() {
  for (const input of document.querySelectorAll(".secret-value")) input.value = "";
  $("ssh").value = "";
}

/* ---------------------------------------------------------- secret rows */

const secretRows = $("secret-rows");

function addSecretRow() {
  const n = secretRows.children.length + 1;
  const row = document.createElement("div");
  row.className = "secret-row";
  const id = document.createElement("input");
  Object.assign(id, {type: "text", className: "secret-id", placeholder: "id, e.g. npm_token", spellcheck: false});
  id.setAttribute("autocapitalize", "off");
  id.setAttribute("aria-label", `Secret ${n} id`);
  const value = document.createElement("input");
  Object.assign(value, {type: "password", className: "secret-value", placeholder: "value", autocomplete: "off"});
  value.setAttribute("aria-label", `Secret ${n} value`);
  const remove = document.createElement("button");
  Object.assign(remove, {type: "button", className: "secondary", textContent: "Remove"});
  remove.setAttribute("aria-label", `Remove secret ${n}`);
  remove.addEventListener("click", () => {
    row.remove();
    if (!secretRows.children.length) addSecretRow();
    clearFieldError("secrets");
  });
  row.append(id, value, remove);
  secretRows.append(row);
  return id;
}

addSecretRow();
$("add-secret").addEventListener("click", () => addSecretRow().focus());

function setBusy(label) {
  submitButton.disabled = Boolean(label);
  submitButton.textContent = label || "Build it!";
}

const uploadBox = $("upload-progress");
const uploadBar = $("upload-bar");
const uploadLabel = $("upload-label");
const uploadText = $("upload-text");

function showUploadProgress(loaded, total) {
  const percent = total ? Math.floor((loaded / total) * 100) : 0;
  uploadBox.hidden = false;
  uploadBar.value = percent;
  uploadBar.setAttribute("aria-valuetext", `${percent}%`);
  uploadLabel.textContent = percent >= 100 ? "Uploaded" : "Uploading…";
  uploadText.textContent = `${percent}% (${formatBytes(loaded)} of ${formatBytes(total)})`;
  setBusy(percent >= 100 ? "Starting build…" : `Uploading ${percent}%…`);
}

/** Uploads the chosen archive with the presigned POST; resolves to the upload id. */
async function uploadArchive(file) {
  const ticket = await createUpload({filename: file.name, size: file.size});
  if (ticket.MaxBytes && file.size > ticket.MaxBytes) {
    throw new ApiError(413, "TooLarge",
      `upload_file: the archive is ${formatBytes(file.size)}; the limit is ${formatBytes(ticket.MaxBytes)}.`);
  }
  showUploadProgress(0, file.size);
  await uploadFile(ticket, file, showUploadProgress);
  return ticket.UploadId;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (submitButton.disabled) return;
  clearErrors();
  const source = currentSource();
  const values = readValues();
  values.ssh = await readKeyFile();
  const checked = readOptions(source, values);
  const errors = {...checkForm(source, values), ...checked.errors};
  const wrong = Object.keys(errors);
  if (wrong.length) {
    for (const field of wrong) showFieldError(field, errors[field]);
    focusField(wrong[0]);
    return;
  }

  const payload = {
    image_name: values.image_name.trim(),
    username: values.username.trim(),
    password: values.password,
    email: values.email.trim(),
    ...checked.options,
  };
  setBusy("Submitting…");
  uploadBox.hidden = true;
  try {
    if (source === "dockerfile") payload.dockerfile = values.dockerfile;
    else if (source === "tar_url") payload.tar_url = values.tar_url.trim();
    else if (source === "github") {
      payload.github_username = values.github_username.trim();
      payload.github_reponame = values.github_reponame.trim();
      payload.github_tag = values.github_tag.trim();
      if (values.github_token.trim()) payload.github_token = values.github_token.trim();
    } else if (source === "upload") {
      setBusy("Preparing upload…");
      payload.upload_id = await uploadArchive(values.file);
    }
    const jobId = await submitBuild(payload);
    forgetSecrets();
    rememberJob({
      id: jobId, imageName: payload.image_name, source,
      createdAt: new Date().toISOString(), status: "Building", phase: "queued",
    });
    renderRecent();
    openFromSubmit = true;
    location.hash = `job=${encodeURIComponent(jobId)}`;
  } catch (err) {
    if (err instanceof ApiError) showApiError(err);
    else showFormError(`Something went wrong: ${err.message || err}`);
  } finally {
    setBusy(null);
  }
});

/* ---------------------------------------------------------------- job view */

const jobPanel = $("job-panel");
const statusBox = $("job-status");
const statusText = $("status-text");
const reasonBox = $("job-reason");
const pollError = $("poll-error");
const elapsedBox = $("elapsed");
const logPane = new LogPane($("log"), $("log-follow"));

let watcher = null;
let openJobId = null;
let openFromSubmit = false;
let elapsedTimer = null;
let lastLivePhase = null;
let times = {start: null, end: null};

function stateOf(phase) {
  if (phase === "finished") return "success";
  if (phase === "failed") return "failure";
  if (phase === "cancelled") return "cancelled";
  return "progress";
}

function formatDuration(ms) {
  const total = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const pad = (n) => String(n).padStart(2, "0");
  if (h) return `${h}h ${pad(m)}m ${pad(s)}s`;
  if (m) return `${m}m ${pad(s)}s`;
  return `${s}s`;
}

function renderElapsed() {
  if (!times.start) { elapsedBox.textContent = "—"; return; }
  const end = times.end ?? Date.now() + clockSkewMs;
  elapsedBox.textContent = formatDuration(end - times.start);
}

/**
 * Marks the phase chips: the ones the job is known to have passed are done.
 * A failed or cancelled job shows that in the last chip; polling once a
 * second can miss phases, so the UI never guesses which step it failed in.
 */
function renderPhaseSteps(phase) {
  if (!TERMINAL_PHASES.has(phase)) lastLivePhase = phase;
  const reached = phase === "finished" ? PHASE_ORDER.length : PHASE_ORDER.indexOf(lastLivePhase);
  for (const li of document.querySelectorAll("#phase-steps li")) {
    const i = PHASE_ORDER.indexOf(li.dataset.phase);
    li.className = "";
    li.removeAttribute("aria-current");
    if (li.dataset.phase === "finished") li.textContent = "Finished";
    if (i < reached) {
      li.classList.add("done");
    } else if (i === reached && !TERMINAL_PHASES.has(phase)) {
      li.classList.add("current");
      li.setAttribute("aria-current", "step");
    } else if (li.dataset.phase === "finished" && (phase === "failed" || phase === "cancelled")) {
      li.textContent = phase === "failed" ? "Failed" : "Cancelled";
      li.classList.add(phase);
    }
  }
}

function onStatus(status, phase) {
  const state = stateOf(phase);
  statusBox.dataset.state = state;
  statusBox.dataset.phase = phase;
  statusText.textContent = PHASE_WORDS[phase] || status.Status;
  if (status.Attempt > 1) {
    $("attempt-row").hidden = false;
    $("attempt").textContent = String(status.Attempt);
  }
  if (status.ImageName) {
    $("job-image").textContent = status.ImageName;
    document.title = `${{success: "✔", failure: "⚠", cancelled: "⊘"}[state] || "…"} ${status.ImageName} — boatyard`;
  }
  renderPhaseSteps(phase);
  const cancelButton = $("cancel-build");
  cancelButton.hidden = TERMINAL_PHASES.has(phase);

  // Failed: Docker's (or the fetcher's) message, which says what to fix.
  if (phase === "failed") {
    const reason = status.Reason || String(status.Status || "").replace(/^Failed:\s*/, "") || "unknown error";
    if (reasonBox.textContent !== reason) reasonBox.textContent = reason;
    reasonBox.hidden = false;
  } else {
    reasonBox.hidden = true;
  }

  if (status.ImageDigest) {
    $("digest").textContent = status.ImageDigest;
    $("digest-row").hidden = false;
  }

  const parse = (v) => (v ? Date.parse(v) : NaN);
  const start = parse(status.StartedAt) || parse(status.CreatedAt);
  times.start = Number.isNaN(start) ? null : start;
  if (TERMINAL_PHASES.has(phase)) {
    const end = parse(status.FinishedAt) || parse(status.UpdatedAt);
    times.end = Number.isNaN(end) ? Date.now() + clockSkewMs : end;
    clearInterval(elapsedTimer);
    elapsedTimer = null;
  } else {
    times.end = null;
    if (!elapsedTimer) elapsedTimer = setInterval(renderElapsed, 1000);
  }
  renderElapsed();

  updateJob(openJobId, {status: status.Status, phase, imageName: status.ImageName, createdAt: status.CreatedAt});
  renderRecent();
}

function resetJobView(jobId) {
  statusBox.dataset.state = "progress";
  statusBox.dataset.phase = "";
  statusText.textContent = "Loading…";
  reasonBox.hidden = true;
  reasonBox.textContent = "";
  pollError.hidden = true;
  $("digest-row").hidden = true;
  $("digest").textContent = "";
  $("attempt-row").hidden = true;
  $("cancel-build").hidden = true;
  const known = loadRecent().find((e) => e.id === jobId);
  $("job-image").textContent = known ? known.imageName : "";
  const link = $("job-link");
  link.href = `#job=${encodeURIComponent(jobId)}`;
  link.textContent = jobId;
  $("copy-link").textContent = "Copy link";
  times = {start: null, end: null};
  lastLivePhase = null;
  renderElapsed();
  renderPhaseSteps("queued");
  logPane.clear();
}

function stopWatching() {
  if (watcher) watcher.stop();
  watcher = null;
  clearInterval(elapsedTimer);
  elapsedTimer = null;
}

function openJob(jobId) {
  if (openJobId === jobId && watcher) return;
  stopWatching();
  openJobId = jobId;
  resetJobView(jobId);
  jobPanel.hidden = false;
  document.body.classList.add("has-job");
  renderRecent();

  watcher = new JobWatcher(jobId, {
    onStatus,
    onLogText: (text) => logPane.append(text),
    onLogReplace: (text) => logPane.replace(text),
    onTrouble: (err) => {
      pollError.hidden = !err;
      if (err) pollError.textContent = `Lost contact with the build service (${err.message}); retrying…`;
    },
    onGone: (err) => {
      statusBox.dataset.state = "failure";
      statusText.textContent = "No such build";
      reasonBox.textContent = `There is no build with id ${jobId}; it may have expired. (${err.message})`;
      reasonBox.hidden = false;
      renderPhaseSteps("cancelled");
    },
    onDone: () => {
      pollError.hidden = true;
      statusBox.dataset.done = "true";
    },
  });
  statusBox.dataset.done = "false";
  watcher.start();

  if (openFromSubmit) {
    openFromSubmit = false;
    const heading = $("job-heading");
    heading.tabIndex = -1;
    heading.focus({preventScroll: true});
    jobPanel.scrollIntoView({block: "start", behavior: "smooth"});
  }
}

function closeJob() {
  stopWatching();
  openJobId = null;
  jobPanel.hidden = true;
  document.body.classList.remove("has-job");
  document.title = "boatyard — build and push container images";
  renderRecent();
}

$("new-build").addEventListener("click", () => {
  history.pushState(null, "", location.pathname + location.search);
  closeJob();
  $("image_name").focus();
});

$("cancel-build").addEventListener("click", async () => {
  const button = $("cancel-build");
  button.disabled = true;
  button.textContent = "Cancelling…";
  try {
    await cancelJob(openJobId);  // the watcher shows the new status on its next read
  } catch (err) {
    // 409: it ended meanwhile, which the next status read shows; anything else is worth saying.
    if (!(err instanceof ApiError && err.status === 409)) {
      pollError.textContent = `Could not cancel: ${err.message}`;
      pollError.hidden = false;
    }
  } finally {
    button.disabled = false;
    button.textContent = "Cancel build";
  }
});

$("copy-link").addEventListener("click", async () => {
  const url = $("job-link").href;
  const button = $("copy-link");
  try {
    await navigator.clipboard.writeText(url);
    button.textContent = "Copied";
  } catch (_) {
    // No clipboard (plain http, old browser): let the user copy it by hand.
    window.prompt("Copy this link:", url);
  }
});

document.addEventListener("visibilitychange", () => {
  if (!document.hidden && watcher) watcher.poke();
});

/* ------------------------------------------------------------ recent jobs */

const recentList = $("recent-list");

function relativeTime(iso) {
  const t = Date.parse(iso || "");
  if (Number.isNaN(t)) return "";
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

function renderRecent() {
  const jobs = loadRecent();
  recentList.replaceChildren();
  for (const job of jobs) {
    const state = stateOf(job.phase || "queued");
    const li = document.createElement("li");
    const a = document.createElement("a");
    a.href = `#job=${encodeURIComponent(job.id)}`;
    a.dataset.jobId = job.id;
    if (job.id === openJobId) a.setAttribute("aria-current", "page");
    const icon = document.createElement("span");
    icon.className = "r-icon";
    icon.dataset.state = state;
    icon.textContent = {success: "✔", failure: "⚠", cancelled: "⊘", progress: "⋯"}[state];
    icon.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.className = "r-name";
    name.textContent = job.imageName || job.id;
    const meta = document.createElement("span");
    meta.className = "r-meta";
    const when = relativeTime(job.createdAt);
    meta.textContent = [PHASE_WORDS[job.phase] ? (job.phase[0].toUpperCase() + job.phase.slice(1)) : "", when]
      .filter(Boolean).join(" · ");
    a.setAttribute("aria-label", `${job.imageName || job.id}: ${job.status || job.phase || ""} ${when}`.trim());
    a.append(icon, name, meta);
    li.append(a);
    recentList.append(li);
  }
  $("recent-empty").hidden = jobs.length > 0;
  $("recent-clear").hidden = jobs.length === 0;
}

$("recent-clear").addEventListener("click", () => {
  clearRecent();
  renderRecent();
});

// Another tab started or updated a job.
window.addEventListener("storage", (event) => {
  if (event.key === STORAGE_KEY || event.key === null) renderRecent();
});

/* ------------------------------------------------------- API key and history */

const keyState = $("key-state");

function showKeyState() {
  keyState.textContent = getApiKey() ? "A key is set for this tab." : "No key set (fine when the service runs without keys).";
  $("key-forget").hidden = !getApiKey();
}

/** Fills "Recent builds" from the caller's history on the server (GET /api/v1/jobs). */
async function refreshHistory() {
  let data;
  try {
    data = await listJobs(25);
  } catch (err) {
    if (err instanceof ApiError && (err.status === 401 || err.status === 429)) keyState.textContent = err.message;
    return;  // the list this browser remembers stays
  }
  for (const job of [...(data.Jobs || [])].reverse()) {  // oldest first: the newest ends on top
    rememberJob({
      id: job.JobIdentifier, imageName: job.ImageName, source: job.Source,
      createdAt: job.CreatedAt, status: job.Status, phase: job.Phase,
    });
  }
  renderRecent();
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("api-key");
  const key = input.value.trim();
  input.value = "";  // never left in the page
  if (!key) return;
  setApiKey(key);
  clearRecent();  // another key's builds are not this one's
  renderRecent();
  showKeyState();
  refreshHistory();
  refreshTriggers();
});

$("key-forget").addEventListener("click", () => {
  setApiKey("");
  clearRecent();
  renderRecent();
  showKeyState();
  refreshTriggers();
});

/* ------------------------------------------------------------------ routing */

function jobIdFromHash() {
  const match = /^#job=([^&]+)$/.exec(location.hash);
  if (!match) return null;
  try {
    const id = decodeURIComponent(match[1]).trim();
    return /^[A-Za-z0-9._-]{1,128}$/.test(id) ? id : null;
  } catch (_) {
    return null;
  }
}

function route() {
  const jobId = jobIdFromHash();
  if (jobId) {
    if (!loadRecent().some((e) => e.id === jobId)) rememberJob({id: jobId, createdAt: new Date().toISOString()});
    openJob(jobId);
  } else {
    closeJob();
  }
}

window.addEventListener("hashchange", route);
$("home-link").addEventListener("click", (event) => {
  event.preventDefault();
  $("new-build").click();
});

document.documentElement.dataset.apiBase = apiBase;
showKeyState();
renderRecent();
refreshHistory();
setupTriggers();
route();
document.body.dataset.ready = "true";
