"""Blobs: pull (a redirect to S3), HEAD, and delete a repository's link."""

from __future__ import annotations

from registry.config import settings
from registry.errors import OciError, RegistryError
from registry.http import Request, Response
from registry.references import Digest, parse_name
from registry.storage import blobstore, metadata


def _link(name: str, digest: Digest) -> dict:
    """The repository's link to the blob: the access check for every blob read."""
    link = metadata.get_link(name, digest)
    if link is None:
        raise RegistryError(OciError.BLOB_UNKNOWN, f"blob unknown to repository {name}", detail={"digest": str(digest)})
    return link


def get(request: Request, name: str, digest: str) -> Response:
    parse_name(name)
    blob = Digest.parse(digest)
    link = metadata.get_link(name, blob)
    if link is None or link.get("pending"):
        # Not stored here (yet): a pull-through cache repository fetches it from its upstream.
        # Imported here: only a miss or a pending link needs it (INIT time, issue 15: cold starts).
        from registry.services import pullthrough

        served = pullthrough.blob(request, name, blob, link)
        if served is not None:
            return served
    link = link or _link(name, blob)
    headers = {"Docker-Content-Digest": str(blob)}
    if request.method == "HEAD":
        headers.update({"Content-Length": str(link["size"]), "Content-Type": "application/octet-stream"})
        return Response(200, headers)
    headers["Location"] = blobstore.presigned_get(blob)
    return Response(307, headers)


def delete(request: Request, name: str, digest: str) -> Response:
    parse_name(name)
    if not settings().deletes_enabled:
        raise RegistryError(OciError.UNSUPPORTED, "deletes are switched off on this registry")
    blob = Digest.parse(digest)
    if not metadata.delete_link(name, blob):
        raise RegistryError(OciError.BLOB_UNKNOWN, f"blob unknown to repository {name}", detail={"digest": str(blob)})
    return Response(202)
