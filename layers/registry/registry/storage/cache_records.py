"""DynamoDB items of the pull-through cache (registry.services.pullthrough); keys from ``registry.keys``.

* ``UPSTREAM/<prefix>``: upstreams set by ``registry-admin upstream set`` (url,
  library, credentials: the Secrets Manager id, never the secret);
* pending links: ``REPO#<name>/BLOB#<digest>`` with ``pending``, written for
  the blobs of a fetched manifest before the manifest itself (the manifest's
  transaction touches its links), overwritten by the real link once fetched;
* ``CHILD#`` records of a fetched index (its children are fetched on demand);
* the expiry index ``CACHEDAY#<day>/<name>#<tag>`` and its cursor.
"""

from __future__ import annotations

import time

from registry import keys
from registry.references import Digest
from registry.storage import dynamo

# At most this many upstreams (one Query page): the whole list is read at once.
UPSTREAMS_MAX = 50


def list_upstreams() -> list[dict]:
    """Every ``UPSTREAM`` item (one Query)."""
    items, _ = dynamo.query_page(keys.UPSTREAM_PK, "", UPSTREAMS_MAX, None)
    return items


def put_upstream(prefix: str, attributes: dict):
    dynamo.put(keys.upstream_key(prefix), attributes)


def delete_upstream(prefix: str):
    dynamo.delete(keys.upstream_key(prefix))


def put_pending_links(name: str, sizes: dict[Digest, int], prefix: str):
    """Links for blobs of a fetched manifest that ``name`` does not link yet: their size, not their bytes."""
    now = int(time.time())
    dynamo.batch_put([{**keys.link_key(name, digest), "size": size, "created": now, "upstream": prefix, "pending": True}
                      for digest, size in sizes.items()])


def put_children(name: str, index: Digest, children) -> None:
    """CHILD# records of a fetched index, so garbage collection keeps its children once fetched."""
    now = int(time.time())
    dynamo.batch_put([{**keys.child_key(name, child, index), "created": now} for child in dict.fromkeys(children)])


def mark_checked(name: str, tag: str, digest: str, now: int) -> bool:
    """The tag still holds ``digest`` upstream as of ``now``; False when it moved meanwhile."""
    try:
        dynamo.update(keys.tag_key(name, tag), "SET checked = :now", "digest = :digest", {":now": now, ":digest": digest})
    except dynamo.Conflict:
        return False
    return True


def note_fetched(day: str, name: str, tag: str):
    """Index the cached tag under ``day`` (the expiry reads day partitions, never the table)."""
    dynamo.put(keys.cache_day_key(day, name, tag), {"name": name, "tag": tag})


def day_entries(day: str, limit: int) -> list[dict]:
    items, _ = dynamo.query_page(keys.cache_day_pk(day), "", limit, None)
    return items


def forget_entries(entries: list[dict]):
    dynamo.batch_delete([{"pk": e["pk"], "sk": e["sk"]} for e in entries])


def expiry_cursor() -> str | None:
    item = dynamo.get(keys.cache_expiry_cursor_key(), consistent=True)
    return item.get("day") if item else None


def set_expiry_cursor(day: str):
    dynamo.put(keys.cache_expiry_cursor_key(), {"day": day})
