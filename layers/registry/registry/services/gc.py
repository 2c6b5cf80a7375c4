"""Online garbage collection: frees what nothing references while pushes go on.

What a pass removes, in this order (each step can make the next one's items garbage):

0. **tags** retention policies expire (``registry.services.retention``): deleted
   through the tag DELETE path, so their manifests become candidates of step 1;
1. **manifests** no tag and no index of their repository references, untagged
   for longer than ``GC_UNTAGGED_DAYS`` (a push in progress tags its manifest
   last; a retention policy's ``untagged_days`` replaces it for its
   repositories), and referrers whose subject is gone;
2. **blob links** (``REPO#<name>/BLOB#<digest>``) no manifest of the repository
   references, once older than ``GC_LINK_GRACE_SECONDS`` (by default the upload expiry: a push in progress uploads
   its blobs before its manifest);
3. **blobs**: the ``BLOB#`` record and the S3 object of a blob no repository links.

Where it looks: only at *candidates* (``GC`` items, ``registry.keys``), written
where something may have become garbage: a manifest pushed by digest, a tag
moved or deleted, a manifest or link deleted, a blob uploaded. A pass reads
the candidates that are due and deletes each once handled, so its cost
grows with what changed since the last pass, not with the registry's size,
and a pass stopped by its deadline continues where it stopped: the index
is the cursor. (Data written before this version has no candidates and no
``tags`` sets; it is never collected.)

Safety against concurrent pushes (the argument in full: docs/architecture.md):
every delete is conditional on a mark the pass set *before* checking for
references, and every push clears the mark of what it references, on
condition that it exists, *after* writing its back-references:

* manifest: mark, check CHILD# (index) records, delete if still marked and
  without tags. A push tagging it clears the mark and adds to ``tags``; an index
  push writes CHILD# then clears the mark (``metadata.put_manifest``).
* link: mark, check USES# records, delete if still marked. A manifest push
  writes USES# then clears the mark; if the link is gone, the push fails with
  MANIFEST_BLOB_UNKNOWN and nothing is stored. USES# records younger than
  ``USES_FRESH_SECONDS`` count even when their manifest is absent (its push is
  still between its two writes).
* blob: mark, check for any link (``BLOB#<d>/LINK#`` records), mark ``doomed``
  if still marked and no push's claim is live, delete the S3 object, then the
  record. A push claims the record before writing the object and links on
  condition that its claim still stands (``registry.services.storing``).

``hook(step, kind, item)`` is called between the steps (tests interleave pushes there).
"""

from __future__ import annotations

import time
import uuid
from typing import NamedTuple

from registry import keys, metrics
from registry import manifests as media
from registry.config import settings
from registry.log import logger
from registry.references import Digest
from registry.services import pullthrough, retention, usage
from registry.storage import blobstore, collector, dynamo, metadata

KINDS = ("MANIFEST", "LINK", "BLOB")
PAGE = 100  # candidates read per Query
# A USES# record this young counts as a reference even if its manifest is absent:
# longer than any request (a manifest PUT writes USES#, then the manifest, within one).
USES_FRESH_SECONDS = 3600
USES_CHECKED = 10  # USES# records read per link; more than this many (stale or not) keep the link
# Deleting the object of a blob doomed longer ago than this is left to the next pass:
# well under metadata.DOOM_STALE_SECONDS, after which a push may take the blob over.
DOOM_FRESH_SECONDS = 10 * 60


class Removed(NamedTuple):
    kind: str  # tag | manifest | link | blob
    name: str  # repository ("" for a blob)
    digest: str
    size: int  # bytes freed in S3 (blobs), else the item's recorded size
    tag: str = ""  # a tag a retention policy deleted


class Report:
    """What a pass did (a plain class, not a dataclass: making one costs about 1 ms of INIT)."""

    def __init__(self, dry_run: bool):
        self.dry_run = dry_run
        self.removed: list[Removed] = []
        self.complete = True  # False: the deadline stopped it; the next pass continues
        self.candidates = 0
        self.failed = 0  # candidates whose handling raised (logged, kept for the next pass)
        self.seconds = 0.0
        self.retention_complete = True  # False: the retention step ran out of budget; the next pass continues
        self.retention_skipped: list[str] = []  # repositories with too many tags to count

    @property
    def objects_freed(self) -> int:
        return sum(1 for r in self.removed if r.kind == "blob")

    @property
    def bytes_freed(self) -> int:
        return sum(r.size for r in self.removed if r.kind == "blob")


