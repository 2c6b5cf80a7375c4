"""DynamoDB's key-size limits, which moto does not enforce, checked on every call the registry makes.

A partition key holds at most 2,048 bytes and a sort key 1,024 (UTF-8), in
every request that names a key: writes, reads, batches and transactions
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html,
"Partition key length and values" / "Sort key length and values"). On AWS an
oversized key is a ValidationException, i.e. a 500; under moto it silently
works. ``KeyLimits`` is a botocore ``before-parameter-build`` hook that raises
the same error moto would not, and remembers every violation for the test.
"""

from __future__ import annotations

PK_MAX = 2048
SK_MAX = 1024


class KeyTooLarge(Exception):
    """What DynamoDB would answer (ValidationException) to a key over its size limit."""


def _keys_of(operation: str, params: dict):
    """Every {"pk": ..., "sk": ...} (boto3 wire format) a DynamoDB request names."""
    if "Key" in params:
        yield params["Key"]
    if "Item" in params:
        yield params["Item"]
    for table in (params.get("RequestItems") or {}).values():
        if isinstance(table, dict):  # BatchGetItem
            yield from table.get("Keys", [])
        else:  # BatchWriteItem
            for write in table:
                for request in write.values():
                    yield request.get("Item") or request.get("Key")
    for item in params.get("TransactItems") or []:
        for action in item.values():
            yield action.get("Item") or action.get("Key")
    if "ExclusiveStartKey" in params:
        yield params["ExclusiveStartKey"]


class KeyLimits:
    """Register on a DynamoDB client: ``client.meta.events.register("before-parameter-build", limits)``."""

    def __init__(self):
        self.violations: list[tuple[str, int, int]] = []  # (operation, pk bytes, sk bytes)
        self.keys_seen = 0

    def __call__(self, params, model, **kwargs):
        for key in _keys_of(model.name, params):
            pk = len(str(key.get("pk", {}).get("S", "")).encode())
            sk = len(str(key.get("sk", {}).get("S", "")).encode())
            self.keys_seen += 1
            if pk > PK_MAX or sk > SK_MAX:
                self.violations.append((model.name, pk, sk))
                raise KeyTooLarge(f"{model.name}: key of {pk} + {sk} bytes is over DynamoDB's {PK_MAX} / {SK_MAX}")
