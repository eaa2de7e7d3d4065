"""Issue 14's notifications in infra/: their queue, dead letters, alarms, the sender Lambda and its key."""

from __future__ import annotations

import json
from typing import Any

SENDER_ACTIONS = {
    "logs:CreateLogStream", "logs:PutLogEvents",
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query",
    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl", "sqs:SendMessage",
    "kms:Decrypt",
}  # fmt: skip


def _res(template: dict[str, Any], name: str) -> dict[str, Any]:
    return template["Resources"][name]["Properties"]


def test_the_notifications_queue_has_dead_letters_and_alarms(resources_template):
    queue = _res(resources_template, "NotifyQueue")
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["NotifyDeadLetterQueue", "Arn"]}
    assert queue["VisibilityTimeout"] >= 6 * 30  # six times the sender's timeout
    assert queue["SqsManagedSseEnabled"] is True
    dlq_alarm = _res(resources_template, "NotifyDeadLetterQueueAlarm")
    assert dlq_alarm["Dimensions"] == [
        {"Name": "QueueName", "Value": {"Fn::GetAtt": ["NotifyDeadLetterQueue", "QueueName"]}}
    ]
    errors = _res(resources_template, "NotifySenderErrorsAlarm")
    assert errors["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "SendNotifications"}}]


def test_the_sender_reads_the_notifications_queue_with_its_own_policy(ct, resources_template):
    sender = _res(resources_template, "SendNotifications")
    assert sender["Events"]["SendNotificationsSqsEventSource"]["Properties"]["Queue"] == {
        "Fn::GetAtt": ["NotifyQueue", "Arn"]
    }
    policy = ct.sender_policy()
    assert ct.actions_of([policy]) == SENDER_ACTIONS
    assert ct.iam_problems(policy, "sender") == []
    [decrypt] = [s for s in policy["Statement"] if "kms:Decrypt" in ct._as_list(s["Action"])]
    assert decrypt["Condition"] == {"StringEquals": {"kms:EncryptionContext:purpose": "notify"}}
    for statement in policy["Statement"]:
        if statement["Sid"].startswith(("Consume", "Subscriptions")):
            assert "NotifyQueue" in json.dumps(statement["Resource"]) or "JobsTable" in json.dumps(
                statement["Resource"]
            )
    config = json.loads((ct.INFRA.parent / ".chalice" / "config.json").read_text())
    assert config["lambda_functions"]["send_notifications"]["iam_policy_file"] == "../infra/notify-sender-policy.json"


def test_only_the_sender_decrypts_notification_secrets_and_it_cannot_touch_job_credentials(ct, resources_template):
    key = _res(resources_template, "NotifyKey")["KeyPolicy"]["Statement"]
    [deny] = [s for s in key if s["Effect"] == "Deny"]
    assert deny["Action"] == "kms:Decrypt"
    assert deny["Condition"] == {
        "StringNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["SendNotificationsRole", "Arn"]}}
    }
    credentials = _res(resources_template, "CredentialsKey")["KeyPolicy"]["Statement"]
    [credentials_deny] = [s for s in credentials if s["Effect"] == "Deny"]
    assert credentials_deny["Condition"]["StringNotEquals"]["aws:PrincipalArn"] == {"Fn::GetAtt": ["WorkerRole", "Arn"]}
    worker_decrypt = [
        s
        for d in ct.role_policy_documents(resources_template, "WorkerRole")
        for s in d["Statement"]
        if "kms:Decrypt" in ct._as_list(s["Action"])
    ]
    assert [s["Resource"] for s in worker_decrypt] == [{"Fn::GetAtt": ["CredentialsKey", "Arn"]}]


def test_the_api_and_the_worker_may_only_queue_notifications(ct, resources_template):
    api = [
        s for s in ct.lambda_policy()["Statement"] if s["Sid"] in ("QueueNotifications", "SealNotificationSecretsOnly")
    ]
    assert {json.dumps(s["Resource"]) for s in api} == {
        json.dumps({"Fn::GetAtt": ["NotifyQueue", "Arn"]}),
        json.dumps({"Fn::GetAtt": ["NotifyKey", "Arn"]}),
    }
    worker = [
        s
        for d in ct.role_policy_documents(resources_template, "WorkerRole")
        for s in d["Statement"]
        if s["Sid"] == "QueueNotifications"
    ]
    assert [(s["Action"], s["Resource"]) for s in worker] == [
        ("sqs:SendMessage", {"Fn::GetAtt": ["NotifyQueue", "Arn"]})
    ]
    env = ct.worker_env_file(resources_template)
    assert env["BOATYARD_NOTIFY_QUEUE_URL"] == "${NotifyQueue}"
    api_env = _res(resources_template, "APIHandler")["Environment"]["Variables"]
    assert "BOATYARD_ALLOW_LOOPBACK_NOTIFY_URLS" not in api_env and "BOATYARD_ALLOW_LOOPBACK_NOTIFY_URLS" not in env
