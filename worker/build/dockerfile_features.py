"""Reading a Dockerfile for BuildKit-only syntax, and rewriting it for a BuildKit build.

:func:`find_features` lists the lines that need BuildKit (``RUN --mount``,
``# syntax=``, ``COPY/ADD --chmod``, ``COPY/ADD --link``, heredocs) so the
worker can pick the engine, or refuse before building with the line named.
:func:`prepare_for_buildkit` rewrites what a BuildKit build here must not see
as written: ``# syntax=`` directives are removed (a frontend image would be
pulled from a registry this host may not reach, and would run code the
operator did not install), and every ``type=cache`` mount gets an ``id`` under
the job owner's namespace (``id=<owner>/<id>``), so one owner's cache never
feeds another owner's build.

This is a line scanner for the parts of the Dockerfile grammar that matter
here (parser directives, the escape character, comments, continuation lines,
instruction flags, heredoc bodies); it is not a Dockerfile parser, and it errs
on the side of "not a BuildKit feature" so that a Dockerfile the classic
builder accepted is never refused.  A ``--mount`` value it cannot rewrite with
certainty (quotes, variables, a value continued on the next line) is refused:
BuildKit would read such a value and its unprefixed id would reach another
owner's cache.

Every ``RUN`` also gets the owner's *scope mount* (:func:`scope_mount`): a cache
mount whose id is under the owner's namespace.  BuildKit keys a ``RUN`` step's
cache on its mounts, so no ``RUN`` layer one owner built is ever reused for
another owner (the layer-cache counterpart of the cache-mount ids).
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import re

_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)(\s|$)")
_FLAG = re.compile(r"(?<=\s)--([a-z][a-z-]*)(?:=(\S*))?")
_HEREDOC = re.compile(r"<<(-?)([\"']?)([A-Za-z_][A-Za-z0-9_]*)\2")
_SAFE_OWNER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,127}")
_PLAIN_MOUNT = re.compile(r"[A-Za-z0-9_=,./@:+~%-]*")
SCOPE_MOUNT_TARGET = "/dev/.boatyard-scope"  # under /dev: the container's tmpfs, so nothing of it lands in a layer


class DockerfileRefused(ValueError):
    """A Dockerfile line this service will not build as written (the message names the line)."""


@dataclasses.dataclass(frozen=True)
class Feature:
    """One use of BuildKit-only syntax."""

    line: int  # 1-based line number in the Dockerfile
    name: str  # e.g. "RUN --mount"
    modern: bool = False  # needs a Dockerfile frontend newer than Docker 20.10's built-in one (1.2)
    required: bool = True  # False: the classic builder copes (it reads a `# syntax=` line as a comment)

    def describe(self) -> str:
        """``line 3 (RUN --mount)``."""
        return f"line {self.line} ({self.name})"


@dataclasses.dataclass
class _Instruction:
    keyword: str
    first_line: int  # 0-based index of the instruction's first line
    lines: list[int]  # 0-based indexes of the physical lines that hold its text (comments excluded)


def _directives(lines: list[str]) -> tuple[dict[str, tuple[int, str]], int]:
    """Parser directives at the top: {name: (index, value)}, and the index of the first line after them."""
    found: dict[str, tuple[int, str]] = {}
    for index, line in enumerate(lines):
        match = _DIRECTIVE.match(line.strip())
        if not match or match.group(1).lower() in found:
            return found, index
        found[match.group(1).lower()] = (index, match.group(2))
    return found, len(lines)


def _instructions(lines: list[str], start: int, escape: str) -> list[_Instruction]:
    """Group physical lines into instructions (continuations joined, comments and heredoc bodies skipped)."""
    result: list[_Instruction] = []
    index = start
    while index < len(lines):
        line = lines[index]
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            index += 1
            continue
        match = _INSTRUCTION.match(line)
        instruction = _Instruction(match.group(1).upper() if match else "", index, [index])
        while line.rstrip().endswith(escape) and index + 1 < len(lines):
            index += 1
            line = lines[index]
            if line.strip().startswith("#"):  # comment lines inside a continuation are dropped by Docker
                line = escape
                continue
            instruction.lines.append(index)
        index += 1
        if instruction.keyword in ("RUN", "COPY", "ADD"):
            index = _skip_heredocs(lines, instruction, index)
        result.append(instruction)
    return result


def _skip_heredocs(lines: list[str], instruction: _Instruction, index: int) -> int:
    """If the instruction opens heredocs whose terminators follow, mark it and return the index after them."""
    text = " ".join(lines[i] for i in instruction.lines)
    words = [(m.group(1) == "-", m.group(3)) for m in _HEREDOC.finditer(text)]
    if not words:
        return index
    probe = index
    for strip_tabs, word in words:
        while probe < len(lines):
            candidate = lines[probe].lstrip("\t") if strip_tabs else lines[probe]
            probe += 1
            if candidate.rstrip("\r") == word:
                break
        else:
            return index  # no terminator: not a heredoc (the classic parser sees an ordinary line)
    instruction.keyword += "<<"  # marks "has heredocs"
    return probe


def _flags(lines: list[str], instruction: _Instruction) -> list[tuple[int, re.Match[str]]]:
    """The ``--flag[=value]`` tokens before an instruction's arguments, with their line indexes."""
    found: list[tuple[int, re.Match[str]]] = []
    for position, index in enumerate(instruction.lines):
        line = lines[index]
        head = _INSTRUCTION.match(line) if position == 0 else None
        offset = head.end() - 1 if head else 0
        text = " " + line[offset:] if position else line[offset:]
        cursor = 0
        for match in _FLAG.finditer(text):
            between = text[cursor : match.start()].strip().rstrip("\\`").strip()
            if between:  # an argument came first: no more flags
                return found
            found.append((index, match))
            cursor = match.end()
        if text[cursor:].strip().rstrip("\\`").strip():
            return found
    return found


