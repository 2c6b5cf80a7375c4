"""DynamoDB: storage accounting counters and namespace quotas (bytes stored per repository and namespace).

The counters are never written alone: ``registry.storage.metadata`` and
``registry.storage.collector`` put the items built here into the *same*
transaction as the link, manifest or blob record write that changes what is
stored, each conditioned on the state the caller read, so a counter changes
exactly when its item does (docs/architecture.md, "Storage accounting").

What is counted (``keys``' table):

* a repository's **logical** bytes: the sizes of the blobs it links plus the
  sizes of its manifests (``USAGE#<ns>/REPO#<name>``);
* a namespace's **logical** bytes: the sum over its repositories, and its
  **deduplicated** bytes: each blob its repositories link counted once (a
  reference count per (namespace, blob), ``USAGE#<ns>/BLOB#<digest>``), plus
  its manifests (each repository keeps its own copy: an item in DynamoDB, or
  for a large one an object in S3) (``USAGE/<ns>``, which also lists the
  namespace and holds its optional ``quota``);
* the registry's **deduplicated** bytes: every verified blob object once, what
  S3 bills for ``blobs/``; kept in ``TOTAL_SHARDS`` shard items
  (``USAGE_TOTAL/SHARD#<h>``, by the digest's first hex digit) so that
  concurrent pushes of different blobs do not all update one hot item.

Items are counted once each: links, manifests and blob records written by this
version carry ``counted`` (set in the transaction that adds them to the
counters); a removal subtracts only what carries it. Items from before this
version are adopted by ``registry-admin usage --recount``.

A namespace is a repository name's first component (``team`` for
``team/app``; a name without ``/`` is its own namespace).
"""

from __future__ import annotations

from typing import NamedTuple

from botocore.exceptions import ClientError

from registry import inputs, keys
from registry.errors import OciError, RegistryError
from registry.references import Digest
from registry.storage import dynamo

TOTAL_SHARDS = 16


def namespace_of(name: str) -> str:
    return name.split("/", 1)[0]


def shard_of(digest: Digest) -> str:
    return digest.hex[:1]


# --- transaction items -----------------------------------------------------------------


def update_item(key: dict, expression: str, values: dict, condition: str | None = None, names: dict | None = None) -> dict:
    update = {"TableName": dynamo.table(), "Key": dynamo.encode(key), "UpdateExpression": expression, "ExpressionAttributeValues": dynamo.encode(values)}
    if condition:
        update["ConditionExpression"] = condition
    if names:
        update["ExpressionAttributeNames"] = names
    return {"Update": update}


def namespace_change(namespace: str, logical: int, dedup: int, repositories: int = 0, quota_room: tuple[int | None, int] | None = None) -> dict:
    """Add to a namespace's counters (negative to subtract).

    ``quota_room``: (the quota the caller read, None for none; the most
    ``dedup`` may be before this change): the write holds only if the quota is
    still what was read and the usage still leaves room (DynamoDB conditions
    cannot add, so the caller subtracts: quota - size).
    """
    values = {":logical": logical, ":dedup": dedup, ":repositories": repositories}
    condition = None
    if quota_room is not None:
        quota, room = quota_room
        if quota is None:
            condition = "attribute_not_exists(quota)"
        else:
            condition = "quota = :quota AND (attribute_not_exists(dedup) OR dedup <= :room)"
            values.update({":quota": quota, ":room": room})
    return update_item(keys.usage_key(namespace), "ADD logical :logical, dedup :dedup, repositories :repositories", values, condition)


def repository_change(name: str, logical: int, exists: bool | None = None) -> dict:
    """Add to a repository's logical bytes; ``exists``: on condition that its counter item does (True) or does not (False)."""
    condition = None if exists is None else ("attribute_exists(pk)" if exists else "attribute_not_exists(pk)")
    return update_item(keys.usage_repository_key(name), "ADD logical :logical", {":logical": logical}, condition)


