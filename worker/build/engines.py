"""Choosing a job's build engine (classic or BuildKit), before anything is built.

:func:`choose_engine` reads the job's Dockerfile (``Dockerfile`` at the root, or
the ``dockerfile_path`` option) from the sanitized context, lists
its BuildKit-only lines (:mod:`worker.build.dockerfile_features`) and decides:

- the job asked for an engine (``engine`` field, checked by the API against
  the allowed ones): that one, except that ``classic`` with BuildKit syntax
  fails at once, naming the line;
- otherwise BuildKit syntax, secrets or an SSH key pick ``buildkit`` when the
  deployment allows it, and fail the job before building when it does not
  (the reason names the line and says the deployment does not allow BuildKit);
- otherwise the deployment's default engine.

Syntax this host's BuildKit cannot build (heredocs, ``COPY --link``: Dockerfile
frontend 1.4+, while Docker 20.10's built-in frontend is 1.2 and ``# syntax=``
frontends are not pulled) fails with that said, instead of BuildKit's
"unknown instruction".  :func:`apply_dockerfile` puts the rewritten (BuildKit-
ready or owner-scoped) Dockerfile into the context by appending it to the tar
under the same path (a later member wins).
"""
from __future__ import annotations

import dataclasses
import logging
import tarfile
from typing import BinaryIO, Callable

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.settings import Settings
from worker.build.dockerfile_features import Feature, find_features
from chalicelib.domain.archive_format import DOCKERFILE, add_dockerfile

log = logging.getLogger(__name__)

CLASSIC = "classic"
BUILDKIT = "buildkit"
MAX_DOCKERFILE_SCAN_BYTES = 8 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class EngineChoice:
    """The engine a job builds with, why, and the Dockerfile text when it was read."""

    engine: str
    why: str
    dockerfile: str | None
    features: tuple[Feature, ...] = ()
    dockerfile_path: str = DOCKERFILE  # where in the context the Dockerfile was found


def owner_of(job: object) -> str:
    """The job's owner, whose namespace its BuildKit cache mounts live in ("anonymous" until jobs have owners)."""
    owner = getattr(job, "owner", None)
    return str(owner) if owner else "anonymous"


def _normal(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.rstrip("/")


def find_dockerfile(context: BinaryIO, path: str = DOCKERFILE) -> tuple[str, str | None]:
    """Where the Dockerfile is in the context tar and its text (links followed; None if absent or too large).

    ``path`` is the job's ``dockerfile_path`` (relative to the context root); for the default ``Dockerfile``
    a lowercase ``dockerfile`` is used when there is no ``Dockerfile``, as Docker does. The file position of
    ``context`` is restored.
    """
    wanted = _normal(path) or DOCKERFILE
    start = context.tell()
    try:
        with tarfile.open(fileobj=context, mode="r:") as tar:
            found: dict[str, tarfile.TarInfo] = {}
            for candidate in tar:
                name = _normal(candidate.name)
                if name == wanted or (wanted == DOCKERFILE and name == "dockerfile"):
                    found[name] = candidate  # the last member of a name wins, as when Docker extracts
            name = wanted if wanted in found else next(iter(found), wanted)
            member = found.get(name)
            if member is None:
                return wanted, None
            handle = tar.extractfile(member)
            if handle is None:
                return name, None
            data = handle.read(MAX_DOCKERFILE_SCAN_BYTES + 1)
            if len(data) > MAX_DOCKERFILE_SCAN_BYTES:
                return name, None
            return name, data.decode("utf-8", errors="replace")
    except (tarfile.TarError, KeyError):
        return wanted, None
    finally:
        context.seek(start)


def read_dockerfile(context: BinaryIO, path: str = DOCKERFILE) -> str | None:
    """The text of the context's Dockerfile at ``path`` (see :func:`find_dockerfile`); None if absent or too large."""
    return find_dockerfile(context, path)[1]


def apply_dockerfile(context: BinaryIO, text: str, path: str = DOCKERFILE) -> None:
    """Append the Dockerfile ``path`` with ``text`` to the (uncompressed) context tar; it replaces the earlier one."""
    start = context.tell()
    context.seek(0)
    with tarfile.open(fileobj=context, mode="a", format=tarfile.PAX_FORMAT) as tar:
        add_dockerfile(tar, text, _normal(path) or DOCKERFILE)
    context.flush()
    context.seek(start)


def _not_here(feature: Feature) -> BuildFailed:
    return BuildFailed(
        f"the Dockerfile's {feature.describe()} needs a newer Dockerfile frontend (1.4+) than this build host's "
        "BuildKit has (Docker 20.10's built-in frontend; `# syntax=` frontends are not pulled here); "
        "rewrite that line without it"
    )


def choose_engine(
    requested: str,
    context: BinaryIO,
    settings: Settings,
    *,
    needs_buildkit_for: str = "",
    modern_frontend: Callable[[], bool] = lambda: False,
    dockerfile_path: str = DOCKERFILE,
) -> EngineChoice:
    """Pick the job's engine (see the module doc); fails with :class:`BuildFailed` before anything is built.

    ``needs_buildkit_for`` names job options only BuildKit can honour (e.g. "secrets"); ``modern_frontend()``
    (asked only when needed) is true where the daemon's BuildKit has a Dockerfile frontend 1.4 or newer (Docker 23+).
    """
    allowed = settings.allowed_engines
    if requested and requested not in allowed:  # the API checks this; an old message or a changed setting
        raise BuildFailed(f"the {requested} engine is not allowed by this deployment (allowed: {', '.join(allowed)})")
    path, text = find_dockerfile(context, dockerfile_path)
    features = tuple(f for f in find_features(text) if f.required) if text is not None else ()
    if requested == CLASSIC:
        if features:
            raise BuildFailed(
                f"the Dockerfile's {features[0].describe()} needs BuildKit, but the job asked for the classic engine; "
                "ask for engine buildkit (or none)"
            )
        if needs_buildkit_for:
            raise BuildFailed(f"{needs_buildkit_for} need the buildkit engine, but the job asked for the classic engine")
        return EngineChoice(CLASSIC, "requested", text, (), path)
    if requested == BUILDKIT or features or needs_buildkit_for:
        if BUILDKIT not in allowed:
            what = f"the Dockerfile's {features[0].describe()}" if features else needs_buildkit_for
            raise BuildFailed(
                f"{what} needs BuildKit, and this deployment does not allow BuildKit builds "
                f"(allowed engines: {', '.join(allowed)}); build it where BuildKit is allowed or remove that line"
            )
        modern = [feature for feature in features if feature.modern]
        if modern and not modern_frontend():
            raise _not_here(modern[0])
        if requested == BUILDKIT:
            why = "requested"
        elif features:
            why = f"the Dockerfile uses BuildKit syntax: {features[0].describe()}"
        else:
            why = f"the job has {needs_buildkit_for}"
        return EngineChoice(BUILDKIT, why, text, features, path)
    return EngineChoice(settings.default_engine, "the deployment's default", text, features, path)
