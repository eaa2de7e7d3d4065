// The "Options" section of the build form, shared by every source tab: reads the build options and
// checks them before anything is sent (the API checks again; patterns mirror chalicelib/domain/patterns.py).

import {checkImageName} from "./validate.js";

/** The option inputs; each id is the API field it fills, so a refusal naming the field shows beside it. */
export const OPTION_FIELDS = [
  "build_args", "dockerfile_path", "context_path", "target", "labels", "tags", "memory", "cpus",
  "notify_url", "notify_secret",
  "engine", "cache_from", "secrets", "ssh",
];
/** Fields whose values are secret: read from their inputs only at submit time, never put back on the page. */
export const SECRET_FIELDS = ["secrets", "ssh"];
/** Options that only apply to archive sources (not to Dockerfile text). */
export const PATH_FIELDS = ["dockerfile_path", "context_path"];

const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
const LABEL_KEY = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const STAGE = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;
const MEMORY = /^[1-9][0-9]{0,14}[bkmgBKMG]?$/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
const SECRET_LOOKING = /token|passw|pwd|secret|key|credential|auth|private|cert/i;
const MAX_ENTRIES = 64;
const MAX_VALUE = 4096;
const MAX_TAGS = 10;
const ENGINES = ["classic", "buildkit"];
const SECRET_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const MAX_SECRETS = 16;
const MAX_SECRET_CHARS = 3072;
const MAX_SSH_KEY_CHARS = 3500;
const PRIVATE_KEY = /^\s*-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----\r?\n[\s\S]*-----END [A-Z0-9 ]*PRIVATE KEY-----\s*$/;
const MAX_CACHE_FROM = 4;

/** "NAME=value" lines → {pairs} or {error}; blank lines are skipped. */
export function parsePairs(text, namePattern, what) {
  const pairs = {};
  const lines = text.split(/\r?\n/).filter((line) => line.trim());
  if (lines.length > MAX_ENTRIES) return {error: `At most ${MAX_ENTRIES} ${what}s.`};
  for (const line of lines) {
    const at = line.indexOf("=");
    const name = (at === -1 ? line : line.slice(0, at)).trim();
    const value = at === -1 ? "" : line.slice(at + 1);
    if (at === -1) return {error: `Write each ${what} as NAME=value ("${name.slice(0, 40)}" has no =).`};
    if (!namePattern.test(name)) return {error: `"${name.slice(0, 40)}" is not a valid ${what} name.`};
    if (name in pairs) return {error: `"${name}" is given twice.`};
    if (value.length > MAX_VALUE || CONTROL.test(value)) {
      return {error: `The value of "${name}" must be at most ${MAX_VALUE} characters on one line.`};
    }
    pairs[name] = value;
  }
  return {pairs};
}

/** A relative path inside the archive: no leading or trailing "/", no ".", ".." or empty parts. */
export function checkPath(value) {
  if (value.length > 255 || CONTROL.test(value) || value.includes("\\")) return false;
  return value.split("/").every((part) => part && part !== "." && part !== "..");
}

/** Build-arg names that look like secrets (they would end up in the image history). */
export function secretLookingArgs(args) {
  return Object.keys(args).filter((name) => SECRET_LOOKING.test(name));
}

/**
 * Reads the option inputs for the chosen source.
 * values: {build_args, labels, dockerfile_path, context_path, target, tags, memory, cpus} (strings),
 * notify_url and notify_secret (a signed notification when the build ends), no_cache and pull (booleans). Returns {options, errors}: options holds only what differs from
 * the defaults (so an untouched section sends nothing), errors is {field: message}.
 */
