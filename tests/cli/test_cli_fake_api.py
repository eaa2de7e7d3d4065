"""The CLI over real HTTP against a scripted API: the seed's API, where the API key goes, the Ctrl-C question."""

from __future__ import annotations

import io
import json
import os
import pty
import select
import signal
import subprocess
import sys
import tarfile
import time

from tests.cli.fake_api import JOB_ID, FakeApi, multipart_parts
from tests.cli.helpers import REPO_ROOT, cli_env, run_cli, write_tree


def _context(tmp_path, size: int):
    root = write_tree(tmp_path / "ctx", {"Dockerfile": "FROM busybox\n", "app.txt": "app\n"})
    (root / "blob.bin").write_bytes(os.urandom(size))
    return root


def test_against_the_seeds_api_a_context_goes_inline_and_the_log_is_not_repeated(tmp_path):
    """No /uploads (404) → a 1.5 MiB context goes in the multipart request; logs without cursors print once."""
    with FakeApi(seed=True) as api:
        done = run_cli(
            ["build", str(_context(tmp_path, 1536 * 1024)), "-t", "user/app", "-u", "me", "--password-stdin"],
            cli_env(api.url),
            stdin="s3cret\n",
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.count("Step 1/2") == 1 and done.stdout.count("Step 2/2") == 1
        assert "no upload endpoint" in done.stderr and "s3cret" not in done.stdout + done.stderr
        (build,) = api.requests_to("/api/v1/build")
        parts = multipart_parts(build)
        assert json.loads(parts["Json"]) == {"image_name": "user/app", "username": "me", "password": "s3cret"}
        with tarfile.open(fileobj=io.BytesIO(parts["TarFile"]), mode="r:gz") as tar:
            assert set(tar.getnames()) == {"Dockerfile", "app.txt", "blob.bin"}


def test_against_the_seeds_api_a_context_over_its_limit_is_refused_before_sending(tmp_path):
    with FakeApi(seed=True) as api:
        done = run_cli(
            ["build", str(_context(tmp_path, 7 * 1024 * 1024)), "-t", "user/app"], cli_env(api.url), timeout=120
        )
        assert done.returncode == 2 and "no /api/v1/uploads" in done.stderr, done.stderr
        assert not api.requests_to("/api/v1/build")


def test_the_api_key_goes_to_the_api_and_never_to_storage(tmp_path):
    with FakeApi() as api:
        env = cli_env(api.url, BOATYARD_TOKEN="by_canary_token")
        done = run_cli(["build", str(_context(tmp_path, 1536 * 1024)), "-t", "user/app"], env, timeout=120)
        assert done.returncode == 0, done.stderr
        (storage,) = api.requests_to("/storage")
        assert "authorization" not in storage.headers
        assert multipart_parts(storage)["key"] == b"uploads/u-1"
        (build,) = api.requests_to("/api/v1/build")
        assert build.headers["authorization"] == "Bearer by_canary_token"
        assert json.loads(build.body) == {"image_name": "user/app", "upload_id": "u-1"}
        assert all(s.headers.get("authorization") == "Bearer by_canary_token" for s in api.seen if s.path != "/storage")
        assert "by_canary_token" not in done.stdout + done.stderr


def test_a_failed_upload_is_sent_again_whole(tmp_path):
    with FakeApi(storage_failures=1) as api:
        done = run_cli(["build", str(_context(tmp_path, 1536 * 1024)), "-t", "user/app"], cli_env(api.url), timeout=120)
        assert done.returncode == 0, done.stderr
        first, second = api.requests_to("/storage")
        assert multipart_parts(first)["file"] == multipart_parts(second)["file"]
        assert len(multipart_parts(second)["file"]) > 1536 * 1024
        assert "trying again (2/3)" in done.stderr
        assert len(api.requests_to("/api/v1/build")) == 1


def test_a_failed_seed_job_exits_1_with_its_reason(tmp_path):
    with FakeApi(seed=True, final="Failed: The command '/bin/sh -c exit 3' returned a non-zero code: 3") as api:
        done = run_cli(
            ["build", str(_context(tmp_path, 10)), "-t", "user/app", "-o", "json"], cli_env(api.url), timeout=120
        )
        assert done.returncode == 1
        assert "failed: The command '/bin/sh -c exit 3' returned a non-zero code: 3" in done.stderr
        assert json.loads(done.stdout)["JobIdentifier"] == JOB_ID


def _read_until(fd: int, needle: bytes, timeout: float = 60) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while needle not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    assert needle in seen, seen.decode(errors="replace")
    return seen


def test_ctrl_c_in_a_terminal_asks_before_cancelling(tmp_path):
    """On a terminal, Ctrl-C asks; 'y' cancels the remote build and the command exits 130."""
    with FakeApi(final=None) as api:
        main, child = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "boatyard", "build", str(_context(tmp_path, 10)), "-t", "user/app"],
            env=cli_env(api.url),
            stdin=child,
            stdout=child,
            stderr=child,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        os.close(child)
        try:
            _read_until(main, b"Step 1/2")
            proc.send_signal(signal.SIGINT)
            _read_until(main, b"Cancel the remote build " + JOB_ID.encode() + b"? [y/N]")
            os.write(main, b"y\n")
            output = _read_until(main, b"is Cancelled")
            assert proc.wait(timeout=60) == 130, output
            assert api.cancelled
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(main)


