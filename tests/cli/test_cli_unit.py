"""The CLI's parts without a service: packing and .dockerignore, config, credentials, arguments, output."""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import sys
import tarfile
import types
from pathlib import Path

import pytest

from boatyard import cli, config, credentials, pack, watch
from tests.cli.helpers import DOCKERIGNORE_TREE, KEPT_FILES, write_tree


def _names(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {member.name: member for member in tar.getmembers()}


def _pack(root: Path, **kwargs) -> tuple[bytes, pack.PackResult]:
    out = io.BytesIO()
    result = pack.pack(root, out, **kwargs)
    return out.getvalue(), result


# --- .dockerignore and packing -----------------------------------------------------------------------------
def test_dockerignore_reading_skips_comments_blanks_and_trims(tmp_path):
    (tmp_path / ".dockerignore").write_text("# c\n\n  *.log  \n!keep.log\r\n#x\n")
    assert pack.read_dockerignore(tmp_path) == ["*.log", "!keep.log"]
    assert pack.read_dockerignore(tmp_path / "none") == []


def test_context_keeps_what_docker_keeps(tmp_path):
    root = write_tree(tmp_path, {**DOCKERIGNORE_TREE, "Dockerfile": "FROM scratch\n"})
    files = {p for p in pack.context_paths(root) if (root / p).is_file()}
    # the Dockerfile and .dockerignore always travel (the daemon needs them; it drops them itself)
    assert files == KEPT_FILES | {"Dockerfile", ".dockerignore"}


def test_dockerfile_is_sent_even_when_ignored(tmp_path):
    root = write_tree(tmp_path, {"Dockerfile": "FROM scratch\n", ".dockerignore": "*\n", "a.txt": "x"})
    assert set(pack.context_paths(root)) == {"Dockerfile", ".dockerignore"}


def test_pack_writes_a_gzipped_tar_with_root_owners(tmp_path):
    root = write_tree(
        tmp_path / "ctx", {"Dockerfile": "FROM scratch\n", "bin/run.sh": "#!/bin/sh\n", "data.txt": "d" * 5000}
    )
    (root / "bin/run.sh").chmod(0o755)
    os.symlink("data.txt", root / "link")
    archive, result = _pack(root)
    assert archive[:2] == b"\x1f\x8b"
    members = _names(archive)
    assert set(members) == {"Dockerfile", "bin", "bin/run.sh", "data.txt", "link"}
    assert all(m.uid == 0 and m.gid == 0 and m.uname == "" and m.gname == "" for m in members.values())
    assert members["bin/run.sh"].mode & 0o111
    assert members["link"].issym() and members["link"].linkname == "data.txt"
    assert result.files == 5 and result.bytes_in == len("FROM scratch\n") + len("#!/bin/sh\n") + 5000


def test_pack_leaves_out_special_files(tmp_path):
    root = write_tree(tmp_path, {"Dockerfile": "FROM scratch\n"})
    os.mkfifo(root / "pipe")
    archive, result = _pack(root)
    assert "pipe" not in _names(archive) and result.skipped == ["pipe"]


def test_pack_needs_a_folder_with_a_dockerfile(tmp_path):
    with pytest.raises(pack.PackError, match="no Dockerfile"):
        _pack(tmp_path)
    with pytest.raises(pack.PackError, match="not a folder"):
        _pack(tmp_path / "missing")


def test_pack_with_another_dockerfile_sends_it_as_the_root_dockerfile(tmp_path):
    root = write_tree(tmp_path / "ctx", {"Dockerfile": "FROM root\n", "app.txt": "a"})
    other = write_tree(tmp_path, {"elsewhere.Dockerfile": "FROM other\n"}) / "elsewhere.Dockerfile"
    archive, _ = _pack(root, dockerfile_source=other)
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        names = tar.getnames()
        assert names.count("Dockerfile") == 1
        assert tar.extractfile("Dockerfile").read() == b"FROM other\n"


def test_pack_streams_file_by_file(tmp_path):
    """A 40 MiB file goes through in chunks: the archive is written as it is read (no whole-file buffer)."""
    root = write_tree(tmp_path / "ctx", {"Dockerfile": "FROM scratch\n"})
    with open(root / "big.bin", "wb") as handle:
        handle.truncate(40 * 1024 * 1024)
    writes: list[int] = []

    class Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data) -> int:
            writes.append(len(data))
            return len(data)

    pack.pack(root, Sink())
    assert max(writes) <= 1024 * 1024 and len(writes) > 1


