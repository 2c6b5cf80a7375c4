"""moto's Query of a table reading only the queried partition, for the benchmarks only.

Why: moto (5.2.1, ``Table.query``) finds a table query's items as
``[item for item in self.all_items() if item.hash_key == hash_key]``, and
``all_items()`` sorts every item of the table: each Query costs
O(n log n) in the table's size n, where DynamoDB reads one partition. A
garbage-collection pass over 10,000 blobs (bench/gc.py) makes hundreds of
queries against about 43,000 items; under cProfile at 3,000 blobs the sort
was 80 % of the run. The emulator, not the registry, grew with the table.

What changes: only that list. moto's own method still runs (key conditions,
sort order, ``ExclusiveStartKey``, ``Limit``, the 1 MB page, filters,
projections); during a query of the table itself (no index) its
``all_items()`` returns the items of ``self.items[hash_key]``, sorted as
``all_items`` sorts, which is exactly what the filter kept: moto keys its
items dict by ``DynamoType``, whose hash and equality are both on
(type, value). Queries of an index keep moto's path (an index is computed
from every item). tests/unit/test_bench_moto_query.py runs the same
queries against both.

    install()     from now on, in this process (idempotent)
    uninstall()   moto's own method again
"""

from __future__ import annotations

import inspect

from moto.dynamodb.models.table import Table

_STOCK = Table.query
_SIGNATURE = inspect.signature(_STOCK)


def query(self: Table, *args, **kwargs):
    """moto's Table.query, reading one partition when it queries the table itself (module docstring)."""
    arguments = _SIGNATURE.bind(self, *args, **kwargs).arguments
    hash_key = arguments.get("hash_key")
    if arguments.get("index_name") or hash_key is None:
        return _STOCK(self, *args, **kwargs)
    self.all_items = lambda: _partition(self, hash_key)  # looked up on the instance first
    try:
        return _STOCK(self, *args, **kwargs)
    finally:
        del self.all_items


def _partition(table: Table, hash_key):
    """The items ``all_items()`` would return whose hash key is ``hash_key``, in its order."""
    bucket = table.items.get(hash_key)  # .get: the defaultdict must not grow an empty partition
    if bucket is None:
        return []
    items = list(bucket.values()) if table.has_range_key else [bucket]
    return sorted(items, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def install() -> None:
    Table.query = query


def uninstall() -> None:
    Table.query = _STOCK
