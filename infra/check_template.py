"""Offline checks of boatyard's CloudFormation: what the app needs, least-privilege IAM.

Used by infra/package.sh on the merged template (build/infra/<stage>/sam.yaml)
and by tests/infra.  ``python infra/check_template.py build/infra/dev/sam.yaml``
prints every problem and exits 1 if there is one.
"""

from __future__ import annotations

import json
import pathlib
import sys
from collections.abc import Iterable
from typing import Any

import yaml

INFRA = pathlib.Path(__file__).resolve().parent
RESOURCES_TEMPLATE = INFRA / "resources.yaml"
LAMBDA_POLICY = INFRA / "lambda-policy.json"
SENDER_POLICY = INFRA / "notify-sender-policy.json"

# what the Lambda must get, and from which resource (chalicelib/domain/settings.py reads them)
LAMBDA_ENV_REFS = {
    "BOATYARD_TABLE": {"Ref": "JobsTable"},
    "BOATYARD_BUCKET": {"Ref": "ContextsBucket"},
    "BOATYARD_QUEUE_NAME": {"Fn::GetAtt": ["JobQueue", "QueueName"]},
    "BOATYARD_QUEUE_URL": {"Ref": "JobQueue"},
    "BOATYARD_DLQ_NAME": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]},
    "BOATYARD_KMS_KEY_ID": {"Fn::GetAtt": ["CredentialsKey", "Arn"]},
    "BOATYARD_TRIGGER_KMS_KEY_ID": {"Fn::GetAtt": ["TriggerKey", "Arn"]},
    "BOATYARD_MAX_ATTEMPTS": {"Ref": "MaxAttempts"},
    "BOATYARD_AUTH": "keys",  # a deployed stage never runs the open API
    "BOATYARD_NOTIFY_QUEUE_URL": {"Ref": "NotifyQueue"},
    "BOATYARD_NOTIFY_KMS_KEY_ID": {"Fn::GetAtt": ["NotifyKey", "Arn"]},
}
# what the notification sender Lambda (app.send_notifications) must get
SENDER_ENV_REFS = {
    "BOATYARD_TABLE": {"Ref": "JobsTable"},
    "BOATYARD_NOTIFY_QUEUE_URL": {"Ref": "NotifyQueue"},
    "BOATYARD_NOTIFY_KMS_KEY_ID": {"Fn::GetAtt": ["NotifyKey", "Arn"]},
}
# what the worker host's /etc/boatyard/worker.env must set
WORKER_ENV_VARS = (
    "AWS_DEFAULT_REGION",
    "BOATYARD_TABLE",
    "BOATYARD_BUCKET",
    "BOATYARD_QUEUE_NAME",
    "BOATYARD_QUEUE_URL",
    "BOATYARD_DLQ_NAME",
    "BOATYARD_KMS_KEY_ID",
    "BOATYARD_WORKER_CONCURRENCY",
    "BOATYARD_MAX_ATTEMPTS",
    "BOATYARD_VISIBILITY_TIMEOUT_SECONDS",
    "BOATYARD_SHUTDOWN_GRACE_SECONDS",
    "BOATYARD_NOTIFY_QUEUE_URL",
)
API_FORBIDDEN_ACTIONS = {"kms:*", "kms:reencryptfrom", "kms:reencrypt*"}
API_DECRYPTS_ONLY = {"Fn::GetAtt": ["TriggerKey", "Arn"]}
"""The one key the API may decrypt with (build triggers' secrets), and only blobs bound to a trigger_id."""


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !GetAtt, !Sub, ...) as long form."""


def _cfn_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> Any:
    name = tag_suffix if tag_suffix in {"Ref", "Condition"} else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: str | pathlib.Path) -> dict[str, Any]:
    """A CloudFormation template (YAML with short tags, or JSON) as plain data."""
    text = pathlib.Path(path).read_text(encoding="utf-8")
    return yaml.load(text, Loader=_CfnLoader)  # _CfnLoader is a SafeLoader subclass: no arbitrary objects


def sender_policy() -> dict[str, Any]:
    """The notification sender Lambda's policy document."""
    return json.loads(SENDER_POLICY.read_text(encoding="utf-8"))


def lambda_policy() -> dict[str, Any]:
    """The API Lambda's policy document (CloudFormation intrinsics inside)."""
    return json.loads(LAMBDA_POLICY.read_text(encoding="utf-8"))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    return _as_list(document.get("Statement", []))


def iam_problems(document: dict[str, Any], who: str, forbidden: Iterable[str] = ()) -> list[str]:
    """Wildcards, unscoped resources and forbidden actions in an identity policy."""
    problems = []
    forbidden = {a.lower() for a in forbidden}
    for index, statement in enumerate(statements(document)):
        where = f"{who} statement {statement.get('Sid', index)}"
        if statement.get("Effect") != "Allow":
            continue
        if "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{where}: NotAction/NotResource grants too much")
        for action in _as_list(statement.get("Action", [])):
            low = str(action).lower()
            if "*" in low or low.startswith("iam:"):
                problems.append(f"{where}: wildcard or IAM action {action!r}")
            if low in forbidden:
                problems.append(f"{where}: {action!r} is not for this role")
        for resource in _as_list(statement.get("Resource", [])):
            if resource == "*" or (isinstance(resource, str) and not resource.startswith("arn:")):
                problems.append(f"{where}: resource {resource!r} is not an ARN")
    return problems