# --- config ---------------------------------------------------------------------------------------------
def test_config_precedence_flag_env_file_default(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('api = "http://127.0.0.1:9001"\n')
    assert config.resolve(env={}, path=path).api == "http://127.0.0.1:9001"
    assert config.resolve(env={"BOATYARD_API": "http://127.0.0.1:9002/"}, path=path).api == "http://127.0.0.1:9002"
    assert config.resolve("http://localhost:9003", env={"BOATYARD_API": "x"}, path=path).api == "http://localhost:9003"
    assert config.resolve(env={}, path=tmp_path / "none.toml").api == config.DEFAULT_API


def test_config_token_from_env_or_file_and_never_in_repr(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('api = "https://by.example.com"\ntoken = "by_filetoken"\n')
    path.chmod(0o600)
    assert config.resolve(env={}, path=path).token == "by_filetoken"
    resolved = config.resolve(env={"BOATYARD_TOKEN": "by_envtoken"}, path=path)
    assert resolved.token == "by_envtoken" and "by_envtoken" not in repr(resolved)


def test_config_refuses_a_token_file_others_can_read(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('token = "by_x"\n')
    path.chmod(0o644)
    with pytest.raises(config.ConfigError, match="chmod 600"):
        config.resolve(env={}, path=path)


@pytest.mark.parametrize(
    "content, message",
    [
        ("api = 3\n", "must be a string"),
        ('apii = "x"\n', "unknown key"),
        ('api = "\n', "config.toml"),
    ],
)
def test_config_refuses_bad_files(tmp_path, content, message):
    path = tmp_path / "config.toml"
    path.write_text(content)
    with pytest.raises(config.ConfigError, match=message):
        config.resolve(env={}, path=path)


@pytest.mark.parametrize(
    "url", ["ftp://host", "host:8000", "http://u:p@host", "http://host/?q=1", "file:///etc/passwd"]
)
def test_config_refuses_bad_api_urls(url):
    with pytest.raises(config.ConfigError):
        config.check_api_url(url)


def test_token_never_goes_over_plain_http_to_another_host():
    with pytest.raises(config.ConfigError, match="plain HTTP"):
        config.resolve("http://build.example.com", env={"BOATYARD_TOKEN": "by_x"}, path=Path("/nonexistent"))
    assert config.resolve(
        "http://build.example.com", insecure=True, env={"BOATYARD_TOKEN": "by_x"}, path=Path("/nonexistent")
    )
    assert config.resolve("http://127.0.0.1:8000", env={"BOATYARD_TOKEN": "by_x"}, path=Path("/nonexistent"))
    assert config.resolve("https://build.example.com", env={"BOATYARD_TOKEN": "by_x"}, path=Path("/nonexistent"))


def test_config_path_follows_xdg_and_override():
    assert config.config_path({"BOATYARD_CONFIG": "/x/c.toml"}) == Path("/x/c.toml")
    assert config.config_path({"XDG_CONFIG_HOME": "/xdg"}) == Path("/xdg/boatyard/config.toml")
    assert config.config_path({}) == Path.home() / ".config/boatyard/config.toml"


# --- registry credentials -------------------------------------------------------------------------------
def test_credentials_flags_then_env_then_none(tmp_path):
    empty = str(tmp_path / "no-docker")
    flags = credentials.resolve(
        "reg.example.com/a/b", "u", "p", env={"BOATYARD_REGISTRY_PASSWORD": "e"}, docker_config=empty
    )
    assert (flags.username, flags.password, flags.source) == ("u", "p", "flags")
    env = {"BOATYARD_REGISTRY_USER": "eu", "BOATYARD_REGISTRY_PASSWORD": "ep"}
    from_env = credentials.resolve("reg.example.com/a/b", env=env, docker_config=empty)
    assert (from_env.username, from_env.password, from_env.source) == ("eu", "ep", "environment")
    assert credentials.resolve("reg.example.com/a/b", env={}, docker_config=empty).fields() == {}
    with pytest.raises(ValueError):
        credentials.resolve("reg.example.com/a/b", env={"BOATYARD_REGISTRY_PASSWORD": "x"}, docker_config=empty)
    assert "ep" not in repr(from_env)


def test_credentials_from_docker_config_auths(tmp_path):
    path = tmp_path / "config.json"
    token = base64.b64encode(b"dockeruser:dockerpass").decode()
    path.write_text(json.dumps({"auths": {"reg.example.com:5000": {"auth": token}}}))
    found = credentials.resolve("reg.example.com:5000/team/app:1", env={}, docker_config=str(path))
    assert (found.username, found.password, found.source) == ("dockeruser", "dockerpass", "docker config")
    assert credentials.resolve("other.example.com/team/app", env={}, docker_config=str(path)).fields() == {}


def test_credentials_from_a_docker_credential_helper(tmp_path, monkeypatch):
    """The docker-credential-* protocol: ``get`` reads the server on stdin, answers JSON."""
    helper = tmp_path / "bin" / "docker-credential-boatyardtest"
    helper.parent.mkdir()
    helper.write_text(
        "#!/bin/sh\n"
        "read server\n"
        'if [ "$1" = get ] && [ "$server" = "helper.example.com" ]; then\n'
        '  echo \'{"ServerURL":"helper.example.com","Username":"helperuser","Secret":"helpersecret"}\'\n'
        "else echo 'credentials not found in native keychain'; exit 1; fi\n"
    )
    helper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{helper.parent}{os.pathsep}{os.environ['PATH']}")
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"credHelpers": {"helper.example.com": "boatyardtest"}}))
    found = credentials.resolve("helper.example.com/team/app", env={}, docker_config=str(path))
    assert (found.username, found.password) == ("helperuser", "helpersecret")


