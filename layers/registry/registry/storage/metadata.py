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
from registry.errors import OciError, RegistryError
from registry.log import logger
from registry.references import Digest
from registry.storage import catalog_index, dynamo, usage
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


def check_references(
    name: str, blobs: list[Digest], manifests: list[Digest], tag: str | None = None, digest: Digest | None = None
) -> tuple[list[Digest], dict | None, dict | None] | tuple[list[Digest], dict | None, dict | None, bool]:
    """(the referenced blobs and manifests ``name`` lacks, the repository's catalog item, ``tag``'s item), in one read.

    The tag's item is read eventually consistently: ``put_manifest`` moves the
    tag only if it still holds what was read (``TagMoved`` otherwise).
    With ``digest`` (the manifest being pushed), a fourth value: whether it
    is stored already (``put_manifest``'s ``stored``: counted only if new).
    """
    wanted = [keys.link_key(name, d) for d in blobs] + [keys.manifest_key(name, d) for d in manifests]
    extra = [keys.catalog_key(name)] + ([keys.tag_key(name, tag)] if tag is not None else [])
    own = [keys.manifest_key(name, digest)] if digest is not None else []
    items = dynamo.get_many([*wanted, *extra, *own])
    found, repository = items[: len(wanted)], items[len(wanted)]
    current = items[len(wanted) + 1] if tag is not None else None
    missing = [d for d, item in zip([*blobs, *manifests], found) if item is None]
    if digest is None:
        return missing, repository, current
    return missing, repository, current, items[-1] is not None


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


def _manifest_update(name: str, digest: Digest, record: dict, tag: str | None, now: int, new: bool | None = None) -> dict:
    """Store the manifest without losing its ``tags`` set; clears any GC mark (an Update, not a Put).

    ``new``: True, on condition that the manifest does not exist yet, marked
    ``counted`` (its bytes enter the storage counters in the same transaction);
    False, on condition that it exists (nothing counted again).
    """
    fields = {k: v for k, v in record.items() if v is not None}
    if new:
        fields["counted"] = True
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
    update = {
        "TableName": dynamo.table(),
        "Key": dynamo.encode(keys.manifest_key(name, digest)),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": dynamo.encode(values),
    }
    if new is not None:
        update["ConditionExpression"] = "attribute_not_exists(pk)" if new else "attribute_exists(pk)"
    return {"Update": update}


def _manifest_counters(name: str, size: int) -> list[dict]:
    """A manifest's bytes in its repository's and namespace's counters (``size`` < 0: taken off).

    Each repository keeps its own copy of a manifest (its DynamoDB item, or an
    S3 object for a large one), so it counts in the namespace's deduplicated
    bytes too.
    """
    return [usage.namespace_change(usage.namespace_of(name), size, size), usage.repository_change(name, size)]


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
    stored: bool = False,
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

    ``stored``: the manifest was found stored when the caller read it. A new
    manifest is written on condition that it does not exist and marked
    ``counted``, its bytes added to the storage counters in the same
    transaction (``registry.storage.usage``); a stored one on condition that
    it exists, counting nothing. A wrong guess (a racing push or delete)
    costs one more transaction.
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
    # Counted on condition that it is new, as the caller read it (``stored``); a wrong guess flips and retries.
    new_manifest = not stored
    writes = [_manifest_update(name, digest, record, tag, now, new_manifest)]
    counters = _manifest_counters(name, int(record["size"])) if new_manifest else []  # unconditional: last in the transaction
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
        if len(touches) + 1 + len(writes) + len(index) + len(counters) > 100:
            for start in range(0, len(touches), 100):
                _touch_all(touches[start : start + 100], touched[start : start + 100])
            touches, touched = [], []
        try:
            dynamo.transact([*touches, _list_repository(name, repository, now), *writes, *index, *counters])
            return
        except ClientError as exc:
            failed = _cancelled_items(exc)
            missing = [touched[i] for i in failed if i < len(touched)]
            if missing:
                raise Missing(missing) from None
            if any(i - len(touches) - 1 in tag_items for i in failed):
                raise TagMoved() from None
            if len(touches) + 1 in failed and attempt < _PUSH_ATTEMPTS - 1:
                new_manifest = not new_manifest  # stored meanwhile, or deleted: count it as it now is
                counters = _manifest_counters(name, int(record["size"])) if new_manifest else []
                writes[0] = _manifest_update(name, digest, record, tag, now, new_manifest)
                continue
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
    old = remove_manifest(name, digest)
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


