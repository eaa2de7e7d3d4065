"""Field patterns shared by the validators and ``openapi.yaml`` (a test keeps the two identical).

Each pattern is written so Python's ``re`` and ECMA-262 read it the same way:
no ``\\w``/``\\d``/``\\s`` (Unicode-dependent in Python), and the end is
``(?![\\s\\S])`` rather than ``$``, which in Python also matches before a
trailing newline.  Use :func:`matches`.
"""

from __future__ import annotations

import functools
import re

END = r"(?![\s\S])"

# The pieces of Docker's reference grammar; chalicelib.domain.image_ref compiles these same strings.
DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_PORT = r":[0-9]+"
_DOMAIN = (
    rf"(?:{DOMAIN_COMPONENT}(?:\.{DOMAIN_COMPONENT})+(?:{_PORT})?|{DOMAIN_COMPONENT}{_PORT}|localhost"
    rf"|\[[a-fA-F0-9:]*:[a-fA-F0-9:]*\](?:{_PORT})?|\[[a-fA-F0-9:]+\]{_PORT})"
)
PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_NO_DOT = r"[a-z0-9]+(?:(?:_|__|-+)[a-z0-9]+)*"
TAG = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}"

_UPPERCASE_DOMAIN = rf"(?=[a-zA-Z0-9-]*[A-Z]){DOMAIN_COMPONENT}"  # Docker: an uppercase first part is a registry

IMAGE_NAME = (
    rf"^(?![a-f0-9]{{64}}{END})"
    rf"(?:{_DOMAIN}(?:/{PATH_COMPONENT})+|{_UPPERCASE_DOMAIN}(?:/{PATH_COMPONENT})+"
    rf"|{_PATH_NO_DOT}(?:/{PATH_COMPONENT})+|{PATH_COMPONENT})(?::{TAG})?{END}"
)
"""A pushable image reference: ``[registry[:port]/]path[:tag]`` (no digest, not an image ID); see chalicelib.domain.image_ref."""

GITHUB_USERNAME = rf"^[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*{END}"
"""A GitHub user or organisation (with a length of at most 39)."""

GITHUB_REPONAME = rf"^[A-Za-z0-9._-]{{1,100}}{END}"
"""A GitHub repository name (and not ``.`` or ``..``)."""

GIT_REF = (
    r"^(?!.*\.\.)(?!.*@\{)(?!.*//)(?![/-])(?!@" + END + r")(?!(?:.*/)?\.)"
    r"(?!.*\.lock(?:/|" + END + r"))(?!.*[/.]" + END + r")"
    r"[^\x00-\x20\x7f~^:?*\[\\]{1,255}" + END
)
"""A tag or branch name per ``git check-ref-format``."""

_PORT_NUMBER = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
TAR_URL = rf"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9._-]+(?::{_PORT_NUMBER})?(?:[/?#][\x21-\x7e]*)?{END}"
"""An http(s) URL in plain ASCII with a host name and no credentials (percent-encode anything else)."""

NO_CONTROL_CHARS = rf"^[^\x00-\x1f\x7f-\x9f]*{END}"
"""Text without control characters."""

UUID = rf"^[0-9a-fA-F]{{8}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{4}}-[0-9a-fA-F]{{12}}{END}"
"""A UUID in its canonical 8-4-4-4-12 hex form, either case."""

BUILD_ARG_NAME = rf"^[A-Za-z_][A-Za-z0-9_]{{0,127}}{END}"
"""A Dockerfile ``ARG`` name."""

RELATIVE_PATH = (
    r"^(?!/)(?!.*//)(?!.*/" + END + r")(?!(?:.*/)?\.\.?(?:/|" + END + r"))"
    r"[^\x00-\x1f\x7f-\x9f\\]{1,255}" + END
)
"""A path inside the build context: relative, no ``.``/``..``/empty components, no backslash, no trailing ``/``."""

STAGE_NAME = rf"^[A-Za-z][A-Za-z0-9_.-]{{0,127}}{END}"
"""A multi-stage build's stage name (``FROM ... AS name``)."""

LABEL_KEY = rf"^[A-Za-z0-9][A-Za-z0-9._/-]{{0,254}}{END}"
"""An image label key (reverse-DNS style)."""

IMAGE_TAG = rf"^{TAG}{END}"
"""A Docker tag (the part after ``:``)."""

MEMORY = rf"^[1-9][0-9]{{0,14}}[bkmgBKMG]?{END}"
"""A memory size as ``docker build --memory`` takes it: bytes, or a number with b, k, m or g."""

REGISTRY_HOST = rf"^{_DOMAIN}{END}"
"""A registry host as the first part of an image name: ``host.domain[:port]``, ``host:port``, ``localhost``, ``[v6]:port``."""

TOKEN = rf"^[\x21-\x7e]{{1,255}}{END}"
"""An access token: 1 to 255 printable ASCII characters, no spaces."""

GITLAB_PROJECT = (
    rf"^(?:[0-9]{{1,20}}|[A-Za-z0-9_][A-Za-z0-9_.-]{{0,254}}(?:/[A-Za-z0-9_][A-Za-z0-9_.-]{{0,254}}){{1,20}}){END}"
)
"""A GitLab project: its numeric id or its full path (``group/subgroup/project``)."""

BITBUCKET_NAME = rf"^[A-Za-z0-9_][A-Za-z0-9_.-]{{0,99}}{END}"
"""A Bitbucket workspace, repository slug or username."""

ALL: dict[str, str] = {
    "IMAGE_NAME": IMAGE_NAME,
    "GITHUB_USERNAME": GITHUB_USERNAME,
    "GITHUB_REPONAME": GITHUB_REPONAME,
    "GIT_REF": GIT_REF,
    "TAR_URL": TAR_URL,
    "NO_CONTROL_CHARS": NO_CONTROL_CHARS,
    "UUID": UUID,
    "BUILD_ARG_NAME": BUILD_ARG_NAME,
    "RELATIVE_PATH": RELATIVE_PATH,
    "STAGE_NAME": STAGE_NAME,
    "LABEL_KEY": LABEL_KEY,
    "IMAGE_TAG": IMAGE_TAG,
    "MEMORY": MEMORY,
    "REGISTRY_HOST": REGISTRY_HOST,
    "TOKEN": TOKEN,
    "GITLAB_PROJECT": GITLAB_PROJECT,
    "BITBUCKET_NAME": BITBUCKET_NAME,
}


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def matches(pattern: str, value: str) -> bool:
    """Whether ``value`` matches ``pattern`` as JSON Schema reads it (a search; the patterns are anchored)."""
    return _compiled(pattern).search(value) is not None
