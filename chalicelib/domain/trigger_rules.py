"""What a trigger builds: ref regexes, path globs, image-name templates, and the plan for one pushed ref.

Pure rules, no I/O.  A trigger's user-written regexes are compiled by
:func:`safe_regex` (length cap, no backreferences or lookarounds, no repeated
group holding an open-ended repetition or an alternation: the shapes that
backtrack exponentially; at most 4 open-ended repetitions, so polynomial
backtracking stays bounded) and matched with ``fullmatch`` against ref names of at most 255
characters.  Path filters are globs (:func:`glob_regex`): ``*`` and ``?`` stay
inside one folder, ``**`` crosses folders.  An image template holds
``{branch}``, ``{tag}``, ``{short_sha}`` and ``{ref}``; values are made safe for
a Docker tag before they are put in (:func:`tag_safe`), and the result must
still parse as a pushable image reference.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import string
import sys
from collections.abc import Iterable
from typing import Any

from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.image_ref import InvalidReference, parse_image_ref

# the regex parser behind `re` (its module names changed in Python 3.11)
_NEW_RE = sys.version_info >= (3, 11)
_sre_parse: Any = importlib.import_module("re._parser" if _NEW_RE else "sre_parse")
_sre_constants: Any = importlib.import_module("re._constants" if _NEW_RE else "sre_constants")

MAX_REGEX_CHARS = 200
MAX_OPEN_REPEATS = 4
"""Open-ended repetitions in one ref pattern: with a 255-character ref, 4 in a row cost about a second at worst."""
MAX_PATH_FILTERS = 20
MAX_GLOB_CHARS = 200
MAX_TEMPLATE_CHARS = 255
PLACEHOLDERS = ("branch", "tag", "short_sha", "ref")
SHORT_SHA_CHARS = 7
ZERO_SHA = "0" * 40

BRANCH = "branch"
TAG = "tag"

_REPEATS = {_sre_constants.MAX_REPEAT, _sre_constants.MIN_REPEAT, getattr(_sre_constants, "POSSESSIVE_REPEAT", None)}
_REFUSED = {
    _sre_constants.GROUPREF: "backreferences",
    _sre_constants.ASSERT: "lookarounds",
    _sre_constants.ASSERT_NOT: "lookarounds",
    getattr(_sre_constants, "GROUPREF_EXISTS", None): "conditional groups",
}
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
SAMPLE = {"branch": "main", "tag": "v1.2.3", "short_sha": "0123abc", "ref": "main"}
"""The values a template is tried with when a trigger is created."""


# ------------------------------------------------------------------ regexes


def _walk(parsed: Any, inside_repeat: bool, counted: list[int]) -> str | None:
    """Why the parsed pattern may backtrack without bound (None when it is safe); counts open repetitions."""
    for op, arg in parsed:
        reason = _walk_node(op, arg, inside_repeat, counted)
        if reason:
            return reason
    return None


def _walk_node(op: Any, arg: Any, inside_repeat: bool, counted: list[int]) -> str | None:
    """:func:`_walk` for one node of the parsed pattern and what it holds."""
    if op in _REFUSED:
        return f"{_REFUSED[op]} are not allowed"
    if op in _REPEATS:
        return _walk_repeat(arg, inside_repeat, counted)
    if op == _sre_constants.SUBPATTERN:
        return _walk(arg[-1], inside_repeat, counted)
    if op == _sre_constants.BRANCH:
        return _walk_alternation(arg[1], inside_repeat, counted)
    if op == getattr(_sre_constants, "ATOMIC_GROUP", None):
        return _walk(arg, inside_repeat, counted)
    return None


def _walk_repeat(arg: Any, inside_repeat: bool, counted: list[int]) -> str | None:
    """A repetition: refused inside another one when open-ended; counted; then what it repeats."""
    low, high, sub = arg
    open_ended = high > 1 and high != low  # '*', '+', '{1,9}': '?' and '{3}' are bounded by themselves
    if inside_repeat and open_ended:
        return "a repeated group may not hold another repetition (e.g. (a+)+); write it without nesting"
    counted[0] += open_ended
    return _walk(sub, inside_repeat or high > 1, counted)


def _walk_alternation(branches: Any, inside_repeat: bool, counted: list[int]) -> str | None:
    """An alternation: refused inside a repetition; otherwise each of its branches."""
    if inside_repeat:
        return "a repeated group may not hold an alternation (e.g. (a|ab)*); write it without nesting"
    for branch in branches:
        reason = _walk(branch, inside_repeat, counted)
        if reason:
            return reason
    return None


def safe_regex(text: Any, field: str) -> re.Pattern[str]:
    """Compile a user's ref regex, refusing what could backtrack exponentially; 400 naming ``field``."""
    if not isinstance(text, str) or not text:
        raise InvalidRequest("must be a non-empty regular expression string", field=field)
    if len(text) > MAX_REGEX_CHARS:
        raise InvalidRequest(f"must be at most {MAX_REGEX_CHARS} characters", field=field)
    try:
        parsed = _sre_parse.parse(text, re.ASCII)
        compiled = re.compile(text, re.ASCII)
    except (re.error, RecursionError, OverflowError) as exc:
        raise InvalidRequest(f"is not a valid regular expression ({exc})", field=field) from None
    counted = [0]
    reason = _walk(parsed, False, counted)
    if not reason and counted[0] > MAX_OPEN_REPEATS:
        reason = f"at most {MAX_OPEN_REPEATS} open-ended repetitions ('*', '+', '{{m,n}}') are allowed"
    if reason:
        raise InvalidRequest(f"{reason} (patterns are matched against whole ref names)", field=field)
    return compiled


