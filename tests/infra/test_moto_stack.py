"""infra/resources.yaml deployed into moto's CloudFormation (in process), then used by chalicelib.

moto cannot create every resource type the template uses; those are removed
for this test and listed in UNSUPPORTED_BY_MOTO (the static tests in
test_resources_template.py check them instead).  The test fails if moto
starts supporting one of them, or if the template grows another type moto
lacks, so the list stays honest.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from chalicelib.domain.jobs import Job, SourceKind
from chalicelib.domain.settings import load_settings
from chalicelib.stores import contexts, queue, sealing
from chalicelib.stores.services import Services

STACK = "boatyard-infratest"
UNSUPPORTED_BY_MOTO = {
    "AWS::S3::BucketPolicy",  # ContextsBucketPolicy (TLS only), UiBucketPolicy (CloudFront only)
    "AWS::AutoScaling::ScalingPolicy",  # backlog target tracking, scale out from / in to zero
    "AWS::AutoScaling::WarmPool",  # WorkerWarmPool (only with WarmPoolSize > 0)
    "AWS::CloudWatch::Alarm",  # scaling and operator alarms (test_operations_template.py checks them)
    "AWS::CloudFront::Distribution",  # UiDistribution: HTTPS in front of the UI bucket
    "AWS::CloudFront::OriginAccessControl",  # UiOriginAccessControl
    "AWS::CloudFront::ResponseHeadersPolicy",  # UiResponseHeadersPolicy (CSP and security headers)
    "AWS::ApiGateway::UsagePlan",  # ApiUsagePlan (the outer throttle on chalice's API)
}


def _drop_references(value: Any, dropped: set[str]) -> Any:
    """``value`` with every Ref/GetAtt/${...} of a dropped resource replaced by the text ``dropped-<id>``."""
    if isinstance(value, list):
        return [_drop_references(v, dropped) for v in value]
    if not isinstance(value, dict):
        return value
    if value.get("Ref") in dropped:
        return f"dropped-{value['Ref']}"
    if "Fn::GetAtt" in value and value["Fn::GetAtt"][0] in dropped:
        return f"dropped-{value['Fn::GetAtt'][0]}"
    if "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        text = value["Fn::Sub"]
        for logical_id in dropped:
            text = re.sub(r"\$\{" + logical_id + r"(\.[A-Za-z.]+)?\}", f"dropped-{logical_id}", text)
        return {"Fn::Sub": text}
    return {k: _drop_references(v, dropped) for k, v in value.items()}


def _moto_template(template: dict[str, Any], ct) -> dict[str, Any]:
    """resources.yaml as a standalone stack moto can create.

    - the ``APIHandler`` fragment (merged into chalice's function at package
      time) becomes stack outputs ``Env<NAME>`` with the very intrinsics the
      Lambda gets, so moto resolves the API's environment;
    - the API role chalice makes from infra/lambda-policy.json is added as a
      plain role, so its intrinsics must resolve too;
    - types moto lacks are dropped (nothing else may reference them).
    """
    template = copy.deepcopy(template)
    resources = template["Resources"]
    variables = resources.pop("APIHandler")["Properties"]["Environment"]["Variables"]
    # fragments merged into chalice's resources at package time (RestAPI: name, throttling, gateway
    # responses; KeyAuthorizer: the authorizer function's name and environment)
    for fragment in [k for k, r in resources.items() if "Type" not in r]:
        del resources[fragment]
    for name, value in variables.items():
        template["Outputs"]["Env" + name.replace("_", "")] = {"Value": value}
    resources["ApiHandlerRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            },
            "Policies": [{"PolicyName": "api", "PolicyDocument": ct.lambda_policy()}],
        },
    }
    # and the notification sender's role (infra/notify-sender-policy.json), which NotifyKey's policy names
    resources["SendNotificationsRole"] = copy.deepcopy(resources["ApiHandlerRole"])
    resources["SendNotificationsRole"]["Properties"]["Policies"] = [
        {"PolicyName": "sender", "PolicyDocument": ct.sender_policy()}
    ]
    dropped = {k for k, r in resources.items() if r["Type"] in UNSUPPORTED_BY_MOTO}
    for logical_id in dropped:
        del resources[logical_id]
    template = _drop_references(template, dropped)
    assert not any(d in json.dumps(template) for d in (f'"{x}"' for x in dropped))
    return template


@pytest.fixture(scope="module")
def stack(ct) -> Iterator[dict[str, Any]]:
    """The stack created in moto (once per module): outputs, physical ids, the Lambda's environment."""
    resources_template = ct.load_template(ct.RESOURCES_TEMPLATE)
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
        for name in list(os.environ):
            if name.startswith("BOATYARD_"):
                monkeypatch.delenv(name)
        ec2 = boto3.client("ec2")
        vpc = ec2.describe_vpcs()["Vpcs"][0]["VpcId"]
        subnets = [s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]][:2]
        cfn = boto3.client("cloudformation")
        parameters = {
            "VpcId": vpc,
            "SubnetIds": ",".join(subnets),
            "ArtifactBucket": "boatyard-artifacts",
            "WorkerArtifactKey": "boatyard/test/worker-0123.tar.gz",
        }
        cfn.create_stack(
            StackName=STACK,
            TemplateBody=json.dumps(_moto_template(resources_template, ct)),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            Capabilities=["CAPABILITY_IAM"],
        )
        described = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
        assert described["StackStatus"] == "CREATE_COMPLETE", described.get("StackStatusReason")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in described["Outputs"]}
        physical = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        }
        lambda_env = {
            name: outputs["Env" + name.replace("_", "")]
            for name in resources_template["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
        }
        yield {"outputs": outputs, "physical": physical, "lambda_env": lambda_env}


def test_moto_lacks_exactly_the_types_filtered_out(resources_template):
    from moto.cloudformation.parsing import get_model_map

    types = {r["Type"] for r in resources_template["Resources"].values() if "Type" in r}
    supported = set(get_model_map())
    assert UNSUPPORTED_BY_MOTO <= types
    assert types - supported == UNSUPPORTED_BY_MOTO


def test_table_has_the_key_the_store_expects(stack):
    name = stack["outputs"]["JobsTableName"]
    assert stack["lambda_env"]["BOATYARD_TABLE"] == name
    ddb = boto3.client("dynamodb")
    table = ddb.describe_table(TableName=name)["Table"]
    assert table["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    # moto's CloudFormation does not apply TimeToLiveSpecification or
    # PointInTimeRecoverySpecification (moto 5.x); test_resources_template.py
    # checks both in the template.


def test_queue_redrives_to_the_dead_letter_queue(stack):
    sqs = boto3.client("sqs")
    url = stack["outputs"]["JobQueueUrl"]
    assert stack["lambda_env"]["BOATYARD_QUEUE_URL"] == url
    assert stack["lambda_env"]["BOATYARD_QUEUE_NAME"] == f"{STACK}-jobs"
    assert stack["lambda_env"]["BOATYARD_DLQ_NAME"] == f"{STACK}-jobs-dlq"
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    dlq_url = sqs.get_queue_url(QueueName=stack["lambda_env"]["BOATYARD_DLQ_NAME"])["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == dlq["QueueArn"]
    assert int(redrive["maxReceiveCount"]) == load_settings({}).max_attempts + 2
    assert int(attributes["VisibilityTimeout"]) == load_settings({}).visibility_timeout_seconds
    assert int(dlq["MessageRetentionPeriod"]) == 14 * 24 * 3600 > int(attributes["MessageRetentionPeriod"])


def test_buckets_are_configured(stack):
    s3 = boto3.client("s3")
    bucket = stack["outputs"]["ContextsBucketName"]
    assert stack["lambda_env"]["BOATYARD_BUCKET"] == bucket
    encryption = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert encryption[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # moto's CloudFormation applies only BucketEncryption and Tags to a bucket
    # (moto 5.x): lifecycle, CORS and public access block settings are checked
    # in the template by test_resources_template.py.  moto has no CloudFront:
    # the UI's URL and the API's CORS origin name the dropped distribution.
    assert s3.get_bucket_encryption(Bucket=stack["outputs"]["UiBucketName"])
    assert stack["outputs"]["UiURL"] == "https://dropped-UiDistribution"
    assert stack["lambda_env"]["BOATYARD_CORS_ORIGIN"] == "https://dropped-UiDistribution"
    assert load_settings(stack["lambda_env"]).cors_origin == "https://dropped-UiDistribution"


def test_key_alias_and_roles_exist(stack):
    kms = boto3.client("kms")
    key_arn = stack["outputs"]["CredentialsKeyArn"]
    assert stack["lambda_env"]["BOATYARD_KMS_KEY_ID"] == key_arn
    # (describe_key trips over the key policy moto's CloudFormation stores as a dict; list_aliases does not)
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert key_arn.endswith("/" + aliases[f"alias/{STACK}"])
    iam = boto3.client("iam")
    api_policy = iam.get_role_policy(RoleName=stack["physical"]["ApiHandlerRole"], PolicyName="api")["PolicyDocument"]
    resolved = json.dumps(api_policy)
    assert key_arn in resolved and "Fn::" not in resolved and "${" not in resolved
    assert f"log-group:/aws/lambda/{STACK}-api:*" in resolved
    worker = iam.get_role(RoleName=stack["physical"]["WorkerRole"])["Role"]
    key_policy = kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"]
    key_policy = key_policy if isinstance(key_policy, dict) else json.loads(key_policy)  # moto hands back the dict
    (deny,) = [s for s in key_policy["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"] == worker["Arn"]


def test_workers_launch_with_imdsv2_and_the_stack_s_settings(stack):
    ec2 = boto3.client("ec2")
    template_id = stack["physical"]["WorkerLaunchTemplate"]
    (version,) = ec2.describe_launch_template_versions(LaunchTemplateId=template_id)["LaunchTemplateVersions"]
    data = version["LaunchTemplateData"]
    assert data["MetadataOptions"]["HttpTokens"] == "required"
    assert int(data["MetadataOptions"]["HttpPutResponseHopLimit"]) == 1
    script = base64.b64decode(data["UserData"]).decode()
    body = script.split("cat >/etc/boatyard/worker.env <<'ENV'\n", 1)[1].split("\nENV\n", 1)[0]
    env = dict(line.split("=", 1) for line in body.splitlines())
    worker_settings = load_settings(env)
    assert worker_settings.region == "us-east-1"
    assert worker_settings.table_name == stack["outputs"]["JobsTableName"]
    assert worker_settings.bucket_name == stack["outputs"]["ContextsBucketName"]
    assert worker_settings.queue_url == stack["outputs"]["JobQueueUrl"]
    assert worker_settings.queue_name == stack["outputs"]["JobQueueName"]
    assert worker_settings.dlq_name == stack["outputs"]["DeadLetterQueueName"]
    assert worker_settings.kms_key_id == stack["outputs"]["CredentialsKeyArn"]
    assert worker_settings.worker_concurrency == 2
    assert worker_settings.shutdown_grace_seconds == 600
    assert "TimeoutStopSec=$(( 600 + 60 ))" in script
    assert f"BOATYARD_ASG_NAME={STACK}-workers" in script
    assert "s3://boatyard-artifacts/boatyard/test/worker-0123.tar.gz" in script
    group = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"{STACK}-workers"])
    assert group["AutoScalingGroups"][0]["LaunchTemplate"]["LaunchTemplateId"] == template_id


def test_workers_scale_from_zero_on_spot_and_ship_logs_to_their_group(stack):
    (group,) = boto3.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"{STACK}-workers"])[
        "AutoScalingGroups"
    ]
    assert group["MinSize"] == 0 and group["DesiredCapacity"] == 0
    # (moto keeps little of a mixed-instances policy; test_operations_template.py checks it in the template)
    groups = boto3.client("logs").describe_log_groups(logGroupNamePrefix=f"/boatyard/{STACK}/worker")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [stack["outputs"]["WorkerLogGroupName"]]


def test_dashboard_body_resolves_to_json_naming_this_stack(stack):
    body = boto3.client("cloudwatch").get_dashboard(DashboardName=f"{STACK}-operations")["DashboardBody"]
    widgets = json.loads(body)["widgets"]
    text = json.dumps(widgets)
    assert "${" not in text
    assert stack["outputs"]["JobQueueName"] in text and f"{STACK}-workers" in text
    assert f'"Stack", "{STACK}"' in text
    titles = [w["properties"]["title"] for w in widgets]
    assert any("Failures by phase and reason" in t for t in titles)


def test_the_api_and_worker_code_work_against_the_stack(stack, monkeypatch, test_password):
    """chalicelib configured with the Lambda's environment seals, enqueues, stores; the worker side unseals."""
    for name, value in stack["lambda_env"].items():
        monkeypatch.setenv(name, value)
    services = Services(load_settings())  # the Lambda's settings, clients for the stack's endpoint
    job_id = str(uuid.uuid4())
    services.jobs.create_job(
        Job(job_id=job_id, image_name="registry.example/app:1", source_kind=SourceKind.UPLOAD, source={})
    )
    assert services.jobs.get_job(job_id).image_name == "registry.example/app:1"
    services.contexts.put_bytes(contexts.context_key(job_id), b"context")
    assert services.contexts.size_of(contexts.context_key(job_id)) == len(b"context")
    sealed = services.sealing.seal(job_id, sealing.Credentials("robot", test_password, "r@example.com"))
    services.queue.send(queue.JobMessage(job_id, 1, sealed))
    (delivery,) = services.queue.receive(1, 0, 30)
    assert delivery.message is not None and delivery.message.job_id == job_id
    assert services.sealing.unseal(job_id, delivery.message.sealed_credentials).password == test_password
    services.queue.delete(delivery.receipt_handle)
    assert services.queue.dead_letter_url().endswith(f"/{STACK}-jobs-dlq")
