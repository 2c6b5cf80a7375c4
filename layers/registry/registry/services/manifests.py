"""Manifests: pull (GET/HEAD), push (PUT) and delete, by tag or digest."""

from __future__ import annotations

import contextvars
from functools import cache

from registry import manifests as media
from registry import metrics, ratelimit
from registry.config import settings
from registry.errors import OciError, RegistryError
from registry.http import Request, Response
from registry.references import Digest, parse_name, parse_reference
from registry.storage import blobstore, metadata, ratelimits

# Manifests up to this size are kept in the DynamoDB item itself (items are
# limited to 400 KB); larger ones go to the S3 blob store.
INLINE_BYTES = 256 * 1024


def _unknown(name: str, reference: str) -> RegistryError:
    if not metadata.repository_exists(name):
        return RegistryError(OciError.NAME_UNKNOWN, f"repository {name} not known to registry", detail={"name": name})
    return RegistryError(OciError.MANIFEST_UNKNOWN, f"manifest unknown: {reference}", detail={"name": name, "reference": reference})


@cache
def _counting():
    """The pool that counts a GET's pull while the manifest is read: the two round trips overlap.

    Made by the first counted GET: a HEAD, a push, a delete or an unlimited caller never needs
    ``concurrent.futures`` (INIT time, issue 15: cold starts).
    """
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="pull-counter")


def _reference_or_unknown(name: str, reference: str):
    """The reference as a Digest or tag. One that is neither names nothing: 404 MANIFEST_UNKNOWN.

    The spec's end-3 (GET/HEAD) and end-9 (DELETE) fail with 404, and the OCI
    conformance suite (v1.1.1) pulls ``.INVALID_MANIFEST_NAME`` expecting it.
    A PUT to such a reference still gets 400 TAG_INVALID / DIGEST_INVALID.
    """
    try:
        return parse_reference(reference)
    except RegistryError:
        raise _unknown(name, reference[:300]) from None


def get(request: Request, name: str, reference: str) -> Response:
    """GET or HEAD a manifest, with Docker Hub's pull rate-limit headers (see registry.ratelimit)."""
    parse_name(name)
    ref = _reference_or_unknown(name, reference)
    key = metadata.manifest_record_key(name, ref)
    meter = ratelimit.meter(request)
    if meter is None:
        return _manifest_response(request, *_served(request, name, reference, ref, metadata.get_record(key)), {})
    if request.method == "HEAD":
        record, counter = metadata.get_records(key, meter.key())
        return _manifest_response(request, *_served(request, name, reference, ref, record), meter.headers(ratelimits.used(counter)))
    # In the request's context (log fields, tracing) although on another thread.
    counting = _counting().submit(contextvars.copy_context().run, meter.count)
    record = metadata.get_record(key)
    used = counting.result()  # raises 429 TOOMANYREQUESTS at the limit
    try:
        record, digest = _served(request, name, reference, ref, record)
        response = _manifest_response(request, record, digest, {})
    except RegistryError:
        meter.refund()  # nothing was pulled
        raise
    if record["media_type"] in media.INDEX_TYPES:
        meter.refund()  # the platform manifests that follow are the pulls
        used -= 1
    response.headers.update(meter.headers(used))
    return response


def _served(request: Request, name: str, reference: str, ref, record: dict | None) -> tuple[dict, Digest]:
    """What a pull of ``ref`` answers with: (record, digest); 404 when there is nothing.

    A tag holding an index, asked for by a client whose Accept header admits
    image manifests but not that index type, gets the index's linux/amd64 image
    manifest and its digest instead, as distribution does for clients that
    take no manifest list (registry/handlers/manifests.go). That is one more
    read (the child manifest), and on GET a pull of an image manifest.
    """
    if record is None or "upstream" in record:
        # Imported here: only a miss or a cached tag needs it (INIT time, issue 15: cold starts).
        from registry.services import pullthrough

        record = pullthrough.manifest_record(name, ref, record)  # a pull-through cache's miss or stale tag
    if record is None:
        raise _unknown(name, reference)
    digest = ref if isinstance(ref, Digest) else Digest.parse(record["digest"])
    media_type = record["media_type"]
    accept = request.header("accept")
    if isinstance(ref, Digest) or media_type not in media.INDEX_TYPES or media.acceptable(media_type, accept):
        return record, digest
    child = media.platform_manifest(_body(record, digest))
    child_record = metadata.get_manifest(name, child) if child is not None else None
    if child_record is None or child_record["media_type"] in media.INDEX_TYPES:
        return record, digest  # refused below: the client does not take the index
    return child_record, child


def _body(record: dict, digest: Digest) -> bytes:
    body = record.get("body")
    return body if body is not None else blobstore.read_blob(digest)


def _manifest_response(request: Request, record: dict, digest: Digest, extra: dict) -> Response:
    media_type = record["media_type"]
    if not media.acceptable(media_type, request.header("accept")):
        raise RegistryError(
            OciError.MANIFEST_UNKNOWN,
            f"manifest is {media_type}, which the request's Accept header does not allow",
            detail={"mediaType": media_type},
        )
    headers = {
        "Content-Type": media_type,
        "Docker-Content-Digest": str(digest),
        "Content-Length": str(record["size"]),
        "ETag": f'"{digest}"',
        **extra,
    }
    if request.method == "HEAD":
        return Response(200, headers)
    body = _body(record, digest)
    if media_type not in media.INDEX_TYPES:
        metrics.add(metrics.PULLS)  # what the rate limit counts: image manifests, not indexes
    return Response(200, headers, body)


