"""Writing a verified blob to ``blobs/<alg>/<hex>`` and linking it, safe against garbage collection.

Garbage collection (``registry.services.gc``) deletes a blob's DynamoDB record
*before* its S3 object, and only after marking the record ``doomed`` on
condition that no push holds a claim on it. A push therefore never links
bytes it did not see stored:

* found stored (a record with ``size``, not doomed): link on condition that it
  still is; if garbage collection got there first, write the bytes again;
* otherwise claim the record (``metadata.claim_blob``: a lease longer than any
  invocation, refused while it is doomed), write the object, then link on
  condition that the record still carries the claim's ``epoch``: if it was
  deleted (and maybe re-created) meanwhile, the bytes may have been deleted
  too, so they are written again.

The argument is in docs/architecture.md ("Garbage collection").

The first read (``usage.read_link_state``, one BatchGetItem) also fetches the
storage counters the link updates, and a link that would take the namespace
past its quota is refused (403 DENIED) before any byte is written; the link
itself checks the quota again, atomically (``metadata.link_blob``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from registry.errors import OciError, RegistryError
from registry.references import Digest
from registry.storage import metadata, usage

# Each attempt loses only to a garbage collection deleting this very blob at this very moment.
ATTEMPTS = 6


def store(name: str, digest: Digest, size: int, write: Callable[[], None], upload_id: str | None = None, keep_session: bool = False):
    """Link ``digest`` (``size`` bytes) into ``name``, calling ``write()`` to store its object when needed.

    ``write`` may be called more than once (after a garbage collection removed
    what it wrote) or not at all (already stored). Raises 429 TOOMANYREQUESTS
    when a garbage collection keeps the blob doomed for all attempts (a few seconds),
    403 DENIED (``usage.QuotaExceeded``) when the namespace's quota has no room for it.
    """
    for attempt in range(ATTEMPTS):
        state = usage.read_link_state(name, digest)
        if usage.exceeds_quota(state, size):  # only bytes new to the namespace count against it
            raise usage.QuotaExceeded(usage.namespace_of(name), state.quota, state.dedup, size)
        if metadata.linkable(state.blob):
            try:
                metadata.link_blob(name, digest, size, upload_id, keep_session, state=state)
                return
            except metadata.BlobGone:
                pass
        try:
            epoch = metadata.claim_blob(digest)
        except metadata.BlobDoomed:
            time.sleep(min(2.0, 0.1 * 2**attempt))  # the collector deletes it in a few calls
            continue
        write()
        try:
            metadata.link_blob(name, digest, size, upload_id, keep_session, epoch=epoch, state=state)
            return
        except metadata.BlobGone:
            continue
    raise RegistryError(OciError.TOOMANYREQUESTS, "the blob is being garbage-collected: try again", headers={"Retry-After": "2"})
