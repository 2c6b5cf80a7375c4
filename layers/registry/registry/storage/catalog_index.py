"""DynamoDB: the catalog's indexes, so a catalog page costs about ``n`` items for every caller.

A caller may list the repositories they may pull: the public ones, their own
namespace ``<user>/…``, what they were granted, or everything (an admin, or
authentication off). Each of those sets is a partition of its own, sorted by
name (``registry.keys``):

* ``VISIBLE#all``: every repository pushed to (admins; a namespace is the
  ``begins_with <user>/`` range of it);
* ``VISIBLE#public``: visibility set to public;
* ``VISIBLE#default``: no visibility set. It is listed to everyone while
  ``DEFAULT_VISIBILITY`` is public, so changing that parameter needs no
  rewrite of the index (it decides which partitions are read, not what is in
  them);
* ``GRANTEE#<user>``: repositories ``<user>`` holds a grant on.

An entry exists only once a manifest has been pushed (the catalog item has
``created``): access set before the first push lists nothing. Entries are
written in the same transaction as the catalog item they mirror: the first
push (``metadata.put_manifest``) and every access change
(``principals.set_repository_access``), each conditional on the catalog item
being as it was read (``created`` present or not, ``access_version``), so a
push racing an access change retries instead of leaving the index behind.

``USER#<user> / GRANT#<name>`` records every grant a user holds, pushed to or
not, so deleting the user finds and removes them without a scan.

A page (``page``) queries each of the caller's partitions once from ``last``
with ``Limit n+1`` and merges the sorted streams: at most 4 Query calls and
4·(n+1) small items, whatever the size of the registry and whatever the caller
may see. Every name a partition holds is one the caller may see, so the
``last`` of the next-page link is too.

Reference: DynamoDB Query, ``Limit`` and ``ExclusiveStartKey``,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Query.html;
TransactWriteItems (at most 100 actions),
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from registry import aws, keys
from registry.storage import dynamo

# A repository holds at most this many grants: the first push writes one
# GRANTEE entry per grant in its transaction (100 actions at most, with the
# manifest, tag, referrer, catalog item and two VISIBLE entries).
GRANTS_MAX = 50


# --- what a catalog item is indexed under ------------------------------------------------


def entries(name: str, item: dict | None) -> list[dict]:
    """Keys of the index entries of a repository whose catalog item is ``item`` (none before its first push)."""
    if not item or "created" not in item:
        return []
    found = [keys.visible_key(keys.VISIBLE_ALL_PK, name)]
    visibility = item.get("visibility")
    if visibility == "public":
        found.append(keys.visible_key(keys.VISIBLE_PUBLIC_PK, name))
    elif visibility != "private":
        found.append(keys.visible_key(keys.VISIBLE_DEFAULT_PK, name))
    found += [keys.grantee_key(user, name) for user in sorted((item.get("grants") or {}))]
    return found


def changes(name: str, before: dict | None, after: dict | None) -> list[dict]:
    """TransactWriteItems actions that turn the index entries of ``before`` into those of ``after``."""
    old = {(k["pk"], k["sk"]): k for k in entries(name, before)}
    new = {(k["pk"], k["sk"]): k for k in entries(name, after)}
    table = dynamo.table()
    writes = [{"Put": {"TableName": table, "Item": dynamo.encode(new[k])}} for k in sorted(new.keys() - old.keys())]
    writes += [{"Delete": {"TableName": table, "Key": dynamo.encode(old[k])}} for k in sorted(old.keys() - new.keys())]
    return writes


def unchanged_condition(item: dict | None) -> tuple[str, dict]:
    """A condition (expression, values) that holds while the catalog item is as ``item`` was read.

    What the index mirrors changes only with ``created`` (the first push) and
    ``access_version`` (every access change), so those two are compared.
    """
    item = item or {}
    created = "attribute_exists(created)" if "created" in item else "attribute_not_exists(created)"
    if "access_version" in item:
        return f"{created} AND access_version = :seen_version", {":seen_version": int(item["access_version"])}
    return f"{created} AND attribute_not_exists(access_version)", {}


def condition_failed(exc: ClientError, position: int) -> bool:
    """Did the transaction fail because the condition of action ``position`` did not hold?"""
    if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
        return False
    reasons = exc.response.get("CancellationReasons") or []
    return position < len(reasons) and reasons[position].get("Code") == "ConditionalCheckFailed"


# --- reading a page --------------------------------------------------------------------------


def _query(pk: str, prefix: str, last: str | None, limit: int) -> tuple[list[str], str | None]:
    """One Query: up to ``limit`` names after ``last`` (and the last key evaluated when there may be more)."""
    args = {"TableName": dynamo.table(), "KeyConditionExpression": "pk = :pk", "Limit": limit}
    values = {":pk": pk}
    if prefix:
        args["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
        values[":prefix"] = prefix
    if last is not None and last >= prefix:
        # ExclusiveStartKey must lie inside the key condition's range (callers skip ranges below ``last``).
        args["ExclusiveStartKey"] = dynamo.encode({"pk": pk, "sk": last})
    args["ExpressionAttributeValues"] = dynamo.encode(values)
    response = aws.dynamodb().query(**args)
    names = [item["sk"]["S"] for item in response.get("Items", [])]
    evaluated = response.get("LastEvaluatedKey")
    return names, evaluated["sk"]["S"] if evaluated else None


def _range_is_past(prefix: str, last: str | None) -> bool:
    """True when every name starting with ``prefix`` sorts at or before ``last`` (nothing left to read)."""
    return bool(prefix) and last is not None and last > prefix and not last.startswith(prefix)


def page(streams: list[tuple[str, str]], limit: int, last: str | None) -> tuple[list[str], str | None]:
    """Up to ``limit`` names after ``last`` from the union of ``streams`` ((partition, sk prefix) pairs).

    Returns (names, the ``last`` of the next page or None when there is none).
    Each stream is read once with ``Limit limit+1``: the union's first
    ``limit`` names are then exact (the k-th of the union is among the first k
    of its own stream). A Query cut short before its Limit (DynamoDB stops at
    1 MB) bounds how far the merge may go: names up to that key are complete,
    and the next page starts after it; that key is itself an entry of a
    partition the caller may list.
    """
    found: set[str] = set()
    horizon: str | None = None  # everything at or before it has been read from every stream
    for pk, prefix in streams:
        if _range_is_past(prefix, last):
            continue
        names, evaluated = _query(pk, prefix, last, limit + 1)
        found.update(names)
        if evaluated is not None and len(names) <= limit:
            horizon = evaluated if horizon is None else min(horizon, evaluated)
    ordered = sorted(name for name in found if horizon is None or name <= horizon)
    names = ordered[:limit]
    if len(ordered) > limit:
        return names, names[-1] if names else None
    if horizon is not None:
        return names, horizon
    return names, None


# --- maintenance (admin CLI) -----------------------------------------------------------------------


def _all(pk: str, prefix: str = "") -> list[dict]:
    items: list[dict] = []
    after = None
    while True:
        batch, more = dynamo.query_page(pk, prefix, 1000, after)
        items += batch
        if not more:
            return items
        after = batch[-1]["sk"][len(prefix) :]


def namespace_items(user: str) -> list[dict]:
    """Every catalog item under ``<user>/`` (pushed to or holding access settings only)."""
    return _all(keys.CATALOG_PK, f"{user}/")


def user_grants(user: str) -> list[str]:
    """Names of the repositories ``user`` holds a grant on."""
    return [item["sk"][len(keys.GRANT_PREFIX) :] for item in _all(keys.user_pk(user), keys.GRANT_PREFIX)]


def delete_repository(name: str, item: dict | None):
    """Delete a repository's metadata: its items, catalog item, index entries, stars and search entries.

    Blob bytes and the ``BLOB#`` records stay (other repositories may link the
    same blobs; unreferenced ones are for garbage collection). The catalog
    item goes last, so an interrupted deletion is found and finished by a
    second run.
    """
    from registry.storage import metadata, search_index

    metadata.uncount_repository(name)  # its bytes leave the storage counters first (registry.storage.usage)
    doomed = [{"pk": i["pk"], "sk": i["sk"]} for i in _all(keys.repo_pk(name))]
    doomed += [{"pk": i["pk"], "sk": i["sk"]} for i in _all(keys.star_key(name, "")["pk"])]
    doomed += [keys.gram_key(gram, name) for gram in sorted(search_index.grams(name))]
    doomed += [keys.word_key(word, name) for word in sorted(search_index.words((item or {}).get("description") or ""))]
    # Whatever the visibility: deleting an absent item is harmless, a missed one would list a ghost.
    doomed += [keys.visible_key(pk, name) for pk in (keys.VISIBLE_ALL_PK, keys.VISIBLE_PUBLIC_PK, keys.VISIBLE_DEFAULT_PK)]
    grants = sorted((item or {}).get("grants") or {})
    doomed += [keys.grantee_key(user, name) for user in grants] + [keys.user_grant_key(user, name) for user in grants]
    dynamo.batch_delete(list({(k["pk"], k["sk"]): k for k in doomed}.values()))
    dynamo.delete(keys.catalog_key(name))


def _scan_keys(condition: str, values: dict) -> list[dict]:
    """Keys of every item matching ``condition`` (an admin operation: a scan, never on a request path)."""
    found: list[dict] = []
    args = {"TableName": dynamo.table(), "FilterExpression": condition, "ProjectionExpression": "pk, sk"}
    args["ExpressionAttributeValues"] = dynamo.encode(values)
    while True:
        response = aws.dynamodb().scan(**args)
        found += [dynamo.decode(item) for item in response.get("Items", [])]
        if "LastEvaluatedKey" not in response:
            return found
        args["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _wanted(name: str, item: dict | None) -> dict[tuple[str, str], dict]:
    """Every index item a repository's catalog item calls for (the catalog indexes and its users' grant records)."""
    wanted = {(k["pk"], k["sk"]): k for k in entries(name, item)}
    for user, action in ((item or {}).get("grants") or {}).items():
        key = keys.user_grant_key(user, name)
        wanted[(key["pk"], key["sk"])] = {**key, "action": action}
    return wanted


def _name_of(key: tuple[str, str]) -> str:
    pk, sk = key
    return sk[len(keys.GRANT_PREFIX) :] if pk.startswith("USER#") else sk


def rebuild() -> dict:
    """Make the indexes match the catalog items; drop grants of users that do not exist.

    For tables written before the indexes existed (their repositories would
    otherwise be listed to admins only), and as a repair. Idempotent; reads
    the whole catalog, so it is an admin operation (``registry-admin
    reindex``), never on a request path. An entry that looks stale is checked
    against a fresh read of its catalog item before it is deleted, so a push
    made meanwhile keeps its entries. Returns counts: ``repositories``,
    ``added``, ``removed``, ``orphan_grants`` (grants of deleted users, now
    removed) and ``orphan_namespaces`` (namespaces holding repositories whose
    user does not exist: a user created with that name would own them).
    """
    from registry.storage import principals

    items = _all(keys.CATALOG_PK)
    namespaces = {item["sk"].split("/", 1)[0] for item in items if "/" in item["sk"] and "created" in item}
    users = namespaces | {user for item in items for user in (item.get("grants") or {})}
    existing_users = {user for user in users if principals.get_user(user) is not None}
    orphan_grants = 0
    wanted: dict[tuple[str, str], dict] = {}
    for item in items:
        name, grants = item["sk"], item.get("grants") or {}
        for user in sorted(set(grants) - existing_users):
            # A grant outliving its user would pass to the next user of that name.
            principals.set_repository_access(name, grant=(user, None))
            del grants[user]
            orphan_grants += 1
        wanted.update(_wanted(name, item))
    present = {(i["pk"], i["sk"]) for pk in (keys.VISIBLE_ALL_PK, keys.VISIBLE_PUBLIC_PK, keys.VISIBLE_DEFAULT_PK) for i in _all(pk)}
    grant_items = _scan_keys(
        "begins_with(pk, :grantee) OR begins_with(sk, :grant)", {":grantee": keys.GRANTEE_PREFIX, ":grant": keys.GRANT_PREFIX}
    )
    present |= {(i["pk"], i["sk"]) for i in grant_items}
    added = [wanted[k] for k in sorted(wanted.keys() - present)]
    dynamo.batch_put(added)
    removed = []
    for key in sorted(present - wanted.keys()):
        name = _name_of(key)
        if key not in _wanted(name, dynamo.get(keys.catalog_key(name), consistent=True)):
            removed.append({"pk": key[0], "sk": key[1]})
    dynamo.batch_delete(removed)
    return {
        "repositories": sum(1 for item in items if "created" in item),
        "added": len(added),
        "removed": len(removed),
        "orphan_grants": orphan_grants,
        "orphan_namespaces": sorted(namespaces - existing_users),
    }