def test_ctrl_c_in_a_terminal_answered_no_leaves_the_build(tmp_path):
    with FakeApi(final=None) as api:
        main, child = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "boatyard", "build", str(_context(tmp_path, 10)), "-t", "user/app"],
            env=cli_env(api.url),
            stdin=child,
            stdout=child,
            stderr=child,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        os.close(child)
        try:
            _read_until(main, b"Step 1/2")
            proc.send_signal(signal.SIGINT)
            _read_until(main, b"[y/N]")
            os.write(main, b"\n")
            _read_until(main, b"goes on")
            assert proc.wait(timeout=60) == 130
            assert not api.cancelled
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(main)


def test_a_terminal_gets_a_progress_bar_with_bytes_rate_and_eta(tmp_path):
    with FakeApi() as api:
        main, child = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "boatyard", "build", str(_context(tmp_path, 3 * 1024 * 1024)), "-t", "user/app"],
            env={**cli_env(api.url), "COLUMNS": "120", "TERM": "xterm"},
            stdin=child,
            stdout=child,
            stderr=child,
            cwd=REPO_ROOT,
            start_new_session=True,
        )
        os.close(child)
        try:
            output = _read_until(main, b"Finished").decode(errors="replace")
            assert proc.wait(timeout=60) == 0, output
        finally:
            if proc.poll() is None:
                proc.kill()
            os.close(main)
    assert "Uploading" in output and "3.0/3.0 MiB" in output and "/s" in output and "0:00:00" in output


def test_secrets_and_an_ssh_key_are_read_locally_sent_once_and_never_printed(tmp_path):
    secret_file = tmp_path / "npmrc"
    secret_file.write_text("file-secret-" + "F1le" * 8)
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXkt" + "K3y" * 10 + "\n-----END OPENSSH PRIVATE KEY-----\n"
    key_file = tmp_path / "deploy_key"
    key_file.write_text(key)
    root = write_tree(tmp_path / "ctx", {"Dockerfile": "FROM busybox\nRUN --mount=type=secret,id=npmrc true\n"})
    with FakeApi() as api:
        env = cli_env(api.url, GH_TOKEN="env-secret-" + "E" * 20)
        done = run_cli(
            [
                "build",
                str(root),
                "-t",
                "user/app",
                "--engine",
                "buildkit",
                "--secret",
                f"id=npmrc,src={secret_file}",
                "--secret",
                "id=gh,env=GH_TOKEN",
                "--ssh",
                f"default={key_file}",
                "--cache-from",
                "user/app:latest",
                "-o",
                "json",
            ],
            env,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        (build,) = api.requests_to("/api/v1/build")
        sent = json.loads(multipart_parts(build)["Json"])
        assert sent == {
            "image_name": "user/app",
            "engine": "buildkit",
            "cache_from": ["user/app:latest"],
            "secrets": {"npmrc": secret_file.read_text(), "gh": "env-secret-" + "E" * 20},
            "ssh": key,
        }
        printed = done.stdout + done.stderr
        assert "F1le" not in printed and "EEEEE" not in printed and "K3yK3y" not in printed
        assert all("F1le" not in s.path for s in api.seen)  # nothing in a URL
