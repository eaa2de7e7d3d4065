"""Build options: validation (400 naming the field), storage form, the worker's build plan, and re-rooting a context."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import tarfile

import pytest

from chalicelib.api.validation import validate_build
from chalicelib.domain.build_options import BuildOptions, validate_options
from chalicelib.domain.errors import InvalidRequest
from chalicelib.domain.image_ref import parse_image_ref
from chalicelib.domain.jobs import Job, SourceKind
from chalicelib.domain.settings import load_settings
from tests.support.archives import LIMITS, OneWayStream, entries_tar
from worker.build.buildplan import OCI, plan_build
from worker.context.archive import ContextStats, InvalidContext, sanitize

SETTINGS = load_settings({})
TAR = {"image_name": "u/i", "tar_url": "https://example.com/a.tgz"}


def _options(**fields) -> BuildOptions:
    return validate_build({**TAR, **fields}, SETTINGS).options


def test_every_option_is_validated_and_kept():
    options = _options(
        build_args={"VERSION": "1.2", "_X": ""},
        dockerfile_path="docker/Dockerfile.prod",
        context_path="svc/api",
        target="runtime",
        no_cache=True,
        pull=False,
        labels={"com.example/team": "api"},
        tags=["latest", "1.2"],
        memory="512m",
        cpus=0.5,
        cache_from=["ghcr.io/o/app:cache", "u/app"],
    )
    assert options == BuildOptions(
        build_args={"VERSION": "1.2", "_X": ""},
        dockerfile_path="docker/Dockerfile.prod",
        context_path="svc/api",
        target="runtime",
        no_cache=True,
        pull=False,
        labels={"com.example/team": "api"},
        tags=("latest", "1.2"),
        memory=512 * 1024**2,
        cpus=0.5,
        cache_from=("ghcr.io/o/app:cache", "u/app"),
    )
    assert BuildOptions.from_item(options.to_item()) == options


def test_defaults_store_nothing_and_blanks_are_defaults():
    assert BuildOptions().to_item() == {}
    blank = _options(
        build_args=None,
        dockerfile_path="",
        context_path=None,
        target="",
        no_cache=None,
        pull=None,
        labels=None,
        tags=None,
        memory="",
        cpus=None,
        cache_from=None,
    )
    assert blank == BuildOptions() and blank.to_item() == {}
    assert BuildOptions.from_item({}) == BuildOptions()


@pytest.mark.parametrize(
    "memory, size", [("6m", 6 * 1024**2), ("1G", 1024**3), (7 * 1024**2, 7 * 1024**2), ("4g", 4 * 1024**3)]
)
def test_memory_sizes(memory, size):
    assert _options(memory=memory).memory == size


@pytest.mark.parametrize(
    "fields, field, words",
    [
        ({"build_args": ["A=1"]}, "build_args", "object"),
        ({"build_args": {"1A": "x"}}, "build_args", "not a valid name"),
        ({"build_args": {"A B": "x"}}, "build_args", "not a valid name"),
        ({"build_args": {"A": 1}}, "build_args", "must be a string"),
        ({"build_args": {"A": "x" * 4097}}, "build_args", "4096"),
        ({"build_args": {"A": "line\nbreak"}}, "build_args", "control"),
        ({"build_args": {f"A{i}": "" for i in range(65)}}, "build_args", "at most 64"),
        ({"dockerfile_path": "../Dockerfile"}, "dockerfile_path", "relative path"),
        ({"dockerfile_path": "/etc/passwd"}, "dockerfile_path", "relative path"),
        ({"dockerfile_path": 7}, "dockerfile_path", "string"),
        ({"context_path": "a/../../b"}, "context_path", "relative path"),
        ({"context_path": "a\\..\\b"}, "context_path", "relative path"),
        ({"context_path": "./a"}, "context_path", "relative path"),
        ({"context_path": "a/"}, "context_path", "relative path"),
        ({"context_path": "a" * 256}, "context_path", "relative path"),
        ({"target": "-stage"}, "target", "stage name"),
        ({"target": "a b"}, "target", "stage name"),
        ({"no_cache": "true"}, "no_cache", "true or false"),
        ({"pull": 0}, "pull", "true or false"),
        ({"labels": {"": "x"}}, "labels", "not a valid name"),
        ({"labels": {"a": None}}, "labels", "must be a string"),
        ({"tags": "latest"}, "tags", "list"),
        ({"tags": ["ok", "ok"]}, "tags", "more than once"),
        ({"tags": ["-bad"]}, "tags", "not a valid tag"),
        ({"tags": [7]}, "tags", "not a valid tag"),
        ({"tags": [f"t{i}" for i in range(11)]}, "tags", "at most 10"),
        ({"memory": "5m"}, "memory", "at least"),
        ({"memory": "5g"}, "memory", "maximum"),
        ({"memory": "lots"}, "memory", "size"),
        ({"memory": True}, "memory", "number of bytes"),
        ({"memory": 1.5}, "memory", "number of bytes"),
        ({"cpus": 0}, "cpus", "at least"),
        ({"cpus": -1}, "cpus", "at least"),
        ({"cpus": float("nan")}, "cpus", "at least"),
        ({"cpus": 2.5}, "cpus", "maximum"),
        ({"cpus": "1"}, "cpus", "number"),
        ({"cache_from": "u/app"}, "cache_from", "list"),
        ({"cache_from": ["u/app@sha256:" + "0" * 64]}, "cache_from", "not a valid image reference"),
        ({"cache_from": ["boatyard.invalid/job/x:1"]}, "cache_from", "reserved"),
        ({"cache_from": ["U/App"]}, "cache_from", "not a valid image reference"),
        ({"cache_from": [7]}, "cache_from", "not an image reference"),
        ({"cache_from": ["u/a", "u/a"]}, "cache_from", "more than once"),
        ({"cache_from": [f"u/a{i}" for i in range(5)]}, "cache_from", "at most 4"),
        ({"cache_from": ["127.0.0.1:5000/u/app:cache"]}, "cache_from", "public addresses"),
        ({"cache_from": ["169.254.169.254/u/app"]}, "cache_from", "public addresses"),
        ({"cache_from": ["localhost:5000/u/app"]}, "cache_from", "public addresses"),
    ],
)
def test_bad_options_are_400_naming_the_field(fields, field, words):
    with pytest.raises(InvalidRequest) as caught:
        validate_build({**TAR, **fields}, SETTINGS)
    assert caught.value.field == field
    assert caught.value.message.startswith(f"{field}: ") and words in caught.value.message


def test_cache_from_on_a_private_registry_is_allowed_only_where_the_deployment_allows_those():
    local = load_settings({"BOATYARD_ALLOW_PRIVATE_REGISTRIES": "true"})
    assert validate_options({"cache_from": ["127.0.0.1:5000/u/app:cache"]}, local).cache_from == (
        "127.0.0.1:5000/u/app:cache",
    )


def test_maximums_come_from_the_settings():
    roomy = load_settings({"BOATYARD_MAX_BUILD_MEMORY_BYTES": str(16 * 1024**3), "BOATYARD_MAX_BUILD_CPUS": "8"})
    options = validate_options({"memory": "16g", "cpus": 8}, roomy)
    assert options.memory == 16 * 1024**3 and options.cpus == 8.0
    with pytest.raises(InvalidRequest):
        validate_options({"memory": "16g"}, SETTINGS)


@pytest.mark.parametrize("field", ["dockerfile_path", "context_path"])
def test_path_options_are_refused_with_inline_dockerfile_text(field):
    with pytest.raises(InvalidRequest) as caught:
        validate_build({"image_name": "u/i", "dockerfile": "FROM x", field: "sub"}, SETTINGS)
    assert caught.value.field == field


def test_secret_looking_build_arg_names():
    options = BuildOptions(
        build_args={"GITHUB_TOKEN": "", "db_password": "", "API_KEY": "", "VERSION": "", "NPM_AUTH": ""}
    )
    assert options.secret_looking_args() == ["GITHUB_TOKEN", "db_password", "API_KEY", "NPM_AUTH"]


# --- the worker's build plan ---------------------------------------------------------------------

NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)


def _job(kind: SourceKind, source: dict, **options) -> Job:
    return Job("job-1", "reg.example/team/app:1.0", kind, source, options=BuildOptions(**options).to_item())


def test_plan_for_a_github_job_with_every_option():
    job = _job(
        SourceKind.GITHUB,
        {"github_username": "octo", "github_reponame": "app", "github_tag": "v1"},
        build_args={"V": "1"},
        dockerfile_path="d/Dockerfile",
        target="run",
        no_cache=True,
        pull=True,
        labels={OCI + "source": "https://mine.example/app", "team": "x"},
        tags=("latest", "1.0", "latest"),
        memory=64 * 1024**2,
        cpus=0.5,
    )
    plan = plan_build(job, parse_image_ref(job.image_name), ContextStats(commit="a" * 40), SETTINGS, NOW)
    assert plan.extra_tags == ("latest",)  # the image_name's own tag and duplicates are pushed once
    assert plan.labels == {
        OCI + "created": "2026-01-02T03:04:05Z",
        OCI + "source": "https://mine.example/app",  # the user's label wins
        OCI + "revision": "a" * 40,
        "team": "x",
    }
    kwargs = plan.build_kwargs()
    assert kwargs == {
        "buildargs": {"V": "1"},
        "dockerfile": "d/Dockerfile",
        "nocache": True,
        "pull": True,
        "labels": plan.labels,
        "target": "run",
        "container_limits": {"memory": 64 * 1024**2, "memswap": 64 * 1024**2},
    }
    assert plan.extra_params() == {"cpuperiod": "100000", "cpuquota": "50000"}


def test_plan_defaults_leave_the_builder_alone():
    job = _job(SourceKind.TAR_URL, {"tar_url": "https://u:p@files.example:8443/a/ctx.tgz?X-Amz-Signature=s#f"})
    plan = plan_build(job, parse_image_ref(job.image_name), ContextStats(), SETTINGS, NOW)
    kwargs = plan.build_kwargs()
    assert "pull" not in kwargs and "target" not in kwargs and "container_limits" not in kwargs
    assert kwargs["buildargs"] is None and kwargs["dockerfile"] == "Dockerfile" and kwargs["nocache"] is False
    assert plan.extra_params() == {} and plan.extra_tags == ()
    # the source label never carries credentials, a query (pre-signed URLs) or a fragment
    assert plan.labels == {
        OCI + "created": "2026-01-02T03:04:05Z",
        OCI + "source": "https://files.example:8443/a/ctx.tgz",
    }


def test_plan_revision_falls_back_to_the_tag_and_uploads_have_no_source():
    github = _job(SourceKind.GITHUB, {"github_username": "o", "github_reponame": "r", "github_tag": "v2"})
    plan = plan_build(github, parse_image_ref(github.image_name), ContextStats(), SETTINGS, NOW)
    assert plan.labels[OCI + "revision"] == "v2"
    assert plan.labels[OCI + "source"] == "https://github.com/o/r"
    upload = _job(SourceKind.UPLOAD, {"context_key": "k"})
    assert set(plan_build(upload, parse_image_ref(upload.image_name), None, SETTINGS, NOW).labels) == {OCI + "created"}


# --- re-rooting the context at context_path ------------------------------------------------------


def _sanitize(data: bytes, **kw) -> tuple[dict[str, tarfile.TarInfo], ContextStats]:
    out = io.BytesIO()
    stats = sanitize(OneWayStream(data), out, LIMITS, **kw)
    out.seek(0)
    with tarfile.open(fileobj=out, mode="r:") as tar:
        return {m.name: m for m in tar.getmembers()}, stats


def _refused(data: bytes, **kw) -> str:
    with pytest.raises(InvalidContext) as caught:
        _sanitize(data, **kw)
    return caught.value.message


MONOREPO = [
    ("Dockerfile", "file", "FROM root"),
    ("secret.env", "file", "KEY=1"),
    ("svc", "dir", None),
    ("svc/api", "dir", None),
    ("svc/api/docker", "dir", None),
    ("svc/api/docker/Dockerfile", "file", "FROM api"),
    ("svc/api/main.py", "file", "print(1)"),
    ("svc/apiary/x", "file", "not api"),
    ("svc/web/Dockerfile", "file", "FROM w"),
]


def test_context_path_keeps_only_that_folder_as_the_root():
    members, _ = _sanitize(entries_tar(MONOREPO), context_path="svc/api", dockerfile_path="docker/Dockerfile")
    assert set(members) == {"docker", "docker/Dockerfile", "main.py"}


def test_context_path_under_a_top_folder():
    entries = [(f"repo-1.0/{name}", kind, payload) for name, kind, payload in MONOREPO]
    members, _ = _sanitize(entries_tar(entries), strip_top=True, context_path="svc/web")
    assert set(members) == {"Dockerfile"}


def test_missing_folder_or_dockerfile_says_which():
    assert "no folder 'svc/nope'" in _refused(entries_tar(MONOREPO), context_path="svc/nope")
    message = _refused(entries_tar(MONOREPO), context_path="svc/api")
    assert message == "no Dockerfile in the folder 'svc/api' (context_path)"
    message = _refused(entries_tar(MONOREPO), dockerfile_path="build/Dockerfile")
    assert message == "no Dockerfile at 'build/Dockerfile' (dockerfile_path) at the root of the archive"


@pytest.mark.parametrize(
    "entry, words",
    [
        (("app/leak", "sym", "../secret.env"), "points outside the build context"),
        (("app/leak", "sym", "../../etc/passwd"), "points outside the build context"),
        (("app/leak", "link", "secret.env"), "not a file earlier in the archive"),
        (("app/../secret.env", "file", "x"), "leaves the build context"),
    ],
)
def test_nothing_outside_the_context_folder_can_be_reached(entry, words):
    entries = [("secret.env", "file", "KEY=1"), ("app/Dockerfile", "file", "FROM x"), entry]
    assert words in _refused(entries_tar(entries), context_path="app")


def test_dropped_members_still_count_against_the_limits():
    bomb = [("app/Dockerfile", "file", "FROM x"), ("zeros", "file", b"\0" * (40 * 1024 * 1024))]
    assert "compression bomb" in _refused(entries_tar(bomb), context_path="app")


def test_a_git_archive_tells_its_commit():
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT, pax_headers={"comment": "b" * 40}) as tar:
        info = tarfile.TarInfo("repo-v1/Dockerfile")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"FROM x"))
    _, stats = _sanitize(gzip.compress(buffer.getvalue()), strip_top=True)
    assert stats.commit == "b" * 40
    _, plain = _sanitize(entries_tar([("Dockerfile", "file", "FROM x")]))
    assert plain.commit == ""
