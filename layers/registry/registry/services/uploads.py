"""Blob uploads: start (POST), chunks (PATCH), complete (PUT), status (GET), cancel (DELETE).

One request reaches a Lambda with at most about 4.4 MB of body (Lambda's 6 MB synchronous payload limit, with the body base64-encoded; AWS Lambda quotas), so a
blob larger than that arrives over several requests. Each chunk is hashed in
the request that carries it (``registry.hashing``) and stored in S3:

* bytes not yet forming a 5 MiB multipart part wait in a tail object,
  ``uploads/<id>/tail/<random>``, whose key the session records;
* once tail + chunk reach 5 MiB they become the next part of a multipart upload
  at ``uploads/<id>/parts``.

Completion checks the digest against the running hash *before* anything
becomes visible, writes the verified bytes to ``blobs/<alg>/<hex>`` and only
then links the blob into the repository (one DynamoDB transaction that also
closes the session). A failed, cancelled or abandoned upload therefore never
changes what a pull returns; abandoned sessions expire by TTL and their staging
objects by the bucket's lifecycle rule.

Direct-to-S3 uploads (an extension, for blobs larger than a request can carry):
the session's owner asks ``POST …/uploads/<id>/parts`` for presigned S3
``UploadPart`` URLs and sends the bytes straight to S3; ``GET …/parts`` lists
what arrived. The usual ``PUT …?digest=`` completes it: the parts are
assembled and every byte is verified inside AWS before the blob becomes
visible (``registry.services.verification``): ``201`` when that fits in the
request, otherwise ``202`` and the client repeats the PUT until ``201``.

Consistency: the session item is written back with a condition on its offset,
so two requests racing on one session cannot both append; the loser gets 416
and can ask for the current offset. Every write of the tail goes to a new key,
so a loser can never overwrite the winner's bytes (its object is left to the
lifecycle rule); a multipart part it overwrote no longer matches the ETag the
session recorded, so S3 refuses to complete and the upload fails as
BLOB_UPLOAD_INVALID without anything becoming visible.
"""

from __future__ import annotations

import re
import time
import uuid

from registry import hashing, inputs, keys, metrics
from registry.config import settings
from registry.errors import OciError, RegistryError
from registry.http import Request, Response
from registry.references import Digest, parse_name
from registry.services import storing
from registry.storage import blobstore, metadata, queue

MIN_PART = 5 * 1024 * 1024  # S3's minimum multipart part size (all parts but the last)
# The largest blob a chunked (PATCH) upload may assemble: it bounds the session
# item, which records every part's ETag, to 1,024 of them (about 40 KB of the
# 400 KB DynamoDB item limit). Direct-to-S3 uploads record no ETags (S3 lists
# them) and have no cap of ours.
MAX_BLOB_BYTES = 5 * 1024**3
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
# The spec's grammar, exactly: inclusive byte positions, no unit, no total.
_CONTENT_RANGE = re.compile(r"([0-9]+)-([0-9]+)")


def _location(name: str, upload_id: str) -> str:
    return f"/v2/{name}/blobs/uploads/{upload_id}"


def _progress_headers(name: str, upload_id: str, offset: int) -> dict:
    return {
        "Location": _location(name, upload_id),
        "Range": f"0-{max(offset - 1, 0)}",
        "Docker-Upload-UUID": upload_id,
    }


def _owner(request: Request) -> str:
    return getattr(request.caller, "user", "") or ""


def _load(request: Request, name: str, upload_id: str) -> dict:
    """The open session, only for the repository and the user that started it."""
    session = metadata.get_upload(upload_id) if _UPLOAD_ID.fullmatch(upload_id) else None
    if session is None or session["name"] != name or session.get("owner", "") != _owner(request):
        raise RegistryError(OciError.BLOB_UPLOAD_UNKNOWN, "upload unknown: it was completed, cancelled, has expired or never existed")
    return session


def _store_verified(name: str, digest: Digest, data: bytes, upload_id: str | None = None):
    """Write bytes already checked against ``digest`` (unless stored), then link them into ``name``."""
    storing.store(name, digest, len(data), lambda: blobstore.put_blob(digest, data), upload_id)


