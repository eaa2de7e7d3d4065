"""``boatyard``: build a folder with a boatyard service, follow it, exit with its outcome.

    boatyard build [PATH] -t IMAGE [-t IMAGE2] [--build-arg K=V]... [-f Dockerfile] [--target T]
                   [--no-cache] [--detach] [--cancel-on-interrupt] [--github user/repo@tag | --tar-url URL]
    boatyard status JOB | logs [-f] JOB | cancel JOB | jobs

Exit codes: 0 the build finished (or the command did what it says); 1 the build failed or was
cancelled (the reason on stderr); 2 a usage error or a request the API refused; 3 the API or the
storage could not be reached or failed; 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import re
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from boatyard import __version__, buildkit_flags, credentials, pack
from boatyard import config as configuration
from boatyard.api import ApiError, Client, RouteMissing
from boatyard.progress import ByteProgress, human_bytes
from boatyard.watch import clean, exit_code, follow, reason

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
INLINE_MAX_BYTES = 1024 * 1024
"""Archives up to this size go in the build request itself (one round trip); larger ones through the
presigned upload.  The API's inline limit is 6 MiB; a seed-compatible API without ``/uploads`` takes
up to that inline."""
SEED_INLINE_MAX_BYTES = 6 * 1024 * 1024 - 64 * 1024  # room for the Json part and the multipart framing
UPLOAD_ATTEMPTS = 3
_GITHUB = re.compile(
    r"^(?P<user>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<repo>[A-Za-z0-9._-]{1,100})@(?P<tag>[^\s@]{1,255})$"
)
_BUILD_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class UsageError(Exception):
    """The command line is wrong (exit 2)."""


# --- output -----------------------------------------------------------------------------------------------
class Output:
    """Where things go: the log on stdout (stderr with ``--output json``), messages on stderr, the JSON
    answer on stdout; ``--quiet`` keeps only the answer (the job id, or the JSON)."""

    def __init__(self, mode: str = "text", quiet: bool = False) -> None:
        self.json = mode == "json"
        self.quiet = quiet

    def log(self, text: str) -> None:
        """A piece of build log."""
        stream = sys.stderr if self.json else sys.stdout
        stream.write(text)
        stream.flush()

    def note(self, message: str) -> None:
        """A progress message (not in quiet mode)."""
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def error(self, message: str) -> None:
        """A failure, always shown."""
        print(f"boatyard: {message}", file=sys.stderr, flush=True)

    def result(self, data: dict[str, Any], text: str) -> None:
        """The command's answer: ``data`` as JSON, or ``text``."""
        if self.json:
            print(json.dumps(data, sort_keys=True), flush=True)
        elif text:
            print(text, flush=True)

    @property
    def log_writer(self) -> Callable[[str], None] | None:
        """What follows the log: None when quiet (only the status is polled)."""
        return None if self.quiet else self.log


def _summary(status: dict[str, Any], job_id: str) -> dict[str, Any]:
    """The machine-readable answer about a job (the API's status fields, cleaned of control characters)."""
    data = {k: (clean(v) if isinstance(v, str) else v) for k, v in status.items()}
    data.setdefault("JobIdentifier", job_id)
    return data


