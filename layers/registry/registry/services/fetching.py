"""Copying a large upstream blob into the pull-through cache, in parts, across invocations.

A blob over ``CACHE_INLINE_BYTES`` is not fetched within a client's request
(API Gateway gives a request 30 s). ``start`` opens an upload session
(``UPLOAD#fetch-<hash of name and digest>``: one per blob and repository, so
concurrent pulls start it once) and queues the fetch function, whose
``step`` copies ranges of the upstream blob (``Range`` requests, following
the upstream's redirect) into a multipart upload at ``uploads/<id>/parts``,
hashing as it goes; the hash state (``rehashes``) and the part ETags live in
the session item, every save conditioned on a counter, so a redelivered
message or a second worker cannot advance it twice. Once every byte is in,
the session is handed to the verify function exactly as a direct upload is
(``verification.begin`` with the hash already taken): compare the digest,
claim, copy to ``blobs/<alg>/<hex>``, link. The pending link becomes a real one and
the next GET is the usual 307 to S3.

Bytes that are not the digest mark the session ``failed``, and the next pull
starts over; any other failure is retried by SQS (then dead-lettered), and a
session left without progress for ``STALL_SECONDS`` is started over by the next pull.
"""

from __future__ import annotations

import hashlib
import math
import time

from registry import hashing, keys, metrics
from registry.references import Digest
from registry.storage import blobstore, metadata, queue

# Bytes per part: one ranged GET and one UploadPart each; at most 1,024 parts (the session
# item's ETag list), so blobs up to 64 GiB at this size and larger ones in larger parts.
PART = 64 * 1024 * 1024
MAX_PARTS = 1024
# Time one part is assumed to need (ranged GET from the upstream and UploadPart), to stop in time.
PART_SECONDS = 30.0


def upload_id(name: str, digest: Digest) -> str:
    return "fetch-" + hashlib.sha256(f"{name}\n{digest}".encode()).hexdigest()[:32]


def part_size(size: int) -> int:
    return max(PART, math.ceil(size / MAX_PARTS))


def start(name: str, prefix: str, repository: str, digest: Digest, size: int) -> str:
    """Open the fetch session and queue its first step, unless one is open already; the session id."""
    fetch_id = upload_id(name, digest)
    session = {"name": name, "owner": "", "offset": 0, "etags": [], "fetching": True, "fstep": 0,
               "fetch": {"prefix": prefix, "repository": repository, "digest": str(digest), "size": size},
               "hash": hashing.resume(digest.algorithm).serialize()}
    try:
        metadata.create_upload(fetch_id, session)
    except metadata.Conflict:
        existing = metadata.get_upload(fetch_id)
        if existing is not None and not _stalled(existing) and existing.get("state") != "failed":
            return fetch_id
        # Its worker died, or the upstream sent wrong bytes: start over (old parts expire with uploads/).
        try:
            metadata.save_fetch(fetch_id, {**session, "fstep": int((existing or {}).get("fstep") or 0) + 1}, (existing or {}).get("fstep"))
        except metadata.Conflict:
            return fetch_id  # another request restarted it first
    queue.request_fetch(fetch_id)
    return fetch_id


# A fetch left this long without progress lost its worker (more than the function's 15 minutes).
STALL_SECONDS = 16 * 60


def _stalled(session: dict) -> bool:
    return bool(session.get("fetching")) and int(session.get("touched", time.time())) < time.time() - STALL_SECONDS


class UpstreamFailed(Exception):
    """The upstream did not give the bytes asked for (a transient failure: SQS retries)."""


def step(fetch_id: str, deadline: float, download=None) -> dict | None:
    """Copy parts until done or ``deadline`` (``time.monotonic()``); the session as left (None: gone).

    ``download(prefix, repository, digest, first, last) -> bytes``: the upstream's
    bytes ``first..last`` (registry.services.pullthrough.download_range by default).
    """
    from registry.services import pullthrough, verification

    download = download or pullthrough.download_range
    session = metadata.get_upload(fetch_id)
    if session is None or not session.get("fetching"):
        return session
    fetch = session["fetch"]
    digest, size = Digest.parse(fetch["digest"]), int(fetch["size"])
    key = keys.upload_parts(fetch_id)
    if not session.get("multipart"):
        session = _saved(fetch_id, session, multipart=blobstore.start_multipart(key))
        if session is None:
            return None
    offset, etags = int(session["offset"]), list(session["etags"])
    hasher = hashing.resume(digest.algorithm, session["hash"])
    part = part_size(size)
    while offset < size and deadline - time.monotonic() >= PART_SECONDS:
        last = min(size, offset + part) - 1
        data = download(fetch["prefix"], fetch["repository"], digest, offset, last)
        if len(data) != last - offset + 1:
            raise UpstreamFailed(f"asked for {last - offset + 1} bytes, got {len(data)}")
        hasher.update(data)
        etags.append(blobstore.upload_part(key, session["multipart"], len(etags) + 1, data))
        offset = last + 1
        session = _saved(fetch_id, session, offset=offset, etags=etags, hash=hasher.serialize())
        if session is None:
            return None
        metrics.add_bytes(pullthrough.CACHE_BYTES_FETCHED, len(data))
    if offset < size:
        return session
    blobstore.complete_multipart(key, session["multipart"], etags)
    if hasher.finalize() != digest.hex:
        # Nothing became visible; the staging object expires with uploads/, and the next pull starts over.
        return _saved(fetch_id, session, fetching=False, state="failed", error="DIGEST_INVALID")
    handed = {k: v for k, v in session.items() if k not in ("fetching", "fstep", "hash", "pk", "sk")}
    try:
        session = verification.begin(fetch_id, handed, digest, size, hashed=hasher.serialize())
    except metadata.Conflict:
        return None  # another worker handed it over first
    # The verify function compares, claims, copies to blobs/ and links, exactly as for a direct upload.
    queue.request_verification(fetch_id)
    return session


def _saved(fetch_id: str, session: dict, **changes) -> dict | None:
    updated = {**session, **changes, "fstep": int(session["fstep"]) + 1, "touched": int(time.time())}
    try:
        metadata.save_fetch(fetch_id, updated, int(session["fstep"]))
    except metadata.Conflict:
        return None
    return updated


def handle_queue_event(event: dict, context) -> dict:
    """The fetch function: one step per message, queued again while bytes remain."""
    failures = []
    for record in event.get("Records", []):
        fetch_id = queue.upload_of(record.get("body", ""))
        if fetch_id is None:
            continue
        deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - 60
        recording = metrics.begin("fetch", getattr(context, "aws_request_id", ""))
        try:
            session = step(fetch_id, deadline)
            if session is not None and session.get("fetching"):
                queue.request_fetch(fetch_id)
        except Exception:  # noqa: BLE001 - redelivered by SQS; logged with its stack
            from registry.log import logger

            logger.exception("fetch step failed", extra={"upload": fetch_id})
            failures.append({"itemIdentifier": record.get("messageId", "")})
        finally:
            metrics.end(recording)
    return {"batchItemFailures": failures}
