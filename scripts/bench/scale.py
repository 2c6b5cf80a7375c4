"""Section 4: do reads grow with what the registry holds?

One repository is pushed through the API; its tag item and catalog item are
then cloned straight into DynamoDB with ``BatchWriteItem`` (the layouts of
``registry.keys``, copied from real items, so nothing is hand-spelled) until
the repository has N tags and the catalog N repositories. At each N the same
requests are measured: calls, items read and capacity units should not move.

The restricted-user catalog is the case worth seeing: a user who may pull
one repository among N private ones. Its page merges the user's catalog index
partitions (public, namespace, grants), so it should read about as many items
as it returns, whatever N.
"""

from __future__ import annotations

import boto3

from bench.calls import ACCEPT, summarize
from bench.inprocess import running

SIZES = (10, 1_000, 10_000)
PAGE = 100
REPO = "scale/app"
USER = ("alice", "alice-password-for-bench")


def _raw_item(table: str, pk: str, sk: str) -> dict:
    return boto3.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}})["Item"]


def _write_all(table: str, items: list[dict]) -> None:
    client = boto3.client("dynamodb")
    for start in range(0, len(items), 25):
        request = {table: [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]}
        while request:
            request = client.batch_write_item(RequestItems=request).get("UnprocessedItems") or None


class Seeder:
    """Grows the tag list of ``REPO`` and the catalog to a given size by cloning real items."""

    def __init__(self, table: str):
        from registry import keys

        self.table = table
        tag = keys.tag_key(REPO, "v1")
        self.tag_item = _raw_item(table, tag["pk"], tag["sk"])
        catalog = keys.catalog_key(REPO)
        self.catalog_item = _raw_item(table, catalog["pk"], catalog["sk"])
        # The repository's catalog index entries, as its first push wrote them.
        from registry.storage import catalog_index

        self.index_items = [_raw_item(table, key["pk"], key["sk"]) for key in catalog_index.entries(REPO, {"created": 1})]
        self.tag_prefix = keys.TAG_PREFIX
        self.size = 1  # the pushed tag v1 and repository scale/app

    def grow(self, size: int) -> None:
        """Clone up to ``size`` tags (v1, t000001, …) and repositories (scale/app, scale/r000001, …)."""
        new_tags = [{**self.tag_item, "sk": {"S": f"{self.tag_prefix}t{n:06d}"}} for n in range(self.size, size)]
        originals = [self.catalog_item, *self.index_items]
        new_repos = [{**item, "sk": {"S": f"scale/r{n:06d}"}} for n in range(self.size, size) for item in originals]
        _write_all(self.table, new_tags + new_repos)
        self.size = max(size, self.size)


def _restricted_user(reg, seeder: Seeder):
    """A user owning ``alice/app`` only (the other repositories are private)."""
    from registry import accounts

    accounts.create_user(*USER)
    _write_all(seeder.table, [{**item, "sk": {"S": "alice/app"}} for item in [seeder.catalog_item, *seeder.index_items]])
    return reg.client(USER)


def measure_at(reg, size: int, reps: int, alice) -> list[dict]:
    admin = reg.client()
    m = lambda client, path, **kw: [reg.measure(client, "GET", path, **kw) for _ in range(reps)]  # noqa: E731
    rows = [
        summarize("manifest GET by tag", m(admin, f"/v2/{REPO}/manifests/t000005", headers=ACCEPT)),
        summarize(f"tags list, first page (n={PAGE})", m(admin, f"/v2/{REPO}/tags/list?n={PAGE}")),
        summarize(f"tags list, page after t{size // 2:06d} (n={PAGE})", m(admin, f"/v2/{REPO}/tags/list?n={PAGE}&last=t{size // 2:06d}")),
        summarize(f"catalog page (n={PAGE}), admin", m(admin, f"/v2/_catalog?n={PAGE}")),
        summarize(f"catalog page (n={PAGE}), user who may pull 1 repository", m(alice, f"/v2/_catalog?n={PAGE}")),
        summarize(f"catalog page (n={PAGE}), anonymous (no public repository)", m(reg.client(None), f"/v2/_catalog?n={PAGE}")),
    ]
    for row in rows:
        row["size"] = size
    return rows


def run(options: dict) -> dict:
    reps = options.get("reps", 7)
    rows = []
    with running() as reg:
        from registry.config import settings

        reg.client().push_image(REPO, "v1", [b"scale-layer"])
        seeder = Seeder(settings().table)
        alice = _restricted_user(reg, seeder)
        for size in SIZES:
            seeder.grow(size)
            rows += measure_at(reg, size, reps, alice)
    return {"rows": rows, "sizes": list(SIZES), "page": PAGE}