def test_registry_of_follows_dockers_rule():
    assert credentials.registry_of("user/image") == "docker.io"
    assert credentials.registry_of("localhost:5000/a") == "localhost:5000"
    assert credentials.registry_of("reg.example.com/team/app:1@sha256:" + "0" * 64) == "reg.example.com"


# --- arguments ------------------------------------------------------------------------------------------
def _parse(*argv: str) -> argparse.Namespace:
    return cli.build_parser().parse_args(list(argv))


def test_build_arguments_become_request_fields():
    args = _parse(
        "build",
        "ctx",
        "-t",
        "reg.example.com/team/app:1.0",
        "-t",
        "reg.example.com/team/app:latest",
        "--build-arg",
        "A=1",
        "--build-arg",
        "B=x=y",
        "--target",
        "prod",
        "--no-cache",
        "-o",
        "json",
    )
    assert args.func is cli.cmd_build and args.path == "ctx" and args.output == "json"
    fields = cli.build_fields(args, credentials.RegistryCredentials("u", "p", "flags"))
    assert fields == {
        "image_name": "reg.example.com/team/app:1.0",
        "username": "u",
        "password": "p",
        "build_args": {"A": "1", "B": "x=y"},
        "tags": ["latest"],
        "target": "prod",
        "no_cache": True,
    }


def test_a_plain_build_is_the_seeds_request():
    fields = cli.build_fields(_parse("build", "-t", "user/app"), credentials.RegistryCredentials())
    assert fields == {"image_name": "user/app"}


def test_bare_build_arg_takes_the_environment():
    assert cli.parse_build_args(["HTTP_PROXY", "UNSET"], env={"HTTP_PROXY": "http://p"}) == {"HTTP_PROXY": "http://p"}
    with pytest.raises(cli.UsageError):
        cli.parse_build_args(["1BAD=x"])
    with pytest.raises(cli.UsageError):
        cli.parse_build_args(["=x"])


def test_extra_tags_must_share_the_repository():
    assert cli.split_tags(["r:5000/a/b:1", "r:5000/a/b:2", "r:5000/a/b"]) == ("r:5000/a/b:1", ["2", "latest"])
    with pytest.raises(cli.UsageError, match="same repository"):
        cli.split_tags(["r/a/b:1", "r/a/c:1"])


@pytest.mark.parametrize(
    "value, expected",
    [
        ("octo/hello@v1.2.0", {"github_username": "octo", "github_reponame": "hello", "github_tag": "v1.2.0"}),
        ("o-1/re.po_x@main", {"github_username": "o-1", "github_reponame": "re.po_x", "github_tag": "main"}),
    ],
)
def test_github_source(value, expected):
    assert cli.parse_github(value) == expected


@pytest.mark.parametrize("value", ["octo/hello", "octo@v1", "../x/y@v1", "a/b@", "a/b/c@v1", "a/b@v 1"])
def test_github_source_refuses_malformed(value):
    with pytest.raises(cli.UsageError):
        cli.parse_github(value)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["build", "-t", "a/b", "ctx", "--github", "o/r@t"], "not both"),
        (["build", "-t", "a/b", "--github", "o/r@t", "--tar-url", "https://x/y.tgz"], "only one"),
        (["build", "-t", "a/b", "--tar-url", "file:///etc/passwd"], "http"),
        (["build", "/nonexistent-folder-xyz"], "-t IMAGE"),
    ],
)
def test_usage_errors_exit_2_with_a_message(argv, message, capsys):
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_remote_sources_send_the_dockerfile_path():
    args = _parse("build", "-t", "a/b", "--tar-url", "https://example.com/c.tgz", "-f", "sub/Dockerfile")
    assert cli._source(args) == (
        "remote",
        {"tar_url": "https://example.com/c.tgz", "dockerfile_path": "sub/Dockerfile"},
    )


