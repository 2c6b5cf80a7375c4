"""DynamoDB's request limits, which moto does not enforce, checked on every call the tests make.

``install()`` wraps botocore's ``BaseClient._make_api_call`` for the whole test
process (unit tests' in-process moto and the integration tests' local stack,
which runs in this process too). A call AWS would refuse with a
``ValidationException`` is refused the same way here, and recorded, so
``tests/conftest.py`` fails the test that made it even when the code under test
swallowed the error (for example into a 500 the test did not look at).

The limits (AWS docs, "Service, account, and table quotas in Amazon DynamoDB",
"Item sizes and formats", and the API reference of each operation):

* an item is at most 400 KB (409,600 bytes): attribute names plus values, a
  string counted in UTF-8 bytes, a number as about one byte per two digits
  plus one, a list or map as 3 bytes plus 1 byte per element plus its contents;
* a partition key value is at most 2,048 bytes, a sort key value 1,024 bytes;
* BatchWriteItem takes at most 25 requests and refuses one that names a key
  twice; BatchGetItem takes at most 100 keys and refuses duplicates;
* TransactWriteItems takes at most 100 actions and refuses two on one item.
"""

from __future__ import annotations

import threading

from botocore.client import BaseClient
from botocore.exceptions import ClientError

ITEM_MAX = 400 * 1024
PARTITION_KEY_MAX = 2048
SORT_KEY_MAX = 1024
KEY_NAMES = ("pk", "sk")  # the registry table's key schema (template.yaml)

violations: list[str] = []
_lock = threading.Lock()
_original = BaseClient._make_api_call


def value_size(value: dict) -> int:
    """The size AWS counts for one attribute value in wire format ({"S": ...}, {"N": ...}, ...)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return (len(inner.lstrip("-").replace(".", "").lstrip("0")) + 1) // 2 + 1
    if kind == "B":
        return len(inner if isinstance(inner, (bytes, bytearray)) else inner.encode())
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: v}) for v in inner)
    raise AssertionError(f"unknown DynamoDB type {kind}")


def item_size(item: dict) -> int:
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def _key_problems(key: dict) -> list[str]:
    problems = []
    for name, limit in zip(KEY_NAMES, (PARTITION_KEY_MAX, SORT_KEY_MAX)):
        if name in key and value_size(key[name]) > limit:
            problems.append(f"{'partition' if name == 'pk' else 'sort'} key {name} of {value_size(key[name])} bytes (max {limit})")
    return problems


def _item_problems(item: dict) -> list[str]:
    problems = _key_problems(item)
    if item_size(item) > ITEM_MAX:
        problems.append(f"item of {item_size(item)} bytes (max {ITEM_MAX}), key {_short(item)}")
    return problems


def _short(key: dict) -> str:
    return "/".join(str(next(iter(key[name].values())))[:80] for name in KEY_NAMES if name in key)


def _identity(table: str, key: dict) -> tuple:
    return (table, *(next(iter(key[name].values())) for name in KEY_NAMES if name in key))


def problems(operation: str, params: dict) -> list[str]:
    """What AWS would refuse in this DynamoDB call (empty: nothing)."""
    found: list[str] = []
    if operation == "PutItem":
        found += _item_problems(params["Item"])
    elif operation in ("GetItem", "DeleteItem", "UpdateItem"):
        found += _key_problems(params["Key"])
        if operation == "UpdateItem" and item_size(params.get("ExpressionAttributeValues") or {}) > ITEM_MAX:
            found.append("UpdateItem values over the item size limit")
    elif operation == "Query":
        pk = (params.get("ExpressionAttributeValues") or {}).get(":pk")
        if pk is not None and value_size(pk) > PARTITION_KEY_MAX:
            found.append(f"Query on a partition key of {value_size(pk)} bytes")
    elif operation == "BatchWriteItem":
        for table, requests in params["RequestItems"].items():
            if len(requests) > 25:
                found.append(f"BatchWriteItem with {len(requests)} requests (max 25)")
            seen = set()
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"]["Item"]
                    found += _item_problems(item)
                else:
                    item = request["DeleteRequest"]["Key"]
                    found += _key_problems(item)
                identity = _identity(table, item)
                if identity in seen:
                    found.append(f"BatchWriteItem names key {_short(item)} twice")
                seen.add(identity)
    elif operation == "BatchGetItem":
        for table, request in params["RequestItems"].items():
            keys = request["Keys"]
            if len(keys) > 100:
                found.append(f"BatchGetItem with {len(keys)} keys (max 100)")
            identities = [_identity(table, key) for key in keys]
            if len(set(identities)) != len(identities):
                found.append("BatchGetItem names a key twice")
            for key in keys:
                found += _key_problems(key)
    elif operation == "TransactWriteItems":
        actions = params["TransactItems"]
        if len(actions) > 100:
            found.append(f"TransactWriteItems with {len(actions)} actions (max 100)")
        seen = set()
        for action in actions:
            (kind, body), = action.items()
            key = body["Item"] if kind == "Put" else body["Key"]
            found += _item_problems(key) if kind == "Put" else _key_problems(key)
            identity = _identity(body["TableName"], key)
            if identity in seen:
                found.append(f"TransactWriteItems has two operations on item {_short(key)}")
            seen.add(identity)
    return found


def _checked_call(self, operation_name, api_params):
    if self.meta.service_model.service_name == "dynamodb":
        found = problems(operation_name, api_params)
        if found:
            with _lock:
                violations.extend(f"{operation_name}: {problem}" for problem in found)
            error = {"Error": {"Code": "ValidationException", "Message": "; ".join(found)}}
            raise ClientError(error, operation_name)
    return _original(self, operation_name, api_params)


def install():
    BaseClient._make_api_call = _checked_call


def take() -> list[str]:
    """The violations recorded since the last call, cleared."""
    with _lock:
        found = list(violations)
        violations.clear()
    return found
