"""Storage accounting: what the counters say (views), namespace quotas, recounts and the stored-bytes metric.

The counters themselves are written by the storage adapters, in the
transactions that link, unlink, store and delete (``registry.storage.usage``);
this module reads them, sets quotas, and repairs or initialises one
repository's counts (``recount``).
"""

from __future__ import annotations

from registry import keys, metrics
from registry.references import Digest
from registry.storage import dynamo, metadata
from registry.storage import usage as counters

PAGE = 100  # items read per Query (recount, namespace listings)
# Namespaces the stored-bytes metrics report per pass, in name order (one EMF document each;
# CloudWatch bills each namespace's two metrics as custom metrics); later ones are not reported.
METRIC_NAMESPACES = 1000


def namespace_view(namespace: str, item: dict | None) -> dict:
    """A namespace's counters as the CLI and API show them (bytes; quota None when unset)."""
    item = item or {}
    quota = item.get("quota")
    return {
        "namespace": namespace,
        "repositories": int(item.get("repositories") or 0),
        "logical_bytes": int(item.get("logical") or 0),
        "deduplicated_bytes": int(item.get("dedup") or 0),
        "quota_bytes": None if quota is None else int(quota),
    }


def repository_view(name: str) -> dict:
    """A repository's usage and its namespace's (two reads in one BatchGetItem)."""
    namespace_item, repository_item = counters.read_counters(name)
    namespace = counters.namespace_of(name)
    return {
        "logical_bytes": int((repository_item or {}).get("logical") or 0),
        "namespace": namespace_view(namespace, namespace_item),
    }


def namespace(namespace: str) -> dict:
    return namespace_view(namespace, counters.namespace_usage(namespace))


def namespaces(limit: int, after: str | None) -> tuple[list[dict], bool]:
    """A page of namespaces with their counters, in name order (one Query of the ``USAGE`` partition)."""
    items, more = counters.list_namespaces(limit, after)
    return [namespace_view(item["sk"], item) for item in items], more


def repositories(namespace: str, limit: int, after: str | None) -> tuple[list[dict], bool]:
    """A page of a namespace's repositories with their logical bytes (one Query)."""
    items, more = dynamo.query_page(f"USAGE#{namespace}", "REPO#", limit, after)
    return [{"name": item["sk"][len("REPO#") :], "logical_bytes": int(item.get("logical") or 0)} for item in items], more


def set_quota(namespace: str, quota: int | None):
    counters.set_quota(namespace, quota)


def registry_total() -> dict:
    return counters.registry_total()


# --- recount -------------------------------------------------------------------------------


def recount(name: str) -> dict:
    """Bring one repository into the counters, and repair its counts; bounded by its own links and manifests.

    1. every link and manifest stored before counting began (no ``counted``)
       is adopted: counted in one transaction each, exactly like a push would;
    2. each counted link's namespace reference count is checked against the
       repositories of the namespace that link the blob with a counted link
       (the blob's ``LINK#<ns>…`` records: one Query, one BatchGetItem) and set
       right, conditionally, with the namespace's deduplicated bytes;
    3. the repository's logical bytes are recomputed from its counted items
       and set right, on condition that no push changed them meanwhile.

    Returns {"links_adopted", "manifests_adopted", "references_fixed", "logical_before", "logical_after"}.
    Safe while pushes go on (every write is conditional); a lost race leaves
    that item for the next run.
    """
    report = {"links_adopted": 0, "manifests_adopted": 0, "references_fixed": 0}
    # Read before paging: a push counted while the pages are read changes it, and the correction's condition fails.
    before = int((counters.repository_usage(name, consistent=True) or {}).get("logical") or 0)
    logical = 0
    for link in _pages(keys.repo_pk(name), "BLOB#"):
        digest = Digest.parse(link["sk"][len("BLOB#") :])
        if not link.get("counted") and metadata.adopt_link(name, digest):
            report["links_adopted"] += 1
            link["counted"] = True
        if link.get("counted"):
            logical += int(link.get("size") or 0)
            report["references_fixed"] += _fix_references(name, digest, int(link.get("size") or 0))
    for manifest in _pages(keys.repo_pk(name), "MANIFEST#"):
        size = int(manifest.get("size") or 0)
        if not manifest.get("counted") and metadata.adopt_manifest(name, Digest.parse(manifest["sk"][len("MANIFEST#") :]), size):
            report["manifests_adopted"] += 1
            manifest["counted"] = True
        if manifest.get("counted"):
            logical += size
    adopted = report["links_adopted"] + report["manifests_adopted"]
    if adopted:  # adoptions added to the counter: read it again (still before any correction)
        before = int((counters.repository_usage(name, consistent=True) or {}).get("logical") or 0)
    report["logical_before"], report["logical_after"] = before, logical
    if before != logical and not counters.correct_repository(name, before, logical):
        report["logical_after"] = before  # a push changed it meanwhile: run the recount again when it is quiet
    return report


def _pages(pk: str, prefix: str):
    after = None
    while True:
        items, more = dynamo.query_page(pk, prefix, PAGE, after)
        yield from items
        if not more:
            return
        after = items[-1]["sk"][len(prefix) :]


def _fix_references(name: str, digest: Digest, size: int) -> int:
    """Set the namespace's reference count of ``digest`` to the repositories linking it with a counted link; 1 if changed."""
    namespace = counters.namespace_of(name)
    refs = counters.read_refs(namespace, digest)  # first: a link counted after this read fails the correction
    linking = counters.counted_links_in_namespace(namespace, digest)
    if refs == linking:
        return 0
    return 1 if counters.correct_references(namespace, digest, size, refs, linking) else 0


# --- metrics ---------------------------------------------------------------------------------


def emit_stored_bytes() -> int:
    """Emit each namespace's stored bytes as CloudWatch metrics (EMF), once per garbage-collection pass.

    ``StoredBytes`` (deduplicated) and ``StoredLogicalBytes`` per namespace,
    with the dimension ``namespace`` (``metrics.emit_namespace``), and
    ``RegistryStoredBytes`` (every blob object once: what S3 bills for
    ``blobs/``) without it. Reads the ``USAGE`` partition page by page and the
    16 total shards: cost grows with the number of namespaces (at most
    ``METRIC_NAMESPACES``), not with what they store. Returns the namespaces reported.
    """
    reported, after = 0, None
    while reported < METRIC_NAMESPACES:
        page, more = namespaces(min(PAGE, METRIC_NAMESPACES - reported), after)
        for view in page:
            metrics.emit_namespace(view["namespace"], view["deduplicated_bytes"], view["logical_bytes"])
        reported += len(page)
        if not more or not page:
            break
        after = page[-1]["namespace"]
    metrics.add_bytes(metrics.REGISTRY_STORED_BYTES, registry_total()["dedup"])
    return reported