def _created(name: str, digest: Digest) -> Response:
    return Response(201, {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": str(digest)})


def _check_length(request: Request, data: bytes):
    """A Content-Length, if sent, is ASCII digits equal to the body's length; else SIZE_INVALID."""
    declared = request.header("content-length")
    if declared is None:
        return
    try:
        matches = inputs.natural(declared) == len(data)
    except inputs.NumberInvalid:
        matches = False
    if not matches:
        raise RegistryError(OciError.SIZE_INVALID, f"Content-Length {declared[:30]!r} but {len(data)} bytes received")


def _check_total(session: dict, data: bytes):
    """An upload stays within MAX_BLOB_BYTES (one CopyObject), else SIZE_INVALID."""
    if int(session["offset"]) + len(data) > MAX_BLOB_BYTES:
        raise RegistryError(OciError.SIZE_INVALID, f"a blob is at most {MAX_BLOB_BYTES} bytes")


def _mountable(request: Request, digest: Digest, source: str | None) -> dict | None:
    """The link (or blob record) to mount from, only where the caller may read the blob.

    With ``from``: that repository's link, if the caller's token may pull it.
    Without: a link in any repository the token may pull; with authentication
    off, any verified copy. Never a blob the caller could not have pulled.
    """
    caller = request.caller
    if source is not None:
        if caller is not None and not caller.may("repository", source, "pull"):
            return None
        return metadata.get_link(source, digest)
    if caller is None or caller.unrestricted:
        return metadata.get_blob(digest)
    # The token names at most scopes.MAX_SCOPES repositories: one BatchGetItem.
    return metadata.first_link(caller.readable_repositories(), digest)


def _mount_request(request: Request) -> tuple[Digest, str | None] | None:
    """(digest, source) of a mount request, or None when it is not one that can be served.

    A ``mount`` that is not a valid digest, or a ``from`` that is not a valid
    repository name, can name no blob here: the request falls back to a new
    upload session (202), as the spec says a registry SHOULD when it cannot
    mount (distribution-spec, "Mounting a blob from another repository").
    """
    mount, source = request.arg("mount"), request.arg("from")
    if mount is None:
        return None
    try:
        return Digest.parse(mount), parse_name(source) if source else None
    except RegistryError:
        return None


def start(request: Request, name: str) -> Response:
    parse_name(name)
    mount = _mount_request(request)
    if mount is not None:
        digest, source = mount
        found = _mountable(request, digest, source)
        if found is not None:
            try:
                metadata.link_blob(name, digest, int(found["size"]))
                return _created(name, digest)
            except metadata.BlobGone:
                pass  # garbage-collected meanwhile: upload it again

        # Not mountable: fall through to an ordinary upload, as the spec allows.
    wanted = request.arg("digest")
    if wanted is not None:
        digest = Digest.parse(wanted)
        _check_length(request, request.body)
        if Digest.of(request.body, digest.algorithm) != digest:
            raise RegistryError(OciError.DIGEST_INVALID, "the uploaded content does not match the digest", detail={"digest": wanted})
        _store_verified(name, digest, request.body)
        metrics.add_bytes(metrics.BYTES_UPLOADED, len(request.body))
        return _created(name, digest)
    upload_id = uuid.uuid4().hex
    session = {"name": name, "owner": _owner(request), "offset": 0, "etags": [], "hashes": hashing.new_states()}
    metadata.create_upload(upload_id, session)
    headers = _progress_headers(name, upload_id, 0)
    # Chunks as large as a request can carry keep tail re-reads to one in two chunks.
    headers["OCI-Chunk-Min-Length"] = headers["OCI-Chunk-Max-Length"] = str(settings().chunk_max)
    return Response(202, headers)


def _check_range(request: Request, session: dict, name: str, upload_id: str, data: bytes):
    """Chunks must come in order: ``Content-Range: <start>-<end>`` starting at the current offset."""
    header = request.header("content-range")
    if header is None:
        return
    found = _CONTENT_RANGE.fullmatch(header.strip())
    offset = int(session["offset"])
    try:
        start, end = (inputs.natural(found.group(1)), inputs.natural(found.group(2))) if found else (-1, -1)
    except inputs.NumberInvalid:  # more digits than any offset
        start, end = -1, -1
    if start != offset or end - start + 1 != len(data):
        raise RegistryError(
            OciError.RANGE_INVALID,
            f"chunk must start at offset {offset} and match its length",
            headers=_progress_headers(name, upload_id, offset),
        )


def _append(upload_id: str, session: dict, data: bytes) -> dict:
    """Stage ``data`` after the session's bytes; returns the updated session."""
    session = dict(session)
    session["hashes"] = hashing.update(session["hashes"], data)
    pending = _tail_bytes(session) + data
    if len(pending) >= MIN_PART:
        if not session.get("multipart"):
            session["multipart"] = blobstore.start_multipart(keys.upload_parts(upload_id))
        etag = blobstore.upload_part(keys.upload_parts(upload_id), session["multipart"], len(session["etags"]) + 1, pending)
        session["etags"] = [*session["etags"], etag]
        session["tail_key"] = None
    elif data:
        session["tail_key"] = keys.upload_tail(upload_id, uuid.uuid4().hex)
        blobstore.put_staging(session["tail_key"], pending)
    session["offset"] = int(session["offset"]) + len(data)
    return session


def _tail_bytes(session: dict) -> bytes:
    return blobstore.read_staging(session["tail_key"]) if session.get("tail_key") else b""


def _raced(name: str, upload_id: str, fallback: dict) -> RegistryError:
    """416 with the offset another request has moved the upload to."""
    current = metadata.get_upload(upload_id) or fallback
    return RegistryError(
        OciError.RANGE_INVALID,
        "another request wrote to this upload at the same time",
        headers=_progress_headers(name, upload_id, int(current["offset"])),
    )


def _save(name: str, upload_id: str, session: dict, previous: int):
    try:
        metadata.save_upload(upload_id, session, previous)
    except metadata.Conflict:
        raise _raced(name, upload_id, session) from None


def _not_direct(session: dict):
    if session.get("direct"):
        raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "this upload takes its bytes through part URLs (POST …/parts), not in requests")
    if session.get("state"):
        raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "this upload is complete: it takes no more bytes")


