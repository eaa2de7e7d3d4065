"""infra/resources.yaml, lambda-policy.json and the worker's systemd units, read offline."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from chalicelib.domain.settings import load_settings
from tests.support.infra import INFRA, ROOT

SETTINGS_SOURCE = (ROOT / "chalicelib" / "domain" / "settings.py").read_text(encoding="utf-8")


def _res(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]["Properties"]


def _refs(value: Any) -> set[str]:
    """Logical ids a piece of template references (Ref, GetAtt, ${X} / ${X.Attr} in Sub)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref":
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0])
            elif key == "Fn::Sub":
                text = inner if isinstance(inner, str) else inner[0]
                local = set() if isinstance(inner, str) else set(inner[1])  # names the Sub defines itself
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^!}][^}]*)\}", text)} - local
                if not isinstance(inner, str):
                    found |= _refs(inner[1])
            else:
                found |= _refs(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _refs(inner)
    return found


def test_resources_template_passes_the_package_checks(ct, resources_template):
    assert ct.check_resources(resources_template) == []


def test_every_reference_resolves(resources_template, ct):
    known = set(resources_template["Resources"]) | set(resources_template["Parameters"])
    # chalice's own resources that the merge template and lambda-policy.json may use
    known |= {"RestAPI", "APIHandler", "SendNotifications", "SendNotificationsRole"}
    pseudo = {"AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::Partition", "AWS::URLSuffix", "AWS::NoValue"}
    used = _refs(resources_template) | _refs(ct.lambda_policy()) | _refs(ct.sender_policy())
    assert used - known - pseudo == set()


# ---------------------------------------------------------------- storage and queue


def test_table_matches_what_the_job_store_uses(resources_template):
    table = _res(resources_template, "JobsTable")
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert {(a["AttributeName"], a["AttributeType"]) for a in table["AttributeDefinitions"]} == {
        ("pk", "S"),
        ("sk", "S"),
        ("owner", "S"),
        ("created_at", "S"),
        ("trigger_owner", "S"),
    }
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    # the same indexes the local stack makes (devstack/resources.py): history's and the triggers'
    from devstack.resources import INDEXES

    assert table["GlobalSecondaryIndexes"] == INDEXES  # the jobs' owner index and the triggers' owner index
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_contexts_bucket_is_private_encrypted_expiring_and_accepts_browser_posts(resources_template):
    bucket = _res(resources_template, "ContextsBucket")
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    expiring = {r.get("Prefix"): r.get("ExpirationInDays") for r in bucket["LifecycleConfiguration"]["Rules"]}
    assert expiring["contexts/"] and expiring["uploads/"]
    (cors,) = bucket["CorsConfiguration"]["CorsRules"]
    assert cors["AllowedMethods"] == ["POST"]
    assert cors["AllowedOrigins"] == [{"Fn::Sub": "https://${UiDistribution.DomainName}"}]


def test_ui_bucket_is_private_and_only_its_distribution_reads_it(resources_template):
    bucket = _res(resources_template, "UiBucket")
    assert "WebsiteConfiguration" not in bucket  # no plain-HTTP website endpoint
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    statements = _res(resources_template, "UiBucketPolicy")["PolicyDocument"]["Statement"]
    allows = [s for s in statements if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Sid": "OnlyTheUiDistributionReads",
            "Effect": "Allow",
            "Principal": {"Service": "cloudfront.amazonaws.com"},
            "Action": "s3:GetObject",
            "Resource": {"Fn::Sub": "${UiBucket.Arn}/*"},
            "Condition": {
                "StringEquals": {
                    "AWS:SourceArn": {
                        "Fn::Sub": "arn:${AWS::Partition}:cloudfront::${AWS::AccountId}:distribution/${UiDistribution}"
                    }
                }
            },
        }
    ]
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_queue_redrives_to_the_dead_letter_queue_after_attempts_plus_two(resources_template):
    queue = _res(resources_template, "JobQueue")
    dlq = _res(resources_template, "DeadLetterQueue")
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]}
    assert redrive["maxReceiveCount"] == {"Fn::FindInMap": ["ReceiveCount", {"Ref": "MaxAttempts"}, "MaxReceiveCount"]}
    attempts = resources_template["Parameters"]["MaxAttempts"]
    table = resources_template["Mappings"]["ReceiveCount"]
    assert set(attempts["AllowedValues"]) == set(table)
    for value in attempts["AllowedValues"]:
        assert table[value]["MaxReceiveCount"] == int(value) + 2
    assert int(attempts["Default"]) == load_settings({}).max_attempts
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert dlq["MessageRetentionPeriod"] > queue["MessageRetentionPeriod"] > load_settings({}).queue_timeout_seconds
    assert (
        resources_template["Parameters"]["VisibilityTimeoutSeconds"]["Default"]
        == load_settings({}).visibility_timeout_seconds
    )