# --- build ------------------------------------------------------------------------------------------------
def parse_build_args(items: list[str], env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``K=V`` pairs (a bare ``K`` takes ``$K``, as ``docker build`` does; unset → left out)."""
    if env is None:
        env = os.environ
    args: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not _BUILD_ARG_NAME.fullmatch(name):
            raise UsageError(f"--build-arg {item!r}: the name must be letters, digits and _")
        if not sep:
            if name not in env:
                continue
            value = env[name]
        args[name] = value
    return args


def split_tags(tags: list[str]) -> tuple[str, list[str]]:
    """The first ``-t`` is the image; the others must be the same repository: their tags are returned."""
    image = tags[0]
    repository = _repository(image)
    extra = []
    for other in tags[1:]:
        if _repository(other) != repository:
            raise UsageError(f"-t {other}: extra tags must be of the same repository as {image} ({repository})")
        extra.append(other.rsplit(":", 1)[1] if _has_tag(other) else "latest")
    return image, extra


def _has_tag(ref: str) -> bool:
    return ":" in ref.rsplit("/", 1)[-1]


def _repository(ref: str) -> str:
    ref = ref.split("@", 1)[0]
    return ref.rsplit(":", 1)[0] if _has_tag(ref) else ref


def parse_github(value: str) -> dict[str, str]:
    """``user/repo@tag`` → the API's GitHub fields."""
    found = _GITHUB.fullmatch(value.strip())
    if not found:
        raise UsageError(f"--github {value!r}: expected user/repo@tag")
    return {"github_username": found["user"], "github_reponame": found["repo"], "github_tag": found["tag"]}


def build_fields(args: argparse.Namespace, creds: credentials.RegistryCredentials) -> dict[str, Any]:
    """The build request's fields other than the source: image, credentials and build options.

    Options are sent only when given, so a plain build is exactly the seed's request.
    """
    image, extra_tags = split_tags(args.tag)
    fields: dict[str, Any] = {"image_name": image, **creds.fields()}
    build_args = parse_build_args(args.build_arg)
    if build_args:
        fields["build_args"] = build_args
    if extra_tags:
        fields["tags"] = extra_tags
    if args.target:
        fields["target"] = args.target
    if args.no_cache:
        fields["no_cache"] = True
    try:  # secret values and the key are read here and go only into the request
        fields.update(buildkit_flags.buildkit_fields(args))
    except buildkit_flags.UsageError as exc:
        raise UsageError(str(exc)) from None
    return fields


def _read_password(args: argparse.Namespace) -> str | None:
    if not args.password_stdin:
        return None
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin: nothing on standard input")
    return password


def _source(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """Which source the build uses: ("folder", {}) or ("remote", its fields)."""
    chosen = [name for name in ("github", "tar_url") if getattr(args, name)]
    if len(chosen) > 1:
        raise UsageError("give only one of --github and --tar-url")
    if chosen and args.path is not None:
        raise UsageError(f"give either a PATH or --{chosen[0].replace('_', '-')}, not both")
    if args.github:
        fields = parse_github(args.github)
    elif args.tar_url:
        if not args.tar_url.startswith(("https://", "http://")):
            raise UsageError("--tar-url must be an http(s) URL")
        fields = {"tar_url": args.tar_url}
    else:
        return "folder", {}
    if args.file:
        fields["dockerfile_path"] = args.file
    return "remote", fields


def _pack_folder(args: argparse.Namespace, out: Output, spool: Any) -> int:
    """Pack the folder into ``spool``; its size in bytes."""
    root = Path(args.path or ".")
    dockerfile_source = None
    if args.file:
        candidate = Path(args.file)
        # -f is relative to the current folder, as with docker build; it is sent as the root's Dockerfile
        dockerfile_source = candidate if candidate.is_file() else None
        if dockerfile_source is None:
            raise UsageError(f"-f {args.file}: no such file")
    out.note(f"Packing {root.resolve()} ...")
    result = pack.pack(root, spool, dockerfile_source=dockerfile_source)
    size = spool.tell()
    spool.seek(0)
    for name in result.skipped[:5]:
        out.note(f"  left out special file {clean(name)}")
    out.note(f"Packed {result.files} files, {human_bytes(result.bytes_in)} → {human_bytes(size)} gzipped")
    return size


def _submit_folder(client: Client, fields: dict[str, Any], spool: Any, size: int, out: Output, progress: bool) -> str:
    """Upload the packed context (presigned POST, or inline when small or when /uploads is missing) and submit."""
    if size <= INLINE_MAX_BYTES:
        return client.submit_archive(fields, spool, size)
    try:
        grant = client.create_upload()
    except RouteMissing:
        if size > SEED_INLINE_MAX_BYTES:
            raise ApiError(
                413,
                "",
                f"this API has no /api/v1/uploads and the context ({human_bytes(size)}) is over "
                f"its inline limit; shrink it with .dockerignore",
            ) from None
        out.note("This API has no upload endpoint; sending the context in the request")
        return client.submit_archive(fields, spool, size)
    limit = int(grant.get("MaxBytes") or 0)
    if limit and size > limit:
        raise ApiError(413, "", f"the context ({human_bytes(size)}) is over the service's limit ({human_bytes(limit)})")
    for attempt in range(1, UPLOAD_ATTEMPTS + 1):
        spool.seek(0)
        try:
            with ByteProgress("Uploading", size, enabled=progress and not out.quiet) as bar:
                client.upload(grant, spool, lambda sent: bar.update(min(sent, size)))
            break
        except ApiError as exc:  # the presigned POST stays valid: send the file again
            if attempt == UPLOAD_ATTEMPTS or 400 <= exc.status < 500:
                raise
            out.note(f"The upload failed ({exc}); trying again ({attempt + 1}/{UPLOAD_ATTEMPTS})")
            time.sleep(2 * attempt)
    return client.submit({**fields, "upload_id": grant["UploadId"]})


def _interrupted(client: Client, job_id: str | None, args: argparse.Namespace, out: Output) -> int:
    """Ctrl-C: cancel the remote build when asked to (flag, or a yes on a terminal); exit 130."""
    if job_id is None:
        out.error("interrupted before the build was submitted; nothing runs remotely")
        return EXIT_INTERRUPTED
    cancel = bool(getattr(args, "cancel_on_interrupt", False))
    if not cancel and sys.stdin.isatty() and sys.stderr.isatty():
        try:  # the question goes to stderr: stdout may be a file of the log
            print(f"\nCancel the remote build {job_id}? [y/N] ", end="", file=sys.stderr, flush=True)
            answer = sys.stdin.readline()
        except KeyboardInterrupt:
            answer = ""
        cancel = answer.strip().lower() in ("y", "yes")
    if cancel:
        try:
            status = client.cancel(job_id)
            out.error(f"interrupted; build {job_id} is {clean(str(status.get('Status', 'Cancelled')))}")
        except ApiError as exc:
            out.error(f"interrupted; cancelling {job_id} failed: {exc}")
    else:
        out.error(f"interrupted; build {job_id} goes on (boatyard logs -f {job_id}; boatyard cancel {job_id})")
    if out.json:
        out.result({"JobIdentifier": job_id, "Interrupted": True, "CancelRequested": cancel}, "")
    return EXIT_INTERRUPTED


def cmd_build(args: argparse.Namespace) -> int:
    """``boatyard build``."""
    out = Output(args.output, args.quiet)
    kind, source_fields = _source(args)
    password = _read_password(args)
    if not args.tag:
        raise UsageError("give the image to build and push with -t IMAGE")
    try:
        creds = credentials.resolve(args.tag[0], args.username, password)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    fields = build_fields(args, creds)
    if creds.password:
        out.note(f"Pushing as {clean(creds.username)} (credentials from {creds.source})")
    client = _client(args)
    job_id: str | None = None
    try:
        if kind == "remote":
            job_id = client.submit({**fields, **source_fields})
        else:
            with tempfile.TemporaryFile(prefix="boatyard-context-") as spool:
                size = _pack_folder(args, out, spool)
                job_id = _submit_folder(client, fields, spool, size, out, progress=True)
        out.note(f"Build {job_id} submitted")
        if args.detach:
            out.result({"JobIdentifier": job_id}, job_id)
            return EXIT_OK
        status = follow(client, job_id, out.log_writer)
        return _report_end(status, job_id, out)
    except KeyboardInterrupt:
        return _interrupted(client, job_id, args, out)
    finally:
        client.close()


def _report_end(status: dict[str, Any], job_id: str, out: Output) -> int:
    code = exit_code(status)
    if code == EXIT_OK:
        digest = status.get("ImageDigest")
        image = clean(str(status.get("ImageName", "")))
        out.note(f"Finished: {image}" + (f"@{digest}" if digest else ""))
        out.result(_summary(status, job_id), job_id if out.quiet else "")
    else:
        out.error(
            f"build {job_id} {'failed: ' + reason(status) if str(status.get('Status')).startswith('Failed') else reason(status)}"
        )
        out.result(_summary(status, job_id), "")
    return code


# --- job commands ---------------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    """``boatyard status JOB``."""
    out = Output(args.output, args.quiet)
    with _closing(_client(args)) as client:
        status = client.status(args.job)
    data = _summary(status, args.job)
    text = str(data.get("Status", ""))
    if data.get("ImageDigest"):
        text += f"  {data.get('ImageName', '')}@{data['ImageDigest']}"
    out.result(data, text)
    return EXIT_OK


def cmd_logs(args: argparse.Namespace) -> int:
    """``boatyard logs [-f] JOB``: the log so far, or (``-f``) until the job ends, with its exit code."""
    out = Output(args.output, args.quiet)
    client = _client(args)
    try:
        if args.follow:
            status = follow(client, args.job, out.log)
            return _report_end(status, args.job, out)
        cursor = "0"
        while True:
            page = client.logs(args.job, cursor)
            out.log(clean(str(page.get("Logs") or "")))
            if "Next" not in page or not page.get("Truncated") or str(page["Next"]) == cursor:
                break
            cursor = str(page["Next"])
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        client.close()


def cmd_cancel(args: argparse.Namespace) -> int:
    """``boatyard cancel JOB``."""
    out = Output(args.output, args.quiet)
    with _closing(_client(args)) as client:
        try:
            status = client.cancel(args.job)
        except ApiError as exc:
            if exc.status == 409:
                out.error(exc.message)
                return EXIT_FAILED
            raise
    out.result(_summary(status, args.job), clean(str(status.get("Status", ""))))
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    """``boatyard jobs``: the caller's recent builds (the history endpoint, where the API has it)."""
    out = Output(args.output, args.quiet)
    with _closing(_client(args)) as client:
        try:
            page = client.jobs(limit=args.limit, cursor=args.cursor, state=args.state)
        except RouteMissing:
            out.error(
                "this boatyard API has no build history (GET /api/v1/jobs); use boatyard status JOB for a job you know"
            )
            return EXIT_USAGE
    items = page.get("Jobs")
    if not isinstance(items, list):
        items = []
    rows = [_summary(item, str(item.get("JobIdentifier", ""))) for item in items if isinstance(item, dict)]
    if out.json:
        out.result({**{k: v for k, v in page.items() if k not in ("Jobs", "Items")}, "Jobs": rows}, "")
        return EXIT_OK
    for row in rows:
        print(
            f"{row.get('JobIdentifier', ''):36}  {str(row.get('Phase') or row.get('Status', '')):9}  "
            f"{str(row.get('CreatedAt', '')):25}  {row.get('ImageName', '')}"
        )
    cursor = page.get("Next") or page.get("Cursor") or page.get("NextCursor")
    if cursor:
        out.note(f"more: boatyard jobs --cursor {clean(str(cursor))}")
    return EXIT_OK


# --- plumbing ---------------------------------------------------------------------------------------------
class _closing:
    def __init__(self, client: Client) -> None:
        self.client = client

    def __enter__(self) -> Client:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def _client(args: argparse.Namespace) -> Client:
    try:
        cfg = configuration.resolve(args.api, args.insecure)
    except configuration.ConfigError as exc:
        raise UsageError(str(exc)) from None
    return Client(cfg)


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection and output")
    group.add_argument(
        "--api",
        help="the service's base URL (default: $BOATYARD_API, the config file, "
        f"or {configuration.DEFAULT_API}); the API key comes from $BOATYARD_TOKEN or the config file",
    )
    group.add_argument(
        "--insecure", action="store_true", help="allow sending the API key over plain HTTP to another host"
    )
    group.add_argument(
        "--output", "-o", choices=("text", "json"), default="text", help="json: one JSON document on stdout"
    )
    group.add_argument("--quiet", "-q", action="store_true", help="no progress or log; print only the result")
    return common


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(
        prog="boatyard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"boatyard {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    common = _common()

    build = subparsers.add_parser(
        "build",
        parents=[common],
        help="build a folder (or a GitHub tag / tarball URL) and push it",
        description="Pack PATH (honouring .dockerignore), upload it, build it remotely, follow the log.",
    )
    build.add_argument("path", nargs="?", metavar="PATH", help="the build context folder (default: .)")
    build.add_argument(
        "-t",
        "--tag",
        action="append",
        default=[],
        metavar="IMAGE",
        help="image to push, e.g. registry.example.com/team/app:1.0; again for more tags of the same repository",
    )
    build.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="K=V",
        help="a build argument (visible in the image's history: not for secrets)",
    )
    build.add_argument("-f", "--file", metavar="DOCKERFILE", help="the Dockerfile (default PATH/Dockerfile)")
    build.add_argument("--target", help="the stage of a multi-stage Dockerfile to build")
    build.add_argument("--no-cache", action="store_true", help="do not use the build cache")
    build.add_argument(
        "--engine",
        choices=buildkit_flags.ENGINES,
        help="the build engine (default: the service decides; BuildKit syntax, secrets and --ssh pick buildkit)",
    )
    build.add_argument(
        "--secret",
        action="append",
        default=[],
        metavar="id=ID,src=FILE",
        help="a build secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR "
        "(read here, sent sealed, never stored or printed; repeatable)",
    )
    build.add_argument(
        "--ssh",
        action="append",
        default=[],
        metavar="default=KEYFILE",
        help="a private key for RUN --mount=type=ssh (a deploy key without passphrase)",
    )
    build.add_argument(
        "--cache-from",
        action="append",
        default=[],
        metavar="IMAGE",
        help="an image whose BuildKit inline cache the build may reuse (repeatable)",
    )
    build.add_argument("-d", "--detach", action="store_true", help="print the job id and return once submitted")
    build.add_argument(
        "--cancel-on-interrupt", action="store_true", help="on Ctrl-C, cancel the remote build without asking"
    )
    build.add_argument(
        "--github", metavar="USER/REPO@TAG", help="build a GitHub repository at a tag instead of a folder"
    )
    build.add_argument("--tar-url", metavar="URL", help="build a tar/tar.gz at this URL instead of a folder")
    build.add_argument(
        "-u", "--username", help="registry user to push as (default: $BOATYARD_REGISTRY_USER or your Docker login)"
    )
    build.add_argument("--password-stdin", action="store_true", help="read the registry password from standard input")
    build.set_defaults(func=cmd_build)

    status = subparsers.add_parser("status", parents=[common], help="a job's status")
    status.add_argument("job", metavar="JOB")
    status.set_defaults(func=cmd_status)

    logs = subparsers.add_parser("logs", parents=[common], help="a job's log")
    logs.add_argument("job", metavar="JOB")
    logs.add_argument("-f", "--follow", action="store_true", help="follow until the job ends; exit with its outcome")
    logs.set_defaults(func=cmd_logs)

    cancel = subparsers.add_parser("cancel", parents=[common], help="cancel a queued or running job")
    cancel.add_argument("job", metavar="JOB")
    cancel.set_defaults(func=cmd_cancel)

    jobs = subparsers.add_parser("jobs", parents=[common], help="your recent builds (where the API keeps a history)")
    jobs.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    jobs.add_argument("--state", help="only jobs in this phase, e.g. failed")
    jobs.add_argument("--cursor", help="the next page (printed after a full page)")
    jobs.set_defaults(func=cmd_jobs)

    try:  # `boatyard admin` (API keys, issue 12) where its module and the service's code are present
        admin = importlib.import_module("boatyard.admin")
    except ImportError:
        admin = None
    if admin is not None:
        admin.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    with _default_sigpipe():
        return _run(args)


@contextlib.contextmanager
def _default_sigpipe() -> Iterator[None]:
    """SIGPIPE's default action while the command runs (`boatyard logs JOB | head` ends quietly).

    The caller's handler comes back afterwards: a process that calls :func:`main` and goes
    on (a test, a script embedding the CLI) must not be killed by its next write to a
    closed pipe.
    """
    if not hasattr(signal, "SIGPIPE") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        yield
    finally:
        signal.signal(signal.SIGPIPE, previous)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"boatyard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except pack.PackError as exc:
        print(f"boatyard: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ApiError as exc:
        print(f"boatyard: {clean(str(exc))}", file=sys.stderr)
        return EXIT_USAGE if 400 <= exc.status < 500 else EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
