"""DynamoDB: tags, manifests, repository links, the catalog and upload sessions.

The only module that speaks to DynamoDB. Keys come from ``registry.keys``.
Functions return plain dicts (attribute name -> Python value) or ``None`` when
the item is absent; a lost conditional write raises ``Conflict``.
"""

from __future__ import annotations

import time

from botocore.exceptions import ClientError

from registry import aws, keys
from registry.config import settings
from registry.references import Digest
from registry.storage import catalog_index, dynamo
from registry.storage.dynamo import Conflict  # noqa: F401 - part of this module's interface

# --- manifests and tags ----------------------------------------------------------


def manifest_record_key(name: str, reference) -> dict:
    """Where a pull by ``reference`` (a Digest or a tag) reads: the manifest item or the tag's copy."""
    return keys.manifest_key(name, reference) if isinstance(reference, Digest) else keys.tag_key(name, reference)


def get_record(key: dict) -> dict | None:
    return dynamo.get(key)


def get_records(*key_list: dict) -> list[dict | None]:
    """Several items in one round trip (a HEAD reads its manifest and its rate counter together)."""
    return dynamo.get_many(list(key_list))


def get_manifest(name: str, digest: Digest) -> dict | None:
    return dynamo.get(keys.manifest_key(name, digest))


def check_references(name: str, blobs: list[Digest], manifests: list[Digest]) -> tuple[list[Digest], dict | None]:
    """(the referenced blobs and manifests ``name`` lacks, the repository's catalog item), in one read."""
    wanted = [keys.link_key(name, d) for d in blobs] + [keys.manifest_key(name, d) for d in manifests]
    *found, repository = dynamo.get_many([*wanted, keys.catalog_key(name)])
    missing = [digest for digest, item in zip([*blobs, *manifests], found) if item is None]
    return missing, repository


_UNREAD = object()
# A first push that lost to a concurrent access change or first push is retried
# on a fresh read of the catalog item this many times.
_PUSH_ATTEMPTS = 5