def reference_change(namespace: str, digest: Digest, size: int, refs_read: int, delta: int) -> dict:
    """Set the namespace's reference count of ``digest`` from ``refs_read`` (as read) to ``refs_read + delta``.

    Conditional on the count still being ``refs_read`` (absent counts as 0); at 0 the item is deleted.
    """
    key = keys.usage_blob_key(namespace, digest)
    after = refs_read + delta
    condition = "attribute_not_exists(pk)" if refs_read == 0 else "refs = :read"
    values = {} if refs_read == 0 else {":read": refs_read}
    if after <= 0:
        delete = {"TableName": dynamo.table(), "Key": dynamo.encode(key), "ConditionExpression": condition}
        if values:
            delete["ExpressionAttributeValues"] = dynamo.encode(values)
        return {"Delete": delete}
    return update_item(key, "SET refs = :after, #size = :size", {**values, ":after": after, ":size": size}, condition, {"#size": "size"})


def total_change(digest: Digest, size: int, objects: int) -> dict:
    """Add a blob object (``objects`` 1, ``size``) to the registry's deduplicated bytes, or take it away (-1, -size)."""
    return update_item(keys.usage_total_key(shard_of(digest)), "ADD dedup :size, objects :objects", {":size": size, ":objects": objects})


# --- what a link or unlink reads first ---------------------------------------------------


class LinkState(NamedTuple):
    """What a (un)link of ``digest`` in ``name`` is decided on, read in one BatchGetItem (strongly consistent)."""

    blob: dict | None  # the BLOB#<digest>/BLOB record
    link: dict | None  # the repository's link
    refs: int  # the namespace's reference count of the blob
    namespace: dict | None  # USAGE/<namespace>
    repository: dict | None  # USAGE#<namespace>/REPO#<name>

    @property
    def quota(self) -> int | None:
        quota = (self.namespace or {}).get("quota")
        return None if quota is None else int(quota)

    @property
    def dedup(self) -> int:
        return int((self.namespace or {}).get("dedup") or 0)


def exceeds_quota(state: LinkState, size: int) -> bool:
    """Would linking ``size`` more bytes new to the namespace pass its quota (as read)?"""
    return state.refs == 0 and state.quota is not None and state.dedup + size > state.quota


class QuotaExceeded(RegistryError):
    """403 DENIED: the namespace's deduplicated bytes would pass its quota (the message says both, human-readable)."""

    def __init__(self, namespace: str, quota: int, used: int, size: int):
        super().__init__(
            OciError.DENIED,
            f"storage quota exceeded: namespace {namespace} stores {inputs.format_bytes(used)} of its "
            f"{inputs.format_bytes(quota)} quota, and this blob needs {inputs.format_bytes(size)} more",
            detail={"namespace": namespace, "quota": quota, "usage": used, "size": size},
        )


def read_link_state(name: str, digest: Digest) -> LinkState:
    namespace = namespace_of(name)
    blob, link, ref, counter, repository = dynamo.get_many(
        [keys.blob_key(digest), keys.link_key(name, digest), keys.usage_blob_key(namespace, digest), keys.usage_key(namespace), keys.usage_repository_key(name)],
        consistent=True,
    )
    return LinkState(blob, link, int((ref or {}).get("refs") or 0), counter, repository)


def read_counters(name: str) -> tuple[dict | None, dict | None]:
    """(the namespace's counter item, the repository's), in one BatchGetItem."""
    namespace, repository = dynamo.get_many([keys.usage_key(namespace_of(name)), keys.usage_repository_key(name)], consistent=True)
    return namespace, repository


def read_refs(namespace: str, digest: Digest) -> int:
    item = dynamo.get(keys.usage_blob_key(namespace, digest), consistent=True)
    return int((item or {}).get("refs") or 0)


# --- reading the counters ---------------------------------------------------------------


def namespace_usage(namespace: str) -> dict | None:
    return dynamo.get(keys.usage_key(namespace))


