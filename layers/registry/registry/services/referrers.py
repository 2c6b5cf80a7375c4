"""The referrers API: the manifests whose ``subject`` is a digest, as an OCI image index."""

from __future__ import annotations

import json

from registry.http import Request, Response, link_header
from registry.manifests import OCI_INDEX
from registry.references import Digest, parse_name
from registry.services.catalog import page_size
from registry.storage import metadata

# A page's descriptors stop at about this many bytes of JSON (then a Link): a
# Lambda answer is at most 6 MB, and the body goes out base64-encoded (+33 %).
# Each descriptor is at most about MAX_REFERRER_EXTRA (16 KiB) plus its digest.
PAGE_BYTES = 3 * 1024 * 1024


def _descriptor(item: dict) -> dict:
    descriptor = {"mediaType": item["media_type"], "digest": item["digest"], "size": int(item["size"])}
    if item.get("artifact_type"):
        descriptor["artifactType"] = item["artifact_type"]
    if item.get("annotations"):
        descriptor["annotations"] = item["annotations"]
    return descriptor


def list_referrers(request: Request, name: str, digest: str) -> Response:
    """Never 404: an unknown subject (or repository) has an empty list of referrers."""
    parse_name(name)
    subject = Digest.parse(digest)
    limit = page_size(request)
    wanted = request.arg("artifactType")
    items, more = metadata.list_referrers(name, subject, limit, request.arg("last")) if limit else ([], False)
    descriptors, size = [], 0
    for item in items:
        descriptor = _descriptor(item)
        size += len(json.dumps(descriptor))
        if size > PAGE_BYTES and descriptors:
            items, more = items[: len(descriptors)], True
            break
        descriptors.append(descriptor)
    headers = {"Content-Type": OCI_INDEX}
    if wanted is not None:
        descriptors = [d for d in descriptors if d.get("artifactType") == wanted]
        headers["OCI-Filters-Applied"] = "artifactType"
    if more and items:
        params = {"n": limit, "last": items[-1]["digest"]}
        if wanted is not None:
            params["artifactType"] = wanted
        headers["Link"] = link_header(f"/v2/{name}/referrers/{subject}", params)
    return Response.json(200, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}, headers)