def test_credentials_key_rotates_has_an_alias_and_only_the_worker_decrypts(resources_template):
    key = _res(resources_template, "CredentialsKey")
    assert key["EnableKeyRotation"] is True
    assert _res(resources_template, "CredentialsKeyAlias")["TargetKeyId"] == {"Ref": "CredentialsKey"}
    deny = [s for s in key["KeyPolicy"]["Statement"] if s["Effect"] == "Deny"]
    assert deny == [
        {
            "Sid": "OnlyTheWorkerDecrypts",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "kms:Decrypt",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["WorkerRole", "Arn"]}}},
        }
    ]


# ---------------------------------------------------------------- IAM

API_ACTIONS = {
    "logs:CreateLogStream", "logs:PutLogEvents",
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
    "dynamodb:DeleteItem", "dynamodb:BatchGetItem",  # triggers: delete one; a trigger's recent builds
    "s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload", "s3:ListBucket",
    "sqs:SendMessage", "sqs:GetQueueUrl",
    "kms:Encrypt", "kms:Decrypt",  # Decrypt: only TriggerKey, only trigger-bound blobs (test below)
}  # fmt: skip
WORKER_ACTIONS = {
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl", "sqs:GetQueueAttributes",
    "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:ConditionCheckItem",
    "s3:GetObject", "s3:ListBucket",
    "kms:Decrypt",
    "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams",
    "autoscaling:CompleteLifecycleAction",
    "sqs:SendMessage",  # to NotifyQueue only: a phase change of a job with subscriptions queues its notification
}  # fmt: skip
# The worker never creates a job (the API does: jobstore.create_job) nor deletes a context (S3 expires them).
# Its log chunks are fenced transactions: a ConditionCheck on the job item and UpdateItems creating new chunk keys
# (TransactWriteItems is authorized per item).  tests/aws/test_worker_iam.py records the calls a worker really makes.


def test_api_role_has_exactly_what_the_api_uses_and_cannot_decrypt_job_credentials(ct):
    policy = ct.lambda_policy()
    assert ct.actions_of([policy]) == API_ACTIONS
    assert ct.iam_problems(policy, "api", ct.API_FORBIDDEN_ACTIONS) == []
    assert ct.decrypt_problems(policy, "api") == []
    decrypting = [s for s in policy["Statement"] if "kms:Decrypt" in ct._as_list(s["Action"])]
    assert [s["Resource"] for s in decrypting] == [{"Fn::GetAtt": ["TriggerKey", "Arn"]}]  # never CredentialsKey
    assert all(s["Condition"] == {"Null": {"kms:EncryptionContext:trigger_id": "false"}} for s in decrypting)


def test_the_trigger_key_only_serves_trigger_bound_blobs(resources_template):
    key = _res(resources_template, "TriggerKey")
    (deny,) = [s for s in key["KeyPolicy"]["Statement"] if s["Effect"] == "Deny"]
    assert set(deny["Action"]) == {"kms:Decrypt", "kms:Encrypt"}
    assert deny["Condition"] == {"Null": {"kms:EncryptionContext:trigger_id": "true"}}


