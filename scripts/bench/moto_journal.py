"""moto's TransactWriteItems with a rollback journal of the items it touches, for the benchmarks only.

Why: moto (5.2.1, ``DynamoDBBackend.transact_write_items``) takes its rollback
backup as ``copy.deepcopy`` of every table a transaction names, before the
first operation. In the gc section (bench/gc.py) at 10,000 blobs the table
holds about 43,000 items and a pass with 1 % garbage makes 110 transactions,
each copying all of them (a garbage pass grows with the registry, and so does
each copy): the emulator, not the registry, was quadratic, and the run did not
finish in 35 minutes.

What changes: only the backup. moto's own method still runs (validation,
the duplicate-key check, conditions, ``ReturnValuesOnConditionCheckFailure``,
the error list and ``CancellationReasons``, and *when* it rolls back); the
deep copy of a table it asks for is a :class:`_Backup` instead, and before
each write the backend makes during the call (``put_item``, ``delete_item``,
``update_item``) the backup remembers a deep copy of that key's current item,
or its absence. Where moto restores a table (it assigns its backup back into
``backend.tables`` and raises), the backup puts exactly those items back and
removes those that did not exist, and the live table goes back in its place.

Equal, as a client can see it: items are all a table's contents that a
transaction changes (a secondary index is computed from them at query time in
moto; queries and scans sort their results, so the order of moto's dicts is
not observable). A table with a stream keeps moto's whole copy, since the
stream's records are part of what that rolls back.
tests/unit/test_bench_moto_journal.py runs the same transactions against both.

    install()     from now on, in this process (idempotent)
    uninstall()   moto's own method again
"""

from __future__ import annotations

import copy
from typing import Any

from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType

_STOCK = DynamoDBBackend.transact_write_items
_WRITES = ("put_item", "delete_item", "update_item")


class _Backup:
    """What moto holds as the backup of ``table``: the original of each item written since, by key."""

    def __init__(self, table) -> None:
        self.table = table
        self.originals: dict[tuple[DynamoType, DynamoType | None], Any] = {}

    def remember(self, hash_value: DynamoType, range_value: DynamoType | None) -> None:
        """Before a write to this key: a deep copy of its item (None: there was none), the first time only."""
        key = (hash_value, range_value)
        if key not in self.originals:
            self.originals[key] = copy.deepcopy(self.table.get_item(hash_value, range_value))

    def restore(self):
        """Put each remembered item back as it was (or remove it); the live table, as moto's backup would be."""
        items = self.table.items
        for (hash_value, range_value), original in self.originals.items():
            if self.table.has_range_key:
                bucket = items[hash_value]
                if original is None:
                    bucket.pop(range_value, None)
                else:
                    bucket[range_value] = original
            elif original is None:
                items.pop(hash_value, None)
            else:
                items[hash_value] = original
        self.originals.clear()
        return self.table


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """moto's method, its backup being a journal of the touched items (module docstring)."""
    tables = [self.tables[n] for n in _named_tables(transact_items) if n in self.tables]
    if any(table.stream_shard is not None for table in tables):
        return _STOCK(self, transact_items)
    backups = {id(table): _Backup(table) for table in tables}
    for table in tables:
        # copy.deepcopy(table) looks __deepcopy__ up on the instance: moto's backup becomes the journal.
        table.__deepcopy__ = lambda memo, backup=backups[id(table)]: backup
    for name in _WRITES:
        setattr(self, name, _journaled(self, getattr(self, name), backups))
    try:
        return _STOCK(self, transact_items)
    except BaseException:
        for name, table in list(self.tables.items()):
            if isinstance(table, _Backup):  # moto rolled this one back
                self.tables[name] = table.restore()
        raise
    finally:
        for table in tables:
            del table.__deepcopy__
        for name in _WRITES:
            delattr(self, name)


def _named_tables(transact_items: list[dict[str, Any]]) -> list[str]:
    """The TableName of each operation, as moto's backup loop reads them (no duplicates)."""
    names = []
    for item in transact_items:
        _, op = next(iter(item.items()))
        name = op.get("TableName") if isinstance(op, dict) else None
        if name and name not in names:
            names.append(name)
    return names


def _journaled(backend: DynamoDBBackend, write, backups: dict[int, _Backup]):
    """``write`` (a bound backend method taking the table name first) that first tells the table's backup its key."""

    def call(table_name: str, key_or_item: dict[str, Any], *args, **kwargs):
        table = backend.tables.get(table_name)
        backup = backups.get(id(table)) if table is not None else None
        if backup is None:
            table = _by_arn(backend, table_name)
            backup = backups.get(id(table)) if table is not None else None
        if backup is not None:
            key = _key_of(table, key_or_item)
            if key is not None:
                backup.remember(*key)
        return write(table_name, key_or_item, *args, **kwargs)

    return call


def _by_arn(backend: DynamoDBBackend, table_name: str):
    """The table moto's get_table finds by ARN, or None."""
    return next((t for t in backend.tables.values() if getattr(t, "table_arn", None) == table_name), None)


def _key_of(table, key_or_item: dict[str, Any]) -> tuple[DynamoType, DynamoType | None] | None:
    """The (hash, range) the write addresses, as moto's Table keys its items; None if incomplete (moto then refuses it)."""
    if table.hash_key_attr not in key_or_item:
        return None
    range_value = None
    if table.has_range_key:
        if table.range_key_attr not in key_or_item:
            return None
        range_value = DynamoType(key_or_item[table.range_key_attr])
    return DynamoType(key_or_item[table.hash_key_attr]), range_value


def install() -> None:
    DynamoDBBackend.transact_write_items = transact_write_items


def uninstall() -> None:
    DynamoDBBackend.transact_write_items = _STOCK