def test_subcommands_dispatch_through_func():
    for argv, func in (
        (["status", "J"], cli.cmd_status),
        (["logs", "-f", "J"], cli.cmd_logs),
        (["cancel", "J"], cli.cmd_cancel),
        (["jobs", "--limit", "5"], cli.cmd_jobs),
    ):
        assert _parse(*argv).func is func
    with pytest.raises(SystemExit):
        _parse()


def test_admin_subcommands_are_registered_when_present(monkeypatch):
    """``boatyard.admin.register(subparsers)`` (the identity issue's module) adds the admin tree."""
    fake = types.ModuleType("boatyard.admin")

    def register(subparsers) -> None:
        admin = subparsers.add_parser("admin")
        admin.set_defaults(func=lambda args: 7)

    fake.register = register
    monkeypatch.setitem(sys.modules, "boatyard.admin", fake)
    assert cli.main(["admin"]) == 7


# --- output ---------------------------------------------------------------------------------------------
def test_clean_strips_terminal_control_sequences():
    hostile = "ok\x1b]52;c;ZXZpbA==\x07\x1b[2Jdone\r\nline\rover\x9b31m\x00"
    assert watch.clean(hostile) == "ok]52;c;ZXZpbA==[2Jdone\nline\nover31m"


def test_exit_codes_and_reasons():
    assert watch.exit_code({"Status": "Finished"}) == 0
    assert watch.exit_code({"Status": "Failed: boom"}) == 1
    assert watch.exit_code({"Status": "Cancelled"}) == 1
    assert watch.reason({"Status": "Failed: x", "Reason": "The command returned 3"}) == "The command returned 3"
    assert watch.reason({"Status": "Failed: from the seed"}) == "from the seed"


class FakeClient:
    """Answers of a scripted API."""

    def __init__(self, pages: list[dict], statuses: list[dict]) -> None:
        self.pages, self.statuses = pages, statuses
        self.since: list[str | None] = []

    def logs(self, job_id, since=None):
        self.since.append(since)
        return self.pages.pop(0) if len(self.pages) > 1 else self.pages[0]

    def status(self, job_id):
        return self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]


def test_follow_uses_cursors_until_complete():
    client = FakeClient(
        [
            {"Logs": "a\n", "Next": "1", "Complete": False},
            {"Logs": "", "Next": "1", "Complete": False},
            {"Logs": "b\n", "Next": "3", "Complete": False, "Truncated": True},
            {"Logs": "c\n", "Next": "4", "Complete": True},
        ],
        [{"Status": "Finished"}],
    )
    printed: list[str] = []
    status = watch.follow(client, "j", printed.append, sleep=lambda s: None)
    assert "".join(printed) == "a\nb\nc\n" and status == {"Status": "Finished"}
    assert client.since == ["0", "1", "1", "3"]


def test_follow_against_the_seed_prints_only_new_text():
    client = FakeClient(
        [{"Logs": "a\n"}, {"Logs": "a\nb\n"}, {"Logs": "a\nb\nc\n"}],
        [{"Status": "Building"}, {"Status": "Failed: x"}],
    )
    printed: list[str] = []
    status = watch.follow(client, "j", printed.append, sleep=lambda s: None)
    assert "".join(printed) == "a\nb\nc\n" and status["Status"] == "Failed: x"


def test_polls_start_fast_and_slow_down_while_nothing_happens():
    assert watch.next_interval(0.1, news=False, elapsed=0.5) == pytest.approx(0.125)
    assert watch.next_interval(0.5, news=False, elapsed=2) == pytest.approx(0.2)
    assert watch.next_interval(0.8, news=False, elapsed=60) == pytest.approx(1.0)
    assert watch.next_interval(1.0, news=True, elapsed=60) == watch.POLL_MIN_SECONDS


def test_error_bodies_other_than_the_apis_are_never_shown():
    """A gateway's 403 for an unknown route echoes the Authorization header: it must not reach the terminal."""
    import requests

    from boatyard.api import RouteMissing, _error_from

    answer = requests.Response()
    answer.status_code = 403
    answer._content = b'{"message": "Authorization header requires ... Authorization=Bearer by_secret"}'
    answer.request = requests.Request("GET", "http://127.0.0.1:8000/api/v1/jobs").prepare()
    error = _error_from(answer)
    assert isinstance(error, RouteMissing) and "by_secret" not in str(error) and "/api/v1/jobs" in str(error)
    answer.status_code, answer._content = 400, b'{"Code": "InvalidRequest", "Message": "image_name: required"}'
    assert str(_error_from(answer)) == "image_name: required (InvalidRequest, HTTP 400)"