def remove_manifest(name: str, digest: Digest, condition: str = "attribute_exists(pk)", values: dict | None = None) -> dict | None:
    """Delete the manifest item if ``condition`` holds, taking its bytes off the counters if it was counted,
    in one transaction; the deleted item, or None (absent, or the condition does not hold).

    Read first (strongly consistent) for its size; the delete is conditioned on
    ``counted`` as read, so the counters change exactly when a counted item goes.
    """
    for _ in range(_PUSH_ATTEMPTS):
        old = dynamo.get(keys.manifest_key(name, digest), consistent=True)
        if old is None:
            return None
        counted = bool(old.get("counted"))
        delete = {
            "TableName": dynamo.table(),
            "Key": dynamo.encode(keys.manifest_key(name, digest)),
            "ConditionExpression": f"({condition}) AND " + ("attribute_exists(counted)" if counted else "attribute_not_exists(counted)"),
        }
        if values:
            delete["ExpressionAttributeValues"] = dynamo.encode(values)
        try:
            dynamo.transact([{"Delete": delete}, *(_manifest_counters(name, -int(old.get("size") or 0)) if counted else [])])
            return old
        except ClientError as exc:
            _cancelled_items(exc)
            if condition != "attribute_exists(pk)":
                return None  # the caller's condition (a GC mark) no longer holds, or the item changed: checked again next pass
    return None


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
        return _take_over(digest, now)
    return dynamo.decode(response["Attributes"])["epoch"]


def _take_over(digest: Digest, now: int) -> str:
    """Take over a blob whose deletion was left half-done (``claim_blob``); BlobDoomed while it is not stale.

    The record loses ``size`` and ``counted``: a counted record leaves the
    registry's total in the same transaction (the object may be gone already).
    """
    record = dynamo.get(keys.blob_key(digest), consistent=True)
    if record is None or "doomed" not in record or int(record.get("doomed_at") or 0) >= now - DOOM_STALE_SECONDS:
        raise BlobDoomed()  # being deleted now (or just forgotten: the next attempt creates it)
    epoch = uuid.uuid4().hex
    counted = bool(record.get("counted"))
    update = usage.update_item(
        keys.blob_key(digest),
        "SET epoch = :epoch, lease_until = :until REMOVE gc_mark, doomed, doomed_at, #size, counted",
        {":epoch": epoch, ":until": now + LEASE_SECONDS, ":doomed": record["doomed"], ":stale": now - DOOM_STALE_SECONDS},
        "doomed = :doomed AND doomed_at < :stale AND " + ("attribute_exists(counted)" if counted else "attribute_not_exists(counted)"),
        {"#size": "size"},
    )
    try:
        dynamo.transact([update] + ([usage.total_change(digest, -int(record.get("size") or 0), -1)] if counted else []))
    except ClientError as exc:
        _cancelled_items(exc)
        raise BlobDoomed() from None
    return epoch