def test_worker_role_has_exactly_what_the_worker_uses(ct, resources_template):
    documents = ct.role_policy_documents(resources_template, "WorkerRole")
    assert ct.actions_of(documents) == WORKER_ACTIONS
    for document in documents:
        assert ct.iam_problems(document, "worker") == []
        for statement in document["Statement"]:
            assert statement["Effect"] == "Allow"
            assert not any(a.startswith("iam:") or "*" in a for a in ct._as_list(statement["Action"]))


def test_every_statement_is_scoped_to_this_stack_s_resources(ct, resources_template):
    """No "*" and no foreign ARNs: each resource is an ARN built from a stack resource or the stack name."""
    documents = [ct.lambda_policy(), *ct.role_policy_documents(resources_template, "WorkerRole")]
    for document in documents:
        for statement in document["Statement"]:
            for resource in ct._as_list(statement["Resource"]):
                assert resource != "*"
                assert isinstance(resource, dict), resource  # an intrinsic: GetAtt of ours, or Sub with our names
                text = json.dumps(resource)
                ours = _refs(resource) & set(resources_template["Resources"])
                assert ours or "${AWS::StackName}" in text or "${ArtifactBucket}/${WorkerArtifactKey}" in text, text


def test_iam_checker_catches_what_it_must(ct):
    bad = {
        "Statement": [
            {"Effect": "Allow", "Action": "iam:PassRole", "Resource": "arn:aws:iam::1:role/x"},
            {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
            {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        ]
    }
    problems = ct.iam_problems(bad, "bad", ct.API_FORBIDDEN_ACTIONS) + ct.decrypt_problems(bad, "bad")
    assert len(problems) == 5
    credentials = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["kms:Decrypt"],
                "Sid": "x",
                "Resource": {"Fn::GetAtt": ["CredentialsKey", "Arn"]},
                "Condition": {"Null": {"kms:EncryptionContext:trigger_id": "false"}},
            }
        ]
    }
    assert len(ct.decrypt_problems(credentials, "api")) == 1


# ---------------------------------------------------------------- workers