def decrypt_problems(document: dict[str, Any], who: str) -> list[str]:
    """kms:Decrypt granted on anything but the trigger key, or without the trigger_id context condition."""
    problems = []
    for index, statement in enumerate(statements(document)):
        actions = {str(a).lower() for a in _as_list(statement.get("Action", []))}
        if statement.get("Effect") != "Allow" or "kms:decrypt" not in actions:
            continue
        where = f"{who} statement {statement.get('Sid', index)}"
        if _as_list(statement.get("Resource", [])) != [API_DECRYPTS_ONLY]:
            problems.append(
                f"{where}: kms:Decrypt on {statement.get('Resource')!r}; the API decrypts only with TriggerKey"
            )
        if statement.get("Condition") != {"Null": {"kms:EncryptionContext:trigger_id": "false"}}:
            problems.append(f"{where}: kms:Decrypt without the trigger_id encryption-context condition")
    return problems


def role_policy_documents(template: dict[str, Any], role_logical_id: str) -> list[dict[str, Any]]:
    """Inline policies of a role plus AWS::IAM::Policy resources attached to it."""
    resources = template["Resources"]
    documents = [p["PolicyDocument"] for p in resources[role_logical_id]["Properties"].get("Policies", [])]
    for resource in resources.values():
        if resource.get("Type") == "AWS::IAM::Policy":
            if {"Ref": role_logical_id} in resource["Properties"].get("Roles", []):
                documents.append(resource["Properties"]["PolicyDocument"])
    return documents


def actions_of(documents: Iterable[dict[str, Any]]) -> set[str]:
    return {
        str(action)
        for document in documents
        for statement in statements(document)
        if statement.get("Effect") == "Allow"
        for action in _as_list(statement.get("Action", []))
    }


def user_data_script(template: dict[str, Any]) -> str:
    """The worker launch template's user data (the Fn::Sub text)."""
    data = template["Resources"]["WorkerLaunchTemplate"]["Properties"]["LaunchTemplateData"]["UserData"]
    sub = data["Fn::Base64"]["Fn::Sub"]
    return sub if isinstance(sub, str) else sub[0]


def worker_env_file(template: dict[str, Any]) -> dict[str, str]:
    """NAME=value lines the user data writes to /etc/boatyard/worker.env."""
    script = user_data_script(template)
    start = script.index("cat >/etc/boatyard/worker.env <<'ENV'\n") + len("cat >/etc/boatyard/worker.env <<'ENV'\n")
    body = script[start : script.index("\nENV\n", start)]
    env = {}
    for line in body.splitlines():
        name, _, value = line.partition("=")
        env[name.strip()] = value.strip()
    return env


def check_resources(template: dict[str, Any]) -> list[str]:
    """Checks that hold for infra/resources.yaml and for the merged template alike."""
    problems = []
    resources = template["Resources"]
    variables = resources["APIHandler"]["Properties"]["Environment"]["Variables"]
    for name, ref in LAMBDA_ENV_REFS.items():
        if variables.get(name) != ref:
            problems.append(f"APIHandler: {name} is {variables.get(name)!r}, expected {ref!r}")
    problems += iam_problems(lambda_policy(), "lambda-policy.json", API_FORBIDDEN_ACTIONS)
    problems += decrypt_problems(lambda_policy(), "lambda-policy.json")
    problems += iam_problems(sender_policy(), "notify-sender-policy.json")
    sender = resources.get("SendNotifications", {}).get("Properties", {})
    sender_vars = sender.get("Environment", {}).get("Variables", {})
    for name, ref in SENDER_ENV_REFS.items():
        if sender_vars.get(name) != ref:
            problems.append(f"SendNotifications: {name} is {sender_vars.get(name)!r}, expected {ref!r}")
    source = sender.get("Events", {}).get("SendNotificationsSqsEventSource", {}).get("Properties", {})
    if source.get("Queue") != {"Fn::GetAtt": ["NotifyQueue", "Arn"]}:
        problems.append("SendNotifications: its SQS event source is not NotifyQueue")
    problems += [p for d in role_policy_documents(template, "WorkerRole") for p in iam_problems(d, "WorkerRole")]
    env = worker_env_file(template)
    for name in WORKER_ENV_VARS:
        if not env.get(name):
            problems.append(f"worker.env in the user data lacks {name}")
    return problems


def check_merged(template: dict[str, Any]) -> list[str]:
    """Checks of chalice's template merged with resources.yaml."""
    problems = check_resources(template)
    resources = template["Resources"]
    role = resources["APIHandler"]["Properties"].get("Role")
    if role != {"Fn::GetAtt": ["ApiHandlerRole", "Arn"]}:
        problems.append(
            f'APIHandler\'s role is {role!r}: set "autogen_policy": false and '
            '"iam_policy_file": "../infra/lambda-policy.json" in .chalice/config.json'
        )
    else:
        documents = role_policy_documents(template, "ApiHandlerRole")
        if documents != [lambda_policy()]:
            problems.append("ApiHandlerRole's policy is not infra/lambda-policy.json")
    sender_role = resources.get("SendNotifications", {}).get("Properties", {}).get("Role")
    if sender_role != {"Fn::GetAtt": ["SendNotificationsRole", "Arn"]}:
        problems.append(
            f"SendNotifications' role is {sender_role!r}: give it its own policy file in .chalice/config.json"
        )
    elif role_policy_documents(template, "SendNotificationsRole") != [sender_policy()]:
        problems.append("SendNotificationsRole's policy is not infra/notify-sender-policy.json")
    for logical_id, resource in resources.items():
        if "Type" not in resource:
            problems.append(f"{logical_id}: merged into nothing (no Type); chalice renamed a resource?")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: check_template.py build/infra/<stage>/sam.yaml", file=sys.stderr)
        return 2
    problems = check_merged(load_template(argv[1]))
    for problem in problems:
        print(f"check_template: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