def put(request: Request, name: str, reference: str) -> Response:
    parse_name(name)
    ref = parse_reference(reference)
    body = request.body
    if len(body) > media.MAX_MANIFEST_BYTES:
        raise RegistryError(OciError.MANIFEST_TOO_LARGE, f"manifests are limited to {media.MAX_MANIFEST_BYTES} bytes")
    manifest = media.parse(body, request.header("content-type"))
    digest = Digest.of(body, ref.algorithm if isinstance(ref, Digest) else "sha256")
    if isinstance(ref, Digest) and digest != ref:
        raise RegistryError(OciError.DIGEST_INVALID, f"manifest digest is {digest}, not {ref}")
    tag = None if isinstance(ref, Digest) else ref
    missing, repository, current, stored = metadata.check_references(name, list(manifest.blobs), list(manifest.manifests), tag, digest)
    if missing:
        raise _blob_unknown(missing)
    record, referrer = new_record(digest, body, manifest)
    if repository is None or "created" not in repository:
        # Before the manifest, so a failure here is retried with the push; entries for
        # a repository that then never appears are ignored by search (no "created").
        # Imported here: only a repository's first push needs it (INIT time, issue 15: cold starts).
        from registry.storage import search_index

        search_index.add_repository(name)
    _store(name, digest, record, tag, referrer, manifest, repository, current, stored)
    metrics.add(metrics.PUSHES)
    headers = {"Location": f"/v2/{name}/manifests/{digest}", "Docker-Content-Digest": str(digest)}
    if manifest.subject is not None:
        headers["OCI-Subject"] = str(manifest.subject)
    return Response(201, headers)


def _blob_unknown(missing: list[Digest]) -> RegistryError:
    return RegistryError(
        OciError.MANIFEST_BLOB_UNKNOWN,
        f"manifest references {len(missing)} unknown blob(s) or manifest(s)",
        detail={"digests": [str(d) for d in missing]},
    )


# Pushes racing to move one tag: each retry re-reads the tag (consistently) and tries again.
_TAG_ATTEMPTS = 5


def new_record(digest: Digest, body: bytes, manifest, **extra) -> tuple[dict, dict | None]:
    """(the manifest's record, its referrer descriptor or None) for ``metadata.put_manifest``.

    A body up to ``INLINE_BYTES`` rides in the record; a larger one is written
    to S3 first (``blobs/<alg>/<hex>``, as a blob of that digest would be).
    ``extra``: attributes of the record (a cached manifest's ``upstream``, ``checked``).
    """
    record = {"media_type": manifest.media_type, "size": len(body), "subject": str(manifest.subject) if manifest.subject else None, **extra}
    if len(body) <= INLINE_BYTES:
        record["body"] = body
    else:
        blobstore.put_blob(digest, body)
        record["in_s3"] = True
    referrer = None
    if manifest.subject is not None:
        referrer = {"media_type": manifest.media_type, "size": len(body), "artifact_type": manifest.referrer_artifact_type, "annotations": manifest.annotations}
    return record, referrer


def _store(name: str, digest: Digest, record: dict, tag: str | None, referrer, manifest, repository: dict | None, current: dict | None, stored: bool = False):
    """Write the manifest, moving ``tag`` only from the digest read (``current``): refused on an immutable tag.

    Immutable tags (registry-admin repo immutable): moving an existing tag to
    another digest is 400 TAG_INVALID, as ECR answers (docker prints "tag
    invalid: <message>"); pushing the digest it holds again is accepted. The
    tag is written on condition that it still holds what was read, so two
    racing pushes cannot both move it: the loser re-reads and is refused.
    """
    immutable = bool((repository or {}).get("immutable"))
    for _ in range(_TAG_ATTEMPTS):
        previous = current.get("digest") if current else None
        previous_pushed = current.get("updated") if current else None
        if tag is not None and immutable and previous not in (None, str(digest)):
            raise RegistryError(
                OciError.TAG_INVALID,
                f"the tag {tag} already exists in the repository {name} and cannot be overwritten because its tags are immutable",
                detail={"tag": tag, "digest": previous},
            )
        try:
            metadata.put_manifest(
                name, digest, record, tag, referrer, manifest.manifests, repository,
                blobs=manifest.blobs, previous=previous, stored=stored, previous_pushed=previous_pushed,
            )
            return
        except metadata.Missing as exc:
            raise _blob_unknown(exc.digests) from None  # garbage collection removed it after the check
        except metadata.TagMoved:
            current = metadata.get_tag(name, tag)
    raise RegistryError(OciError.TOOMANYREQUESTS, f"the tag {tag} is being moved by other pushes: try again", headers={"Retry-After": "1"})


def delete(request: Request, name: str, reference: str) -> Response:
    """Delete a tag, or a manifest by digest with every tag pointing at it.

    A manifest that an index in the repository still lists is kept (403
    DENIED naming the index), as ECR does: deleting it would leave the index
    pointing at nothing. Delete the index first.
    """
    parse_name(name)
    if not settings().deletes_enabled:
        raise RegistryError(OciError.UNSUPPORTED, "deletes are switched off on this registry")
    ref = _reference_or_unknown(name, reference)
    if not isinstance(ref, Digest):
        if not metadata.delete_tag(name, ref):
            raise _unknown(name, reference)
        return Response(202)
    record = metadata.get_manifest(name, ref)
    if record is None:
        raise _unknown(name, reference)
    indexes = metadata.parents(name, ref)
    if indexes:
        raise RegistryError(
            OciError.DENIED,
            f"manifest {ref} is listed by index {indexes[0]}: delete the index first",
            detail={"indexes": indexes},
        )
    body = record.get("body") or blobstore.read_blob(ref)
    parsed = media.parse(body, record["media_type"])
    metadata.delete_manifest(name, ref, parsed.manifests, parsed.blobs)
    return Response(202)