def _scan(text: str) -> tuple[list[str], dict[str, tuple[int, str]], list[_Instruction]]:
    lines = text.split("\n")
    directives, start = _directives(lines)
    escape = directives.get("escape", (0, "\\"))[1][:1] or "\\"
    return lines, directives, _instructions(lines, start, escape)


def instructions_of(text: str) -> tuple[list[str], list[tuple[str, list[int]]]]:
    """The physical lines of ``text`` and its instructions as (keyword, 0-based line indexes), in order."""
    lines, _, found = _scan(text)
    return lines, [(instruction.keyword.rstrip("<"), list(instruction.lines)) for instruction in found]


def find_features(text: str) -> list[Feature]:
    """Every line of ``text`` that needs BuildKit, in order."""
    lines, directives, instructions = _scan(text)
    features: list[Feature] = []
    if "syntax" in directives:
        features.append(Feature(directives["syntax"][0] + 1, "# syntax= directive", required=False))
    for instruction in instructions:
        keyword = instruction.keyword.rstrip("<")
        if instruction.keyword.endswith("<<"):
            features.append(Feature(instruction.first_line + 1, f"{keyword} heredoc", modern=True))
        if keyword not in ("RUN", "COPY", "ADD"):
            continue
        for index, match in _flags(lines, instruction):
            flag = match.group(1)
            if keyword == "RUN" and flag in ("mount", "network", "security"):
                features.append(Feature(index + 1, f"RUN --{flag}", modern=flag != "mount"))
            elif keyword in ("COPY", "ADD") and flag in ("chmod", "link"):
                features.append(Feature(index + 1, f"{keyword} --{flag}", modern=flag == "link"))
    return sorted(set(features), key=lambda f: (f.line, f.name))


def cache_namespace(owner: str) -> str:
    """The prefix of an owner's cache mount ids: the owner name when it is plain, else a hash of it."""
    if _SAFE_OWNER.fullmatch(owner):
        return owner
    return "~" + hashlib.sha256(owner.encode("utf-8")).hexdigest()[:32]  # "~" never starts a plain name


def secret_prefix(owner: str) -> str:
    """The prefix of an owner's secret and SSH ids (``s<hash>.``): safe in every CLI flag, one per owner."""
    return "s" + hashlib.sha256(owner.encode("utf-8")).hexdigest()[:16] + "."


def scope_mount(owner: str) -> str:
    """The ``--mount`` flag every RUN of a BuildKit build gets: it makes the step's cache key the owner's own.

    The id is under the owner's cache namespace, which a Dockerfile cannot name for another owner (every
    cache id it writes is prefixed with its own owner's namespace); the target is on the container's
    ``/dev`` tmpfs, so the step's layer does not change.
    """
    return f"--mount=type=cache,id={cache_namespace(owner)}/.boatyard-scope,target={SCOPE_MOUNT_TARGET}"


def _parse_mount(value: str) -> list[str] | None:
    """The comma-separated fields of a ``--mount`` value; None for anything unusual (quotes, bad CSV)."""
    if not _PLAIN_MOUNT.fullmatch(value):
        return None
    try:
        rows = list(csv.reader([value]))
    except csv.Error:
        return None
    return rows[0] if len(rows) == 1 else None