# ------------------------------------------------------------------ path globs


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over repository paths: ``*``/``?`` within one folder, ``**`` across folders, ``[..]`` a class."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**/", i):
            out.append("(?:[^/]*/)*")  # zero or more folders
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 2)
            if end == -1:
                out.append(re.escape(c))
            else:
                body = pattern[i + 1 : end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                i = end
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out), re.ASCII | re.DOTALL)


def validate_path_filters(value: Any) -> tuple[str, ...]:
    """``paths``: up to 20 globs relative to the repository root; 400 naming the field."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_PATH_FILTERS:
        raise InvalidRequest(
            f"must be a list of at most {MAX_PATH_FILTERS} globs such as 'src/**' or '*.py'", field="paths"
        )
    for glob in value:
        if (
            not isinstance(glob, str)
            or not glob
            or len(glob) > MAX_GLOB_CHARS
            or glob.startswith("/")
            or any(ord(ch) < 0x20 or ch == "\x7f" for ch in glob)
        ):
            raise InvalidRequest(
                f"each glob must be 1 to {MAX_GLOB_CHARS} characters, relative to the repository root, "
                "without control characters",
                field="paths",
            )
        try:
            glob_regex(glob)
        except re.error as exc:
            raise InvalidRequest(f"{glob[:100]!r} is not a valid glob ({exc})", field="paths") from None
    return tuple(value)


def paths_match(globs: Iterable[str], changed: Iterable[str]) -> bool:
    """True when any changed path matches any glob."""
    compiled = [glob_regex(g) for g in globs]
    return any(rx.fullmatch(path) for path in changed for rx in compiled)


# ------------------------------------------------------------------ templates


def tag_safe(value: str) -> str:
    """A ref name or sha made safe for a Docker tag: other characters become '-', at most 128, no leading '.' or '-'."""
    safe = _TAG_UNSAFE.sub("-", value).lstrip(".-")
    return safe[:128] or "_"


def placeholders_of(template: str, field: str) -> set[str]:
    """The placeholders a template uses; 400 for an unknown one or a stray brace."""
    try:
        names = {name for _, name, spec, conv in string.Formatter().parse(template) if name is not None}
    except ValueError:
        raise InvalidRequest("has an unbalanced '{' or '}'", field=field) from None
    unknown = sorted(n for n in names if n not in PLACEHOLDERS)
    if unknown:
        raise InvalidRequest(
            f"uses {{{unknown[0][:40]}}}, which is not a placeholder (use {', '.join('{' + p + '}' for p in PLACEHOLDERS)})",
            field=field,
        )
    for _, name, spec, conv in string.Formatter().parse(template):
        if name is not None and (spec or conv):
            raise InvalidRequest(
                "placeholders take no format spec or conversion ('{tag}', not '{tag:...}')", field=field
            )
    return names


def render(template: str, values: dict[str, str]) -> str:
    """The template with every placeholder replaced by its tag-safe value."""
    return template.format(**{name: tag_safe(values.get(name, "")) for name in PLACEHOLDERS})


def validate_image_template(value: Any, field: str = "image_template") -> str:
    """The image template: a pushable reference once rendered with sample values; not both {branch} and {tag}."""
    if not isinstance(value, str) or not value:
        raise InvalidRequest("is required: the image to push, e.g. registry.example.com/team/app:{tag}", field=field)
    if len(value) > MAX_TEMPLATE_CHARS:
        raise InvalidRequest(f"must be at most {MAX_TEMPLATE_CHARS} characters", field=field)
    names = placeholders_of(value, field)
    if {"branch", "tag"} <= names:
        raise InvalidRequest(
            "uses both {branch} and {tag}, but a push is to a branch or a tag, never both; use {ref}", field=field
        )
    sample = render(value, SAMPLE)
    try:
        parse_image_ref(sample)
    except InvalidReference as exc:
        raise InvalidRequest(
            f"renders as {sample[:300]!r}, which is not a valid image reference: {exc}", field=field
        ) from None
    return value


def validate_default_branch_tag(value: Any) -> str:
    """``default_branch_tag``: an extra tag (e.g. ``latest``, or ``:latest``) pushed for the default branch."""
    if value is None or value == "":
        return ""
    if not isinstance(value, str) or len(value) > 140:
        raise InvalidRequest("must be a tag such as 'latest'", field="default_branch_tag")
    text = value.removeprefix(":")
    names = placeholders_of(text, "default_branch_tag")
    if "tag" in names:
        raise InvalidRequest("is for branch pushes, so it cannot use {tag}", field="default_branch_tag")
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", render(text, SAMPLE), re.ASCII):
        raise InvalidRequest(
            "must render as a tag: 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'",
            field="default_branch_tag",
        )
    return text


# ------------------------------------------------------------------ events and plans


@dataclasses.dataclass(frozen=True)
class RefChange:
    """One ref a push moved: a branch or tag, its new commit, and what the payload says about it."""

    kind: str  # BRANCH or TAG
    name: str  # the branch or tag name, without refs/heads/ or refs/tags/
    sha: str  # the new commit ("" or all zeros when the ref was deleted)
    message: str = ""  # the head commit's message
    changed_paths: tuple[str, ...] | None = None  # None: the payload does not list the changed files

    @property
    def ref(self) -> str:
        """The full ref (``refs/heads/main``, ``refs/tags/v1``)."""
        return f"refs/{'heads' if self.kind == BRANCH else 'tags'}/{self.name}"

    @property
    def deleted(self) -> bool:
        """True when the push removed the ref (nothing to build)."""
        return not self.sha or self.sha == ZERO_SHA


@dataclasses.dataclass(frozen=True)
class TriggerRules:
    """The parts of a trigger that decide what a push builds."""

    branch_regex: str = ""
    tag_regex: str = ""
    paths: tuple[str, ...] = ()
    image_template: str = ""
    default_branch_tag: str = ""
    default_branch: str = ""


@dataclasses.dataclass(frozen=True)
class Decision:
    """What one ref change gives: an image to build (with extra tags), or the reason it builds nothing."""

    change: RefChange
    image_name: str = ""
    extra_tags: tuple[str, ...] = ()
    skipped: str = ""


SKIP_MARKERS = ("[skip build]", "[ci skip]", "[skip ci]", "[build skip]")


def decide(rules: TriggerRules, change: RefChange, payload_default_branch: str = "") -> Decision:
    """Whether and what ``change`` builds under ``rules`` (pure: every check the hook makes on one ref)."""
    if change.deleted:
        return Decision(change, skipped="the push deleted the ref")
    pattern = rules.branch_regex if change.kind == BRANCH else rules.tag_regex
    if not pattern:
        return Decision(change, skipped=f"this trigger builds no {'branches' if change.kind == BRANCH else 'tags'}")
    if len(change.name) > 255 or not re.compile(pattern, re.ASCII).fullmatch(change.name):
        return Decision(change, skipped=f"{change.kind} {change.name[:100]!r} does not match {pattern!r}")
    lowered = change.message.lower()
    marker = next((m for m in SKIP_MARKERS if m in lowered), None)
    if marker:
        return Decision(change, skipped=f"the head commit's message says {marker}")
    filtered = rules.paths and change.kind == BRANCH and change.changed_paths is not None
    if filtered and not paths_match(rules.paths, change.changed_paths or ()):
        return Decision(change, skipped="no changed file matches the trigger's paths")
    names = placeholders_of(rules.image_template, "image_template")
    if change.kind == BRANCH and "tag" in names:
        return Decision(change, skipped="the image template uses {tag}, and this push is to a branch")
    if change.kind == TAG and "branch" in names:
        return Decision(change, skipped="the image template uses {branch}, and this push is a tag")
    values = {
        "branch": change.name if change.kind == BRANCH else "",
        "tag": change.name if change.kind == TAG else "",
        "short_sha": change.sha[:SHORT_SHA_CHARS],
        "ref": change.name,
    }
    image = render(rules.image_template, values)
    try:
        parsed = parse_image_ref(image)
    except InvalidReference as exc:
        return Decision(
            change, skipped=f"the image template renders as {image[:200]!r}, not a valid image reference: {exc}"
        )
    extra: tuple[str, ...] = ()
    default = rules.default_branch or payload_default_branch
    if rules.default_branch_tag and change.kind == BRANCH and default and change.name == default:
        tag = render(rules.default_branch_tag, values)
        if tag != parsed.tag:  # (``latest`` when the name has no tag)
            extra = (tag,)
    return Decision(change, image_name=image, extra_tags=extra)
