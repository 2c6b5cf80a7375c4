"""DynamoDB for garbage collection: the candidates index and the conditional marks and deletes.

Used only by ``registry.services.gc``, which holds the safety argument (see
also docs/architecture.md). Every delete here is conditional on a mark
(``gc_mark``: the pass's random token) that any push touching the item
clears, so a delete fails when a push touched the item after it was marked.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from registry import aws, keys
from registry.references import Digest
from registry.storage import dynamo, metadata, usage


def due_candidates(kind: str, until: int, limit: int, after: str | None = None) -> list[dict]:
    """Up to ``limit`` candidates of ``kind`` written for ``until`` (epoch s) or before, oldest first, after sort key ``after`` (one Query)."""
    low, high = f"{kind}#", f"{kind}#{max(until, 0):012d}#~"
    args = {
        "TableName": dynamo.table(),
        "KeyConditionExpression": "pk = :pk AND sk BETWEEN :low AND :high",
        "ExpressionAttributeValues": dynamo.encode({":pk": keys.GC_PK, ":low": low, ":high": high}),
        "Limit": limit,
    }
    if after is not None:
        args["ExclusiveStartKey"] = dynamo.encode({"pk": keys.GC_PK, "sk": after})
    return [dynamo.decode(item) for item in aws.dynamodb().query(**args).get("Items", [])]


def drop_candidate(item: dict):
    dynamo.delete({"pk": item["pk"], "sk": item["sk"]})


def add_candidates(items: list[dict]):
    dynamo.batch_put(items)


def get(key: dict) -> dict | None:
    return dynamo.get(key, consistent=True)


def _conditional(call, **args) -> bool:
    try:
        call(TableName=dynamo.table(), **args)
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise


def mark(key: dict, token: str, condition: str = "attribute_exists(pk)", values: dict | None = None) -> bool:
    """Set ``gc_mark = token`` on an existing item if ``condition`` holds; False otherwise."""
    return _conditional(
        aws.dynamodb().update_item,
        Key=dynamo.encode(key),
        UpdateExpression="SET gc_mark = :token",
        ConditionExpression=f"attribute_exists(pk) AND ({condition})",
        ExpressionAttributeValues=dynamo.encode({":token": token, **(values or {})}),
    )


def uses(name: str, blob: Digest, limit: int) -> list[dict]:
    """USES# records: manifests of ``name`` referencing ``blob`` (up to ``limit``, one Query)."""
    items, _ = dynamo.query_page(keys.repo_pk(name), keys.uses_prefix(blob), limit, None)
    return items


def drop_stale_use(item: dict) -> bool:
    """Delete a USES# record unless a push rewrote it since it was read (its ``created`` changed)."""
    return _conditional(
        aws.dynamodb().delete_item,
        Key=dynamo.encode({"pk": item["pk"], "sk": item["sk"]}),
        ConditionExpression="created = :created",
        ExpressionAttributeValues=dynamo.encode({":created": item["created"]}),
    )


def linked_anywhere(digest: Digest) -> list[str]:
    """Names of repositories linking ``digest`` (at most 2: one Query)."""
    items, _ = dynamo.query_page(f"BLOB#{digest}", keys.LINK_PREFIX, 2, None)
    return [item["sk"][len(keys.LINK_PREFIX) :] for item in items]


def delete_marked_manifest(name: str, digest: Digest, token: str) -> dict | None:
    """Delete the manifest if still marked ``token`` and untagged, taking its bytes off the storage
    counters in the same transaction (``metadata.remove_manifest``); the deleted item, or None."""
    return metadata.remove_manifest(name, digest, "gc_mark = :token AND attribute_not_exists(tags)", {":token": token})


def delete_marked_link(name: str, digest: Digest, token: str, blob_candidate: dict) -> bool:
    """Delete the link (if still marked ``token``) and its reverse record, queue the blob, and take the
    link's bytes off the storage counters, atomically (``metadata.unlink``)."""
    return metadata.unlink(name, digest, blob_candidate, token)


def doom_blob(digest: Digest, token: str, now: int) -> bool:
    """Mark the blob record ``doomed`` if still marked ``token`` and no push's claim is live.

    From then on no push can claim or link it (registry.storage.metadata.claim_blob, link_blob).
    """
    return _conditional(
        aws.dynamodb().update_item,
        Key=dynamo.encode(keys.blob_key(digest)),
        UpdateExpression="SET doomed = :token, doomed_at = :now",
        ConditionExpression="gc_mark = :token AND attribute_not_exists(doomed) AND (attribute_not_exists(lease_until) OR lease_until < :now)",
        ExpressionAttributeValues=dynamo.encode({":token": token, ":now": now}),
    )


def renew_doom(digest: Digest, token: str, now: int) -> bool:
    """Refresh a doom left by an earlier pass (so no push takes it over while this pass finishes it)."""
    return _conditional(
        aws.dynamodb().update_item,
        Key=dynamo.encode(keys.blob_key(digest)),
        UpdateExpression="SET doomed_at = :now",
        ConditionExpression="doomed = :token",
        ExpressionAttributeValues=dynamo.encode({":token": token, ":now": now}),
    )


def forget_blob(digest: Digest, token: str) -> bool:
    """Delete the doomed blob record (its object is deleted already), taking it off the registry's
    deduplicated bytes in the same transaction if it was counted (``usage.total_change``)."""
    record = dynamo.get(keys.blob_key(digest), consistent=True)
    if record is None or record.get("doomed") != token:
        return False
    if not record.get("counted"):
        return _conditional(
            aws.dynamodb().delete_item,
            Key=dynamo.encode(keys.blob_key(digest)),
            ConditionExpression="doomed = :token AND attribute_not_exists(counted)",
            ExpressionAttributeValues=dynamo.encode({":token": token}),
        )
    delete = {
        "TableName": dynamo.table(),
        "Key": dynamo.encode(keys.blob_key(digest)),
        "ConditionExpression": "doomed = :token AND attribute_exists(counted)",
        "ExpressionAttributeValues": dynamo.encode({":token": token}),
    }
    try:
        dynamo.transact([{"Delete": delete}, usage.total_change(digest, -int(record.get("size") or 0), -1)])
        return True
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "TransactionCanceledException":
            return False
        raise
