// The "Triggers" panel: build on push. Lists the caller's triggers, creates one (showing its
// webhook URL and secret once, never again), deletes one, and shows each one's recent builds.
// Credentials typed here go to the API with the create request only; nothing is kept in the page.

import {ApiError, createTrigger, deleteTrigger, getTrigger, listTriggers} from "./api.js";

const $ = (id) => document.getElementById(id);
const HEADER_HELP = {
  github: "GitHub: Settings → Webhooks → Add webhook. Payload URL: the URL above; Content type: application/json; Secret: the secret above; just the push event.",
  gitlab: "GitLab: Settings → Webhooks. URL: the URL above; Secret token: the secret above; Push events and Tag push events.",
  bitbucket: "Bitbucket: Repository settings → Webhooks → Add webhook. URL: the URL above; Secret: the secret above; Repository push.",
};
const TOKEN_FIELD = {github: "github_token", gitlab: "gitlab_token", bitbucket: "bitbucket_app_password"};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

function showError(message) {
  const box = $("trigger-error");
  box.textContent = message;
  box.hidden = !message;
}

/** The create request from the form: only what was filled in. */
function readForm() {
  const value = (id) => $(id).value.trim();
  const host = value("trigger-host");
  const payload = {host, repository: value("trigger-repository"), image_template: value("trigger-image")};
  for (const [id, field] of [["trigger-branches", "branch_regex"], ["trigger-tags", "tag_regex"],
    ["trigger-latest", "default_branch_tag"], ["trigger-notify", "notify_url"], ["trigger-username", "username"]]) {
    if (value(id)) payload[field] = value(id);
  }
  const paths = value("trigger-paths").split(/[\n,]/).map((p) => p.trim()).filter(Boolean);
  if (paths.length) payload.paths = paths;
  if ($("trigger-password").value) payload.password = $("trigger-password").value;
  if ($("trigger-token").value) payload[TOKEN_FIELD[host]] = $("trigger-token").value;
  if (host === "bitbucket" && value("trigger-token-user")) payload.bitbucket_username = value("trigger-token-user");
  payload.supersede = $("trigger-supersede").checked;
  return payload;
}

function showCreated(trigger) {
  const box = $("trigger-created");
  $("trigger-created-url").textContent = trigger.WebhookUrl;
  $("trigger-created-secret").textContent = trigger.Secret;
  $("trigger-created-help").textContent = HEADER_HELP[trigger.Host] || "";
  box.hidden = false;
  box.focus();
}

function buildItem(job) {
  const link = el("a", {href: `#job=${encodeURIComponent(job.JobIdentifier)}`, class: "t-build"});
  link.append(el("span", {class: "t-phase", "data-phase": job.Phase, text: job.Phase}),
    el("span", {class: "mono", text: job.ImageName}),
    el("span", {class: "hint", text: job.Ref ? `${job.Ref.replace(/^refs\/(heads|tags)\//, "")} @ ${(job.Commit || "").slice(0, 7)}` : ""}));
  return el("li", {}, link);
}

async function toggleBuilds(trigger, holder, button) {
  if (!holder.hidden) {
    holder.hidden = true;
    button.setAttribute("aria-expanded", "false");
    return;
  }
  button.setAttribute("aria-expanded", "true");
  holder.hidden = false;
  holder.replaceChildren(el("p", {class: "hint", text: "Loading…"}));
  try {
    const detail = await getTrigger(trigger.TriggerId);
    const builds = detail.Builds || [];
    holder.replaceChildren(builds.length
      ? el("ul", {class: "t-builds"}, ...builds.map(buildItem))
      : el("p", {class: "hint", text: "No builds yet: push to a matching branch or tag."}));
  } catch (err) {
    holder.replaceChildren(el("p", {class: "field-error", text: err.message}));
  }
}

function triggerItem(trigger) {
  const refs = [trigger.BranchRegex && `branches ${trigger.BranchRegex}`, trigger.TagRegex && `tags ${trigger.TagRegex}`]
    .filter(Boolean).join(" · ");
  const builds = el("div", {class: "t-builds-holder", id: `builds-${trigger.TriggerId}`});
  builds.hidden = true;
  const show = el("button", {type: "button", class: "linkish", "aria-expanded": "false",
    "aria-controls": `builds-${trigger.TriggerId}`, text: "Recent builds"});
  show.addEventListener("click", () => toggleBuilds(trigger, builds, show));
  const remove = el("button", {type: "button", class: "linkish t-delete", text: "Delete"});
  remove.addEventListener("click", async () => {
    if (!window.confirm(`Delete the trigger for ${trigger.Repository}? Its webhook stops working.`)) return;
    try {
      await deleteTrigger(trigger.TriggerId);
      refreshTriggers();
    } catch (err) {
      showError(err.message);
    }
  });
  return el("li", {class: "t-item", "data-trigger-id": trigger.TriggerId},
    el("div", {class: "t-head"},
      el("span", {class: "t-repo", text: `${trigger.Host}: ${trigger.Repository}`}),
      el("span", {class: "t-actions"}, show, remove)),
    el("div", {class: "mono t-image", text: trigger.ImageTemplate}),
    el("div", {class: "hint", text: refs + (trigger.Paths ? ` · paths ${trigger.Paths.join(", ")}` : "")}),
    builds);
}

/** Reload the list of triggers. */
export async function refreshTriggers() {
  const list = $("trigger-list");
  try {
    const data = await listTriggers();
    const triggers = data.Triggers || [];
    list.replaceChildren(...triggers.map(triggerItem));
    $("trigger-empty").hidden = triggers.length > 0;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      list.replaceChildren();
      $("trigger-empty").hidden = false;
      return;
    }
    showError(err.message);
  }
}

function onHostChange() {
  const host = $("trigger-host").value;
  $("trigger-token-label").textContent = {github: "GitHub token", gitlab: "GitLab token", bitbucket: "Bitbucket app password"}[host];
  $("trigger-token-user-field").hidden = host !== "bitbucket";
}

function openForm() {
  const holder = $("trigger-form-holder");
  if ($("trigger-form")) { $("trigger-repository").focus(); return; }
  holder.append($("trigger-form-template").content.cloneNode(true));
  $("trigger-new").setAttribute("aria-expanded", "true");
  $("trigger-host").addEventListener("change", onHostChange);
  onHostChange();
  $("trigger-close").addEventListener("click", closeForm);
  $("trigger-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    showError("");
    $("trigger-created").hidden = true;
    const button = $("trigger-submit");
    button.disabled = true;
    try {
      const created = await createTrigger(readForm());
      closeForm();  // the form (and the credentials typed into it) leaves the page
      showCreated(created);
      refreshTriggers();
    } catch (err) {
      showError(err.field ? `${err.field}: ${err.fieldMessage}` : err.message);
    } finally {
      if ($("trigger-submit")) $("trigger-submit").disabled = false;
    }
  });
  $("trigger-repository").focus();
}

function closeForm() {
  $("trigger-form-holder").replaceChildren();
  $("trigger-new").setAttribute("aria-expanded", "false");
}

/** Wire the panel (called once the page is ready). */
export function setupTriggers() {
  $("trigger-new").addEventListener("click", openForm);
  $("trigger-created-done").addEventListener("click", () => {
    $("trigger-created-secret").textContent = "";  // shown once: gone from the page
    $("trigger-created").hidden = true;
  });
  refreshTriggers();
}
