"""DynamoDB: pull counters, one item per caller and window (expired by TTL)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from registry import aws
from registry.storage import dynamo

# A window's counter outlives its window a little (TTL deletes lazily anyway).
_GRACE_SECONDS = 3600


def counter_key(who: str, window_start: int) -> dict:
    return {"pk": f"RATE#{who}", "sk": str(window_start)}


def increment(key: dict, limit: int, window_end: int) -> int | None:
    """Add one pull if fewer than ``limit`` were counted: the new count, or None at the limit."""
    try:
        response = aws.dynamodb().update_item(
            TableName=dynamo.table(),
            Key=dynamo.encode(key),
            UpdateExpression="ADD pulls :one SET expires_at = if_not_exists(expires_at, :expires)",
            ConditionExpression="attribute_not_exists(pulls) OR pulls < :limit",
            ExpressionAttributeValues=dynamo.encode({":one": 1, ":limit": limit, ":expires": window_end + _GRACE_SECONDS}),
            ReturnValues="UPDATED_NEW",
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return None
        raise
    return int(response["Attributes"]["pulls"]["N"])


def decrement(key: dict):
    try:
        aws.dynamodb().update_item(
            TableName=dynamo.table(),
            Key=dynamo.encode(key),
            UpdateExpression="ADD pulls :minus",
            ConditionExpression="pulls > :zero",
            ExpressionAttributeValues=dynamo.encode({":minus": -1, ":zero": 0}),
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConditionalCheckFailedException":
            raise


def read(key: dict) -> dict | None:
    """A counter item as it stands (nothing counted)."""
    return dynamo.get(key)


def used(item: dict | None) -> int:
    return int(item["pulls"]) if item else 0
