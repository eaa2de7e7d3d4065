"""Secrets, checked after every other test of the session (marker ``after_all_tests``; see
tests/support/ordering.py — the file name does not matter): the test registry's password (the leak canary) is
nowhere — not in any stack's DynamoDB items, S3 objects or SQS messages, not in job logs or the
workers' output, not in the Docker daemon's info, client config, images (history, labels, env) or
the registry's stored manifests and configs.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile

import pytest
import requests

from devstack.services import REGISTRY_ROOT, STATE_DIR
from tests.support import faults
from tests.support.canary import SESSION_STARTED, TEST_PASSWORD, TEST_REGISTRY_USER
from tests.support.http_jobs import credentials, logs, submit, wait_terminal

pytestmark = [pytest.mark.docker, pytest.mark.e2e, pytest.mark.after_all_tests]


def test_the_scanner_finds_a_planted_secret():
    """The scans below can fail: a password inside a gzipped tar member is found."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        data = f'{{"auth": "{TEST_PASSWORD}"}}'.encode()
        info = tarfile.TarInfo("config.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert "gunzip/tar:config.json" in faults.find_secret(gzip.compress(raw.getvalue()), TEST_PASSWORD)
    assert faults.find_secret(b"nothing here", TEST_PASSWORD) == []
    # the user's own Dockerfile text is exempt; the same secret in Env or a label is not
    config = {
        "rootfs": {},
        "history": [{"created_by": f"RUN echo {TEST_PASSWORD}"}],
        "config": {"Env": [f"REGISTRY_PASSWORD={TEST_PASSWORD}"]},
    }
    assert faults.find_secret(json.dumps(faults.without_user_instructions(config)), TEST_PASSWORD)
    config["config"]["Env"] = []
    assert not faults.find_secret(json.dumps(faults.without_user_instructions(config)), TEST_PASSWORD)


def test_no_leak_anywhere(local_stack, docker_host, registry, base_image):
    findings: list[str] = []
    # a build that uses the password end to end, through the shared local stack, then scan it
    job_id = submit(
        local_stack.api_url,
        {
            "image_name": f"{registry.host}/faults/leakcheck:1",
            "dockerfile": f"FROM {base_image}\nRUN echo leak-check\n",
            **credentials(registry),
        },
    )
    final = wait_terminal(local_stack.api_url, job_id, timeout=180)
    assert final["Status"] == "Finished", final
    text = logs(local_stack.api_url, job_id)
    findings += [f"job log {job_id}" for _ in faults.find_secret(text, TEST_PASSWORD)]
    findings += [f"status answer {job_id}" for _ in faults.find_secret(str(final), TEST_PASSWORD)]
    for path in (f"/api/v1/{job_id}/status", f"/api/v1/{job_id}/logs"):
        answer = requests.get(local_stack.api_url + path, timeout=10)
        findings += [f"GET {path}" for _ in faults.find_secret(answer.content, TEST_PASSWORD)]
    findings += [f"e2e stack: {f}" for f in faults.scan_aws(local_stack.aws_endpoint, TEST_PASSWORD)]
    # what the fault stacks and in-process runs of this session recorded before they stopped
    recorded = faults.recorded_leaks(SESSION_STARTED)
    findings += [f"{entry['where']}: {f}" for entry in recorded for f in entry["findings"]]
    # worker, API and moto output of every stack; the services' own logs
    log_files = sorted((STATE_DIR / "logs").glob("*.log")) + sorted(STATE_DIR.glob("*.log"))
    log_files += sorted(REGISTRY_ROOT.glob("registry-*/registry.log")) + [STATE_DIR / "faults-dockerd" / "dockerd.log"]
    findings += faults.scan_files(log_files, TEST_PASSWORD)
    # the Docker daemon: info, images under 127.0.0.1:* (history, labels, env), containers
    findings += faults.scan_docker(docker_host, TEST_PASSWORD)
    findings += faults.scan_registry_auths(TEST_PASSWORD, TEST_REGISTRY_USER)
    findings += faults.scan_files(faults.docker_client_config_files(), TEST_PASSWORD)
    # the registries' stored manifests, image configs and layers
    registry_data = sorted(REGISTRY_ROOT.glob("registry-*/data"))
    findings += faults.scan_files(registry_data, TEST_PASSWORD)
    scanned_logs = sum(1 for p in log_files if p.exists())
    line = faults.report(
        f"LEAKS: {len(findings)} places hold the test password "
        f"(scanned: e2e stack + {len(recorded)} recorded stack/in-process scans, {scanned_logs} log files, "
        f"docker info/images/containers, client config, {len(registry_data)} registry stores)"
    )
    assert len(recorded) >= 1 or scanned_logs >= 1, line
    assert not findings, line + "\n" + "\n".join(findings[:20])
