// The boatyard HTTP API (v1), as the browser sees it. See /DESIGN.md.

const config = window.BOATYARD_CONFIG || {};
/** Where the API lives: "" is this page's origin. No trailing slash. */
export const apiBase = String(config.apiBase || "").replace(/\/+$/, "");

/** A refusal or failure, with the API's {Code, Message} when it sent one. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;   // HTTP status; 0 when the request never got an answer
    this.code = code;
    // The API names the field it refuses at the start of Message: "image_name: ...".
    const match = /^([a-z_]+):\s*(.*)$/s.exec(message || "");
    this.field = match ? match[1] : null;
    this.fieldMessage = match ? match[2] : message;
  }
}

/** Milliseconds the server's clock is ahead of ours (from the Date header; 0 if unknown). */
export let clockSkewMs = 0;

function noteServerDate(response) {
  const header = response.headers.get("Date");
  if (!header) return;
  const server = Date.parse(header);
  if (!Number.isNaN(server)) clockSkewMs = server - Date.now();
}

/* API key: kept in this tab's sessionStorage only (gone when the tab closes), sent as a Bearer header. */
const KEY_STORAGE = "boatyard.apiKey";

/** The API key pasted in this tab, or "". */
export function getApiKey() {
  try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch (_) { return ""; }
}

/** Keep (or with "" forget) the API key for this tab. */
export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch (_) { /* storage disabled: the key lasts until reload */ }
}

function friendly(status, message, response) {
  if (status === 401) {
    return getApiKey()
      ? "The build service refused your API key (it is wrong or was revoked). Paste a valid key in the API key box."
      : "The build service needs an API key. Paste yours in the API key box (it is kept only in this tab).";
  }
  if (status === 429) {
    const wait = Number.parseInt(response.headers.get("Retry-After") || "", 10);
    return `Over your quota: ${message}${Number.isFinite(wait) ? ` Try again in ${wait} s.` : ""}`;
  }
  return message;
}

async function request(method, path, body) {
  const init = {method, headers: {Accept: "application/json"}, cache: "no-store"};
  const key = getApiKey();
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(apiBase + path, init);
  } catch (err) {
    throw new ApiError(0, "NetworkError", `Can't reach the build service (${err.message || err}).`);
  }
  noteServerDate(response);
  let data = null;
  const text = await response.text();
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!response.ok) {
    const code = (data && data.Code) || `HTTP${response.status}`;
    const message = (data && data.Message) || `The build service answered ${response.status} ${response.statusText}.`;
    throw new ApiError(response.status, code, friendly(response.status, message, response));
  }
  if (data === null || typeof data !== "object") {
    throw new ApiError(response.status, "BadResponse", "The build service sent an answer that is not JSON.");
  }
  return data;
}

/** POST /api/v1/build with JSON; resolves to the job id. */
export async function submitBuild(payload) {
  const data = await request("POST", "/api/v1/build", payload);
  if (!data.JobIdentifier) throw new ApiError(202, "BadResponse", "The build service did not return a job id.");
  return data.JobIdentifier;
}

/** POST /api/v1/uploads: a presigned S3 POST {UploadId, Url, Fields, MaxBytes, ExpiresIn}. */
export function createUpload(meta) {
  return request("POST", "/api/v1/uploads", meta);
}

/** GET /api/v1/jobs?limit=: the caller's jobs, newest first → {Jobs: [...], Next?} */
export function listJobs(limit) {
  return request("GET", `/api/v1/jobs?limit=${encodeURIComponent(limit || 25)}`);
}

/** GET /api/v1/{id}/status */
export function getStatus(jobId) {
  return request("GET", `/api/v1/${encodeURIComponent(jobId)}/status`);
}

/** POST /api/v1/{id}/cancel → the job's status (409 if it has already ended). */
export function cancelJob(jobId) {
  return request("POST", `/api/v1/${encodeURIComponent(jobId)}/cancel`);
}

/** GET /api/v1/{id}/logs[?since=cursor] → {Logs, Next, Complete} */
export function getLogs(jobId, since) {
  const query = since ? `?since=${encodeURIComponent(since)}` : "";
  return request("GET", `/api/v1/${encodeURIComponent(jobId)}/logs${query}`);
}

function s3ErrorMessage(xhr) {
  // S3 answers errors as XML: <Error><Code>EntityTooLarge</Code><Message>...</Message></Error>
  const text = xhr.responseText || "";
  const code = /<Code>([^<]*)<\/Code>/.exec(text);
  const message = /<Message>([^<]*)<\/Message>/.exec(text);
  if (code || message) return `${code ? code[1] : "Error"}: ${message ? message[1] : ""}`.trim();
  return `HTTP ${xhr.status}`;
}

/**
 * Sends the file to the presigned POST: every field of `Fields` first, in
 * order, then `file` last (S3 ignores anything after the file).
 * onProgress(loadedBytes, totalBytes) is called as the bytes go out.
 * Uses XMLHttpRequest because fetch has no upload progress.
 */
export function uploadFile(ticket, file, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const [name, value] of Object.entries(ticket.Fields || {})) form.append(name, value);
    form.append("file", file, file.name);

    const xhr = new XMLHttpRequest();
    xhr.open("POST", ticket.Url);
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status >= 200 && xhr.status < 300) {
        onProgress(file.size, file.size);
        resolve();
      } else {
        reject(new ApiError(xhr.status, "UploadRefused", `upload_file: storage refused the upload (${s3ErrorMessage(xhr)}).`));
      }
    });
    xhr.addEventListener("error", () => {
      reject(new ApiError(0, "NetworkError", "upload_file: the upload could not reach storage (network error or CORS)."));
    });
    xhr.addEventListener("timeout", () => reject(new ApiError(0, "Timeout", "upload_file: the upload timed out.")));
    xhr.send(form);
  });
}

/** POST /api/v1/triggers → the trigger with WebhookUrl and Secret (shown once). */
export function createTrigger(payload) {
  return request("POST", "/api/v1/triggers", payload);
}

/** GET /api/v1/triggers → {Triggers: [...]} (never a secret or credential). */
export function listTriggers() {
  return request("GET", "/api/v1/triggers");
}

/** GET /api/v1/triggers/{id} → the trigger and its recent builds ({Builds: [...]}). */
export function getTrigger(triggerId) {
  return request("GET", `/api/v1/triggers/${encodeURIComponent(triggerId)}`);
}

/** DELETE /api/v1/triggers/{id} */
export function deleteTrigger(triggerId) {
  return request("DELETE", `/api/v1/triggers/${encodeURIComponent(triggerId)}`);
}