def patch(request: Request, name: str, uuid: str) -> Response:
    parse_name(name)
    session = _load(request, name, uuid)
    _not_direct(session)
    data = request.body
    _check_length(request, data)
    _check_range(request, session, name, uuid, data)
    _check_total(session, data)
    previous, old_tail = int(session["offset"]), session.get("tail_key")
    try:
        session = _append(uuid, session, data)
    except blobstore.StagingGone:
        raise _raced(name, uuid, session) from None
    new_tail = session.get("tail_key")
    try:
        _save(name, uuid, session, previous)
    except RegistryError:
        if new_tail and new_tail != old_tail:
            blobstore.delete_staging(new_tail)  # ours, and referenced by no session
        raise
    if old_tail and old_tail != new_tail:
        blobstore.delete_staging(old_tail)  # consumed into a part or a longer tail
    return Response(202, _progress_headers(name, uuid, int(session["offset"])))


def status(request: Request, name: str, uuid: str) -> Response:
    parse_name(name)
    session = _load(request, name, uuid)
    return Response(204, _progress_headers(name, uuid, int(session["offset"])))


def _discard_staging(upload_id: str, session: dict):
    if session.get("tail_key"):
        blobstore.delete_staging(session["tail_key"])
    if session.get("multipart"):
        blobstore.abort_multipart(keys.upload_parts(upload_id), session["multipart"])


def cancel(request: Request, name: str, uuid: str) -> Response:
    parse_name(name)
    session = _load(request, name, uuid)
    _discard_staging(uuid, session)
    metadata.delete_upload(uuid)
    return Response(204)


