"""The ``boatyard`` command against the local stack over real HTTP, built by a real worker on the real
Docker daemon, pushed to the real registry (the session's ``local_stack`` of tests/conftest.py)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.cli.helpers import (
    DOCKERIGNORE_TREE,
    KEPT_FILES,
    cli_env,
    run_cli,
    run_cli_peak_rss,
    spawn_cli,
    write_tree,
)
from tests.nonce import RUN_NONCE
from tests.support.http_jobs import unique_image, wait_terminal
from tests.support.images import pull_and_run

pytestmark = [pytest.mark.e2e, pytest.mark.docker]


@pytest.fixture
def env(local_stack) -> dict[str, str]:
    """The CLI child's environment: the stack's API and the test registry's credentials."""
    return cli_env(
        local_stack.api_url,
        BOATYARD_REGISTRY_USER=local_stack.registry.username,
        BOATYARD_REGISTRY_PASSWORD=local_stack.registry.password,
    )


def _docker_cli_listing(docker_host: str, context: Path, tag: str) -> set[str]:
    """The files under /ctx of an image the Docker CLI (classic builder) builds from ``context``."""
    docker = shutil.which("docker")
    assert docker, "the docker CLI is needed (scripts/install-system-deps.sh installs docker.io)"
    denv = {
        **os.environ,
        "DOCKER_HOST": docker_host,
        "DOCKER_BUILDKIT": "0",
        "DOCKER_CONFIG": str(context.parent / "dcfg"),
    }
    built = subprocess.run(
        [docker, "build", "-q", "--network", "none", "-t", tag, str(context)],
        env=denv,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stderr
    try:
        ran = subprocess.run(
            [docker, "run", "--rm", "--network", "none", tag, "find", "/ctx", "-type", "f"],
            env=denv,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert ran.returncode == 0, ran.stderr
    finally:
        subprocess.run([docker, "rmi", "-f", tag], env=denv, capture_output=True, timeout=120)
    return _relative(ran.stdout)


def _relative(find_output: str) -> set[str]:
    return {line.strip()[len("/ctx/") :] for line in find_output.splitlines() if line.strip().startswith("/ctx/")}


def test_build_a_folder_honours_dockerignore_like_the_docker_cli(local_stack, docker_host, env, tmp_path):
    """Ignored files are absent from the pushed image, ``!`` exceptions present, exactly as ``docker build``
    of the same folder on the same daemon; a 2 MiB file sends the context through the presigned upload."""
    context = write_tree(
        tmp_path / "ctx",
        {
            **DOCKERIGNORE_TREE,
            "Dockerfile": f"FROM {local_stack.base_image}\nCOPY . /ctx/\nCMD find /ctx -type f\n",
        },
    )
    (context / "random.bin").write_bytes(os.urandom(2 * 1024 * 1024))  # incompressible: > the inline limit
    image = unique_image(local_stack.registry.host, "cli-ignore")
    done = run_cli(["build", str(context), "-t", image, "-o", "json"], env)
    assert done.returncode == 0, done.stderr
    assert "Uploading" in done.stderr and "Step 1/" in done.stderr
    digest = json.loads(done.stdout)["ImageDigest"]
    pushed = _relative(pull_and_run(docker_host, local_stack.registry, image, digest=digest))
    assert pushed == KEPT_FILES | {"random.bin", "Dockerfile"}
    assert pushed == _docker_cli_listing(docker_host, context, image.replace("cli-ignore", "cli-ignore-docker"))


def test_failing_build_exits_1_with_the_reason(local_stack, env, tmp_path):
    context = write_tree(
        tmp_path / "ctx", {"Dockerfile": f"FROM {local_stack.base_image}\nRUN echo failing-now && exit 3\n"}
    )
    done = run_cli(["build", str(context), "-t", unique_image(local_stack.registry.host, "cli-fail")], env)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "failing-now" in done.stdout
    assert "failed: " in done.stderr and "non-zero code: 3" in done.stderr
    assert local_stack.registry.password not in done.stdout + done.stderr


def test_json_output_is_one_parseable_document(local_stack, env, tmp_path):
    context = write_tree(tmp_path / "ctx", {"Dockerfile": f"FROM {local_stack.base_image}\nRUN echo json-build\n"})
    image = unique_image(local_stack.registry.host, "cli-json")
    done = run_cli(["build", str(context), "-t", image, "--output", "json"], env)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["Status"] == "Finished" and answer["ImageName"] == image
    assert answer["ImageDigest"].startswith("sha256:") and answer["JobIdentifier"]
    assert "json-build" in done.stderr  # the log goes to stderr in json mode
    status = run_cli(["status", answer["JobIdentifier"], "-o", "json"], env)
    assert json.loads(status.stdout)["ImageDigest"] == answer["ImageDigest"]
    # an ended job cannot be cancelled: exit 1 with the API's reason
    cancelled = run_cli(["cancel", answer["JobIdentifier"]], env)
    assert cancelled.returncode == 1 and "already ended" in cancelled.stderr


def test_detach_then_logs_follow(local_stack, env, tmp_path):
    context = write_tree(
        tmp_path / "ctx",
        {
            "Dockerfile": f"FROM {local_stack.base_image}\nRUN : {RUN_NONCE} && echo detached-one && sleep 2 && echo detached-two\n"
        },
    )
    image = unique_image(local_stack.registry.host, "cli-detach")
    started = time.monotonic()
    submitted = run_cli(["build", str(context), "-t", image, "--detach", "--quiet"], env)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    assert len(job_id) == 36 and submitted.stderr == ""
    followed = run_cli(["logs", "-f", job_id], env)
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.index("detached-one") < followed.stdout.index("detached-two")
    assert "Finished" in followed.stderr and time.monotonic() - started > 2
    again = run_cli(["logs", job_id], env)
    assert again.returncode == 0 and "detached-two" in again.stdout
    status = run_cli(["status", job_id], env)
    assert status.stdout.startswith("Finished") and image in status.stdout


def _spawn_long_build(local_stack, env, tmp_path, name: str, *flags: str) -> tuple[subprocess.Popen, str]:
    """A build that sleeps; returns the CLI process and the job id once the build is running."""
    context = write_tree(
        tmp_path / name, {"Dockerfile": f"FROM {local_stack.base_image}\nRUN echo long-build-started && sleep 120\n"}
    )
    proc = spawn_cli(["build", str(context), "-t", unique_image(local_stack.registry.host, name), *flags], env)
    job_id = ""
    deadline = time.monotonic() + 180
    assert proc.stderr is not None  # spawn_cli pipes it
    for line in proc.stderr:  # "Build <id> submitted"
        if line.startswith("Build ") and "submitted" in line:
            job_id = line.split()[1]
            break
    assert job_id, "the CLI did not submit"
    while time.monotonic() < deadline:
        logs = requests.get(f"{local_stack.api_url}/api/v1/{job_id}/logs", timeout=10).json()["Logs"]
        if "long-build-started" in logs:
            return proc, job_id
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the long build never started")


def test_ctrl_c_with_cancel_on_interrupt_cancels_the_build(local_stack, env, tmp_path):
    proc, job_id = _spawn_long_build(local_stack, env, tmp_path, "cli-sigint", "--cancel-on-interrupt")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"build {job_id} is Cancelled" in stderr
    assert wait_terminal(local_stack.api_url, job_id)["Status"] == "Cancelled"


def test_ctrl_c_in_a_script_leaves_the_build_running(local_stack, env, tmp_path):
    """Without a terminal to ask on and without --cancel-on-interrupt, Ctrl-C only stops watching."""
    proc, job_id = _spawn_long_build(local_stack, env, tmp_path, "cli-sigint-keep")
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"boatyard logs -f {job_id}" in stderr
    status = requests.get(f"{local_stack.api_url}/api/v1/{job_id}/status", timeout=10).json()
    assert status["Phase"] in ("building", "pushing"), status
    done = run_cli(["cancel", job_id], env)  # and the cancel command stops it
    assert done.returncode == 0 and done.stdout.strip() == "Cancelled", done.stderr
    assert wait_terminal(local_stack.api_url, job_id)["Status"] == "Cancelled"


def test_jobs_reports_a_missing_history_or_lists_it(local_stack, env):
    done = run_cli(["jobs", "-o", "json"], env)
    if done.returncode == 0:  # an API with the history endpoint
        assert isinstance(json.loads(done.stdout)["Jobs"], list)
    else:
        assert done.returncode == 2 and "no build history" in done.stderr, done.stderr


def test_tar_url_source(local_stack, env, docker_host):
    from devstack.archive_server import make_tar_gz

    archive = make_tar_gz({"Dockerfile": f"FROM {local_stack.base_image}\nCMD echo from-a-tar-url\n"})
    url = local_stack.archive_server.add_file(f"cli-{time.time_ns()}.tar.gz", archive)
    image = unique_image(local_stack.registry.host, "cli-tarurl")
    done = run_cli(["build", "--tar-url", url, "-t", image, "-q", "-o", "json"], env)
    assert done.returncode == 0, done.stderr
    digest = json.loads(done.stdout)["ImageDigest"]
    assert "from-a-tar-url" in pull_and_run(docker_host, local_stack.registry, image, digest=digest)


def test_unknown_job_and_unreachable_api(local_stack, env):
    missing = run_cli(["status", "00000000-0000-4000-8000-000000000000"], env)
    assert missing.returncode == 2 and "HTTP 404" in missing.stderr
    bad = run_cli(["status", "../../etc"], env)
    assert bad.returncode == 2
    down = run_cli(["status", "00000000-0000-4000-8000-000000000000", "--api", "http://127.0.0.1:9"], env)
    assert down.returncode == 3 and "cannot reach the API" in down.stderr


@pytest.mark.slow
def test_a_300_mib_folder_is_sent_with_little_memory(local_stack, env, tmp_path):
    """Packing, gzip and upload stream from disk: the CLI's peak RSS stays ≤ 100 MiB for a 300 MiB context."""
    context = write_tree(
        tmp_path / "big", {"Dockerfile": f"FROM {local_stack.base_image}\nCOPY small.txt /\n", "small.txt": "s"}
    )
    chunk = os.urandom(1024 * 1024)
    for index in range(30):  # 30 files x 10 MiB, incompressible (gzip's 32 KiB window cannot see the 1 MiB repeats)
        with open(context / f"data-{index:02d}.bin", "wb") as handle:
            for part in range(10):
                handle.write(bytes([index, part]) + chunk[2:])
    started = time.monotonic()
    done, peak_mib = run_cli_peak_rss(
        ["build", str(context), "-t", unique_image(local_stack.registry.host, "cli-big"), "--detach", "-q"], env
    )
    seconds = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    print(f"300 MiB context: CLI peak RSS {peak_mib:.1f} MiB, pack + upload + submit {seconds:.1f} s")
    stdout = done.stdout
    job_id = stdout.strip()
    requests.post(f"{local_stack.api_url}/api/v1/{job_id}/cancel", timeout=30)  # the build itself is not the point
    assert peak_mib <= 100, f"peak RSS {peak_mib:.1f} MiB"


def test_build_options_reach_the_build(local_stack, env, docker_host, tmp_path):
    """-f, --build-arg, --target and a second -t travel as the API's build options and take effect."""
    base = local_stack.base_image
    context = write_tree(
        tmp_path / "ctx",
        {
            "Dockerfile": f"FROM {base}\nRUN echo the root Dockerfile must not be used && exit 9\n",
            "sub/alt.Dockerfile": (
                f'FROM {base} AS first\nARG GREETING=unset\nRUN echo "greeting=$GREETING" > /greeting\n'
                "FROM first AS second\nRUN echo second > /second\n"
            ),
        },
    )
    image = unique_image(local_stack.registry.host, "cli-options")
    repository, _, tag = image.rpartition(":")
    done = run_cli(
        [
            "build",
            str(context),
            "-f",
            str(context / "sub/alt.Dockerfile"),
            "-t",
            image,
            "-t",
            f"{repository}:extra",
            "--build-arg",
            "GREETING=hello-arg",
            "--target",
            "first",
            "--no-cache",
            "-o",
            "json",
        ],
        env,
    )
    assert done.returncode == 0, done.stderr
    digest = json.loads(done.stdout)["ImageDigest"]
    output = pull_and_run(
        docker_host, local_stack.registry, image, ["sh", "-c", "cat /greeting; ls /second 2>&1; true"], digest=digest
    )
    assert (
        "greeting=hello-arg" in output and "No such file" in output
    )  # the arg reached RUN; the target stopped at `first`
    path = repository.split("/", 1)[1]
    assert local_stack.registry.get(f"/v2/{path}/manifests/extra")[0] == 200  # the extra tag was pushed too