def test_main_gives_the_callers_sigpipe_handler_back():
    """The command sets SIGPIPE's default action for itself only.

    A process that calls main() and goes on (this test session) must not be killed
    silently by its next write to a closed pipe: the whole suite once died in the
    browser tests after an in-process ``cli.main`` call left SIGPIPE at SIG_DFL.
    """
    import signal

    before = signal.getsignal(signal.SIGPIPE)
    assert before != signal.SIG_DFL  # Python ignores SIGPIPE; the check below could fail
    code = cli.main(["build", "/nonexistent-folder", "-t", "127.0.0.1:5000/x/y:1", "--api", "http://127.0.0.1:9"])
    assert code == 2  # the command ran to its end: no such folder
    assert signal.getsignal(signal.SIGPIPE) == before


# --- BuildKit flags: --engine, --secret, --ssh, --cache-from ---------------------------------------------
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n"


def test_secret_ssh_engine_and_cache_from_become_request_fields(tmp_path, monkeypatch):
    (tmp_path / "npmrc").write_text("//registry/:_authToken=file-secret\n")
    (tmp_path / "key").write_text(SSH_KEY)
    monkeypatch.setenv("GH_TOKEN", "env-secret")
    monkeypatch.setenv("BARE", "bare-secret")
    args = _parse(
        "build",
        "-t",
        "user/app",
        "--engine",
        "buildkit",
        "--secret",
        f"id=npmrc,src={tmp_path / 'npmrc'}",
        "--secret",
        "id=gh,env=GH_TOKEN",
        "--secret",
        "BARE",
        "--secret",
        f"type=file,id=f,source={tmp_path / 'npmrc'}",
        "--ssh",
        f"default={tmp_path / 'key'}",
        "--cache-from",
        "user/app:latest",
        "--cache-from",
        "user/app:latest",
    )
    fields = cli.build_fields(args, credentials.RegistryCredentials())
    assert fields == {
        "image_name": "user/app",
        "engine": "buildkit",
        "cache_from": ["user/app:latest"],
        "secrets": {
            "npmrc": "//registry/:_authToken=file-secret\n",
            "gh": "env-secret",
            "BARE": "bare-secret",
            "f": "//registry/:_authToken=file-secret\n",
        },
        "ssh": SSH_KEY,
    }


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--secret", "id=../x,env=HOME"], "id= must be"),
        (["--secret", "id=t,src=/no/such/file"], "cannot read"),
        (["--secret", "id=t,env=BOATYARD_TEST_UNSET"], "BOATYARD_TEST_UNSET is not set"),
        (["--secret", "id=t,env=EMPTY"], "empty"),
        (["--secret", "id=t,color=red"], "unknown key"),
        (["--secret", "id=t,env=HOME", "--secret", "id=t,env=HOME"], "given twice"),
        (["--ssh", "default"], "agent cannot be forwarded"),
        (["--ssh", "mykey=/tmp/x"], "only the default id"),
        (["--ssh", "default=/no/such/key"], "cannot read"),
        (["--engine", "classic", "--secret", "id=t,env=HOME"], "--secret needs the buildkit engine"),
        (["--engine", "classic", "--cache-from", "user/app"], "--cache-from needs the buildkit engine"),
    ],
)
def test_bad_buildkit_flags_are_usage_errors(flags, words, monkeypatch):
    monkeypatch.setenv("EMPTY", "")
    monkeypatch.delenv("BOATYARD_TEST_UNSET", raising=False)
    with pytest.raises(cli.UsageError, match=re.escape(words)):
        cli.build_fields(_parse("build", "-t", "user/app", *flags), credentials.RegistryCredentials())


def test_no_message_about_a_secret_or_key_holds_its_value(tmp_path, monkeypatch):
    monkeypatch.setenv("TOKEN", "v" * 4000)  # too long: refused, named, not shown
    public = tmp_path / "id.pub"
    public.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPublicPartOnly user@host\n")
    for flags in (
        ["--secret", "id=t,env=TOKEN"],
        ["--ssh", f"default={public}"],
        ["--secret", "id=t,src=value-like-text=hunter2"],
    ):
        with pytest.raises(cli.UsageError) as caught:
            cli.build_fields(_parse("build", "-t", "user/app", *flags), credentials.RegistryCredentials())
        message = str(caught.value)
        assert "vvvv" not in message and "PublicPartOnly" not in message and "hunter2" not in message, message
