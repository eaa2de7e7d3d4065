"""BuildKit syntax detection, the Dockerfile rewrite (syntax lines, per-owner cache ids), the engine choice, the
engine settings, BuildKit's progress output and the redaction of build secrets."""

from __future__ import annotations

import io
import re
import tarfile

import pytest

from chalicelib.domain.errors import BuildFailed
from chalicelib.domain.settings import load_settings
from worker.build.buildkit import ProgressLog
from worker.build.cachescope import scope_classic, scope_value
from worker.build.dockerfile_features import (
    DockerfileRefused,
    Feature,
    cache_namespace,
    find_features,
    prepare_for_buildkit,
    scope_mount,
    secret_prefix,
)
from worker.build.engines import apply_dockerfile, choose_engine, find_dockerfile, read_dockerfile
from worker.redact import MARK, Redactor


def _names(text: str) -> list[tuple[int, str]]:
    return [(f.line, f.name) for f in find_features(text)]


def test_classic_dockerfiles_have_no_buildkit_features():
    text = (
        "# escape=\\\nFROM busybox AS base\n# RUN --mount=type=cache,target=/x in a comment\n"
        "RUN echo --mount=type=cache && cat <<EOF > /x\nCOPY --from=base --chown=1:1 a /b\nADD --chown=1 x /y\n"
        "RUN echo a \\\n  --mount=type=cache,target=/late\n"
    )
    assert find_features(text) == []


def test_each_buildkit_feature_is_found_with_its_line():
    text = (
        "# syntax=docker/dockerfile:1.4\nFROM busybox\nRUN --mount=type=cache,target=/root/.cache \\\n"
        "    --mount=type=secret,id=t pip install x\nCOPY --chmod=600 a /a\nADD --link b /b\n"
        "RUN --network=none true\nRUN <<EOF\necho hi\nEOF\n"
    )
    assert _names(text) == [
        (1, "# syntax= directive"),
        (3, "RUN --mount"),
        (4, "RUN --mount"),
        (5, "COPY --chmod"),
        (6, "ADD --link"),
        (7, "RUN --network"),
        (8, "RUN heredoc"),
    ]
    modern = {f.name for f in find_features(text) if f.modern}
    assert modern == {"ADD --link", "RUN --network", "RUN heredoc"}
    assert Feature(3, "RUN --mount").describe() == "line 3 (RUN --mount)"


def test_syntax_line_is_removed_keeping_line_numbers_and_other_directives():
    text = "# syntax=docker/dockerfile:1\n# escape=`\nFROM busybox\nRUN echo a `\n  b\n"
    prepared = prepare_for_buildkit(text, "alice", scope=False)
    lines = prepared.text.split("\n")
    assert lines[0] == "# escape=`" and lines[1] == "" and lines[2] == "FROM busybox"
    assert "syntax" not in prepared.text and "ignoring `# syntax=docker/dockerfile:1`" in prepared.notes[0]
    assert find_features(prepared.text) == []


def test_cache_mounts_are_keyed_per_owner():
    text = (
        "FROM busybox\nRUN --mount=type=cache,target=/root/.cache \\\n  --mount=type=cache,id=deps,target=/d,sharing=locked"
        " \\\n  --mount=type=secret,id=tok \\\n  --mount=target=/b,type=cache,readonly make --mount=type=cache,id=no\n"
    )
    alice = prepare_for_buildkit(text, "alice", scope=False).text
    assert "target=/root/.cache,id=alice//root/.cache" in alice
    assert "id=alice/deps,target=/d,sharing=locked" in alice
    assert "target=/b,type=cache,readonly,id=alice//b" in alice
    assert "--mount=type=cache,id=no" in alice  # not a flag (an argument of make): untouched
    bob = prepare_for_buildkit(text, "bob", scope=False)
    assert bob.text.replace(bob.secret_prefix, "P") == alice.replace("alice/", "bob/").replace(
        secret_prefix("alice"), "P"
    )
    assert prepare_for_buildkit("FROM busybox\nRUN true\n", "alice", scope=False).changed is False