class Pass:
    """One garbage-collection pass. ``deadline``: a ``time.monotonic()`` it stops starting work at."""

    def __init__(self, dry_run: bool = False, deadline: float | None = None, hook=None):
        self.dry_run = dry_run
        self.deadline = deadline
        self.hook = hook or (lambda step, kind, item: None)
        self.token = uuid.uuid4().hex
        self.now = int(time.time())
        self.report = Report(dry_run)
        # A dry run deletes nothing: what it would delete is remembered, so the later steps see it gone.
        self.gone: set[tuple[str, str, str]] = set()
        self.queued: dict[str, list[dict]] = {kind: [] for kind in KINDS}
        self.policies = False  # any retention policy at all (read once by run)
        self.untagged: dict[str, int] = {}  # repository -> seconds an untagged manifest is kept

    def run(self) -> Report:
        started = time.monotonic()
        handlers = {"MANIFEST": self._manifest, "LINK": self._link, "BLOB": self._blob}
        try:
            self._retention()
            for kind in KINDS:
                if not self._drain(kind, handlers[kind]):
                    self.report.complete = False
                    break
        finally:
            self.report.seconds = time.monotonic() - started
        return self.report

    def _drain(self, kind: str, handle) -> bool:
        after = None
        grace = self._grace(kind)
        while True:
            page = collector.due_candidates(kind, self.now - grace, PAGE, after)
            for item in page:
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    return False
                if kind == "MANIFEST" and self.policies and int(item["sk"].split("#")[1]) > self.now - self._untagged(item["name"]):
                    continue  # due by a shorter policy than its repository's: left for a later pass
                self.report.candidates += 1
                try:
                    handle(item["name"], Digest.parse(item["digest"]))
                except Exception:  # noqa: BLE001 - one bad item must not stop every later pass
                    logger.exception("garbage collection skipped a candidate", extra={"candidate": item["sk"]})
                    self.report.failed += 1
                    continue  # kept: the next pass tries it again
                if not self.dry_run:
                    collector.drop_candidate(item)
            if len(page) < PAGE:
                break
            after = page[-1]["sk"]
        while self.queued[kind]:  # a dry run's would-be cascades
            item = self.queued[kind].pop()
            handle(item["name"], Digest.parse(item["digest"]))
        return True

    # --- retention ------------------------------------------------------------------

    def _retention(self):
        """Step 0: apply the retention policies (their deletions queue manifests for step 1)."""
        self.policies = retention.any_policy()
        if not self.policies:
            return
        found = retention.apply_all(dry_run=self.dry_run, deadline=self.deadline, now=self.now)
        for deletion in found.deleted:
            self.report.removed.append(Removed("tag", deletion.name, deletion.digest, 0, deletion.tag))
        self.report.retention_complete = found.complete
        self.report.retention_skipped = found.skipped
        if found.deleted:
            self.now = int(time.time())  # the manifests it untagged are candidates from now: due at once with 0 untagged days

    def _untagged(self, name: str) -> int:
        """Seconds an untagged manifest of ``name`` is kept: its retention policy's, else GC_UNTAGGED_DAYS (cached per pass)."""
        if not self.policies:
            return settings().gc_untagged_seconds
        if name not in self.untagged:
            policy = retention.effective(name)
            days = None if policy is None else policy.untagged_days
            self.untagged[name] = settings().gc_untagged_seconds if days is None else days * retention.DAY
        return self.untagged[name]

    # --- helpers --------------------------------------------------------------------

    def _grace(self, kind: str) -> int:
        """How long after a candidate's time the pass takes it (the item's own age is checked again)."""
        if kind == "MANIFEST":
            shortest = retention.shortest_untagged_seconds() if self.policies else None
            return min(settings().gc_untagged_seconds, shortest if shortest is not None else settings().gc_untagged_seconds)
        return {"LINK": settings().gc_link_grace_seconds}.get(kind, 0)

    def _queue(self, items: list[dict]):
        if not items:
            return
        if self.dry_run:
            for item in items:
                self.queued[item["sk"].split("#", 1)[0]].append(item)
        else:
            collector.add_candidates(items)

    def _is_gone(self, kind: str, name: str, digest) -> bool:
        """A dry run's would-be deletion. A real pass asks the table only: a push may have re-created what it deleted."""
        return self.dry_run and (kind, name, str(digest)) in self.gone

    def _removed(self, kind: str, name: str, digest, size: int):
        self.gone.add((kind, name, str(digest)))
        self.report.removed.append(Removed(kind.lower(), name, str(digest), int(size)))

    def _mark(self, key: dict, condition: str = "attribute_exists(pk)", values: dict | None = None) -> bool:
        return True if self.dry_run else collector.mark(key, self.token, condition, values)

    # --- manifests ------------------------------------------------------------------

    def _manifest(self, name: str, digest: Digest):
        record = collector.get(keys.manifest_key(name, digest))
        if record is None or self._is_gone("MANIFEST", name, digest) or record.get("tags"):
            return  # gone or tagged: a later untag queues it again
        if record.get("tracked") != record.get("created"):
            return  # stored before tags were tracked: its tags are unknown
        since = max(int(record.get("pushed") or record["created"]), int(record.get("untagged_at") or 0))
        if since > self.now - self._untagged(name):
            self._queue([metadata.candidate("MANIFEST", name, digest, since)])
            return
        subject = record.get("subject")
        if subject and collector.get(keys.manifest_key(name, Digest.parse(subject))) is not None and not self._is_gone("MANIFEST", name, subject):
            return  # a referrer of a manifest that exists (its deletion queues it again)
        self.hook("mark", "MANIFEST", (name, digest))
        if not self._mark(keys.manifest_key(name, digest), "attribute_not_exists(tags)"):
            return
        self.hook("check", "MANIFEST", (name, digest))
        if any(not self._is_gone("MANIFEST", name, index) for index in metadata.parents(name, digest, 10)):
            return  # an index lists it
        self.hook("delete", "MANIFEST", (name, digest))
        if not self.dry_run:
            record = collector.delete_marked_manifest(name, digest, self.token)
            if record is None:
                return  # a push touched it after the mark
        self._removed("MANIFEST", name, digest, record.get("size") or 0)
        self._after_manifest(name, digest, record)

    def _after_manifest(self, name: str, digest: Digest, record: dict):
        """What a deleted manifest leaves: its index records and referrer entry go, its links and children are queued."""
        body = record.get("body") or blobstore.read_blob(digest)
        parsed = media.parse(body, record["media_type"])
        doomed = [keys.child_key(name, child, digest) for child in parsed.manifests]
        if record.get("subject"):
            doomed.append(keys.referrer_key(name, Digest.parse(record["subject"]), digest))
        if not self.dry_run:
            dynamo.batch_delete(doomed)
        referrers, _ = metadata.list_referrers(name, digest, PAGE, None)
        self._queue(
            [metadata.candidate("LINK", name, blob, 0) for blob in dict.fromkeys(parsed.blobs)]
            + [metadata.candidate("MANIFEST", name, child, 0) for child in dict.fromkeys(parsed.manifests)]
            + [metadata.candidate("MANIFEST", name, item["digest"], 0) for item in referrers]
        )

    # --- links ------------------------------------------------------------------------

    def _link(self, name: str, digest: Digest):
        link = collector.get(keys.link_key(name, digest))
        if link is None or self._is_gone("LINK", name, digest):
            return
        created = int(link.get("created") or 0)
        if created + settings().gc_link_grace_seconds > self.now:
            self._queue([metadata.candidate("LINK", name, digest, created)])  # a push may still reference it
            return
        self.hook("mark", "LINK", (name, digest))
        if not self._mark(keys.link_key(name, digest)):
            return
        self.hook("check", "LINK", (name, digest))
        if self._referenced(name, digest):
            return
        self.hook("delete", "LINK", (name, digest))
        blob_candidate = metadata.candidate("BLOB", "", digest, 0)
        if self.dry_run:
            self._queue([blob_candidate])
        elif not collector.delete_marked_link(name, digest, self.token, blob_candidate):
            return
        self._removed("LINK", name, digest, link.get("size") or 0)

    def _referenced(self, name: str, digest: Digest) -> bool:
        """Does a manifest of ``name`` reference blob ``digest``? Drops USES# records of manifests long gone."""
        uses = collector.uses(name, digest, USES_CHECKED + 1)
        if len(uses) > USES_CHECKED:
            return True  # too many to check in bounded time: keep it
        for use in uses:
            manifest = Digest.parse(use["sk"][len(keys.uses_prefix(digest)) :])
            if int(use.get("created") or 0) > self.now - USES_FRESH_SECONDS:
                return True
            if collector.get(keys.manifest_key(name, manifest)) is not None and not self._is_gone("MANIFEST", name, manifest):
                return True
            if not self.dry_run and not collector.drop_stale_use(use):
                return True  # rewritten by a push meanwhile
        return False

    # --- blobs ------------------------------------------------------------------------

    def _blob(self, _name: str, digest: Digest):
        record = collector.get(keys.blob_key(digest))
        if record is None or self._is_gone("BLOB", "", digest):
            return
        if record.get("doomed"):
            self._finish(digest, record, record["doomed"])  # left half-done by a pass that stopped
            return
        lease = int(record.get("lease_until") or 0)
        if lease >= self.now:
            self._queue([metadata.candidate("BLOB", "", digest, lease + 1)])  # a push may be writing it
            return
        self.hook("mark", "BLOB", digest)
        if not self._mark(keys.blob_key(digest), "attribute_not_exists(doomed)"):
            return
        self.hook("check", "BLOB", digest)
        if any(not self._is_gone("LINK", repository, digest) for repository in collector.linked_anywhere(digest)):
            return
        self.hook("doom", "BLOB", digest)
        if self.dry_run:
            self._removed("BLOB", "", digest, record.get("size") or 0)
            return
        if not collector.doom_blob(digest, self.token, self.now):
            return  # a push claimed or linked it after the mark
        self._finish(digest, record, self.token, doomed_at=self.now)

    def _finish(self, digest: Digest, record: dict, token: str, doomed_at: int | None = None):
        """Delete a doomed blob's object, then its record (the record first would let a push re-link a vanishing object)."""
        if self.dry_run:
            self._removed("BLOB", "", digest, record.get("size") or 0)
            return
        if doomed_at is None:
            now = int(time.time())
            if not collector.renew_doom(digest, token, now):
                return
            doomed_at = now
        if time.time() - doomed_at > DOOM_FRESH_SECONDS:
            self._queue([metadata.candidate("BLOB", "", digest, 0)])  # too slow: the next pass renews it
            return
        self.hook("delete-object", "BLOB", digest)
        blobstore.delete_blob(digest)
        self.hook("forget", "BLOB", digest)
        if collector.forget_blob(digest, token):
            self._removed("BLOB", "", digest, record.get("size") or 0)


