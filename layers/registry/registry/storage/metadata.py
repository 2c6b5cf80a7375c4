"""DynamoDB: tags, manifests, repository links, the catalog and upload sessions.

The only module that speaks to DynamoDB. Keys come from ``registry.keys``.
Functions return plain dicts (attribute name -> Python value) or ``None`` when
the item is absent; a lost conditional write raises ``Conflict``.
"""

from __future__ import annotations

import random
import time

from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from registry import aws, keys
from registry.config import settings
from registry.references import Digest

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# BatchGetItem takes at most 100 keys per call.
_BATCH = 100
# A transaction touching an item another transaction holds is cancelled with
# reason TransactionConflict (e.g. two pushes linking the same blob at once);
# the SDK does not retry those, so we do, briefly, with jitter.
_TRANSACTION_ATTEMPTS = 5


class Conflict(Exception):
    """A conditional write lost a race (another request changed the item first)."""


def _encode(item: dict) -> dict:
    return {k: _serializer.serialize(v) for k, v in item.items() if v is not None}


def _decode(item: dict | None) -> dict | None:
    if item is None:
        return None
    out = {}
    for k, v in item.items():
        value = _deserializer.deserialize(v)
        out[k] = bytes(value) if isinstance(value, Binary) else value
    return out


def _table() -> str:
    return settings().table


def _transact(writes: list[dict]):
    for attempt in range(_TRANSACTION_ATTEMPTS):
        try:
            aws.dynamodb().transact_write_items(TransactItems=writes)
            return
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            conflict = any(reason.get("Code") == "TransactionConflict" for reason in reasons)
            if exc.response["Error"]["Code"] != "TransactionCanceledException" or not conflict or attempt == _TRANSACTION_ATTEMPTS - 1:
                raise
            time.sleep(random.uniform(0, 0.05 * 2**attempt))


def _get(key: dict, consistent: bool = False) -> dict | None:
    response = aws.dynamodb().get_item(TableName=_table(), Key=_encode(key), ConsistentRead=consistent)
    return _decode(response.get("Item"))


def _put(key: dict, attributes: dict, condition: str | None = None, values: dict | None = None, names: dict | None = None):
    args = {"TableName": _table(), "Item": _encode({**key, **attributes})}
    if condition:
        args["ConditionExpression"] = condition
    if values:
        args["ExpressionAttributeValues"] = _encode(values)
    if names:
        args["ExpressionAttributeNames"] = names
    try:
        aws.dynamodb().put_item(**args)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            raise Conflict() from None
        raise


def _delete(key: dict):
    aws.dynamodb().delete_item(TableName=_table(), Key=_encode(key))


def _missing(keys_by_digest: dict) -> list:
    """Digests whose key is absent, read with BatchGetItem (100 keys a call)."""
    pending = list(keys_by_digest.items())
    found = set()
    while pending:
        batch, pending = pending[:_BATCH], pending[_BATCH:]
        request = {_table(): {"Keys": [_encode(key) for _, key in batch], "ProjectionExpression": "pk, sk"}}
        while request:
            response = aws.dynamodb().batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(_table(), []):
                found.add((item["pk"]["S"], item["sk"]["S"]))
            request = response.get("UnprocessedKeys") or None
    return [digest for digest, key in keys_by_digest.items() if (key["pk"], key["sk"]) not in found]


def _query_page(pk: str, prefix: str, limit: int, after: str | None) -> tuple[list[dict], bool]:
    """Up to ``limit`` items under ``pk`` whose sk starts with ``prefix``, after ``prefix+after``.

    Reads ``limit + 1`` items to tell whether more exist (no dangling next link).
    """
    items: list[dict] = []
    args = {"TableName": _table(), "KeyConditionExpression": "pk = :pk", "ExpressionAttributeValues": _encode({":pk": pk})}
    if prefix:
        args["KeyConditionExpression"] += " AND begins_with(sk, :prefix)"
        args["ExpressionAttributeValues"] = _encode({":pk": pk, ":prefix": prefix})
    if after is not None:
        args["ExclusiveStartKey"] = _encode({"pk": pk, "sk": prefix + after})
    while len(items) <= limit:
        args["Limit"] = limit + 1 - len(items)
        response = aws.dynamodb().query(**args)
        items += [_decode(item) for item in response.get("Items", [])]
        if "LastEvaluatedKey" not in response:
            break
        args["ExclusiveStartKey"] = response["LastEvaluatedKey"]
    return items[:limit], len(items) > limit