export function readOptions(source, values) {
  const options = {};
  const errors = {};
  const args = parsePairs(values.build_args || "", ARG_NAME, "build arg");
  if (args.error) errors.build_args = args.error;
  else if (Object.keys(args.pairs).length) options.build_args = args.pairs;
  const labels = parsePairs(values.labels || "", LABEL_KEY, "label");
  if (labels.error) errors.labels = labels.error;
  else if (Object.keys(labels.pairs).length) options.labels = labels.pairs;
  if (source !== "dockerfile") {
    for (const field of PATH_FIELDS) {
      const path = (values[field] || "").trim();
      if (!path) continue;
      if (checkPath(path)) options[field] = path;
      else errors[field] = "Give a path inside the archive, like docker/Dockerfile (no leading /, no .. parts).";
    }
  }
  const target = (values.target || "").trim();
  if (target && !STAGE.test(target)) errors.target = "A stage name starts with a letter: letters, digits, _ . -";
  else if (target) options.target = target;
  const tags = (values.tags || "").split(/[\s,]+/).filter(Boolean);
  if (tags.length > MAX_TAGS) errors.tags = `At most ${MAX_TAGS} extra tags.`;
  else if (tags.find((tag) => !TAG.test(tag))) errors.tags = `"${tags.find((tag) => !TAG.test(tag)).slice(0, 40)}" is not a valid tag.`;
  else if (new Set(tags).size !== tags.length) errors.tags = "A tag is listed twice.";
  else if (tags.length) options.tags = tags;
  const memory = (values.memory || "").trim();
  if (memory && !MEMORY.test(memory)) errors.memory = "Give a size like 512m or 2g.";
  else if (memory) options.memory = memory;
  const cpus = (values.cpus || "").trim();
  if (cpus && !(Number(cpus) >= 0.01)) errors.cpus = "Give a number of CPUs like 0.5 or 2.";
  else if (cpus) options.cpus = Number(cpus);
  if (values.no_cache) options.no_cache = true;
  if (values.pull === false) options.pull = false;
  const notifyUrl = (values.notify_url || "").trim();
  const notifySecret = values.notify_secret || "";
  if (notifyUrl) {
    if (!/^https?:\/\/[^\s]+$/i.test(notifyUrl)) errors.notify_url = "Give an https:// URL that receives the notifications.";
    else options.notify_url = notifyUrl;
    if (notifySecret.length < 16 || notifySecret.length > 256) errors.notify_secret = "Give 16 to 256 characters; each notification is signed with them.";
    else options.notify_secret = notifySecret;
  } else if (notifySecret) {
    errors.notify_url = "Give the URL to notify, or leave the secret empty.";
  }
  Object.assign(errors, readBuildKit(values, options));
  return {options, errors};
}

/**
 * The BuildKit fields: engine, cache_from, secrets ([{id, value}] rows) and ssh (the key file's text).
 * Adds what is given to options; returns {field: message}. Messages never quote a secret value.
 */
export function readBuildKit(values, options) {
  const errors = {};
  const engine = values.engine || "";
  if (engine && !ENGINES.includes(engine)) errors.engine = "Choose classic or BuildKit.";
  else if (engine) options.engine = engine;
  const images = (values.cache_from || "").split(/[\s,]+/).filter(Boolean);
  const badImage = images.map((image) => [image, checkImageName(image)]).find(([, error]) => error);
  if (images.length > MAX_CACHE_FROM) errors.cache_from = `At most ${MAX_CACHE_FROM} images.`;
  else if (badImage) errors.cache_from = `${badImage[0].slice(0, 80)}: ${badImage[1]}`;
  else if (new Set(images).size !== images.length) errors.cache_from = "An image is listed twice.";
  else if (images.length) options.cache_from = images;
  const secrets = {};
  const rows = (values.secrets || []).filter((row) => row.id.trim() || row.value);
  for (const row of rows) {
    const id = row.id.trim();
    if (!SECRET_ID.test(id)) {
      errors.secrets = id ? `"${id.slice(0, 40)}" is not a valid secret id: letters, digits, . _ - (up to 64).`
        : "Give every secret an id.";
    } else if (id in secrets) errors.secrets = `The secret id "${id}" is given twice.`;
    else if (!row.value) errors.secrets = `The secret "${id}" has no value.`;
    else if (row.value.length > MAX_SECRET_CHARS || row.value.includes("\u0000")) {
      errors.secrets = `The secret "${id}" must be at most ${MAX_SECRET_CHARS} characters.`;
    }
    if (errors.secrets) break;
    secrets[id] = row.value;
  }
  if (!errors.secrets && rows.length > MAX_SECRETS) errors.secrets = `At most ${MAX_SECRETS} secrets.`;
  else if (!errors.secrets && rows.length) options.secrets = secrets;
  const key = values.ssh || "";
  if (key && (key.length > MAX_SSH_KEY_CHARS || !PRIVATE_KEY.test(key))) {
    errors.ssh = "Choose an unencrypted private key file (-----BEGIN … PRIVATE KEY-----, at most 3500 characters).";
  } else if (key) options.ssh = key;
  if (engine === "classic") {
    for (const field of ["secrets", "ssh", "cache_from"]) {
      if (options[field] && !errors[field]) errors[field] = "Needs BuildKit: choose BuildKit or let the service choose.";
    }
  }
  return errors;
}