def test_every_run_gets_the_owners_scope_mount_and_nothing_else_does():
    text = (
        "FROM busybox AS a\nRUN true\nRUN --mount=type=cache,target=/c \\\n  make\nONBUILD RUN x\nCOPY a /a\n"
        'RUN ["echo", "hi"]\n'
    )
    alice = prepare_for_buildkit(text, "alice")
    lines = alice.text.split("\n")
    assert lines[1] == f"RUN {scope_mount('alice')} true"
    assert lines[2] == f"RUN {scope_mount('alice')} --mount=type=cache,target=/c,id=alice//c \\"
    assert lines[3:6] == ["  make", "ONBUILD RUN x", "COPY a /a"]
    assert lines[6] == f'RUN {scope_mount("alice")} ["echo", "hi"]'
    assert scope_mount("alice") == "--mount=type=cache,id=alice/.boatyard-scope,target=/dev/.boatyard-scope"
    assert scope_mount("bob") != scope_mount("alice") and "alice" not in prepare_for_buildkit(text, "bob").text
    assert any("layer cache kept to this owner" in note for note in alice.notes)
    # alice's own cache ids can never produce bob's scope mount id
    forged = prepare_for_buildkit(
        "FROM b\nRUN --mount=type=cache,id=bob/.boatyard-scope,target=/x true\n", "alice"
    ).text
    assert "id=bob/.boatyard-scope" not in forged.replace("alice/bob/", "")


def test_classic_gets_an_owner_arg_after_every_from():
    text = (
        "ARG V=1\nFROM busybox:$V \\\n  AS base\nRUN echo hi\nFROM base\n# FROM in a comment\nCOPY a /a\nFROM scratch"
    )
    scoped, added = scope_classic(text, "alice")
    arg = f"ARG BOATYARD_CACHE_SCOPE={scope_value('alice')}"
    assert added == 3
    assert scoped.split("\n") == [
        "ARG V=1",
        "FROM busybox:$V \\",
        "  AS base",
        arg,
        "RUN echo hi",
        "FROM base",
        arg,
        "# FROM in a comment",
        "COPY a /a",
        "FROM scratch",
        arg,
    ]
    assert scope_value("alice") != scope_value("bob") and re.fullmatch(r"[0-9a-f]{16}", scope_value("alice"))
    assert "alice" not in scoped


def test_secret_and_ssh_ids_are_keyed_per_owner_with_the_target_kept():
    text = (
        "FROM b\nRUN --mount=type=secret,id=tok --mount=type=secret,id=npm,target=/root/.npmrc,required"
        " --mount=type=secret,target=/run/secrets/aws --mount=type=ssh --mount=type=ssh,id=gh true\n"
    )
    prepared = prepare_for_buildkit(text, "alice")
    p = prepared.secret_prefix
    assert p == secret_prefix("alice") and p != secret_prefix("bob") and re.fullmatch(r"s[0-9a-f]{16}\.", p)
    assert f"--mount=type=secret,id={p}tok,target=/run/secrets/tok " in prepared.text
    assert f"--mount=type=secret,id={p}npm,target=/root/.npmrc,required " in prepared.text
    assert f"--mount=type=secret,target=/run/secrets/aws,id={p}aws " in prepared.text
    assert f"--mount=type=ssh,id={p}default --mount=type=ssh,id={p}gh true" in prepared.text


def test_an_owner_cannot_reach_another_owners_namespace():
    # "alice" writing id=bob/deps stays under alice; odd owner names are hashed, never used as paths
    assert (
        "id=alice/bob/deps"
        in prepare_for_buildkit("FROM b\nRUN --mount=type=cache,id=bob/deps,target=/x true\n", "alice").text
    )
    assert cache_namespace("alice") == "alice" and cache_namespace("user@example.com") == "user@example.com"
    for odd in ("a/b", "../x", "", "a b", "x" * 200, "~h"):
        namespace = cache_namespace(odd)
        assert namespace.startswith("~") and "/" not in namespace and len(namespace) == 33
    assert cache_namespace("a/b") != cache_namespace("a/c")


@pytest.mark.parametrize(
    "mount",
    [
        '--mount="type=cache,id=bob/x,target=/x"',  # BuildKit reads quoted CSV: the id would reach bob's cache
        '--mount=type=cache,"id=bob/x",target=/x',
        "--mount=type=cache,id=$OTHER,target=/x",  # newer frontends expand variables in mount values
        "--mount=type=cache,target=/x,i\\\nd=bob/x",  # a value continued on the next line
    ],
)
def test_mounts_that_cannot_be_rewritten_with_certainty_are_refused(mount):
    with pytest.raises(DockerfileRefused, match="line 2: this --mount value cannot be checked"):
        prepare_for_buildkit(f"FROM b\nRUN {mount} true\n", "alice")


def _context(files: dict[str, str]) -> io.BytesIO:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    raw.seek(0)
    return raw


def _settings(**env: str):
    return load_settings({f"BOATYARD_{k.upper()}": v for k, v in env.items()})


def test_appended_dockerfile_wins_and_position_is_kept():
    context = _context({"Dockerfile": "FROM a\n", "app/x": "x"})
    context.seek(0)
    apply_dockerfile(context, "FROM b\n")
    assert context.tell() == 0
    assert read_dockerfile(context) == "FROM b\n" and context.tell() == 0
    with tarfile.open(fileobj=context) as tar:
        assert [m.name for m in tar] == ["Dockerfile", "app/x", "Dockerfile"]
    assert read_dockerfile(_context({"app/Dockerfile": "FROM a\n"})) is None


