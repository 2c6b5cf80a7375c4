"""DynamoDB for retention policies: the policies, their index, the push-time entries of tags, the pass's cursor.

Used by ``registry.services.retention`` (which holds the rules) and by the
garbage-collection pass. Keys are in ``registry.keys``:

* ``RETENTION / <name>`` or ``RETENTION / <ns>/*``: one policy each; the
  partition is the index of what has a policy, so the pass reads it in
  pages from a cursor instead of scanning the table;
* ``RETENTION#untagged / <days>#<subject>``: the policies that set
  ``untagged_days``, smallest first, so GC learns the shortest in one Query;
* ``REPO#<name> / PUSHED#<when>#<tag>``: a tag's push time, written with the
  tag (``metadata.put_manifest``), so the oldest tags, or those beyond the
  N newest, are read in order without reading every tag.
"""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from registry import aws, keys
from registry.storage import dynamo

POLICY_FIELDS = ("keep", "expire_days", "tags", "untagged_days")


def get_policies(subjects: list[str]) -> list[dict | None]:
    """The policies of ``subjects`` (names or ``<ns>/*``), in order; None where unset (one BatchGetItem)."""
    return dynamo.get_many([keys.retention_key(subject) for subject in subjects], consistent=True)


def put_policy(subject: str, policy: dict | None):
    """Set (``policy``: the fields of POLICY_FIELDS that are set) or clear (None) a policy, with its untagged entry.

    The old untagged entry is replaced in the same transaction, on condition
    that the policy is still as read (a concurrent change makes this retry).
    """
    for _ in range(5):
        old = dynamo.get(keys.retention_key(subject), consistent=True)
        if policy is None and old is None:
            return
        was = None if old is None or old.get("untagged_days") is None else keys.retention_untagged_key(subject, old["untagged_days"])
        will = None if policy is None or policy.get("untagged_days") is None else keys.retention_untagged_key(subject, policy["untagged_days"])
        if old is None:
            guard = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            guard = {"ConditionExpression": "updated = :updated", "ExpressionAttributeValues": dynamo.encode({":updated": old.get("updated", 0)})}
        key = dynamo.encode(keys.retention_key(subject))
        if policy is None:
            writes = [{"Delete": {"TableName": dynamo.table(), "Key": key, **guard}}]
        else:
            item = {**keys.retention_key(subject), **{k: v for k, v in policy.items() if v is not None}, "updated": time.time_ns()}
            writes = [{"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(item), **guard}}]
        if was != will:
            writes += [{"Delete": {"TableName": dynamo.table(), "Key": dynamo.encode(was)}}] if was else []
            writes += [{"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(will)}}] if will else []
        try:
            dynamo.transact(writes)
            return
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
    raise dynamo.Conflict()


def shortest_untagged_days() -> int | None:
    """The smallest ``untagged_days`` any policy sets, or None (one Query of one item)."""
    items, _ = dynamo.query_page(keys.RETENTION_UNTAGGED_PK, "", 1, None)
    return int(items[0]["sk"].split("#", 1)[0]) if items else None


def any_policy() -> bool:
    items, _ = dynamo.query_page(keys.RETENTION_PK, "", 1, None)
    return bool(items)


def _range(pk: str, low: str, high: str, limit: int, after: str | None) -> list[dict]:
    """Up to ``limit`` items of ``pk`` with ``low <= sk <= high``, ascending, after sort key ``after`` (one Query)."""
    args = {
        "TableName": dynamo.table(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": dynamo.encode({":pk": pk, ":low": low, ":high": high}),
        "Limit": limit,
    }
    if not low:  # a key attribute cannot be the empty string
        args["KeyConditionExpression"] = "pk = :pk AND sk <= :high"
        args["ExpressionAttributeValues"] = dynamo.encode({":pk": pk, ":high": high})
    if after is not None:
        args["ExclusiveStartKey"] = dynamo.encode({"pk": pk, "sk": after})
    return [dynamo.decode(item) for item in aws.dynamodb().query(**args).get("Items", [])]


# Above every character of a repository name ([a-z0-9._/-]) and of a tag ([A-Za-z0-9._-]).
_LAST = "~"


def policies_from(start: str, limit: int, after: str | None = None) -> list[dict]:
    """Up to ``limit`` policies whose subject is ``start`` or later (after ``after`` when paging), in subject order."""
    return _range(keys.RETENTION_PK, start, _LAST, limit, after)


def namespace_repositories(namespace: str, start: str | None, limit: int, after: str | None = None) -> list[str]:
    """Repositories pushed to in ``namespace`` from name ``start`` on (the catalog's ``VISIBLE#all`` index, one Query)."""
    prefix = f"{namespace}/"
    items = _range(keys.VISIBLE_ALL_PK, max(start or prefix, prefix), prefix + _LAST, limit, after)
    return [item["sk"] for item in items]


def pushed_entries(name: str, newest_at_most: int | None, below: str | None, limit: int) -> list[dict]:
    """Up to ``limit`` push-time entries of ``name``, newest first, as ``{"sk", "tag", "when"}``.

    ``newest_at_most``: only entries pushed at that epoch second or before;
    ``below``: only entries whose sort key is below it (a page's continuation). One Query.
    """
    high = f"{keys.PUSHED_PREFIX}~" if newest_at_most is None else f"{keys.PUSHED_PREFIX}{max(newest_at_most, 0):012d}#~"
    args = {
        "TableName": dynamo.table(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": dynamo.encode({":pk": keys.repo_pk(name), ":low": keys.PUSHED_PREFIX, ":high": high}),
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if below is not None and below < high:
        args["ExclusiveStartKey"] = dynamo.encode({"pk": keys.repo_pk(name), "sk": below})
    entries = []
    for item in aws.dynamodb().query(**args).get("Items", []):
        sk = item["sk"]["S"]
        when, tag = sk[len(keys.PUSHED_PREFIX) :].split("#", 1)
        entries.append({"sk": sk, "tag": tag, "when": int(when)})
    return entries


def tags(name: str, tag_list: list[str]) -> list[dict | None]:
    """The tag items of ``tag_list`` (BatchGetItem, consistent: a tag pushed meanwhile is seen)."""
    return dynamo.get_many([keys.tag_key(name, tag) for tag in tag_list], consistent=True)


def drop_entry(name: str, sk: str):
    """Delete a push-time entry that no longer matches its tag (moved or deleted)."""
    dynamo.delete({"pk": keys.repo_pk(name), "sk": sk})


def get_cursor() -> dict:
    return dynamo.get(keys.retention_cursor_key(), consistent=True) or {}


def put_cursor(cursor: dict | None):
    """Save where the retention step stopped (None: it finished, start from the first policy next time)."""
    if not cursor:
        dynamo.delete(keys.retention_cursor_key())
    else:
        dynamo.put(keys.retention_cursor_key(), {k: v for k, v in cursor.items() if v is not None})


def backfill_pushed(name: str) -> int:
    """Write the push-time entry of every tag of ``name`` (``reindex``); tags without ``updated`` get now. Returns entries written.

    Reads the repository's tags (an admin operation, never on a request path).
    """
    now = int(time.time())
    written = 0
    after = None
    while True:
        items, more = dynamo.query_page(keys.repo_pk(name), keys.TAG_PREFIX, 100, after)
        entries = []
        for item in items:
            tag = item["sk"][len(keys.TAG_PREFIX) :]
            when = item.get("updated")
            if when is None:
                try:
                    dynamo.update(keys.tag_key(name, tag), "SET updated = :now", "attribute_exists(pk) AND attribute_not_exists(updated)", {":now": now})
                    when = now
                except dynamo.Conflict:
                    continue  # deleted or pushed meanwhile: that push wrote its entry
            entries.append(keys.pushed_key(name, tag, when))
        dynamo.batch_put(entries)
        written += len(entries)
        if not more:
            return written
        after = items[-1]["sk"][len(keys.TAG_PREFIX) :]