def complete(request: Request, name: str, uuid: str) -> Response:
    parse_name(name)
    wanted = request.arg("digest")
    if not wanted:
        raise RegistryError(OciError.DIGEST_INVALID, "the digest query parameter is required to complete an upload")
    digest = Digest.parse(wanted)
    session = _load(request, name, uuid)
    if session.get("direct") or session.get("state"):
        return _complete_direct(request, name, uuid, session, digest)
    data = request.body
    _check_length(request, data)
    _check_range(request, session, name, uuid, data)
    _check_total(session, data)
    hashes = hashing.update(session["hashes"], data)
    if hashing.hexdigest(hashes, digest.algorithm) != digest.hex:
        # The upload is over either way: drop what it staged so nothing lingers.
        _discard_staging(uuid, session)
        metadata.delete_upload(uuid)
        raise RegistryError(OciError.DIGEST_INVALID, "the uploaded content does not match the digest", detail={"digest": wanted})
    size = int(session["offset"]) + len(data)
    assembled: list = []  # what _assemble made of the staging, once the bytes are needed

    def write():
        if not assembled:
            assembled.append(_assemble(uuid, session, data))
            if assembled[0] == keys.upload_parts(uuid) and size > blobstore.COPY_OBJECT_MAX:
                raise _TooLargeToCopy()
        source = assembled[0]
        if isinstance(source, bytes):
            blobstore.put_blob(digest, source)
        else:
            blobstore.copy_to_blob(source, digest)  # the common case (one PATCH, then PUT): server-side

    try:
        storing.store(name, digest, size, write, uuid)
    except blobstore.PartsChanged:
        _discard_staging(uuid, session)
        metadata.delete_upload(uuid)
        raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "a concurrent request changed this upload; start it again") from None
    except _TooLargeToCopy:
        # Past CopyObject's 5 GB: the verify function's resumable multipart copy, as for a direct upload.
        session = _verification().begin(uuid, session, digest, size, hashes[digest.algorithm])
        return _verified_or_pending(name, uuid, session, digest, began=time.monotonic())
    if not assembled:
        _discard_staging(uuid, session)  # already stored by an earlier push: linked only
    elif isinstance(assembled[0], str):
        blobstore.delete_staging(assembled[0])
    metrics.add_bytes(metrics.BYTES_UPLOADED, size)
    return _created(name, digest)


def _verification():
    """``registry.services.verification``, imported by the first completion that verifies in AWS (a
    direct upload, or a chunked one over CopyObject's 5 GB): the others never need it, nor its
    copy thread pool (INIT time, issue 15: cold starts)."""
    from registry.services import verification

    return verification


class _TooLargeToCopy(Exception):
    """The assembled upload is over CopyObject's 5 GB: the verify function copies it."""


def _assemble(upload_id: str, session: dict, data: bytes) -> str | bytes:
    """The upload's bytes (its staging plus the final ``data``) as one staging object's key, or as bytes when small.

    Raises ``blobstore.PartsChanged`` when a concurrent request replaced a part.
    """
    tail_key, parts_key = session.get("tail_key"), keys.upload_parts(upload_id)
    if session.get("multipart"):
        last = _tail_bytes(session) + data
        etags = list(session["etags"])
        if last:
            etags.append(blobstore.upload_part(parts_key, session["multipart"], len(etags) + 1, last))
        blobstore.complete_multipart(parts_key, session["multipart"], etags)
        if tail_key:
            blobstore.delete_staging(tail_key)
        return parts_key
    if data or not tail_key:
        payload = _tail_bytes(session) + data
        if tail_key:
            blobstore.delete_staging(tail_key)
        return payload
    return tail_key


# --- direct-to-S3 uploads ------------------------------------------------------------

# Part URLs one request may ask for: presigning is local, so this only bounds the answer's size.
MAX_PART_URLS = 100
# Parts listed per GET …/parts (one S3 ListParts call).
MAX_PARTS_LISTED = 1000
# How long a client waits before repeating a PUT whose verification goes on.
RETRY_AFTER_SECONDS = 2
# An assembly claim this old was made by a request that has timed out (the upload
# function's timeout is 29 s): the next PUT takes it over.
ASSEMBLY_STALE_SECONDS = 60


def _number(request: Request, param: str, default: int, low: int, high: int) -> int:
    """A query parameter that must be an integer in [low, high] (``registry.inputs.natural``)."""
    value = request.arg(param)
    if value is None or value == "":
        return default
    try:
        number = inputs.natural(value)
    except inputs.NumberInvalid:
        number = None
    if number is None or not low <= number <= high:
        raise RegistryError(OciError.PAGINATION_NUMBER_INVALID, f"{param} must be an integer from {low} to {high}", detail={param: value[:20]})
    return number