# --- manifests and tags ----------------------------------------------------------


def get_tag(name: str, tag: str) -> dict | None:
    return _get(keys.tag_key(name, tag))


def get_manifest(name: str, digest: Digest) -> dict | None:
    return _get(keys.manifest_key(name, digest))


def missing_manifests(name: str, digests: list[Digest]) -> list[Digest]:
    return _missing({d: keys.manifest_key(name, d) for d in digests})


def put_manifest(name: str, digest: Digest, record: dict, tag: str | None, referrer: dict | None = None, children=()):
    """Store the manifest, move ``tag`` to it and list the repository, in one transaction.

    All or nothing: a pull never sees a tag pointing at a manifest not stored.
    ``referrer`` (the descriptor attributes of a manifest with a subject) is
    indexed under its subject in the same transaction. ``children`` (an
    index's manifests) are recorded first, in batches: an index too large for
    one transaction still gets them, and a failed transaction leaves at most
    harmless extra child records that a retry rewrites.
    """
    now = int(time.time())
    _batch_put([{**keys.child_key(name, child, digest), "created": now} for child in children])
    writes = [
        {"Put": {"TableName": _table(), "Item": _encode({**keys.manifest_key(name, digest), **record, "created": now})}},
        {
            "Update": {
                "TableName": _table(),
                "Key": _encode(keys.catalog_key(name)),
                "UpdateExpression": "SET updated = :now, created = if_not_exists(created, :now)",
                "ExpressionAttributeValues": _encode({":now": now}),
            }
        },
    ]
    if tag is not None:
        tag_item = {**keys.tag_key(name, tag), **record, "digest": str(digest), "updated": now}
        writes.append({"Put": {"TableName": _table(), "Item": _encode(tag_item)}})
    if referrer is not None:
        subject = Digest.parse(record["subject"])
        item = {**keys.referrer_key(name, subject, digest), **referrer, "digest": str(digest)}
        writes.append({"Put": {"TableName": _table(), "Item": _encode(item)}})
    _transact(writes)


def _batch_put(items: list[dict]):
    for start in range(0, len(items), 25):
        request = {_table(): [{"PutRequest": {"Item": _encode(item)}} for item in items[start : start + 25]]}
        while request:
            request = aws.dynamodb().batch_write_item(RequestItems=request).get("UnprocessedItems") or None


def _batch_delete(key_list: list[dict]):
    for start in range(0, len(key_list), 25):
        request = {_table(): [{"DeleteRequest": {"Key": _encode(key)}} for key in key_list[start : start + 25]]}
        while request:
            request = aws.dynamodb().batch_write_item(RequestItems=request).get("UnprocessedItems") or None


def delete_tag(name: str, tag: str) -> bool:
    """Remove a tag; False when there was none."""
    response = aws.dynamodb().delete_item(TableName=_table(), Key=_encode(keys.tag_key(name, tag)), ReturnValues="ALL_OLD")
    return "Attributes" in response


def parents(name: str, digest: Digest, limit: int = 10) -> list[str]:
    """Digests of indexes in ``name`` that list manifest ``digest`` (at most ``limit``)."""
    items, _ = _query_page(keys.repo_pk(name), keys.parents_prefix(digest), limit, None)
    return [item["sk"][len(keys.parents_prefix(digest)) :] for item in items]