def put_manifest(name: str, digest: Digest, record: dict, tag: str | None, referrer: dict | None = None, children=(), repository=_UNREAD):
    """Store the manifest, move ``tag`` to it and list the repository, in one transaction.

    All or nothing: a pull never sees a tag pointing at a manifest not stored.
    ``referrer`` (the descriptor attributes of a manifest with a subject) is
    indexed under its subject in the same transaction. ``children`` (an
    index's manifests) are recorded first, in batches: an index too large for
    one transaction still gets them, and a failed transaction leaves at most
    harmless extra child records that a retry rewrites.

    ``repository`` is the catalog item as the caller read it (None: absent).
    The first push of a repository also writes its catalog index entries
    (``catalog_index``), on the condition that the item is still as read; a
    push that loses that race re-reads the item and tries again.
    """
    now = int(time.time())
    dynamo.batch_put([{**keys.child_key(name, child, digest), "created": now} for child in children])
    writes = [{"Put": {"TableName": dynamo.table(), "Item": dynamo.encode({**keys.manifest_key(name, digest), **record, "created": now})}}]
    if tag is not None:
        tag_item = {**keys.tag_key(name, tag), **record, "digest": str(digest), "updated": now}
        writes.append({"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(tag_item)}})
    if referrer is not None:
        subject = Digest.parse(record["subject"])
        item = {**keys.referrer_key(name, subject, digest), **referrer, "digest": str(digest)}
        writes.append({"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(item)}})
    if repository is _UNREAD:
        repository = dynamo.get(keys.catalog_key(name), consistent=True)
    for attempt in range(_PUSH_ATTEMPTS):
        try:
            index = catalog_index.changes(name, repository, {**(repository or {}), "created": now})
            dynamo.transact([_list_repository(name, repository, now), *writes, *index])
            return
        except ClientError as exc:
            if not catalog_index.condition_failed(exc, 0) or attempt == _PUSH_ATTEMPTS - 1:
                raise
            repository = dynamo.get(keys.catalog_key(name), consistent=True)


def _list_repository(name: str, repository: dict | None, now: int) -> dict:
    """The catalog item's update: ``created`` on the first push, ``updated`` on every push.

    Conditional: an existing repository must still exist; a new one must still
    be new and without access changes since ``repository`` was read, since its
    index entries are derived from that read.
    """
    if repository is not None and "created" in repository:
        condition, values = "attribute_exists(created)", {}
    else:
        condition, values = catalog_index.unchanged_condition(repository)
    return {
        "Update": {
            "TableName": dynamo.table(),
            "Key": dynamo.encode(keys.catalog_key(name)),
            "UpdateExpression": "SET updated = :now, created = if_not_exists(created, :now)",
            "ConditionExpression": condition,
            "ExpressionAttributeValues": dynamo.encode({":now": now, **values}),
        }
    }


def delete_tag(name: str, tag: str) -> bool:
    """Remove a tag; False when there was none."""
    response = aws.dynamodb().delete_item(TableName=dynamo.table(), Key=dynamo.encode(keys.tag_key(name, tag)), ReturnValues="ALL_OLD")
    return "Attributes" in response


def parents(name: str, digest: Digest, limit: int = 10) -> list[str]:
    """Digests of indexes in ``name`` that list manifest ``digest`` (at most ``limit``)."""
    items, _ = dynamo.query_page(keys.repo_pk(name), keys.parents_prefix(digest), limit, None)
    return [item["sk"][len(keys.parents_prefix(digest)) :] for item in items]


def delete_manifest(name: str, digest: Digest, children=()) -> dict | None:
    """Remove a manifest, every tag pointing at it, its referrer entry and its child records.

    Returns the deleted record, or None when it was not there.
    """
    response = aws.dynamodb().delete_item(TableName=dynamo.table(), Key=dynamo.encode(keys.manifest_key(name, digest)), ReturnValues="ALL_OLD")
    old = dynamo.decode(response.get("Attributes"))
    if old is None:
        return None
    doomed = [keys.child_key(name, child, digest) for child in children]
    if old.get("subject"):
        doomed.append(keys.referrer_key(name, Digest.parse(old["subject"]), digest))
    after = None
    while True:
        tags, more = dynamo.query_page(keys.repo_pk(name), keys.TAG_PREFIX, 100, after)
        doomed += [{"pk": item["pk"], "sk": item["sk"]} for item in tags if item.get("digest") == str(digest)]
        if not more:
            break
        after = tags[-1]["sk"][len(keys.TAG_PREFIX) :]
    dynamo.batch_delete(doomed)
    return old


def list_referrers(name: str, subject: Digest, limit: int, last: str | None) -> tuple[list[dict], bool]:
    return dynamo.query_page(keys.repo_pk(name), keys.referrers_prefix(subject), limit, last)


def list_tags(name: str, limit: int, last: str | None) -> tuple[list[str], bool]:
    items, more = dynamo.query_page(keys.repo_pk(name), keys.TAG_PREFIX, limit, last)
    return [item["sk"][len(keys.TAG_PREFIX) :] for item in items], more


# --- repositories -------------------------------------------------------------------


def repository_exists(name: str) -> bool:
    """A manifest was pushed to it (an item holding only access settings does not count)."""
    item = dynamo.get(keys.catalog_key(name))
    return item is not None and "created" in item


def list_repositories(streams: list[tuple[str, str]], limit: int, last: str | None) -> tuple[list[str], str | None]:
    """Names of repositories after ``last`` in the catalog index partitions ``streams``, merged.

    Returns (at most ``limit`` names, the ``last`` of the next page or None);
    see ``catalog_index.page``: one Query per stream.
    """
    return catalog_index.page(streams, limit, last)


# --- blobs ---------------------------------------------------------------------------


def get_link(name: str, digest: Digest) -> dict | None:
    return dynamo.get(keys.link_key(name, digest))


def first_link(names: list[str], digest: Digest) -> dict | None:
    """The link of ``digest`` in the first of ``names`` that has one (one BatchGetItem per 100 names)."""
    return next((link for link in dynamo.get_many([keys.link_key(name, digest) for name in names]) if link is not None), None)


def get_blob(digest: Digest) -> dict | None:
    return dynamo.get(keys.blob_key(digest))


def link_blob(name: str, digest: Digest, size: int, upload_id: str | None = None, keep_session: bool = False):
    """Record the verified blob and link it into ``name`` (closing ``upload_id``), atomically.

    ``keep_session``: mark the session ``verified`` instead of deleting it, so a
    client repeating its completing PUT is answered 201 (direct uploads); the
    session's TTL removes it later.
    """
    now = int(time.time())
    writes = [
        {
            "Update": {
                "TableName": dynamo.table(),
                "Key": dynamo.encode(keys.blob_key(digest)),
                "UpdateExpression": "SET #size = :size, created = if_not_exists(created, :now)",
                "ExpressionAttributeNames": {"#size": "size"},
                "ExpressionAttributeValues": dynamo.encode({":size": size, ":now": now}),
            }
        },
        {"Put": {"TableName": dynamo.table(), "Item": dynamo.encode({**keys.link_key(name, digest), "size": size, "created": now})}},
    ]
    if upload_id is not None and keep_session:
        writes.append(
            {
                "Update": {
                    "TableName": dynamo.table(),
                    "Key": dynamo.encode(keys.upload_key(upload_id)),
                    "UpdateExpression": "SET #state = :verified REMOVE #hash",
                    "ConditionExpression": "attribute_exists(pk)",
                    "ExpressionAttributeNames": {"#state": "state", "#hash": "hash"},
                    "ExpressionAttributeValues": dynamo.encode({":verified": "verified"}),
                }
            }
        )
    elif upload_id is not None:
        writes.append({"Delete": {"TableName": dynamo.table(), "Key": dynamo.encode(keys.upload_key(upload_id))}})
    dynamo.transact(writes)


def delete_link(name: str, digest: Digest) -> bool:
    response = aws.dynamodb().delete_item(TableName=dynamo.table(), Key=dynamo.encode(keys.link_key(name, digest)), ReturnValues="ALL_OLD")
    return "Attributes" in response


# --- upload sessions ---------------------------------------------------------------


def create_upload(upload_id: str, session: dict):
    expires = int(time.time()) + settings().upload_ttl_seconds
    dynamo.put(keys.upload_key(upload_id), {**session, "expires_at": expires}, "attribute_not_exists(pk)")


def get_upload(upload_id: str) -> dict | None:
    """The open session, or None when unknown or past its expiry (TTL deletes lazily)."""
    item = dynamo.get(keys.upload_key(upload_id), consistent=True)
    if item is None or item.get("expires_at", 0) < time.time():
        return None
    return item


def save_upload(upload_id: str, session: dict, previous_offset: int):
    """Write the session back only if no other request moved its offset meanwhile."""
    dynamo.put(keys.upload_key(upload_id), session, "#offset = :previous", {":previous": previous_offset}, {"#offset": "offset"})


def start_direct_upload(upload_id: str, multipart_id: str):
    """Switch a fresh session to direct-to-S3 parts; Conflict if it took bytes or another request did it first."""
    aws_args = {
        "TableName": dynamo.table(),
        "Key": dynamo.encode(keys.upload_key(upload_id)),
        "UpdateExpression": "SET direct = :yes, multipart = :multipart",
        "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(multipart) AND #offset = :zero",
        "ExpressionAttributeNames": {"#offset": "offset"},
        "ExpressionAttributeValues": dynamo.encode({":yes": True, ":multipart": multipart_id, ":zero": 0}),
    }
    try:
        aws.dynamodb().update_item(**aws_args)
    except aws.dynamodb().exceptions.ConditionalCheckFailedException:
        raise Conflict() from None


def claim_assembly(upload_id: str, stale_before: int):
    """Mark a direct upload as being assembled by this request (Conflict: another request is at it).

    A claim older than ``stale_before`` (epoch seconds) is taken over: the
    request that made it has timed out. ``release_assembly`` gives it back.
    """
    try:
        aws.dynamodb().update_item(
            TableName=dynamo.table(),
            Key=dynamo.encode(keys.upload_key(upload_id)),
            UpdateExpression="SET #state = :assembling, touched = :now",
            ConditionExpression="attribute_exists(pk) AND (attribute_not_exists(#state) OR (#state = :assembling AND touched < :stale))",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=dynamo.encode({":assembling": "assembling", ":now": int(time.time()), ":stale": stale_before}),
        )
    except aws.dynamodb().exceptions.ConditionalCheckFailedException:
        raise Conflict() from None


def release_assembly(upload_id: str):
    """Undo ``claim_assembly`` (the parts were refused: the client may send them again)."""
    aws.dynamodb().update_item(
        TableName=dynamo.table(),
        Key=dynamo.encode(keys.upload_key(upload_id)),
        UpdateExpression="REMOVE #state",
        ConditionExpression="#state = :assembling",
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues=dynamo.encode({":assembling": "assembling"}),
    )


def save_verification(upload_id: str, session: dict, previous_step: int | None):
    """Write a verification's progress back only if no other worker advanced it meanwhile (Conflict).

    ``previous_step`` None: the verification starts now (no other request may have started it).
    """
    if previous_step is None:
        dynamo.put(keys.upload_key(upload_id), session, "attribute_exists(pk) AND attribute_not_exists(#step)", names={"#step": "step"})
        return
    dynamo.put(
        keys.upload_key(upload_id),
        session,
        "attribute_exists(pk) AND #step = :previous",
        {":previous": previous_step},
        {"#step": "step"},
    )


def delete_upload(upload_id: str):
    dynamo.delete(keys.upload_key(upload_id))