def part_urls(request: Request, name: str, uuid: str) -> Response:
    """``POST …/uploads/<id>/parts?first=N&count=K``: presigned UploadPart URLs for parts N..N+K-1.

    The first call switches the session to direct mode (refused, 400
    BLOB_UPLOAD_INVALID, once it has taken bytes through PATCH). Part numbers
    are S3's, 1 to 10,000; every part but the last must be at least 5 MiB, and
    re-sending a part number replaces that part. AWS calls: one GetItem, and on
    the first call CreateMultipartUpload and one UpdateItem; URLs are signed locally.
    """
    parse_name(name)
    first = _number(request, "first", 1, 1, blobstore.MAX_PARTS)
    count = _number(request, "count", 1, 1, MAX_PART_URLS)
    if first + count - 1 > blobstore.MAX_PARTS:
        raise RegistryError(OciError.PAGINATION_NUMBER_INVALID, f"part numbers end at {blobstore.MAX_PARTS}")
    session = _load(request, name, uuid)
    if session.get("state"):
        raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "this upload is complete: its parts can no longer change")
    multipart = session.get("multipart") if session.get("direct") else None
    if multipart is None:
        if int(session["offset"]) > 0 or session.get("multipart"):
            raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "this upload has taken chunks through PATCH: finish it that way")
        multipart = blobstore.start_multipart(keys.upload_parts(uuid))
        try:
            metadata.start_direct_upload(uuid, multipart)
        except metadata.Conflict:
            # Another request switched it first (or sent a chunk): use what it recorded.
            blobstore.abort_multipart(keys.upload_parts(uuid), multipart)
            session = _load(request, name, uuid)
            if not session.get("direct"):
                raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "this upload has taken chunks through PATCH: finish it that way") from None
            multipart = session["multipart"]
    expires = settings().part_url_seconds
    parts = [
        {"partNumber": number, "url": blobstore.presigned_part(keys.upload_parts(uuid), multipart, number, expires), "method": "PUT"}
        for number in range(first, first + count)
    ]
    document = {
        "parts": parts,
        "expiresIn": expires,
        "minPartSize": blobstore.MIN_PART,
        "maxPartSize": blobstore.MAX_PART,
        "maxParts": blobstore.MAX_PARTS,
    }
    return Response.json(200, document, {"Cache-Control": "no-store", "Docker-Upload-UUID": uuid})


def parts_received(request: Request, name: str, uuid: str) -> Response:
    """``GET …/uploads/<id>/parts[?after=N]``: the parts S3 holds, up to 1,000 a page (one ListParts call)."""
    parse_name(name)
    after = _number(request, "after", 0, 0, blobstore.MAX_PARTS)
    session = _load(request, name, uuid)
    if not session.get("direct"):
        raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "this upload has no parts: it takes its bytes through PATCH")
    if session.get("state"):
        raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "this upload is complete: its parts were assembled")
    try:
        parts, more = blobstore.list_parts(keys.upload_parts(uuid), session["multipart"], after, MAX_PARTS_LISTED)
    except blobstore.NoSuchUpload:
        raise RegistryError(OciError.BLOB_UPLOAD_UNKNOWN, "upload unknown: it was completed, cancelled or has expired") from None
    document = {"parts": [{"partNumber": p["number"], "size": p["size"], "etag": p["etag"]} for p in parts]}
    if more is not None:
        document["next"] = more
    return Response.json(200, document, {"Cache-Control": "no-store", "Docker-Upload-UUID": uuid})


