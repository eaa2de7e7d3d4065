"""infra/package.sh (chalice package + merge, offline) and infra/deploy.sh (against a fake `aws`)."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

import pytest

from tests.support.infra import INFRA, ROOT

VENV_BIN = ROOT / ".venv" / "bin"


def _tool(name: str) -> str:
    candidate = VENV_BIN / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name) or (str(pathlib.Path(sys.executable).parent / name))
    return found


@pytest.fixture(scope="module")
def packaged(tmp_path_factory) -> pathlib.Path:
    """build output of `bash infra/package.sh dev` in a temporary directory."""
    for needed in ("app.py", ".chalice/config.json", "worker/__main__.py"):
        if not (ROOT / needed).exists():
            pytest.skip(f"{needed} is not there yet: nothing to package")
    out = tmp_path_factory.mktemp("infra") / "dev"
    env = {
        **os.environ,
        "INFRA_OUT": str(out),
        "CHALICE": _tool("chalice"),
        "PYTHON": sys.executable,
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    answer = subprocess.run(
        ["bash", str(INFRA / "package.sh"), "dev"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr
    return out


def test_package_builds_the_merged_template_the_lambda_bundle_and_the_worker_bundle(packaged):
    assert (packaged / "sam.yaml").is_file()
    assert (packaged / "deployment.zip").stat().st_size > 0
    with tarfile.open(packaged / "worker.tar.gz") as bundle:
        names = set(bundle.getnames())
    for needed in (
        "worker/__main__.py",
        "chalicelib/domain/settings.py",
        "requirements-worker.txt",
        "requirements.txt",
        "infra/worker/boatyard-worker.service",
        "infra/worker/boatyard-lifecycle.service",
        "infra/worker/boatyard-lifecycle.sh",
    ):
        assert needed in names
    assert not any("__pycache__" in n for n in names)


def test_merged_template_passes_the_checks(packaged, ct):
    template = ct.load_template(packaged / "sam.yaml")
    assert ct.check_merged(template) == []
    resources = template["Resources"]
    # chalice's function, with the resources' names in its environment
    function = resources["APIHandler"]
    assert function["Type"] == "AWS::Serverless::Function"
    variables = function["Properties"]["Environment"]["Variables"]
    for name, ref in ct.LAMBDA_ENV_REFS.items():
        assert variables[name] == ref
    # the only IAM role the Lambda can use is the one from lambda-policy.json: kms:Decrypt only with TriggerKey
    roles = [k for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"]
    assert sorted(roles) == ["ApiHandlerRole", "KeyAuthorizerRole", "SendNotificationsRole", "WorkerRole"]
    api_documents = ct.role_policy_documents(template, "ApiHandlerRole")
    assert "kms:Encrypt" in ct.actions_of(api_documents)
    assert all(ct.decrypt_problems(d, "api") == [] for d in api_documents)
    authorizer_documents = ct.role_policy_documents(template, "KeyAuthorizerRole")
    assert all(ct.decrypt_problems(d, "authorizer") == [] for d in authorizer_documents)  # shares the API's file
    worker_actions = ct.actions_of(ct.role_policy_documents(template, "WorkerRole"))
    assert "kms:Decrypt" in worker_actions and not any(a.startswith("iam:") or "*" in a for a in worker_actions)
    assert "EndpointURL" in template["Outputs"]  # deploy.sh derives the UI's apiBase from it


def test_cfn_lint_passes_on_the_merged_template(packaged):
    answer = subprocess.run(
        [_tool("cfn-lint"), "--include-checks", "I", "--", str(packaged / "sam.yaml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr


def test_check_template_reports_a_lambda_without_the_policy_file(packaged, ct):
    template = ct.load_template(packaged / "sam.yaml")
    template["Resources"]["APIHandler"]["Properties"]["Role"] = {"Fn::GetAtt": ["DefaultRole", "Arn"]}
    assert any("iam_policy_file" in p for p in ct.check_merged(template))


# ---------------------------------------------------------------- deploy.sh

FAKE_AWS = r"""#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_AWS_LOG"], "a") as log:
    log.write(json.dumps(args) + "\n")
