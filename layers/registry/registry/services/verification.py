"""Verifying a direct-to-S3 upload: every byte read once inside AWS before the blob becomes visible.

A direct upload's bytes reach S3 without passing through Lambda (presigned
``UploadPart`` URLs, ``registry.services.uploads``), so nothing has hashed them
yet. Completing the upload assembles the parts into one staging object,
``uploads/<id>/parts``, and starts a verification recorded in the session item:

    state     verifying -> verified | failed
    digest    what the client said the bytes are
    size      the staging object's size
    checked   bytes hashed so far; hash: the resumable hash state (``rehashes``)
    copy      {multipart, next}: a copy to ``blobs/<alg>/<hex>`` part by part
              (objects over CopyObject's 5 GB), resumable like the hash
    step      a counter every save is conditioned on, so two workers never both advance it

``advance`` does as much as fits before a deadline: hash (64 MiB ranged GETs),
then compare, then copy the verified bytes to their content address, then link
the blob into the repository and mark the session ``verified`` in one
transaction. The completing ``PUT`` calls it with the time left in the API's
30 s; what is left over goes to the verify function through SQS, which calls
it with its own 15 minutes and queues itself again while work remains. A blob
has no size limit of ours below S3's 5 TiB object limit.

Failure and races: a wrong digest marks the session ``failed`` and deletes the
staging object (nothing became visible); a worker that loses a conditional
save stops (the winner goes on); a cancelled session (DELETE) makes the next
save fail, and the worker stops; a copy it had started is aborted by the
bucket's lifecycle rule for incomplete multipart uploads. Until the link is
written a blob HEAD answers 404: unverified bytes are never served.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

from registry import hashing, keys, metrics
from registry.references import Digest
from registry.storage import blobstore, metadata, queue, usage

# Bytes hashed per ranged GET: large enough that request overhead is small,
# small enough that a deadline is overrun by at most one range (about 0.5 s on AWS).
HASH_RANGE = 64 * 1024 * 1024
# Parts of a multipart copy: at least this, more for objects that would need over 10,000 parts.
COPY_PART = 512 * 1024 * 1024
COPY_PARALLEL = 4
# What a copy is assumed to need, to start only those that finish before the deadline
# (S3 copies server-side; 50 MB/s per request is a conservative floor).
_COPY_BYTES_PER_SECOND = 50 * 1000**2
_COPY_OVERHEAD_SECONDS = 3.0
# A session left ``verifying`` this long without progress lost its worker
# (longer than the verify function's 15-minute timeout): the next PUT queues it again.
STALL_SECONDS = 16 * 60

_copying = ThreadPoolExecutor(max_workers=COPY_PARALLEL, thread_name_prefix="copy")


def begin(upload_id: str, session: dict, digest: Digest, size: int, hashed: bytes | None = None) -> dict:
    """Record that ``session`` (parts assembled, ``size`` bytes) is to be verified against ``digest``.

    ``hashed``: the hash state of all ``size`` bytes when the requests that carried
    them hashed them already (a chunked upload too large for one CopyObject): only
    the copy is left to do. Raises ``metadata.Conflict`` when another request began it first.
    """
    session = {
        **session,
        "state": "verifying",
        "digest": str(digest),
        "size": size,
        "checked": size if hashed is not None else 0,
        "hash": hashed if hashed is not None else hashing.resume(digest.algorithm).serialize(),
        "step": 0,
        "touched": int(time.time()),
    }
    metadata.save_verification(upload_id, session, None)
    return session


def stalled(session: dict) -> bool:
    return session.get("state") == "verifying" and int(session.get("touched", 0)) < time.time() - STALL_SECONDS


def advance(upload_id: str, deadline: float) -> dict | None:
    """Advance the verification of ``upload_id`` until done or ``deadline`` (``time.monotonic()``).

    Returns the session as left (state ``verifying``, ``verified`` or
    ``failed``), or None when the session is gone (cancelled or expired).
    """
    session = metadata.get_upload(upload_id)
    if session is None or session.get("state") != "verifying":
        return session
    digest = Digest.parse(session["digest"])
    size, checked = int(session["size"]), int(session["checked"])
    source = keys.upload_parts(upload_id)
    if checked < size:
        hasher = hashing.resume(digest.algorithm, session["hash"])
        while checked < size and time.monotonic() < deadline:
            last = min(size, checked + HASH_RANGE) - 1
            for chunk in blobstore.read_range(source, checked, last):
                hasher.update(chunk)
            checked = last + 1
        session = _saved(upload_id, session, checked=checked, hash=hasher.serialize())
        if session is None or checked < size:
            return session
    if hashing.resume(digest.algorithm, session["hash"]).finalize() != digest.hex:
        return _failed(upload_id, session)
    epoch = None
    # The blob record and the counters the link updates, in one read (registry.storage.usage).
    state = usage.read_link_state(session["name"], digest)
    if not metadata.linkable(state.blob):
        # Claimed before every step that may write the object: garbage collection
        # deletes no object a live claim covers (registry.services.storing).
        try:
            epoch = metadata.claim_blob(digest)
        except metadata.BlobDoomed:
            return session  # being garbage-collected this instant: the next step copies it
        session = _copy(upload_id, session, digest, size, deadline)
        if session is None or session.get("copy", {}).get("done") is not True:
            return session
    try:
        metadata.link_blob(session["name"], digest, size, upload_id, keep_session=True, epoch=epoch, state=state)
    except metadata.BlobGone:
        return _saved(upload_id, session, copy=None)  # collected meanwhile: the next step copies it again
    except usage.QuotaExceeded as exc:
        # Nothing linked; the completing request answers 403 DENIED with this message.
        refused = _saved(upload_id, session, state="failed", error="DENIED", message=exc.message)
        blobstore.delete_staging(source)
        return refused
    blobstore.delete_staging(source)
    metrics.add_bytes(metrics.BYTES_UPLOADED, size)
    return {**session, "state": "verified"}


def _saved(upload_id: str, session: dict, **changes) -> dict | None:
    """The session with ``changes`` saved, or None when another worker or a cancel got there first."""
    updated = {**session, **changes, "step": int(session["step"]) + 1, "touched": int(time.time())}
    try:
        metadata.save_verification(upload_id, updated, int(session["step"]))
    except metadata.Conflict:
        return None
    return updated


def _failed(upload_id: str, session: dict) -> dict | None:
    failed = _saved(upload_id, session, state="failed", error="DIGEST_INVALID")
    blobstore.delete_staging(keys.upload_parts(upload_id))
    return failed


def _copy(upload_id: str, session: dict, digest: Digest, size: int, deadline: float) -> dict | None:
    """Copy the verified staging object to ``blobs/<alg>/<hex>``; ``copy.done`` once complete."""
    source = keys.upload_parts(upload_id)
    if size <= blobstore.COPY_OBJECT_MAX:
        if deadline - time.monotonic() < _copy_seconds(size):
            return session  # a fresh invocation has the time
        blobstore.copy_to_blob(source, digest)
        return {**session, "copy": {"done": True}}
    copy = dict(session.get("copy") or {})
    if not copy.get("multipart"):
        copy = {"multipart": blobstore.start_blob_multipart(digest), "next": 1}
        # A copy left behind by a lost race or a cancel is aborted by the bucket's
        # lifecycle rule for incomplete multipart uploads (no abort permission needed here).
        session = _saved(upload_id, session, copy=copy)
        if session is None:
            return None
    part = max(COPY_PART, math.ceil(size / blobstore.MAX_PARTS))
    count = math.ceil(size / part)
    number = int(copy["next"])
    while number <= count and deadline - time.monotonic() >= _copy_seconds(part):
        batch = range(number, min(count, number + COPY_PARALLEL - 1) + 1)
        ranges = [(n, (n - 1) * part, min(size, n * part) - 1) for n in batch]
        list(_copying.map(lambda r: blobstore.copy_part_to_blob(source, digest, copy["multipart"], *r), ranges))
        number = batch[-1] + 1
        session = _saved(upload_id, session, copy={**copy, "next": number})
        if session is None:
            return None
    if number <= count:
        return session
    blobstore.complete_blob_multipart(digest, copy["multipart"])
    return {**session, "copy": {**copy, "done": True}}


def _copy_seconds(size: int) -> float:
    return _COPY_OVERHEAD_SECONDS + size / _COPY_BYTES_PER_SECOND


def handle_queue_event(event: dict, context) -> dict:
    """The verify function: one step per message, queued again while work remains.

    A message whose step raised is reported as a batch item failure, so SQS
    delivers it again after the visibility timeout (and, after
    ``maxReceiveCount`` attempts, moves it to the dead-letter queue).
    """
    failures = []
    for record in event.get("Records", []):
        upload_id = queue.upload_of(record.get("body", ""))
        if upload_id is None:
            continue
        # Leave a minute for the last range, the save and the message.
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - 60
        recording = metrics.begin("verify", getattr(context, "aws_request_id", ""))
        try:
            session = advance(upload_id, deadline)
            if session is not None and session.get("state") == "verifying":
                queue.request_verification(upload_id)
        except Exception:  # noqa: BLE001 - redelivered by SQS; logged with its stack
            from registry.log import logger

            logger.exception("verification step failed", extra={"upload": upload_id})
            failures.append({"itemIdentifier": record.get("messageId", "")})
        finally:
            metrics.end(recording)
    return {"batchItemFailures": failures}
