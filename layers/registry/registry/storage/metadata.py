"""DynamoDB: tags, manifests, repository links, the catalog and upload sessions.

The only module that speaks to DynamoDB. Keys come from ``registry.keys``.
Functions return plain dicts (attribute name -> Python value) or ``None`` when
the item is absent; a lost conditional write raises ``Conflict``.
"""

from __future__ import annotations

import time
import uuid

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


def check_references(name: str, blobs: list[Digest], manifests: list[Digest], tag: str | None = None) -> tuple[list[Digest], dict | None, dict | None]:
    """(the referenced blobs and manifests ``name`` lacks, the repository's catalog item, ``tag``'s item), in one read.

    The tag's item is read eventually consistently: ``put_manifest`` moves the
    tag only if it still holds what was read (``TagMoved`` otherwise).
    """
    wanted = [keys.link_key(name, d) for d in blobs] + [keys.manifest_key(name, d) for d in manifests]
    extra = [keys.catalog_key(name)] + ([keys.tag_key(name, tag)] if tag is not None else [])
    items = dynamo.get_many([*wanted, *extra])
    found, repository = items[: len(wanted)], items[len(wanted)]
    current = items[len(wanted) + 1] if tag is not None else None
    missing = [digest for digest, item in zip([*blobs, *manifests], found) if item is None]
    return missing, repository, current


_UNREAD = object()
# A first push that lost to a concurrent access change or first push is retried
# on a fresh read of the catalog item this many times.
_PUSH_ATTEMPTS = 5


def get_tag(name: str, tag: str) -> dict | None:
    return dynamo.get(keys.tag_key(name, tag), consistent=True)


class TagMoved(Exception):
    """The tag no longer points where the caller read it pointing (another push moved it)."""


class Missing(Exception):
    """A referenced blob link or manifest was deleted (by garbage collection) after it was checked."""

    def __init__(self, digests: list[Digest]):
        super().__init__(", ".join(map(str, digests)))
        self.digests = digests


def candidate(kind: str, name: str, digest: Digest | str, since: int) -> dict:
    """A garbage-collection candidate item: ``name``'s ``digest`` may be garbage since ``since`` (epoch s).

    The pass takes a candidate once its kind's grace period has passed since
    then (so a changed grace applies to candidates already written); 0: at once,
    the pass checks the item's own age.
    """
    return {**keys.candidate_key(kind, max(since, 0), uuid.uuid4().hex[:12]), "name": name, "digest": str(digest)}


def _touch(key: dict) -> dict:
    """A transaction item that clears a GC mark and fails if the item is gone (registry.services.gc)."""
    return {
        "Update": {
            "TableName": dynamo.table(),
            "Key": dynamo.encode(key),
            "UpdateExpression": "REMOVE gc_mark",
            "ConditionExpression": "attribute_exists(pk)",
        }
    }


def _manifest_update(name: str, digest: Digest, record: dict, tag: str | None, now: int) -> dict:
    """Store the manifest without losing its ``tags`` set; clears any GC mark (an Update, not a Put)."""
    fields = {k: v for k, v in record.items() if v is not None}
    names = {f"#f{i}": k for i, k in enumerate(fields)}
    values = {f":f{i}": v for i, v in enumerate(fields.values())}
    sets = [f"#f{i} = :f{i}" for i in range(len(fields))]
    sets += ["created = if_not_exists(created, :now)", "tracked = if_not_exists(tracked, :now)", "pushed = :now"]
    expression = "SET " + ", ".join(sets)
    values[":now"] = now
    if tag is not None:
        expression += " ADD tags :tag"
        values[":tag"] = {tag}
    expression += " REMOVE gc_mark"
    return {
        "Update": {
            "TableName": dynamo.table(),
            "Key": dynamo.encode(keys.manifest_key(name, digest)),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": dynamo.encode(values),
        }
    }


def _untag(name: str, digest: Digest, tag: str, now: int) -> dict:
    """A transaction item taking ``tag`` out of a manifest's ``tags`` (fails if the manifest is gone)."""
    return {
        "Update": {
            "TableName": dynamo.table(),
            "Key": dynamo.encode(keys.manifest_key(name, digest)),
            "UpdateExpression": "DELETE tags :tag SET untagged_at = :now REMOVE gc_mark",
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeValues": dynamo.encode({":tag": {tag}, ":now": now}),
        }
    }


