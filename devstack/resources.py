"""Create boatyard's AWS resources on a moto server or in ``mock_aws`` (local stack, tests).

Production resources come from ``infra/`` (CloudFormation); this mirrors their
shape: one table with TTL, a bucket with an expiry rule, a queue with a
dead-letter queue, the notifications queue with its own, and a KMS key behind an alias.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from chalicelib.domain.settings import Settings, load_settings
from chalicelib.stores.aws import AwsClients
from chalicelib.stores.aws_errors import aws_error_code


def ensure_resources(settings: Settings | None = None, clients: AwsClients | None = None) -> dict[str, Any]:
    """Create what is missing (idempotent) and return the names and URLs.

    ``settings`` default to the environment's; ``clients`` to new ones for their region.
    """
    s = settings or load_settings()
    c = clients or AwsClients(s.region)
    return {
        "table": _ensure_table(c, s),
        "bucket": _ensure_bucket(c, s),
        **_ensure_queues(c, s),
        "kms_key_id": _ensure_key(c, s.kms_key_id, "boatyard registry credentials"),
        "trigger_kms_key_id": _ensure_key(c, s.trigger_kms_key_id, "boatyard build triggers' secrets"),
    }


OWNER_INDEX = {
    "IndexName": "by-owner",  # chalicelib.stores.history: a caller's jobs, newest first (only job items carry "owner")
    "KeySchema": [{"AttributeName": "owner", "KeyType": "HASH"}, {"AttributeName": "created_at", "KeyType": "RANGE"}],
    "Projection": {"ProjectionType": "ALL"},
}
TRIGGER_OWNER_INDEX = {
    "IndexName": "triggers-by-owner",  # chalicelib.stores.triggers: an owner's triggers (only they carry trigger_owner)
    "KeySchema": [
        {"AttributeName": "trigger_owner", "KeyType": "HASH"},
        {"AttributeName": "created_at", "KeyType": "RANGE"},
    ],
    "Projection": {"ProjectionType": "ALL"},
}
INDEXES = [OWNER_INDEX, TRIGGER_OWNER_INDEX]
_ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
    {"AttributeName": "owner", "AttributeType": "S"},
    {"AttributeName": "created_at", "AttributeType": "S"},
    {"AttributeName": "trigger_owner", "AttributeType": "S"},
]


def _ensure_indexes(ddb: Any, table: str) -> None:
    """Add the indexes a table made before them lacks (one per update, as DynamoDB requires)."""
    for index in INDEXES:
        existing = ddb.describe_table(TableName=table)["Table"].get("GlobalSecondaryIndexes") or []
        if any(i["IndexName"] == index["IndexName"] for i in existing):
            continue
        ddb.update_table(
            TableName=table, AttributeDefinitions=_ATTRIBUTES, GlobalSecondaryIndexUpdates=[{"Create": index}]
        )


def _ensure_table(c: AwsClients, s: Settings) -> str:
    ddb = c.client("dynamodb")
    try:
        ddb.create_table(
            TableName=s.table_name,
            AttributeDefinitions=_ATTRIBUTES,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=INDEXES,
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.get_waiter("table_exists").wait(TableName=s.table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 30})
        ddb.update_time_to_live(
            TableName=s.table_name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
        )
    except ClientError as exc:
        if aws_error_code(exc) != "ResourceInUseException":
            raise
        _ensure_indexes(ddb, s.table_name)
    return s.table_name


def _ensure_bucket(c: AwsClients, s: Settings) -> str:
    s3 = c.client("s3")
    try:
        if s.region == "us-east-1":
            s3.create_bucket(Bucket=s.bucket_name)
        else:
            s3.create_bucket(Bucket=s.bucket_name, CreateBucketConfiguration={"LocationConstraint": s.region})
    except ClientError as exc:
        if aws_error_code(exc) not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise
    s3.put_bucket_lifecycle_configuration(
        Bucket=s.bucket_name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-contexts",
                    "Filter": {"Prefix": "contexts/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 7},
                },
                {
                    "ID": "expire-uploads",
                    "Filter": {"Prefix": "uploads/"},
                    "Status": "Enabled",
                    "Expiration": {"Days": 2},
                },
            ]
        },
    )
    # the browser posts uploads straight to the bucket
    s3.put_bucket_cors(
        Bucket=s.bucket_name,
        CORSConfiguration={
            "CORSRules": [
                {"AllowedMethods": ["POST"], "AllowedOrigins": ["*"], "AllowedHeaders": ["*"], "MaxAgeSeconds": 3600}
            ]
        },
    )
    return s.bucket_name


def _ensure_queues(c: AwsClients, s: Settings) -> dict[str, str]:
    sqs = c.client("sqs")
    dlq_url = sqs.create_queue(QueueName=s.dlq_name, Attributes={"MessageRetentionPeriod": "1209600"})["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(s.max_attempts + 2)})
    attributes = {
        "VisibilityTimeout": str(s.visibility_timeout_seconds),
        "MessageRetentionPeriod": "345600",
        "RedrivePolicy": redrive,
    }
    try:
        url = sqs.create_queue(QueueName=s.queue_name, Attributes=attributes)["QueueUrl"]
    except ClientError as exc:  # exists with other attributes: bring them in line
        if aws_error_code(exc) not in {"QueueAlreadyExists", "QueueNameExists"}:
            raise
        url = sqs.get_queue_url(QueueName=s.queue_name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return {"queue_url": url, "dlq_url": dlq_url, **_ensure_notify_queues(c, s)}


def _ensure_notify_queues(c: AwsClients, s: Settings) -> dict[str, str]:
    """The notifications queue (chalicelib.stores.notifications) and its dead-letter queue."""
    sqs = c.client("sqs")
    dlq_url = sqs.create_queue(QueueName=s.notify_dlq_name, Attributes={"MessageRetentionPeriod": "1209600"})[
        "QueueUrl"
    ]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    attributes = {
        "VisibilityTimeout": "60",
        "MessageRetentionPeriod": "345600",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
    }
    try:
        url = sqs.create_queue(QueueName=s.notify_queue_name, Attributes=attributes)["QueueUrl"]
    except ClientError as exc:
        if aws_error_code(exc) not in {"QueueAlreadyExists", "QueueNameExists"}:
            raise
        url = sqs.get_queue_url(QueueName=s.notify_queue_name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return {"notify_queue_url": url, "notify_dlq_url": dlq_url}


def _ensure_key(c: AwsClients, alias: str, description: str) -> str:
    kms = c.client("kms")
    if alias.startswith("alias/"):
        try:
            return kms.describe_key(KeyId=alias)["KeyMetadata"]["KeyId"]
        except ClientError as exc:
            if aws_error_code(exc) != "NotFoundException":
                raise
        key_id = kms.create_key(Description=description)["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=alias, TargetKeyId=key_id)
        return key_id
    return alias