def run(dry_run: bool = False, deadline: float | None = None, hook=None) -> Report:
    return Pass(dry_run, deadline, hook).run()


def handle_schedule(event: dict, context) -> dict:
    """The gc function (an EventBridge schedule): one pass until a minute before the timeout."""
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else 900
    recording = metrics.begin("gc", getattr(context, "aws_request_id", ""))
    try:
        pullthrough.expire(time.monotonic() + min(60, remaining / 4))  # pull-through cache tags past CACHE_EXPIRY_DAYS become candidates
        report = run(deadline=time.monotonic() + max(remaining - 60, 1))
        metrics.add_bytes(metrics.GC_BYTES_FREED, report.bytes_freed)
        metrics.add(metrics.GC_OBJECTS_FREED, report.objects_freed)
        metrics.add(metrics.GC_PASS_SECONDS, report.seconds, metrics.MetricUnit.Seconds)
        usage.emit_stored_bytes()  # StoredBytes per namespace, once a pass
    finally:
        metrics.end(recording)
    return {
        "complete": report.complete,
        "candidates": report.candidates,
        "removed": len(report.removed),
        "bytes_freed": report.bytes_freed,
        "objects_freed": report.objects_freed,
        "tags_expired": sum(1 for r in report.removed if r.kind == "tag"),
    }