def _cancelled_items(exc: ClientError) -> list[int]:
    """Indexes of a cancelled transaction's items whose condition failed (re-raises anything else)."""
    if exc.response["Error"]["Code"] != "TransactionCanceledException":
        raise exc
    reasons = exc.response.get("CancellationReasons") or []
    failed = [i for i, reason in enumerate(reasons) if reason.get("Code") == "ConditionalCheckFailed"]
    if not failed:
        raise exc
    return failed


def put_manifest(
    name: str,
    digest: Digest,
    record: dict,
    tag: str | None,
    referrer: dict | None = None,
    children=(),
    repository=_UNREAD,
    *,
    blobs=(),
    previous: str | None = None,
    previous_pushed: int | None = None,
):
    """Store the manifest, move ``tag`` to it and list the repository, in one transaction.

    All or nothing: a pull never sees a tag pointing at a manifest not stored.
    ``referrer`` (the descriptor attributes of a manifest with a subject) is
    indexed under its subject in the same transaction. ``children`` (an
    index's manifests) and ``blobs`` (what it references) are recorded first
    (CHILD# and USES# items, in batches): an index too large for one
    transaction still gets them, and a failed transaction leaves at most
    harmless extra records that a retry rewrites.

    ``repository`` is the catalog item as the caller read it (None: absent).
    The first push of a repository also writes its catalog index entries
    (``catalog_index``), on the condition that the item is still as read; a
    push that loses that race re-reads the item and tries again.

    Then every referenced link and child manifest is *touched* (its GC mark
    cleared, on condition that it still exists): garbage collection deletes
    only items whose mark is unchanged, so either it sees the USES#/CHILD#
    records written above, or its delete fails, or the touch fails and this
    raises ``Missing`` (nothing stored). See docs/architecture.md.

    ``previous``: the digest ``tag`` held when the caller read it (None: no
    such tag); the tag moves only if it still holds it, else ``TagMoved``.
    The manifest it leaves loses ``tag`` from its ``tags`` and becomes a
    garbage-collection candidate.

    The tag's push-time entry (``keys.pushed_key``, what retention policies
    read) moves with it: ``previous_pushed`` is the ``updated`` of the tag as
    read; its entry is deleted in the same transaction. An entry a race leaves
    behind is only a hint: retention checks each against the tag item.
    """
    now = int(time.time())
    blobs, children = list(dict.fromkeys(blobs)), list(dict.fromkeys(children))
    dynamo.batch_put(
        [{**keys.child_key(name, child, digest), "created": now} for child in children]
        + [{**keys.uses_key(name, blob, digest), "created": now} for blob in blobs]
        # A manifest kept in S3 shares blobs/<alg>/<hex> with a blob of the same digest: never collect it.
        + ([{**keys.reverse_link_key(digest, f"{name}#manifest"), "created": now}] if record.get("in_s3") else [])
    )
    touches = [_touch(keys.link_key(name, blob)) for blob in blobs] + [_touch(keys.manifest_key(name, child)) for child in children]
    touched = [*blobs, *children]
    writes = [_manifest_update(name, digest, record, tag, now)]
    tag_items = set()
    if tag is not None:
        tag_item = {**keys.tag_key(name, tag), **record, "digest": str(digest), "updated": now}
        put = {"TableName": dynamo.table(), "Item": dynamo.encode(tag_item)}
        if previous is None:
            put["ConditionExpression"] = "attribute_not_exists(pk)"
        else:
            put["ConditionExpression"] = "digest = :previous"
            put["ExpressionAttributeValues"] = dynamo.encode({":previous": previous})
        tag_items.add(len(writes))
        writes.append({"Put": put})
        writes.append({"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(keys.pushed_key(name, tag, now))}})
        if previous is not None and previous_pushed is not None and int(previous_pushed) != now:
            writes.append({"Delete": {"TableName": dynamo.table(), "Key": dynamo.encode(keys.pushed_key(name, tag, previous_pushed))}})
        if previous is not None and previous != str(digest):
            if previous in map(str, children):
                # One item per transaction: the untag below clears the mark as the touch would.
                kept = [i for i, d in enumerate(touched) if str(d) != previous or i < len(blobs)]
                touches, touched = [touches[i] for i in kept], [touched[i] for i in kept]
            tag_items.add(len(writes))
            writes.append(_untag(name, Digest.parse(previous), tag, now))
            writes.append({"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(candidate("MANIFEST", name, previous, now))}})
    else:
        # Pushed by digest: untagged until a tag or an index refers to it.
        writes.append({"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(candidate("MANIFEST", name, digest, now))}})
    if referrer is not None:
        subject = Digest.parse(record["subject"])
        item = {**keys.referrer_key(name, subject, digest), **referrer, "digest": str(digest)}
        writes.append({"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(item)}})
    if repository is _UNREAD:
        repository = dynamo.get(keys.catalog_key(name), consistent=True)
    for attempt in range(_PUSH_ATTEMPTS):
        index = catalog_index.changes(name, repository, {**(repository or {}), "created": now})
        # A transaction takes at most 100 items: touch in batches first when they do not fit
        # (a touch needs only to precede the manifest, not to be atomic with it).
        if len(touches) + 1 + len(writes) + len(index) > 100:
            for start in range(0, len(touches), 100):
                _touch_all(touches[start : start + 100], touched[start : start + 100])
            touches, touched = [], []
        try:
            dynamo.transact([*touches, _list_repository(name, repository, now), *writes, *index])
            return
        except ClientError as exc:
            failed = _cancelled_items(exc)
            missing = [touched[i] for i in failed if i < len(touched)]
            if missing:
                raise Missing(missing) from None
            if any(i - len(touches) - 1 in tag_items for i in failed):
                raise TagMoved() from None
            if len(touches) not in failed or attempt == _PUSH_ATTEMPTS - 1:
                raise
            repository = dynamo.get(keys.catalog_key(name), consistent=True)


def _touch_all(touches: list[dict], digests: list[Digest]):
    try:
        dynamo.transact(touches)
    except ClientError as exc:
        raise Missing([digests[i] for i in _cancelled_items(exc)]) from None


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


def delete_tag(name: str, tag: str, pushed: int | None = None) -> bool:
    """Remove a tag; False when there was none. Its manifest loses it from ``tags`` and becomes a GC candidate.

    ``pushed``: delete only if the tag's ``updated`` (push time, epoch s) is
    still this, else False (retention: a push that moved the tag since it was
    read keeps it).
    """
    args = {"TableName": dynamo.table(), "Key": dynamo.encode(keys.tag_key(name, tag)), "ReturnValues": "ALL_OLD"}
    if pushed is not None:
        args["ConditionExpression"] = "updated = :pushed"
        args["ExpressionAttributeValues"] = dynamo.encode({":pushed": int(pushed)})
    try:
        response = aws.dynamodb().delete_item(**args)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
            return False
        raise
    old = dynamo.decode(response.get("Attributes"))
    if old is None:
        return False
    if old.get("updated") is not None:
        dynamo.delete(keys.pushed_key(name, tag, old["updated"]))
    now = int(time.time())
    try:
        dynamo.transact([_untag(name, Digest.parse(old["digest"]), tag, now)])
    except ClientError as exc:
        _cancelled_items(exc)  # the manifest is gone already: nothing to untag
    dynamo.put(candidate("MANIFEST", name, old["digest"], now), {})
    return True


def parents(name: str, digest: Digest, limit: int = 10) -> list[str]:
    """Digests of indexes in ``name`` that list manifest ``digest`` (at most ``limit``)."""
    items, _ = dynamo.query_page(keys.repo_pk(name), keys.parents_prefix(digest), limit, None)
    return [item["sk"][len(keys.parents_prefix(digest)) :] for item in items]


def delete_manifest(name: str, digest: Digest, children=(), blobs=()) -> dict | None:
    """Remove a manifest, every tag pointing at it, its referrer entry and its child records.

    Its blobs' links (``blobs``) and its children become garbage-collection
    candidates, checked by the next pass. Returns the deleted record, or None when it was not there.
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
        doomed += [keys.pushed_key(name, item["sk"][len(keys.TAG_PREFIX) :], item["updated"]) for item in tags if item.get("digest") == str(digest) and item.get("updated") is not None]
        if not more:
            break
        after = tags[-1]["sk"][len(keys.TAG_PREFIX) :]
    dynamo.batch_delete(doomed)
    now = int(time.time())
    dynamo.batch_put(
        [candidate("LINK", name, blob, 0) for blob in dict.fromkeys(blobs)]
        + [candidate("MANIFEST", name, child, 0) for child in dict.fromkeys(children)]
    )
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


def set_immutable(name: str, immutable: bool):
    """Tags of ``name`` cannot be moved (``immutable`` on its catalog item; services.manifests enforces it)."""
    aws.dynamodb().update_item(
        TableName=dynamo.table(),
        Key=dynamo.encode(keys.catalog_key(name)),
        UpdateExpression="SET immutable = :immutable",
        ExpressionAttributeValues=dynamo.encode({":immutable": immutable}),
    )


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
    """The record of a stored blob; None when absent, not yet written, or being deleted by GC."""
    item = dynamo.get(keys.blob_key(digest), consistent=True)
    if item is None or "size" not in item or "doomed" in item:
        return None
    return item


class BlobGone(Exception):
    """The blob record vanished, is being deleted, or was re-created since it was read or claimed."""


class BlobDoomed(Exception):
    """Garbage collection is deleting the blob's object right now: try again in a moment."""


# A push's claim keeps garbage collection from dooming the blob while the push writes it
# (longer than any invocation: Lambda's 15 minutes). An optimisation, sparing the push a
# second write: what makes a link safe is the doom and epoch conditions (docs/architecture.md).
LEASE_SECONDS = 20 * 60
# A GC deletion left half-done (its function died) is taken over by a push after this:
# longer than a GC invocation may take between marking the record doomed and deleting the object.
DOOM_STALE_SECONDS = 30 * 60


def claim_blob(digest: Digest) -> str:
    """Announce that this push will write ``blobs/<alg>/<hex>``; returns the record's ``epoch`` for ``link_blob``.

    Creates the record when absent (without ``size``: not stored yet); pushes
    claiming at once share its epoch. Raises ``BlobDoomed`` while garbage
    collection is deleting the object. A deletion left half-done for
    ``DOOM_STALE_SECONDS`` (its collector died) is taken over: the record
    loses ``size`` and gets a new epoch, so nothing linked on the strength of
    the old record can succeed.
    """
    now = int(time.time())
    table = aws.dynamodb()
    try:
        response = table.update_item(
            TableName=dynamo.table(),
            Key=dynamo.encode(keys.blob_key(digest)),
            UpdateExpression="SET epoch = if_not_exists(epoch, :epoch), lease_until = :until REMOVE gc_mark",
            ConditionExpression="attribute_not_exists(doomed)",
            ExpressionAttributeValues=dynamo.encode({":epoch": uuid.uuid4().hex, ":until": now + LEASE_SECONDS}),
            ReturnValues="ALL_NEW",
        )
    except table.exceptions.ConditionalCheckFailedException:
        try:
            response = table.update_item(
                TableName=dynamo.table(),
                Key=dynamo.encode(keys.blob_key(digest)),
                UpdateExpression="SET epoch = :epoch, lease_until = :until REMOVE gc_mark, doomed, doomed_at, #size",
                ConditionExpression="doomed_at < :stale",
                ExpressionAttributeNames={"#size": "size"},
                ExpressionAttributeValues=dynamo.encode({":epoch": uuid.uuid4().hex, ":until": now + LEASE_SECONDS, ":stale": now - DOOM_STALE_SECONDS}),
                ReturnValues="ALL_NEW",
            )
        except table.exceptions.ConditionalCheckFailedException:
            raise BlobDoomed() from None
    return dynamo.decode(response["Attributes"])["epoch"]


def link_blob(name: str, digest: Digest, size: int, upload_id: str | None = None, keep_session: bool = False, epoch: str | None = None):
    """Record the verified blob and link it into ``name`` (closing ``upload_id``), atomically.

    ``epoch``: this push wrote the object after ``claim_blob`` returned it; the
    record must still carry it. None: the object was found stored
    (``get_blob``) and must still be. Otherwise ``BlobGone``: garbage
    collection removed or is removing it, and the caller must write it again.

    ``keep_session``: mark the session ``verified`` instead of deleting it, so a
    client repeating its completing PUT is answered 201 (direct uploads); the
    session's TTL removes it later.
    """
    now = int(time.time())
    blob_update = {
        "TableName": dynamo.table(),
        "Key": dynamo.encode(keys.blob_key(digest)),
        # The claim's lease ends: the blob is linked (an optimisation only: safety rests on doomed and epoch).
        "UpdateExpression": "SET #size = :size, created = if_not_exists(created, :now) REMOVE gc_mark, lease_until",
        "ExpressionAttributeNames": {"#size": "size"},
        "ExpressionAttributeValues": {":size": size, ":now": now},
    }
    if epoch is None:
        blob_update["ConditionExpression"] = "attribute_exists(#size) AND attribute_not_exists(doomed)"
    else:
        blob_update["ConditionExpression"] = "epoch = :epoch AND attribute_not_exists(doomed)"
        blob_update["ExpressionAttributeValues"][":epoch"] = epoch
    blob_update["ExpressionAttributeValues"] = dynamo.encode(blob_update["ExpressionAttributeValues"])
    writes = [
        {"Update": blob_update},
        {"Put": {"TableName": dynamo.table(), "Item": dynamo.encode({**keys.link_key(name, digest), "size": size, "created": now})}},
        {"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(keys.reverse_link_key(digest, name))}},
        # Collected if no manifest refers to it once a push has had time to (GC_LINK_GRACE_SECONDS).
        {"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(candidate("LINK", name, digest, now))}},
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
    try:
        dynamo.transact(writes)
    except ClientError as exc:
        if 0 in _cancelled_items(exc):
            raise BlobGone() from None
        raise


def delete_link(name: str, digest: Digest) -> bool:
    """Unlink the blob from ``name``; False when it was not linked. The blob becomes a GC candidate."""
    writes = [
        {"Delete": {"TableName": dynamo.table(), "Key": dynamo.encode(keys.link_key(name, digest)), "ConditionExpression": "attribute_exists(pk)"}},
        {"Delete": {"TableName": dynamo.table(), "Key": dynamo.encode(keys.reverse_link_key(digest, name))}},
        {"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(candidate("BLOB", "", digest, 0))}},
    ]
    try:
        dynamo.transact(writes)
    except ClientError as exc:
        _cancelled_items(exc)
        return False
    return True


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
    dynamo.update(
        keys.upload_key(upload_id),
        "SET direct = :yes, multipart = :multipart",
        "attribute_exists(pk) AND attribute_not_exists(multipart) AND #offset = :zero",
        {":yes": True, ":multipart": multipart_id, ":zero": 0},
        {"#offset": "offset"},
    )


def claim_assembly(upload_id: str, stale_before: int):
    """Mark a direct upload as being assembled by this request (Conflict: another request is at it).

    A claim older than ``stale_before`` (epoch seconds) is taken over: the
    request that made it has timed out. ``release_assembly`` gives it back.
    """
    dynamo.update(
        keys.upload_key(upload_id),
        "SET #state = :assembling, touched = :now",
        "attribute_exists(pk) AND (attribute_not_exists(#state) OR (#state = :assembling AND touched < :stale))",
        {":assembling": "assembling", ":now": int(time.time()), ":stale": stale_before},
        {"#state": "state"},
    )


def release_assembly(upload_id: str):
    """Undo ``claim_assembly`` (the parts were refused: the client may send them again)."""
    dynamo.update(keys.upload_key(upload_id), "REMOVE #state", "#state = :assembling", {":assembling": "assembling"}, {"#state": "state"})


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
