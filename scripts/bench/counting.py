"""Count AWS calls exactly, and the DynamoDB capacity units they would consume.

``AwsRecorder`` hooks botocore events on the registry's own clients:
``before-parameter-build`` keeps the call's parameters, ``after-call`` records
the operation, the items it read and its capacity units.

moto reports fixed ConsumedCapacity values, so units are computed here with
DynamoDB's on-demand rules: a read unit covers 4 KB of an item (half a unit
when eventually consistent, a minimum of one 4 KB step per item, found or
not), a Query sums the sizes of the items it returns before rounding, a write
unit covers 1 KB, and a transaction costs twice. Updates and deletes whose
item size is not visible in the call are counted as one 1 KB write.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal

READ_STEP = 4096
WRITE_STEP = 1024


# --- item sizes (DynamoDB's rules) ---------------------------------------------------------


def value_size(value: dict) -> int:
    """Bytes a typed attribute value counts for (``{"S": …}``, ``{"N": …}``, …)."""
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = str(Decimal(inner)).lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: member}) for member in inner)
    if kind == "L":
        return 3 + sum(1 + value_size(member) for member in inner)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(member) for name, member in inner.items())
    return 0


def item_size(item: dict | None) -> int:
    """Bytes of a typed item: attribute names plus values."""
    return sum(len(name.encode()) + value_size(value) for name, value in (item or {}).items())


def read_units(size: int, consistent: bool) -> float:
    steps = max(1, math.ceil(size / READ_STEP))
    return steps * (1.0 if consistent else 0.5)


def write_units(size: int) -> float:
    return float(max(1, math.ceil(size / WRITE_STEP)))


# --- per-operation capacity ------------------------------------------------------------------


@dataclass
class Usage:
    """What one call consumed."""

    read_units: float = 0.0
    write_units: float = 0.0
    items_read: int = 0


def _get_item(params, parsed) -> Usage:
    item = parsed.get("Item")
    return Usage(read_units(item_size(item), bool(params.get("ConsistentRead"))), 0, 1 if item else 0)


def _batch_get(params, parsed) -> Usage:
    usage = Usage()
    for table, request in params.get("RequestItems", {}).items():
        found = parsed.get("Responses", {}).get(table, [])
        consistent = bool(request.get("ConsistentRead"))
        usage.items_read += len(found)
        usage.read_units += sum(read_units(item_size(item), consistent) for item in found)
        usage.read_units += read_units(0, consistent) * max(0, len(request.get("Keys", [])) - len(found))
    return usage


def _query(params, parsed) -> Usage:
    items = parsed.get("Items", [])
    return Usage(read_units(sum(item_size(i) for i in items), bool(params.get("ConsistentRead"))), 0, len(items))


def _put(params, parsed) -> Usage:
    return Usage(0, write_units(item_size(params.get("Item"))))


def _update_or_delete(params, parsed) -> Usage:
    return Usage(0, write_units(item_size(parsed.get("Attributes"))))


def _transact_write(params, parsed) -> Usage:
    units = 0.0
    for entry in params.get("TransactItems", []):
        (kind, body), = entry.items()
        units += 2 * write_units(item_size(body.get("Item")) if kind == "Put" else 0)
    return Usage(0, units)


def _batch_write(params, parsed) -> Usage:
    units = 0.0
    for requests in params.get("RequestItems", {}).values():
        for request in requests:
            units += write_units(item_size(request["PutRequest"]["Item"]) if "PutRequest" in request else 0)
    return Usage(0, units)


_USAGE = {
    "GetItem": _get_item,
    "BatchGetItem": _batch_get,
    "Query": _query,
    "Scan": _query,
    "PutItem": _put,
    "UpdateItem": _update_or_delete,
    "DeleteItem": _update_or_delete,
    "TransactWriteItems": _transact_write,
    "BatchWriteItem": _batch_write,
}


# --- the recorder -----------------------------------------------------------------------------


@dataclass
class Snapshot:
    """Calls and units recorded since the last ``reset``."""

    calls: Counter = field(default_factory=Counter)  # "dynamodb.GetItem" -> n
    read_units: float = 0.0
    write_units: float = 0.0
    items_read: int = 0

    def as_dict(self) -> dict:
        return {
            "calls": dict(sorted(self.calls.items())),
            "read_units": self.read_units,
            "write_units": self.write_units,
            "items_read": self.items_read,
        }

    def count(self, service: str) -> int:
        return sum(n for key, n in self.calls.items() if key.startswith(service + "."))


class AwsRecorder:
    """Counts every call of the clients it is attached to (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._now = Snapshot()

    def attach(self, *clients) -> "AwsRecorder":
        for client in clients:
            client.meta.events.register("before-parameter-build", self._keep_params)
            client.meta.events.register("after-call", self._record)
        return self

    def reset(self) -> None:
        with self._lock:
            self._now = Snapshot()

    def snapshot(self) -> Snapshot:
        with self._lock:
            now = self._now
            return Snapshot(Counter(now.calls), now.read_units, now.write_units, now.items_read)

    @staticmethod
    def _keep_params(params, context, **_):
        context["bench_params"] = dict(params)

    def _record(self, model, parsed, context, **_):
        service = model.service_model.service_name
        usage = Usage()
        if service == "dynamodb" and model.name in _USAGE:
            usage = _USAGE[model.name](context.get("bench_params", {}), parsed or {})
        with self._lock:
            self._now.calls[f"{service}.{model.name}"] += 1
            self._now.read_units += usage.read_units
            self._now.write_units += usage.write_units
            self._now.items_read += usage.items_read
