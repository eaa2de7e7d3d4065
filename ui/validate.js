// Field checks done before anything is sent. The API checks again and its
// message is shown when it refuses; these exist so that a typo is caught
// instantly, next to the field, without a round trip — and before an upload
// starts, since the build request (and so the API's verdict) comes after it.

// Docker's reference grammar (github.com/distribution/reference), restricted
// to what can be pushed: [domain/]path[:tag] — no digest. The same grammar as
// chalicelib/domain/image_ref.py: tests/unit/test_image_ref_corpus.py runs one corpus
// (tests/unit/image_refs.json) through both, so change them together.
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DOMAIN_COMPONENT = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const DOMAIN = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG = /^[\w][\w.-]{0,127}$/;
const IMAGE_ID = /^[a-f0-9]{64}$/;
const RESERVED_REGISTRY = "boatyard.invalid";  // the build service's own local tags
const NAME_MAX = 255;  // the repository name ([domain/]path)
const FIELD_MAX = 255;  // the whole image_name field

/** Splits "host:5000/team/image:1.0" into {domain, path, tag}; pure string work. */
export function splitImageName(value) {
  let rest = value;
  let domain = "";
  const slash = rest.indexOf("/");
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    // Docker's rule: the first part names a registry when it has a "." or ":",
    // is "localhost", or has an uppercase letter (a path part never does).
    if (first.includes(".") || first.includes(":") || first === "localhost" || first !== first.toLowerCase()) {
      domain = first;
      rest = rest.slice(slash + 1);
    }
  }
  let tag = null;
  const colon = rest.lastIndexOf(":");
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  return {domain, path: rest, tag};
}

/** Returns an error message for an image reference, or "" when it is fine. */
export function checkImageName(raw) {
  const value = raw.trim();
  if (!value) return "Enter the image to build and push, e.g. user/image:tag.";
  if (/\s/.test(value)) return "Image name can't contain spaces.";
  if (value.includes("@")) return "Use a tag (image:tag), not a digest (@sha256:…): a digest can't be pushed to.";
  if (value.length > FIELD_MAX) return `Image name is longer than ${FIELD_MAX} characters.`;
  if (IMAGE_ID.test(value)) return "64 hexadecimal digits are an image ID, not a name: use a name like user/image:tag.";
  const {domain, path, tag} = splitImageName(value);
  if (domain && !DOMAIN.test(domain)) return `"${domain}" is not a valid registry host (host or host:port).`;
  if (domain && domain.toLowerCase().split(":")[0] === RESERVED_REGISTRY) {
    return `The registry "${domain}" is reserved for the build service's own use.`;
  }
  if (!path) return "Image name needs a repository after the registry, e.g. host:5000/team/image.";
  for (const part of path.split("/")) {
    if (!part) return "Image name can't have an empty part (// or a leading or trailing /).";
    if (/[A-Z]/.test(part)) return `Image name must be lowercase ("${part}").`;
    if (!PATH_COMPONENT.test(part)) {
      return `"${part}" is not a valid name part: use lowercase letters and digits, separated by . _ __ or -.`;
    }
  }
  if (tag !== null && !TAG.test(tag)) {
    return `"${tag}" is not a valid tag: letters, digits, _ . - (up to 128, not starting with . or -).`;
  }
  if ((domain ? domain.length + 1 : 0) + path.length > NAME_MAX) return `Image name is longer than ${NAME_MAX} characters.`;
  return "";
}

// 1 to 39 letters, digits or single hyphens, not starting or ending with a hyphen.
const GITHUB_USER = /^(?=.{1,39}$)[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*$/;
const GITHUB_REPO = /^[A-Za-z0-9._-]{1,100}$/;
const ARCHIVE_NAME = /\.(tar|tar\.gz|tgz)$/i;

function required(value, what) {
  return value.trim() ? "" : `Enter ${what}.`;
}

/**
 * Checks the form's values for the chosen source.
 * values: {image_name, username, password, email, dockerfile, github_username,
 * github_reponame, github_tag, tar_url, file (File|null)}.
 * Returns {fieldName: message} for every field that is wrong; empty when all is well.
 */
export function checkForm(source, values) {
  const errors = {};
  const put = (field, message) => { if (message) errors[field] = message; };

  put("image_name", checkImageName(values.image_name || ""));
  // Credentials are optional (a registry may take pushes without login), but
  // one without the other is always a mistake.
  const username = (values.username || "").trim();
  const password = values.password || "";
  if (password && !username) put("username", "Enter the registry username that goes with the password.");
  if (username && !password) put("password", "Enter the registry password for this username.");
  const email = (values.email || "").trim();
  if (email && !/^[^\s@]+@[^\s@]+$/.test(email)) put("email", "Enter an email address like name@example.com, or leave it empty.");

  if (source === "dockerfile") {
    put("dockerfile", required(values.dockerfile || "", "a Dockerfile"));
  } else if (source === "github") {
    const user = (values.github_username || "").trim();
    const repo = (values.github_reponame || "").trim();
    const tag = (values.github_tag || "").trim();
    put("github_username", !user ? "Enter the GitHub user or organisation." :
      GITHUB_USER.test(user) ? "" : "A GitHub user is up to 39 letters, digits and single hyphens, not starting or ending with one.");
    put("github_reponame", !repo ? "Enter the repository name." :
      GITHUB_REPO.test(repo) && repo !== "." && repo !== ".." ? "" : "A repository name has letters, digits, . _ and -.");
    put("github_tag", !tag ? "Enter the tag to build, e.g. v1.0.0." :
      /\s|\.\.|^[-/]|[~^:?*[\\]/.test(tag) ? "That is not a valid git tag." : "");
  } else if (source === "tar_url") {
    const raw = (values.tar_url || "").trim();
    if (!raw) {
      put("tar_url", "Enter the URL of a tar or tar.gz archive.");
    } else {
      let url = null;
      try { url = new URL(raw); } catch (_) { /* reported below */ }
      if (!url || !/^https?:$/.test(url.protocol)) put("tar_url", "Enter a full http:// or https:// URL.");
    }
  } else if (source === "upload") {
    const file = values.file;
    if (!file) put("upload_file", "Choose an archive to upload.");
    else if (!ARCHIVE_NAME.test(file.name)) put("upload_file", "Choose a .tar, .tar.gz or .tgz archive.");
    else if (file.size === 0) put("upload_file", "That file is empty.");
  }
  return errors;
}