def test_launch_template_requires_imdsv2_with_one_hop(resources_template):
    data = _res(resources_template, "WorkerLaunchTemplate")["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert data["MetadataOptions"]["HttpPutResponseHopLimit"] == 1
    assert data["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] is True


def test_worker_env_file_sets_every_setting_from_the_stack(ct, resources_template):
    env = ct.worker_env_file(resources_template)
    for name in env:
        if name.startswith("BOATYARD_") or name == "DOCKER_HOST":
            assert f'"{name}"' in SETTINGS_SOURCE, f"{name} is not read by chalicelib/domain/settings.py"
    expected = {
        "AWS_DEFAULT_REGION": "${AWS::Region}",
        "BOATYARD_TABLE": "${JobsTable}",
        "BOATYARD_BUCKET": "${ContextsBucket}",
        "BOATYARD_QUEUE_NAME": "${JobQueue.QueueName}",
        "BOATYARD_QUEUE_URL": "${JobQueue}",
        "BOATYARD_DLQ_NAME": "${DeadLetterQueue.QueueName}",
        "BOATYARD_KMS_KEY_ID": "${CredentialsKey.Arn}",
        "BOATYARD_WORKER_CONCURRENCY": "${WorkerConcurrency}",
        "BOATYARD_MAX_ATTEMPTS": "${MaxAttempts}",
        "BOATYARD_VISIBILITY_TIMEOUT_SECONDS": "${VisibilityTimeoutSeconds}",
        "BOATYARD_SHUTDOWN_GRACE_SECONDS": "${ShutdownGraceSeconds}",
    }
    assert {k: env[k] for k in expected} == expected
    assert set(ct.WORKER_ENV_VARS) <= set(env)
    # builds stay on Docker's bridge network: with the hop limit of 1 they cannot reach the host's IMDS
    assert env.get("BOATYARD_BUILD_NETWORK", "") != "host"


def test_deployment_allows_only_the_classic_engine_by_default(ct, resources_template):
    """BuildKit builds skip the gVisor runtime (docs/security.md): a deployment turns them on explicitly."""
    parameter = resources_template["Parameters"]["AllowedEngines"]
    assert parameter["Default"] == "classic"
    assert _res(resources_template, "APIHandler")["Environment"]["Variables"]["BOATYARD_ALLOWED_ENGINES"] == {
        "Ref": "AllowedEngines"
    }
    assert ct.worker_env_file(resources_template)["BOATYARD_ALLOWED_ENGINES"] == "${AllowedEngines}"
    for value in parameter["AllowedValues"]:
        load_settings({"BOATYARD_ALLOWED_ENGINES": value})  # every choice is a valid setting


def test_lambda_env_names_are_settings_the_app_reads(ct, resources_template):
    variables = _res(resources_template, "APIHandler")["Environment"]["Variables"]
    assert "AWS_DEFAULT_REGION" not in variables  # reserved by Lambda, set by the runtime
    for name in variables:
        assert f'"{name}"' in SETTINGS_SOURCE, f"{name} is not read by chalicelib/domain/settings.py"


def test_user_data_installs_docker_the_worker_and_its_units(ct, resources_template):
    script = ct.user_data_script(resources_template)
    assert script.startswith("#!/bin/bash\n")
    assert "dnf install -y docker" in script and "systemctl enable --now docker" in script
    assert "${ArtifactBucket}/${WorkerArtifactKey}" in script
    assert "pip install --quiet -r /opt/boatyard/app/requirements-worker.txt" in script
    installed = re.findall(r"/opt/boatyard/app/(infra/worker/[\w.-]+)", script)
    assert set(installed) == {
        "infra/worker/boatyard-worker.service",
        "infra/worker/boatyard-lifecycle.service",
        "infra/worker/boatyard-lifecycle.sh",
        "infra/worker/boatyard-build-firewall.service",
    }
    for path in installed:
        assert (ROOT / path).is_file()
    assert "TimeoutStopSec=$(( ${ShutdownGraceSeconds} + 60 ))" in script
    assert "systemctl enable --now boatyard-worker.service boatyard-lifecycle.service" in script
    # the bundle infra/package.sh builds has what the user data unpacks
    package = (INFRA / "package.sh").read_text(encoding="utf-8")
    for part in ("chalicelib", "worker", "requirements-worker.txt", "infra/worker"):
        assert part in package


def _unit(path) -> dict[str, list[str]]:
    values: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key.strip(), []).append(value.strip())
    return values


def test_worker_unit_restarts_stops_gently_and_waits_out_the_grace(resources_template):
    unit = _unit(INFRA / "worker" / "boatyard-worker.service")
    assert unit["ExecStart"] == ["/opt/boatyard/venv/bin/python -m worker"]
    assert unit["EnvironmentFile"] == ["/etc/boatyard/worker.env"]  # what the user data writes
    assert unit["Restart"] == ["always"]
    assert unit["KillSignal"] == ["SIGTERM"]
    assert unit["KillMode"] == ["mixed"]  # SIGTERM to the worker only; SIGKILL to all after the timeout
    assert "docker.service" in unit["Requires"][0]
    grace_default = load_settings({}).shutdown_grace_seconds
    assert int(unit["TimeoutStopSec"][0]) >= grace_default
    assert int(unit["TimeoutStopSec"][0]) >= resources_template["Parameters"]["ShutdownGraceSeconds"]["Default"]
    assert f"BOATYARD_SHUTDOWN_GRACE_SECONDS={grace_default}" in unit["Environment"]


def test_worker_unit_caps_its_memory():
    unit = _unit(INFRA / "worker" / "boatyard-worker.service")
    value = unit["MemoryMax"][0]
    units = {"K": 1024, "M": 1024**2, "G": 1024**3}
    size = int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)
    assert 256 * 1024**2 <= size <= 4 * 1024**3, value  # room for the worker, far below the host's memory