def link_blob(
    name: str,
    digest: Digest,
    size: int,
    upload_id: str | None = None,
    keep_session: bool = False,
    epoch: str | None = None,
    state: usage.LinkState | None = None,
):
    """Record the verified blob and link it into ``name`` (closing ``upload_id``), atomically with the storage counters.

    ``epoch``: this push wrote the object after ``claim_blob`` returned it; the
    record must still carry it. None: the object was found stored
    (``get_blob``) and must still be. Otherwise ``BlobGone``: garbage
    collection removed or is removing it, and the caller must write it again.

    ``keep_session``: mark the session ``verified`` instead of deleting it, so a
    client repeating its completing PUT is answered 201 (direct uploads); the
    session's TTL removes it later.

    ``state``: ``usage.read_link_state`` as the caller read it (None: read here,
    one BatchGetItem). A link new to the repository adds ``size`` to its and its
    namespace's logical bytes and, when no other repository of the namespace
    links the blob, to the namespace's deduplicated bytes, which must stay
    within the namespace's quota (``usage.QuotaExceeded``: 403 DENIED, nothing
    linked). Every counter write is conditioned on what was read; a lost race
    re-reads and tries again (``_LINK_ATTEMPTS``).
    """
    for _ in range(_LINK_ATTEMPTS):
        fresh = state is None
        state = state or usage.read_link_state(name, digest)
        if fresh and not linkable(state.blob, epoch):
            raise BlobGone()
        writes, blob_item, session_item = _link_writes(name, digest, size, upload_id, keep_session, epoch, state)
        try:
            dynamo.transact(writes)
            return
        except ClientError as exc:
            failed = _cancelled_items(exc)
            if session_item in failed:
                raise
            if blob_item in failed and not fresh:
                state = None  # read before a claim or a race: decide on a fresh read
                continue
            if blob_item in failed:
                raise BlobGone() from None
            state = None  # a counter or the link changed meanwhile
    raise RegistryError(OciError.TOOMANYREQUESTS, "concurrent pushes are linking this blob: try again", headers={"Retry-After": "1"})


_LINK_ATTEMPTS = 6


def linkable(blob: dict | None, epoch: str | None = None) -> bool:
    """The blob record as read allows a link: stored (or still this push's claim) and not being deleted."""
    if blob is None or "doomed" in blob:
        return False
    return "size" in blob if epoch is None else blob.get("epoch") == epoch


def adopt_link(name: str, digest: Digest) -> bool:
    """Count a link stored before counting began (``usage --recount``), with its blob's record; no quota applies.

    False when there is nothing to adopt: no link, counted already, or its blob
    is being garbage-collected.
    """
    for _ in range(_LINK_ATTEMPTS):
        state = usage.read_link_state(name, digest)
        if state.link is None or state.link.get("counted") or not linkable(state.blob):
            return False
        writes, _, _ = _link_writes(name, digest, int(state.link.get("size") or state.blob["size"]), None, False, None, state, adopt=True)
        try:
            dynamo.transact(writes)
            return True
        except ClientError as exc:
            _cancelled_items(exc)
    return False


def adopt_manifest(name: str, digest: Digest, size: int) -> bool:
    """Count a manifest stored before counting began (``usage --recount``); False if absent or counted already."""
    update = usage.update_item(keys.manifest_key(name, digest), "SET counted = :yes", {":yes": True}, "attribute_exists(pk) AND attribute_not_exists(counted)")
    try:
        dynamo.transact([update, *_manifest_counters(name, size)])
        return True
    except ClientError as exc:
        _cancelled_items(exc)
        return False


