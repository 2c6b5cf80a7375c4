"""DynamoDB access shared by the storage adapters: (de)serialising items, reads,
conditional writes, paginated queries, batched and transactional writes.

``Conflict`` is what a lost conditional write raises.
"""

from __future__ import annotations

import random
import time

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from registry import aws
from registry.config import settings

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# BatchGetItem takes at most 100 keys per call.
_BATCH = 100
# A transaction touching an item another transaction holds is cancelled with
# reason TransactionConflict (e.g. two pushes linking the same blob at once);
# the SDK does not retry those, so we do, briefly, with jitter.
_TRANSACTION_ATTEMPTS = 5


class Conflict(Exception):
    """A conditional write lost a race (another request changed the item first)."""


def encode(item: dict) -> dict:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def decode(item: dict | None) -> dict | None:
    if item is None:
        return None
    out = {}
    for k, v in item.items():
        value = _deserializer.deserialize(v)
        out[k] = bytes(value) if isinstance(value, Binary) else value
    return out


def table() -> str:
    return settings().table


def transact(writes: list[dict]):
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            aws.dynamodb().transact_write_items(TransactItems=writes)
            return
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            conflict = any(reason.get("Code") == "TransactionConflict" for reason in reasons)
            if exc.response["Error"]["Code"] != "TransactionCanceledException" or not conflict or attempt == _TRANSACTION_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.05 * 2**attempt))


def get(key: dict, consistent: bool = False) -> dict | None:
    response = aws.dynamodb().get_item(TableName=table(), Key=encode(key), ConsistentRead=consistent)
    return decode(response.get("Item"))


def get_many(key_list: list[dict], consistent: bool = False) -> list[dict | None]:
    """Items by key with BatchGetItem (100 keys a call), in the order asked; None where absent."""
    found = {}
    unique = list({(key["pk"], key["sk"]): key for key in key_list}.values())
    for start in range(0, len(unique), _BATCH):
        request = {table(): {"Keys": [encode(key) for key in unique[start : start + _BATCH]], "ConsistentRead": consistent}}
        while request:
            response = aws.dynamodb().batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table(), []):
                found[(item["pk"]["S"], item["sk"]["S"])] = decode(item)
            request = response.get("UnprocessedKeys") or None
    return [found.get((key["pk"], key["sk"])) for key in key_list]


def put(key: dict, attributes: dict, condition: str | None = None, values: dict | None = None, names: dict | None = None):
    """PutItem; a condition that does not hold raises ``Conflict``."""
    _conditional_write(aws.dynamodb().put_item, {"Item": encode({**key, **attributes})}, condition, values, names)


def update(key: dict, expression: str, condition: str | None = None, values: dict | None = None, names: dict | None = None):
    """UpdateItem; a condition that does not hold raises ``Conflict``, like ``put``."""
    _conditional_write(aws.dynamodb().update_item, {"Key": encode(key), "UpdateExpression": expression}, condition, values, names)


def _conditional_write(call, args: dict, condition: str | None, values: dict | None, names: dict | None):
    args = {"TableName": table(), **args}
    if condition:
        args["ConditionExpression"] = condition
    if values:
        args["ExpressionAttributeValues"] = encode(values)
    if names:
        args["ExpressionAttributeNames"] = names
    try:
        call(**args)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise Conflict() from None
        raise


def delete(key: dict):
    aws.dynamodb().delete_item(TableName=table(), Key=encode(key))


def query_page(pk: str, prefix: str, limit: int, after: str | None) -> tuple[list[dict], bool]:
    """Up to ``limit`` items under ``pk`` whose sk starts with ``prefix``, after ``prefix+after``.

    Reads ``limit + 1`` items to tell whether more exist (no dangling next link).
    """
    items: list[dict] = []
    args = {"TableName": table(), "KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": encode({":pk": pk})}
    if prefix:
        args["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
        args["ExpressionAttributeValues"] = encode({":pk": pk, ":prefix": prefix})
    if after is not None:
        args["ExclusiveStartKey"] = encode({"pk": pk, "sk": prefix + after})
    while len(items) <= limit:
        args["Limit"] = limit + 1 - len(items)
        response = aws.dynamodb().query(**args)
        items += [decode(item) for item in response.get("Items", [])]
        if "LastEvaluatedKey" not in response:
            break
        args["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return items[:limit], len(items) > limit


def _unique(entries: list[dict]) -> list[dict]:
    """One entry per (pk, sk), the last one given: BatchWriteItem refuses a request
    that names one key twice (ValidationException, AWS API reference), and an
    index may list the same child manifest twice."""
    return list({(entry["pk"], entry["sk"]): entry for entry in entries}.values())


def batch_put(items: list[dict]):
    """Write ``items`` (each with its key), 25 per BatchWriteItem; a key given twice is written once."""
    items = _unique(items)
    for start in range(0, len(items), 25):
        request = {table(): [{"PutRequest": {"Item": encode(item)}} for item in items[start : start + 25]]}
        while request:
            request = aws.dynamodb().batch_write_item(RequestItems=request).get("UnprocessedItems") or None


def batch_delete(key_list: list[dict]):
    """Delete by key, 25 per BatchWriteItem; a key given twice is deleted once."""
    key_list = _unique(key_list)
    for start in range(0, len(key_list), 25):
        request = {table(): [{"DeleteRequest": {"Key": encode(key)}} for key in key_list[start : start + 25]]}
        while request:
            request = aws.dynamodb().batch_write_item(RequestItems=request).get("UnprocessedItems") or None