def delete_manifest(name: str, digest: Digest, children=()) -> dict | None:
    """Remove a manifest, every tag pointing at it, its referrer entry and its child records.

    Returns the deleted record, or None when it was not there.
    """
    response = aws.dynamodb().delete_item(TableName=_table(), Key=_encode(keys.manifest_key(name, digest)), ReturnValues="ALL_OLD")
    old = _decode(response.get("Attributes"))
    if old is None:
        return None
    doomed = [keys.child_key(name, child, digest) for child in children]
    if old.get("subject"):
        doomed.append(keys.referrer_key(name, Digest.parse(old["subject"]), digest))
    after = None
    while True:
        tags, more = _query_page(keys.repo_pk(name), keys.TAG_PREFIX, 100, after)
        doomed += [{"pk": item["pk"], "sk": item["sk"]} for item in tags if item.get("digest") == str(digest)]
        if not more:
            break
        after = tags[-1]["sk"][len(keys.TAG_PREFIX) :]
    _batch_delete(doomed)
    return old


def list_referrers(name: str, subject: Digest, limit: int, last: str | None) -> tuple[list[dict], bool]:
    return _query_page(keys.repo_pk(name), keys.referrers_prefix(subject), limit, last)


def list_tags(name: str, limit: int, last: str | None) -> tuple[list[str], bool]:
    items, more = _query_page(keys.repo_pk(name), keys.TAG_PREFIX, limit, last)
    return [item["sk"][len(keys.TAG_PREFIX) :] for item in items], more


# --- repositories -------------------------------------------------------------------


def repository_exists(name: str) -> bool:
    return _get(keys.catalog_key(name)) is not None


def list_repositories(limit: int, last: str | None) -> tuple[list[str], bool]:
    items, more = _query_page(keys.CATALOG_PK, "", limit, last)
    return [item["sk"] for item in items], more


# --- blobs ---------------------------------------------------------------------------


def get_link(name: str, digest: Digest) -> dict | None:
    return _get(keys.link_key(name, digest))


def missing_links(name: str, digests: list[Digest]) -> list[Digest]:
    return _missing({d: keys.link_key(name, d) for d in digests})


def get_blob(digest: Digest) -> dict | None:
    return _get(keys.blob_key(digest))


def link_blob(name: str, digest: Digest, size: int, upload_id: str | None = None):
    """Record the verified blob and link it into ``name`` (closing ``upload_id``), atomically."""
    now = int(time.time())
    writes = [
        {
            "Update": {
                "TableName": _table(),
                "Key": _encode(keys.blob_key(digest)),
                "UpdateExpression": "SET #size = :size, created = if_not_exists(created, :now)",
                "ExpressionAttributeNames": {"#size": "size"},
                "ExpressionAttributeValues": _encode({":size": size, ":now": now}),
            }
        },
        {"Put": {"TableName": _table(), "Item": _encode({**keys.link_key(name, digest), "size": size, "created": now})}},
    ]
    if upload_id is not None:
        writes.append({"Delete": {"TableName": _table(), "Key": _encode(keys.upload_key(upload_id))}})
    _transact(writes)


def delete_link(name: str, digest: Digest) -> bool:
    response = aws.dynamodb().delete_item(TableName=_table(), Key=_encode(keys.link_key(name, digest)), ReturnValues="ALL_OLD")
    return "Attributes" in response


# --- upload sessions ---------------------------------------------------------------


def create_upload(upload_id: str, session: dict):
    expires = int(time.time()) + settings().upload_ttl_seconds
    _put(keys.upload_key(upload_id), {**session, "expires_at": expires}, "attribute_not_exists(pk)")


def get_upload(upload_id: str) -> dict | None:
    """The open session, or None when unknown or past its expiry (TTL deletes lazily)."""
    item = _get(keys.upload_key(upload_id), consistent=True)
    if item is None or item.get("expires_at", 0) < time.time():
        return None
    return item


def save_upload(upload_id: str, session: dict, previous_offset: int):
    """Write the session back only if no other request moved its offset meanwhile."""
    _put(keys.upload_key(upload_id), session, "#offset = :previous", {":previous": previous_offset}, {"#offset": "offset"})


def delete_upload(upload_id: str):
    _delete(keys.upload_key(upload_id))