def _link_writes(
    name: str, digest: Digest, size: int, upload_id, keep_session: bool, epoch, state: usage.LinkState, adopt: bool = False
) -> tuple[list[dict], int, int]:
    """(the transaction, the index of the blob record's update, of the session's item or -1).

    ``adopt``: counting an existing link (updated, not replaced: its ``created``
    and any GC mark stay; no GC candidate, no quota).
    """
    now = int(time.time())
    namespace = usage.namespace_of(name)
    blob = state.blob or {}
    blob_counted = bool(blob.get("counted"))
    blob_update = {
        "TableName": dynamo.table(),
        "Key": dynamo.encode(keys.blob_key(digest)),
        # The claim's lease ends: the blob is linked (an optimisation only: safety rests on doomed and epoch).
        "UpdateExpression": "SET #size = :size, created = if_not_exists(created, :now), counted = :yes REMOVE gc_mark, lease_until",
        "ExpressionAttributeNames": {"#size": "size"},
        "ExpressionAttributeValues": {":size": size, ":now": now, ":yes": True},
    }
    # The registry-wide total counts each blob object once: when its record is first counted.
    counted = "attribute_exists(counted)" if blob_counted else "attribute_not_exists(counted)"
    if epoch is None:
        blob_update["ConditionExpression"] = f"attribute_exists(#size) AND attribute_not_exists(doomed) AND {counted}"
    else:
        blob_update["ConditionExpression"] = f"epoch = :epoch AND attribute_not_exists(doomed) AND {counted}"
        blob_update["ExpressionAttributeValues"][":epoch"] = epoch
    if adopt:  # counting only: no GC mark or push's lease is touched
        blob_update["UpdateExpression"] = "SET counted = :yes"
        blob_update["ExpressionAttributeValues"] = {":yes": True}
    blob_update["ExpressionAttributeValues"] = dynamo.encode(blob_update["ExpressionAttributeValues"])
    writes = [] if blob_counted else [usage.total_change(digest, size, 1)]
    blob_item = len(writes)
    writes.append({"Update": blob_update})
    link = state.link
    adds = link is None or not link.get("counted")  # new to the repository, or linked before counting began
    link_put = {"TableName": dynamo.table(), "Item": dynamo.encode({**keys.link_key(name, digest), "size": size, "created": now, "counted": True})}
    if link is None:
        link_put["ConditionExpression"] = "attribute_not_exists(pk)"
    else:
        link_put["ConditionExpression"] = "attribute_exists(pk) AND " + ("attribute_not_exists(counted)" if adds else "attribute_exists(counted)")
    if adopt:
        writes.append(usage.update_item(keys.link_key(name, digest), "SET counted = :yes", {":yes": True}, "attribute_exists(pk) AND attribute_not_exists(counted)"))
    else:
        writes.append({"Put": link_put})
    writes.append({"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(keys.reverse_link_key(digest, name))}})
    if not adopt:
        # Collected if no manifest refers to it once a push has had time to (GC_LINK_GRACE_SECONDS).
        writes.append({"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(candidate("LINK", name, digest, now))}})
    if adds:
        first = state.refs == 0  # no repository of the namespace links it yet: its bytes are new there
        room = None
        if first and not adopt:
            if usage.exceeds_quota(state, size):
                _refused(name, digest, size, state, epoch)
            room = (state.quota, (state.quota - size) if state.quota is not None else 0)
        writes += [
            usage.reference_change(namespace, digest, size, state.refs, 1),
            usage.namespace_change(namespace, size, size if first else 0, 0 if state.repository else 1, room),
            usage.repository_change(name, size, exists=state.repository is not None),
        ]
    session_item = -1
    if upload_id is not None and keep_session:
        session_item = len(writes)
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
    return writes, blob_item, session_item


def _refused(name: str, digest: Digest, size: int, state: usage.LinkState, epoch: str | None):
    """Raise ``QuotaExceeded``; an object this push wrote (``epoch``) is queued for garbage collection, unlinked."""
    if epoch is not None:
        dynamo.put(candidate("BLOB", "", digest, 0), {})
    raise usage.QuotaExceeded(usage.namespace_of(name), state.quota, state.dedup, size)


def delete_link(name: str, digest: Digest) -> bool:
    """Unlink the blob from ``name``, taking its bytes off the counters; False when it was not linked.

    The blob becomes a GC candidate.
    """
    return unlink(name, digest, candidate("BLOB", "", digest, 0))


def unlink(name: str, digest: Digest, blob_candidate: dict, token: str | None = None) -> bool:
    """Delete ``name``'s link of ``digest`` and its reverse record, queue ``blob_candidate``, and subtract
    the link's bytes from the counters, in one transaction; False when there is no link (or, with
    ``token``, it no longer carries that garbage-collection mark).

    Conditioned on the link and the namespace's reference count as read (one
    BatchGetItem): a race re-reads and tries again.
    """
    namespace = usage.namespace_of(name)
    for _ in range(_LINK_ATTEMPTS):
        state = usage.read_link_state(name, digest)
        link = state.link
        if link is None or (token is not None and link.get("gc_mark") != token):
            return False
        condition, values = "attribute_exists(pk)", {}
        if token is not None:
            condition, values = "gc_mark = :token", {":token": token}
        condition += " AND " + ("attribute_exists(counted)" if link.get("counted") else "attribute_not_exists(counted)")
        delete = {"TableName": dynamo.table(), "Key": dynamo.encode(keys.link_key(name, digest)), "ConditionExpression": condition}
        if values:
            delete["ExpressionAttributeValues"] = dynamo.encode(values)
        writes = [
            {"Delete": delete},
            {"Delete": {"TableName": dynamo.table(), "Key": dynamo.encode(keys.reverse_link_key(digest, name))}},
            {"Put": {"TableName": dynamo.table(), "Item": dynamo.encode(blob_candidate)}},
        ]
        size = int(link.get("size") or 0)
        if link.get("counted") and state.refs > 0:
            last = state.refs == 1
            writes += [
                usage.reference_change(namespace, digest, size, state.refs, -1),
                usage.namespace_change(namespace, -size, -size if last else 0),
                usage.repository_change(name, -size),
            ]
        elif link.get("counted"):
            logger.warning("a counted link without a reference count: usage --recount repairs it", extra={"repository": name, "digest": str(digest)})
        try:
            dynamo.transact(writes)
            return True
        except ClientError as exc:
            _cancelled_items(exc)
    raise RegistryError(OciError.TOOMANYREQUESTS, "concurrent pushes are linking this blob: try again", headers={"Retry-After": "1"})


def uncount_repository(name: str) -> int:
    """Take a repository being deleted off the storage counters: every counted link and manifest is
    removed the way a delete removes it (one transaction each, counters included), then its counter item.

    Called first by ``catalog_index.delete_repository`` (which removes everything else); pages through
    the repository's own links and manifests. Returns the items removed.
    """
    removed = 0
    for prefix in ("BLOB#", "MANIFEST#"):
        after = None
        while True:
            items, more = dynamo.query_page(keys.repo_pk(name), prefix, 100, after)
            for item in items:
                if not item.get("counted"):
                    continue  # left to the batch delete that follows
                digest = Digest.parse(item["sk"][len(prefix) :])
                done = delete_link(name, digest) if prefix == "BLOB#" else remove_manifest(name, digest) is not None
                removed += int(bool(done))
            if not more:
                break
            after = items[-1]["sk"][len(prefix) :]
    namespace = usage.namespace_of(name)
    try:
        dynamo.transact(
            [
                {"Delete": {"TableName": dynamo.table(), "Key": dynamo.encode(keys.usage_repository_key(name)), "ConditionExpression": "attribute_exists(pk)"}},
                usage.namespace_change(namespace, 0, 0, -1),
            ]
        )
    except ClientError as exc:
        _cancelled_items(exc)  # never counted
    return removed


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


def save_fetch(upload_id: str, session: dict, previous_step: int | None):
    """Write a pull-through fetch's progress back only if no other worker advanced it (Conflict).

    ``previous_step`` None: the session is absent (expired) or has no step (a verification took it over)."""
    if previous_step is None:
        dynamo.put(keys.upload_key(upload_id), session, "attribute_not_exists(fstep)")
        return
    dynamo.put(keys.upload_key(upload_id), session, "attribute_exists(pk) AND fstep = :previous", {":previous": previous_step})


def delete_upload(upload_id: str):
    dynamo.delete(keys.upload_key(upload_id))