def test_the_rewritten_dockerfile_is_the_member_the_api_makes_from_the_same_text():
    """One Dockerfile-to-tar helper: the worker's appended Dockerfile and the API's inline context agree."""
    import gzip

    from chalicelib.domain.archive_format import dockerfile_context

    context = _context({"app/x": "x"})
    apply_dockerfile(context, "FROM b\nCMD echo é\n")
    with (
        tarfile.open(fileobj=context) as appended,
        tarfile.open(fileobj=io.BytesIO(gzip.decompress(dockerfile_context("FROM b\nCMD echo é\n")))) as made,
    ):
        ours, theirs = appended.getmember("Dockerfile"), made.getmember("Dockerfile")
        assert (ours.mode, ours.mtime, ours.size) == (theirs.mode, theirs.mtime, theirs.size) == (0o644, 0, ours.size)
        assert appended.extractfile(ours).read() == made.extractfile(theirs).read() == "FROM b\nCMD echo é\n".encode()


def test_a_dockerfile_elsewhere_is_read_and_replaced_where_it_is():
    context = _context({"Dockerfile": "FROM root\n", "./docker/build.Dockerfile": "FROM nested\n"})
    assert find_dockerfile(context, "docker/build.Dockerfile") == ("docker/build.Dockerfile", "FROM nested\n")
    apply_dockerfile(context, "FROM changed\n", "docker/build.Dockerfile")
    assert read_dockerfile(context, "docker/build.Dockerfile") == "FROM changed\n"
    assert read_dockerfile(context) == "FROM root\n"
    assert find_dockerfile(_context({"dockerfile": "FROM lower\n"})) == ("dockerfile", "FROM lower\n")
    assert find_dockerfile(_context({"a": "x"}), "docker/Dockerfile") == ("docker/Dockerfile", None)
    mount = "FROM a\nRUN --mount=type=cache,target=/x true\n"
    choice = choose_engine(
        "",
        _context({"Dockerfile": "FROM a\n", "sub/Dockerfile": mount}),
        _settings(allowed_engines="classic,buildkit"),
        dockerfile_path="sub/Dockerfile",
    )
    assert choice.engine == "buildkit" and choice.dockerfile_path == "sub/Dockerfile" and choice.dockerfile == mount


def test_engine_choice():
    both = _settings()
    assert both.allowed_engines == ("classic", "buildkit") and both.default_engine == "classic"
    mount = "FROM a\nRUN --mount=type=cache,target=/c true\n"
    assert choose_engine("", _context({"Dockerfile": "FROM a\n"}), both).engine == "classic"
    choice = choose_engine("", _context({"Dockerfile": mount}), both)
    assert choice.engine == "buildkit" and choice.why == "the Dockerfile uses BuildKit syntax: line 2 (RUN --mount)"
    assert choose_engine("buildkit", _context({"Dockerfile": "FROM a\n"}), both).why == "requested"
    assert (
        choose_engine("", _context({"Dockerfile": "FROM a\n"}), both, needs_buildkit_for="build secrets").engine
        == "buildkit"
    )
    with pytest.raises(BuildFailed, match="line 2 \\(RUN --mount\\) needs BuildKit, but the job asked for the classic"):
        choose_engine("classic", _context({"Dockerfile": mount}), both)
    with pytest.raises(BuildFailed, match="line 2 \\(RUN heredoc\\) needs a newer Dockerfile frontend"):
        choose_engine("", _context({"Dockerfile": "FROM a\nRUN <<EOF\nx\nEOF\n"}), both)
    assert (
        choose_engine(
            "", _context({"Dockerfile": "FROM a\nRUN <<EOF\nx\nEOF\n"}), both, modern_frontend=lambda: True
        ).engine
        == "buildkit"
    )
    classic = _settings(allowed_engines="classic")
    with pytest.raises(BuildFailed) as refused:
        choose_engine("", _context({"Dockerfile": mount}), classic)
    assert refused.value.message == (
        "the Dockerfile's line 2 (RUN --mount) needs BuildKit, and this deployment does not allow BuildKit builds "
        "(allowed engines: classic); build it where BuildKit is allowed or remove that line"
    )
    with pytest.raises(BuildFailed, match="build secrets needs BuildKit, and this deployment does not allow"):
        choose_engine("", _context({"Dockerfile": "FROM a\n"}), classic, needs_buildkit_for="build secrets")
    with pytest.raises(BuildFailed, match="not allowed by this deployment"):
        choose_engine("buildkit", _context({"Dockerfile": "FROM a\n"}), classic)
    assert (
        choose_engine("", _context({"Dockerfile": "FROM a\n"}), _settings(default_engine="buildkit")).engine
        == "buildkit"
    )
    # a `# syntax=` line alone is a comment to the classic builder: no BuildKit needed, nothing refused
    assert (
        choose_engine("", _context({"Dockerfile": "# syntax=docker/dockerfile:1\nFROM a\n"}), classic).engine
        == "classic"
    )
    assert (
        choose_engine("classic", _context({"Dockerfile": "# syntax=docker/dockerfile:1\nFROM a\n"}), both).engine
        == "classic"
    )