def _complete_direct(request: Request, name: str, uuid: str, session: dict, digest: Digest) -> Response:
    """Assemble the parts and verify them; 201 when verified, 202 while verification goes on.

    Also answers the repeated PUTs of a chunked upload whose copy went to the
    verify function (its ``state`` is set, and it has no parts to assemble).

    Repeating the PUT is how a client waits: it answers 202 until the blob is
    verified (then 201, also to later repeats) or found wrong (400
    DIGEST_INVALID, the session closed, nothing visible).
    """
    if request.body:
        raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "this upload takes no more bytes: complete it with an empty PUT")
    started = time.monotonic()
    if session.get("state") in (None, "assembling"):
        # One request assembles at a time (a client retrying a slow PUT must not complete
        # the multipart upload twice); a claim older than any request can live is taken over.
        try:
            metadata.claim_assembly(uuid, int(time.time()) - ASSEMBLY_STALE_SECONDS)
        except metadata.Conflict:
            session = _load(request, name, uuid)
            if session.get("state") == "assembling":
                return _pending(name, uuid, 0)
        else:
            return _assemble_and_verify(name, uuid, session, digest, started)
    if session.get("digest") != str(digest):
        raise RegistryError(OciError.DIGEST_INVALID, f"this upload is being completed as {session.get('digest')}", detail={"digest": str(digest)})
    if _verification().stalled(session):
        queue.request_verification(uuid)  # its worker was lost: queue it again
    return _verified_or_pending(name, uuid, session, digest)


def _assemble_and_verify(name: str, uuid: str, session: dict, digest: Digest, started: float) -> Response:
    """Complete the multipart upload with the parts S3 holds, then begin and advance the verification."""
    try:
        size = blobstore.complete_listed(keys.upload_parts(uuid), session["multipart"])
    except (blobstore.PartsChanged, blobstore.PartTooSmall) as exc:
        try:
            metadata.release_assembly(uuid)
        except metadata.Conflict:
            pass  # a later request took the claim over: it is theirs to give back
        if isinstance(exc, blobstore.PartsChanged):
            raise RegistryError(OciError.BLOB_UPLOAD_INVALID, "no part has arrived: upload the parts before completing") from None
        raise RegistryError(
            OciError.BLOB_UPLOAD_INVALID, f"every part but the last must be at least {blobstore.MIN_PART} bytes: re-upload the short parts"
        ) from None
    except blobstore.NoSuchUpload:
        size = blobstore.staged_size(keys.upload_parts(uuid))  # assembled by an earlier PUT that stopped short
        if size is None:
            raise RegistryError(OciError.BLOB_UPLOAD_UNKNOWN, "upload unknown: it was cancelled or has expired") from None
    try:
        session = _verification().begin(uuid, {k: v for k, v in session.items() if k not in ("state", "touched")}, digest, size)
    except metadata.Conflict:  # a request that took over a stale claim began it: report on its progress
        return _verified_or_pending(name, uuid, metadata.get_upload(uuid), digest)
    return _verified_or_pending(name, uuid, session, digest, began=started)


def _pending(name: str, uuid: str, size: int) -> Response:
    """202: the client repeats its PUT after ``Retry-After`` seconds."""
    return Response(202, {**_progress_headers(name, uuid, size), "Retry-After": str(RETRY_AFTER_SECONDS)})


def _verified_or_pending(name: str, uuid: str, session: dict | None, digest: Digest, began: float | None = None) -> Response:
    """201, 400 DIGEST_INVALID or 202 by the verification's state.

    ``began``: this request began the verification at that ``time.monotonic()``;
    it verifies what fits in its time, then hands the rest to the verify function.
    """
    if began is not None:
        deadline = began + settings().verify_inline_seconds
        session = _verification().advance(uuid, deadline) if time.monotonic() < deadline else session
        if session is not None and session.get("state") == "verifying":
            queue.request_verification(uuid)
    state = (session or {}).get("state")
    if state == "verified":
        return _created(name, digest)
    if state == "failed":
        metadata.delete_upload(uuid)
        if session.get("error") == "DENIED":  # the namespace's storage quota (registry.storage.usage)
            raise RegistryError(OciError.DENIED, session.get("message") or OciError.DENIED.message)
        raise RegistryError(OciError.DIGEST_INVALID, "the uploaded content does not match the digest", detail={"digest": str(digest)})
    if state is None:
        raise RegistryError(OciError.BLOB_UPLOAD_UNKNOWN, "upload unknown: it was cancelled or has expired")
    return _pending(name, uuid, int(session["size"]))