def repository_usage(name: str, consistent: bool = False) -> dict | None:
    return dynamo.get(keys.usage_repository_key(name), consistent=consistent)


def list_namespaces(limit: int, after: str | None) -> tuple[list[dict], bool]:
    """Namespace counter items in name order after ``after`` (one Query per page; the ``USAGE`` partition)."""
    return dynamo.query_page(keys.USAGE_PK, "", limit, after)


def registry_total() -> dict:
    """{"dedup": bytes, "objects": count} of every counted blob object: one BatchGetItem of the shards."""
    shards = dynamo.get_many([keys.usage_total_key(f"{i:x}") for i in range(TOTAL_SHARDS)])
    return {
        "dedup": sum(int((shard or {}).get("dedup") or 0) for shard in shards),
        "objects": sum(int((shard or {}).get("objects") or 0) for shard in shards),
    }


# --- repairs (usage --recount) ------------------------------------------------------------


def counted_links_in_namespace(namespace: str, digest: Digest) -> int:
    """How many repositories of ``namespace`` link ``digest`` with a counted link.

    From the blob's reverse records (``BLOB#<digest>/LINK#<name>``: the
    namespace's repositories by prefix, paged) and one BatchGetItem per 100 of
    their links (strongly consistent). Bounded by the repositories of one namespace linking one blob.
    """
    names, after = [], None
    pk = keys.blob_key(digest)["pk"]
    exact = dynamo.get(keys.reverse_link_key(digest, namespace), consistent=True)
    if exact is not None:
        names.append(namespace)
    prefix = f"{keys.LINK_PREFIX}{namespace}/"
    while True:
        items, more = dynamo.query_page(pk, prefix, 100, after)
        # LINK#<name>#manifest records keep a large manifest's object: not links.
        names += [namespace + "/" + item["sk"][len(prefix) :] for item in items if "#" not in item["sk"][len(prefix) :]]
        if not more:
            break
        after = items[-1]["sk"][len(prefix) :]
    links = dynamo.get_many([keys.link_key(name, digest) for name in names], consistent=True)
    return sum(1 for link in links if link is not None and link.get("counted"))


def _transact(writes: list[dict]) -> bool:
    """True when written; False when a condition no longer held (a push changed the item meanwhile)."""
    try:
        dynamo.transact(writes)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "TransactionCanceledException":
            return False
        raise


def correct_references(namespace: str, digest: Digest, size: int, refs_read: int, refs: int) -> bool:
    """Set a reference count from ``refs_read`` to ``refs``, and the namespace's deduplicated bytes with it, if unchanged."""
    dedup = size if refs_read == 0 < refs else -size if refs == 0 < refs_read else 0
    return _transact([reference_change(namespace, digest, size, refs_read, refs - refs_read), namespace_change(namespace, 0, dedup)])


def correct_repository(name: str, logical_read: int, logical: int) -> bool:
    """Set a repository's logical bytes from ``logical_read`` to ``logical`` (and its namespace's by the difference), if unchanged."""
    condition = "attribute_not_exists(logical) OR logical = :read" if logical_read == 0 else "logical = :read"
    set_logical = update_item(keys.usage_repository_key(name), "SET logical = :logical", {":logical": logical, ":read": logical_read}, condition)
    return _transact([set_logical, namespace_change(namespace_of(name), logical - logical_read, 0)])


def set_quota(namespace: str, quota: int | None):
    """Set (bytes) or remove (None) a namespace's quota; creates its counter item (listed by ``usage``) if needed."""
    if quota is None:
        dynamo.update(keys.usage_key(namespace), "REMOVE quota")
        return
    dynamo.update(
        keys.usage_key(namespace),
        "SET quota = :quota, logical = if_not_exists(logical, :zero), dedup = if_not_exists(dedup, :zero), "
        "repositories = if_not_exists(repositories, :zero)",
        values={":quota": quota, ":zero": 0},
    )