@pytest.mark.parametrize(
    "env",
    [
        {"allowed_engines": "docker"},
        {"allowed_engines": " , "},
        {"allowed_engines": "classic", "default_engine": "buildkit"},
    ],
)
def test_bad_engine_settings_are_loud(env):
    with pytest.raises(ValueError, match="BOATYARD_"):
        _settings(**env)
    assert _settings(allowed_engines="buildkit").default_engine == "buildkit"
    assert _settings(docker_cli="").docker_cli == "/usr/bin/docker"


def test_progress_lines_and_reasons():
    written: list[str] = []
    progress = ProgressLog(written.append)
    for line in (
        b"#5 [2/3] RUN exit 3\n",
        b"#5 sha256:" + b"a" * 64 + b"\n",
        b"\n",
        b"#4 CACHED\n",
        b"#3 DONE 0.1s\n",
        b"#5 ERROR: executor failed running [/bin/sh -c exit 3]: exit code: 3\n",
        b"------\n",
        b" > [2/3] RUN exit 3:\n",
        b"------\n",
        b"executor failed running [/bin/sh -c exit 3]: exit code: 3\n",
    ):
        progress.feed(line)
    assert not any("sha256:aaaa" in w for w in written) and "" not in [w.strip() for w in written]
    assert progress.reason() == "executor failed running [/bin/sh -c exit 3]: exit code: 3"
    assert progress.summary() == "[boatyard] BuildKit: 1 steps run, 1 cached"
    newer = ProgressLog(written.append)
    newer.feed(b'ERROR: failed to solve: process "/bin/sh -c exit 3" did not complete successfully: exit code: 3\n')
    assert newer.reason() == 'process "/bin/sh -c exit 3" did not complete successfully: exit code: 3'
    parse = ProgressLog(written.append)
    parse.feed(
        b"failed to solve with frontend dockerfile.v0: failed to create LLB definition: dockerfile parse error line 3: x\n"
    )
    assert parse.reason() == "dockerfile parse error line 3: x"
    assert ProgressLog(written.append).reason() == "the BuildKit build failed without an error message"


def test_build_secrets_and_key_lines_are_redacted():
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAAline-one-of-the-key\nBBBBline-two-of-the-key\n-----END OPENSSH PRIVATE KEY-----\n"
    redactor = Redactor.for_pairs([("u", "pw-x")], ["tok-123", key])
    assert redactor("#5 0.2 tok-123") == f"#5 0.2 {MARK}"
    assert redactor("#6 0.1 AAAAline-one-of-the-key") == f"#6 0.1 {MARK}"
    assert MARK in redactor("dG9rLTEyMw==")  # base64 of the secret


def test_buildkit_command_pushes_inline_cache_and_reads_cache_from_images(tmp_path):
    from worker.build.buildkit import BuildKitBuilder, BuildKitOptions
    from worker.build.buildplan import BuildPlan

    plan = BuildPlan(
        buildargs={"V": "1"},
        dockerfile="docker/Dockerfile",
        target="",
        nocache=False,
        pull=None,
        labels={},
        memory=0,
        cpus=0.0,
        extra_tags=(),
        cache_from=("ghcr.io/o/app:cache", "u/app"),
    )
    argv = BuildKitBuilder(_settings()).command("img", str(tmp_path), BuildKitOptions(), plan)
    pairs = list(zip(argv, argv[1:], strict=False))  # neighbours: one shorter
    assert ("--cache-from", "ghcr.io/o/app:cache") in pairs and ("--cache-from", "u/app") in pairs
    assert ("--build-arg", "BUILDKIT_INLINE_CACHE=1") in pairs and ("-f", "docker/Dockerfile") in pairs
    own = BuildPlan(**{**plan.__dict__, "buildargs": {"BUILDKIT_INLINE_CACHE": "0"}, "cache_from": ()})
    (tmp_path / "second").mkdir()
    argv = BuildKitBuilder(_settings()).command("img", str(tmp_path / "second"), BuildKitOptions(), own)
    assert "--cache-from" not in argv and argv.count("--build-arg") == 1 and "BUILDKIT_INLINE_CACHE=0" in argv