def test_termination_hook_outlasts_the_grace_and_the_drain_script_completes_it(resources_template):
    group = _res(resources_template, "WorkerGroup")
    (hook,) = [h for h in group["LifecycleHookSpecificationList"] if h["LifecycleHookName"] == "boatyard-drain"]
    assert hook["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert hook["DefaultResult"] == "CONTINUE"
    grace = resources_template["Parameters"]["ShutdownGraceSeconds"]
    assert hook["HeartbeatTimeout"] >= grace["MaxValue"] + 60
    assert group["AutoScalingGroupName"] == {"Fn::Sub": "${AWS::StackName}-workers"}
    script = (INFRA / "worker" / "boatyard-lifecycle.sh").read_text(encoding="utf-8")
    assert "autoscaling/target-lifecycle-state" in script
    assert script.index("systemctl stop boatyard-worker.service") < script.index("complete-lifecycle-action")
    assert (
        f"BOATYARD_LIFECYCLE_HOOK={hook['LifecycleHookName']}"
        in _res(resources_template, "WorkerLaunchTemplate")["LaunchTemplateData"]["UserData"]["Fn::Base64"]["Fn::Sub"]
    )


def test_group_scales_on_backlog_per_in_service_instance(resources_template):
    group = _res(resources_template, "WorkerGroup")
    assert {"Granularity": "1Minute", "Metrics": ["GroupInServiceInstances", "GroupDesiredCapacity"]} in group[
        "MetricsCollection"
    ]
    policy = _res(resources_template, "WorkerBacklogScaling")
    assert policy["PolicyType"] == "TargetTrackingScaling"
    # scale-in is the idle alarm's job only (test_operations_template.py): never under a running build
    assert policy["TargetTrackingConfiguration"]["DisableScaleIn"] is True
    queries = {q["Id"]: q for q in policy["TargetTrackingConfiguration"]["CustomizedMetricSpecification"]["Metrics"]}
    backlog = queries["backlog"]["MetricStat"]["Metric"]
    hosts = queries["hosts"]["MetricStat"]["Metric"]
    assert (backlog["Namespace"], backlog["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert backlog["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["JobQueue", "QueueName"]}}]
    assert (hosts["Namespace"], hosts["MetricName"]) == ("AWS/AutoScaling", "GroupInServiceInstances")
    assert [q["Id"] for q in queries.values() if q["ReturnData"]] == ["backlogPerInstance"]
    assert queries["backlogPerInstance"]["Expression"] == "backlog / hosts"


@pytest.mark.parametrize("script", ["package.sh", "deploy.sh", "worker/boatyard-lifecycle.sh"])
def test_scripts_are_valid_bash(script):
    subprocess.run(["bash", "-n", str(INFRA / script)], check=True)


def test_worker_hosts_build_in_gvisor_behind_the_build_firewall(ct, resources_template):
    """gVisor pinned and checked, made dockerd's default runtime before dockerd starts; the firewall unit before the worker."""
    script = ct.user_data_script(resources_template)
    assert "releases/release/${GvisorRelease}/" in script and "sha512sum -c runsc.sha512" in script
    assert resources_template["Parameters"]["GvisorRelease"]["Default"]
    daemon_json = script.split("cat >/etc/docker/daemon.json <<'JSON'\n", 1)[1].split("JSON\n", 1)[0]
    config = json.loads(daemon_json)
    assert config["default-runtime"] == load_settings({}).build_runtime == "runsc"
    assert config["runtimes"]["runsc"]["path"] == "/usr/local/bin/runsc"
    assert script.index("/etc/docker/daemon.json") < script.index("systemctl enable --now docker")
    assert script.index("enable --now boatyard-build-firewall.service") < script.index(
        "enable --now boatyard-worker.service"
    )
    unit = _unit(INFRA / "worker" / "boatyard-build-firewall.service")
    assert unit["ExecStart"] == ["/opt/boatyard/venv/bin/python -m worker.firewall --apply --bridge docker0"]
    assert unit["PartOf"] == ["docker.service"] and unit["RequiredBy"] == ["boatyard-worker.service"]