def _rewrite_mount(value: str, namespace: str, prefix: str) -> str | None:
    """A mount value with its id under the owner's namespace; None when it is not a cache, secret or ssh mount.

    Cache mounts: ``id=<namespace>/<id>`` (BuildKit's default id is the target).  Secret and SSH mounts:
    ``id=<prefix><id>`` with the target made explicit: the id is part of a step's cache key, so a step that
    read one owner's secret is never served from cache to another owner (BuildKit does not key on secret
    values).
    """
    fields = _parse_mount(value)
    if fields is None:
        return None
    pairs = [field.split("=", 1) if "=" in field else [field] for field in fields]  # [key] for a bare flag
    keys = {pair[0].strip().lower(): i for i, pair in enumerate(pairs) if len(pair) == 2}
    kind = pairs[keys["type"]][1].strip().lower() if "type" in keys else "bind"
    target_key = next((k for k in ("target", "dst", "destination") if k in keys), None)
    target = pairs[keys[target_key]][1] if target_key else ""
    if kind == "cache":
        if "id" in keys:
            pairs[keys["id"]][1] = f"{namespace}/{pairs[keys['id']][1]}"
        else:
            pairs.append(["id", f"{namespace}/{target}"])
    elif kind in ("secret", "ssh"):
        default = target.rstrip("/").rsplit("/", 1)[-1] if kind == "secret" else "default"
        original = pairs[keys["id"]][1] if "id" in keys else default
        if not original:
            return None
        if "id" in keys:
            pairs[keys["id"]][1] = prefix + original
        else:
            pairs.append(["id", prefix + original])
        if kind == "secret" and not target_key:
            pairs.append(["target", f"/run/secrets/{original}"])
    else:
        return None
    return ",".join("=".join(pair) for pair in pairs)


@dataclasses.dataclass
class Prepared:
    """A Dockerfile ready for a BuildKit build here, and what was changed (for the job's log)."""

    text: str
    notes: list[str]
    secret_prefix: str = ""  # what the build's --secret / --ssh ids must start with (see _rewrite_mount)

    @property
    def changed(self) -> bool:
        """True when the text differs from the original."""
        return bool(self.notes)


def prepare_for_buildkit(text: str, owner: str, scope: bool = True) -> Prepared:
    """Remove ``# syntax=`` directives, put every cache, secret and SSH mount under the owner's namespace and
    (``scope``) give every RUN the owner's scope mount.

    Raises :class:`DockerfileRefused` for a ``--mount`` value that cannot be rewritten with certainty.
    """
    lines, directives, instructions = _scan(text)
    notes: list[str] = []
    if "syntax" in directives:
        index, value = directives["syntax"]
        last_directive = max(i for i, _ in directives.values())
        # keep the other directives in the leading block and every later line at its line number
        del lines[index]
        lines.insert(last_directive, "")
        notes.append(
            f"line {index + 1}: ignoring `# syntax={value}`: this service builds with the Docker daemon's built-in "
            "Dockerfile frontend and does not pull frontend images"
        )
        lines, _, instructions = lines, directives, _scan("\n".join(lines))[2]
    namespace = cache_namespace(owner)
    prefix = secret_prefix(owner)
    rewritten = scoped = 0
    for instruction in instructions:
        if instruction.keyword.rstrip("<") != "RUN":
            continue
        edits: list[tuple[int, re.Match[str], str]] = []
        for index, match in _flags(lines, instruction):
            if match.group(1) == "mount":
                value = match.group(2) or ""
                if _parse_mount(value) is None:
                    raise DockerfileRefused(
                        f"line {index + 1}: this --mount value cannot be checked here ({value[:80]!r}); write it "
                        "on one line as plain key=value pairs without quotes or variables"
                    )
                new = _rewrite_mount(value, namespace, prefix)
                if new is not None:
                    edits.append((index, match, new))
        for index, match, new in reversed(edits):  # right to left keeps earlier offsets valid
            line = lines[index]
            first = instruction.lines[0] == index
            opening = _INSTRUCTION.match(line) if first else None
            shift = opening.end() - 1 if opening else -1
            start, end = match.start(2) + shift, match.end(2) + shift
            lines[index] = line[:start] + new + line[end:]
            rewritten += 1
        if scope:
            head = instruction.lines[0]
            keyword = _INSTRUCTION.match(lines[head])
            if keyword is not None:
                at = keyword.end(1)
                lines[head] = lines[head][:at] + " " + scope_mount(owner) + lines[head][at:]
                scoped += 1
    if rewritten:
        notes.append(
            f"{rewritten} cache/secret/ssh mount(s) keyed to this owner (cache id={namespace}/..., secret ids {prefix}...)"
        )
    if scoped:
        notes.append(
            f"layer cache kept to this owner: each RUN step ({scoped}) also mounts the owner's scope cache "
            f"(id={namespace}/.boatyard-scope, on {SCOPE_MOUNT_TARGET}); it is not in the image"
        )
    return Prepared("\n".join(lines), notes, prefix)