outputs = {
    "EndpointURL": "https://abc123.execute-api.eu-west-1.amazonaws.com/api/",
    "UiBucketName": "boatyard-prod-uibucket-xyz",
    "UiURL": "https://d111111abcdef8.cloudfront.net",
    "UiDistributionId": "E2QWRUHEXAMPLE",
    "WorkerGroupName": "boatyard-prod-workers",
}
if args[:2] == ["cloudformation", "describe-stacks"]:
    query = args[args.index("--query") + 1]
    key = query.split("OutputKey=='")[1].split("'")[0]
    print(outputs[key])
elif args[:2] == ["cloudformation", "package"]:
    out = args[args.index("--output-template-file") + 1]
    open(out, "w").write("packaged: true\n")
"""


def test_deploy_packages_deploys_and_uploads_the_ui_with_the_api_url(tmp_path):
    out = tmp_path / "build"
    out.mkdir()
    (out / "sam.yaml").write_text("Resources: {}\n")
    (out / "worker.tar.gz").write_bytes(b"bundle")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    log = tmp_path / "aws.log"
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "FAKE_AWS_LOG": str(log),
        "INFRA_OUT": str(out),
        "SKIP_PACKAGE": "1",
        "ARTIFACT_BUCKET": "my-artifacts",
        "VPC_ID": "vpc-1",
        "SUBNET_IDS": "subnet-a,subnet-b",
        "PARAMETERS": "WorkerMaxSize=8",
    }
    answer = subprocess.run(
        ["bash", str(INFRA / "deploy.sh"), "prod"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert answer.returncode == 0, answer.stdout + answer.stderr
    calls: list[list[str]] = [json.loads(line) for line in log.read_text().splitlines()]
    commands = [c[:2] for c in calls]
    first = {tuple(c): commands.index(c) for c in reversed(commands)}
    assert first[("s3", "cp")] < first[("cloudformation", "package")] < first[("cloudformation", "deploy")]
    assert first[("cloudformation", "deploy")] < first[("s3", "sync")]

    (upload,) = [c for c in calls if c[:2] == ["s3", "cp"] and c[2].endswith("worker.tar.gz")]
    worker_key = upload[3].removeprefix("s3://my-artifacts/")
    assert worker_key.startswith("boatyard/prod/worker-")

    (deploy,) = [c for c in calls if c[:2] == ["cloudformation", "deploy"]]
    assert deploy[deploy.index("--stack-name") + 1] == "boatyard-prod"
    assert "CAPABILITY_IAM" in deploy
    overrides = deploy[deploy.index("--parameter-overrides") + 1 :]
    assert overrides == [
        "ArtifactBucket=my-artifacts",
        f"WorkerArtifactKey={worker_key}",
        "VpcId=vpc-1",
        "SubnetIds=subnet-a,subnet-b",
        "WorkerMaxSize=8",
    ]

    (sync,) = [c for c in calls if c[:2] == ["s3", "sync"]]
    assert sync[3] == "s3://boatyard-prod-uibucket-xyz/"
    config = (out / "ui" / "config.js").read_text()
    assert 'window.BOATYARD_CONFIG = {apiBase: "https://abc123.execute-api.eu-west-1.amazonaws.com/api"};' in config
    assert (out / "ui" / "index.html").is_file()
    assert [c for c in calls if c[:2] == ["s3", "cp"] and c[3] == "s3://boatyard-prod-uibucket-xyz/config.js"]
    assert (ROOT / "ui" / "config.js").read_text() != config  # the repo's ui/ is not touched
    (invalidation,) = [c for c in calls if c[:2] == ["cloudfront", "create-invalidation"]]
    assert invalidation[invalidation.index("--distribution-id") + 1] == "E2QWRUHEXAMPLE"
    assert first[("s3", "sync")] < first[("cloudfront", "create-invalidation")]
    assert "UI:  https://d111111abcdef8.cloudfront.net" in answer.stdout
    refresh = [c for c in calls if c[:2] == ["autoscaling", "start-instance-refresh"]]
    assert refresh and "boatyard-prod-workers" in refresh[0]


def test_deploy_refuses_without_a_stage_or_an_artifact_bucket(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in {"STAGE", "ARTIFACT_BUCKET"}}
    no_stage = subprocess.run(["bash", str(INFRA / "deploy.sh")], env=env, capture_output=True, text=True)
    assert no_stage.returncode != 0 and "usage" in no_stage.stderr
    no_bucket = subprocess.run(["bash", str(INFRA / "deploy.sh"), "prod"], env=env, capture_output=True, text=True)
    assert no_bucket.returncode != 0 and "ARTIFACT_BUCKET" in no_bucket.stderr
