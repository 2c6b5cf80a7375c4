"""The pull-through cache: repositories under a configured prefix mirror an upstream registry.

``<prefix>/<repo>`` (for example ``dockerhub/library/busybox``) is fetched from
the upstream ``<url>/v2/<repo>/…`` on a miss, stored as a pushed image would be,
and served from then on like any repository (the manifest from DynamoDB, blobs
by a 307 to S3). The argument for each choice is in docs/architecture.md,
"Pull-through cache"; README.md has the operator's view.

Configuration (``upstreams()``): ``UPSTREAMS`` (the template Parameter
``Upstreams``; locally ``REGISTRY_UPSTREAMS``), ``PREFIX=URL[,library|,nolibrary]``
joined by ``;``, plus the ``UPSTREAM`` items ``registry-admin upstream set``
writes (which also hold where the credentials are). Read at most once per
container per ``CONFIG_SECONDS``, and only by requests that may need it: a
miss, a pending blob, a write, a token request.

* Manifests (``manifest_record``): a miss GETs the upstream; a cached tag
  older than ``CACHE_TAG_SECONDS`` is revalidated with a HEAD (Docker Hub does
  not count a HEAD as a pull) and fetched again only if it moved; a digest
  never goes upstream once cached. An upstream that is down, rate-limits or
  fails leaves the cached tag served as it is (stale); a miss then fails with
  the upstream's answer in an OCI error (never a 500).
* Blobs (``blob``): a fetched manifest leaves *pending* links (size and
  upstream, no bytes), so HEAD costs nothing upstream; the first GET fetches
  the bytes (at most ``CACHE_INLINE_BYTES`` in the request), verifies the
  digest and stores them through ``services.storing`` (claim, write, link),
  then answers the usual 307 to S3. A larger blob is copied by the fetch
  function in parts (``fetch_step``), and meanwhile the client is sent to the
  upstream's own redirect, or asked to retry (503 with Retry-After) when the
  upstream serves the bytes itself.
* Access (``cache_actions``, ``refuse_writes``): pull for everyone
  (``CACHE_PULL=public``, the default) or for signed-in users; never push or
  delete, admins included.
* Expiry (``expire``): tags not pulled for ``CACHE_EXPIRY_DAYS`` are deleted
  by the garbage-collection schedule; GC then frees what they held.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from urllib.parse import urlsplit

from registry import aws, metrics
from registry import manifests as media
from registry.errors import OciError, RegistryError
from registry.http import Response
from registry.references import Digest
from registry.storage import blobstore, cache_records, metadata, search_index

CONFIG_SECONDS = 60
# Upstreams from UPSTREAMS and the table together; a prefix is one name component.
UPSTREAMS_MAX = 50
_PREFIX = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_HOST = re.compile(r"[A-Za-z0-9.-]{1,253}|\[[0-9A-Fa-f:.]{2,45}\]")
# Every manifest type we store, in the order a client prefers (Accept of upstream manifest requests).
ACCEPT = ", ".join(media.SUPPORTED)
DOCKER_HUB_HOSTS = ("docker.io", "registry-1.docker.io", "index.docker.io", "registry.hub.docker.com")
SECRET_PREFIX_DEFAULT = "registry-upstream-"


class Upstream(NamedTuple):
    prefix: str
    url: str  # scheme://host[:port], no path
    library: bool  # Docker Hub's convention: a one-component name is library/<name>
    credentials: str | None = None  # the Secrets Manager id of {"username","password"}, or None


def _docker_hub(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in DOCKER_HUB_HOSTS or host.endswith(".docker.io")


def parse_upstream(prefix: str, value: str) -> Upstream:
    """One ``PREFIX=URL[,library|,nolibrary]`` entry; ValueError naming what is wrong.

    The URL is ``http(s)://host[:port]`` (a registry is served at the root:
    ``/v2/`` is appended). ``library`` defaults on for Docker Hub's hosts.
    """
    prefix = prefix.strip()
    if not (_PREFIX.fullmatch(prefix) and len(prefix) <= 64):
        raise ValueError(f"an upstream prefix is one repository-name component of at most 64 characters: {prefix[:70]!r}")
    url, *options = [part.strip() for part in value.split(",")]
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"upstream {prefix}: the port of {url[:100]!r} is not a number from 0 to 65535") from None
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"upstream {prefix}: the URL must be http(s)://host[:port] without credentials, query or fragment: {url[:100]!r}")
    host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
    if not _HOST.fullmatch(host) or parts.path not in ("", "/"):
        raise ValueError(f"upstream {prefix}: the URL must be http(s)://host[:port] (no path): {url[:100]!r}")
    library = _docker_hub(url)
    for option in options:
        if option not in ("library", "nolibrary"):
            raise ValueError(f"upstream {prefix}: unknown option {option[:40]!r} (library or nolibrary)")
        library = option == "library"
    return Upstream(prefix, f"{parts.scheme}://{parts.netloc}", library)


def parse_upstreams(text: str) -> dict[str, Upstream]:
    """``PREFIX=URL[,option][;PREFIX=URL…]`` -> {prefix: Upstream}. Empty entries are ignored.

    Raises ValueError for a malformed entry, a prefix given twice, or more than UPSTREAMS_MAX.
    """
    found: dict[str, Upstream] = {}
    for entry in text.split(";"):
        if not entry.strip():
            continue
        prefix, sep, value = entry.partition("=")
        if not sep:
            raise ValueError(f"an upstream is PREFIX=URL: {entry.strip()[:100]!r}")
        upstream = parse_upstream(prefix, value)
        if upstream.prefix in found:
            raise ValueError(f"upstream {upstream.prefix} is given twice")
        found[upstream.prefix] = upstream
        if len(found) > UPSTREAMS_MAX:
            raise ValueError(f"at most {UPSTREAMS_MAX} upstreams")
    return found


def render_upstreams(upstreams) -> str:
    """The ``UPSTREAMS`` text of ``upstreams`` (parse_upstreams' inverse)."""
    out = []
    for u in upstreams:
        option = "" if u.library == _docker_hub(u.url) else (",library" if u.library else ",nolibrary")
        out.append(f"{u.prefix}={u.url}{option}")
    return ";".join(out)


class Settings(NamedTuple):
    tag_seconds: int  # a cached tag is revalidated upstream after this long
    expiry_days: float  # a cached tag not pulled for this long is deleted
    public: bool  # anyone may pull cached repositories (else signed-in users)
    inline_bytes: int  # the largest blob fetched within a request
    secret_prefix: str  # Secrets Manager ids of upstream credentials start with this

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            tag_seconds=int(env.get("CACHE_TAG_SECONDS", "300")),
            expiry_days=float(env.get("CACHE_EXPIRY_DAYS", "30")),
            public=env.get("CACHE_PULL", "public") != "signed-in",
            inline_bytes=int(env.get("CACHE_INLINE_BYTES", str(64 * 1024 * 1024))),
            secret_prefix=env.get("UPSTREAM_SECRET_PREFIX", SECRET_PREFIX_DEFAULT),
        )


def settings() -> Settings:
    return Settings.from_env()


def secret_id(prefix: str) -> str:
    return settings().secret_prefix + prefix


# --- configuration, cached per container --------------------------------------------------

_lock = threading.Lock()
_cached: dict = {}


def upstreams() -> dict[str, Upstream]:
    """Every configured upstream, {prefix: Upstream}: UPSTREAMS, then the table's (which win).

    One Query per container per CONFIG_SECONDS (the cache is also renewed when the
    AWS clients are: tests switch emulators). A malformed UPSTREAMS is ignored
    with an error logged, never a failed request.
    """
    text = os.environ.get("UPSTREAMS", "")
    identity = (text, id(aws.dynamodb()))
    with _lock:
        if _cached.get("identity") == identity and _cached["until"] > time.monotonic():
            return _cached["value"]
    try:
        found = parse_upstreams(text)
    except ValueError as exc:
        from registry.log import logger

        logger.error("UPSTREAMS is malformed; ignored", extra={"problem": str(exc)[:200]})
        found = {}
    for item in cache_records.list_upstreams():
        try:
            upstream = parse_upstream(item["sk"], item.get("url", "") + (",library" if item.get("library") else ",nolibrary"))
        except ValueError:
            continue
        found[upstream.prefix] = Upstream(upstream.prefix, upstream.url, upstream.library, item.get("credentials") or None)
    with _lock:
        _cached.update(identity=identity, until=time.monotonic() + CONFIG_SECONDS, value=found)
    return found


def reset():
    """Forget the cached configuration (tests, registry-admin)."""
    with _lock:
        _cached.clear()


class Place(NamedTuple):
    upstream: Upstream
    repository: str  # the upstream's name for it
    name: str  # where it is stored here: <prefix>/<repository>


def locate(name: str) -> Place | None:
    """Where ``name`` comes from, if it is under a cache prefix; None otherwise.

    With ``library``, ``<prefix>/<one>`` is ``<prefix>/library/<one>``: one
    canonical stored name for both spellings.
    """
    prefix, _, rest = name.partition("/")
    if not rest:
        return None
    upstream = upstreams().get(prefix)
    if upstream is None:
        return None
    repository = f"library/{rest}" if upstream.library and "/" not in rest else rest
    canonical = f"{prefix}/{repository}"
    if len(canonical) > 255:
        raise RegistryError(OciError.NAME_INVALID, "the name is too long once library/ is added", detail={"name": name[:300]})
    return Place(upstream, repository, canonical)


def stored_name(name: str) -> str:
    """The name ``name``'s content is stored under: the canonical one for a cache's library/ alias."""
    place = locate(name)
    return place.name if place is not None else name


def cached_prefix(name: str) -> bool:
    prefix, _, _ = name.partition("/")
    return prefix in upstreams()


# --- access -----------------------------------------------------------------------------

# Routes that change a repository: refused under a cache prefix (starring is not a change of content).
_READ_ONLY = {"GET", "HEAD"}
_ALLOWED_WRITES = {"repo.star"}


def refuse_writes(route_name: str, method: str, name: str | None):
    """403 DENIED for any push, delete or setting under a cache prefix (admins included)."""
    if name is None or method in _READ_ONLY or route_name in _ALLOWED_WRITES:
        return
    if cached_prefix(name):
        raise RegistryError(OciError.DENIED, f"{name.partition('/')[0]}/ is a pull-through cache: its repositories are read-only",
                            detail={"name": name})


def cache_actions(anonymous: bool, token_actions, name: str, allowed: set[str]) -> set[str]:
    """What a token may grant on ``name``: under a cache prefix pull only (for everyone, or for
    signed-in users with CACHE_PULL=signed-in), even before the repository exists here."""
    if not cached_prefix(name):
        return allowed
    granted = {"pull"} if (settings().public or not anonymous) else set()
    if token_actions is not None:
        granted &= set(token_actions)
    return granted


# --- upstream answers -> OCI errors -------------------------------------------------------


def _client(upstream: Upstream):
    from registry.storage import upstream as http

    credentials = http.credentials(upstream.credentials) if upstream.credentials else None
    return http.Client(upstream.url, credentials)


def _scope(place: Place) -> str:
    return f"repository:{place.repository}:pull"


def _unreachable(place: Place) -> RegistryError:
    return RegistryError(OciError.UNAVAILABLE, f"the upstream of {place.upstream.prefix}/ did not answer: try again later",
                         detail={"upstream": place.upstream.prefix}, headers={"Retry-After": "30"})


def _refusal(place: Place, answer, unknown: OciError, what: str) -> RegistryError:
    """The OCI error for an upstream's non-2xx answer to a request for something not cached."""
    code = answer.error_code()
    said = f"{answer.status}{' ' + code if code else ''}"
    detail = {"upstream": place.upstream.prefix, "status": answer.status, **({"code": code} if code else {})}
    if answer.status == 429:
        retry = answer.header("retry-after") or "60"
        return RegistryError(OciError.TOOMANYREQUESTS, f"the upstream of {place.upstream.prefix}/ rate-limits this registry ({said})",
                             detail=detail, headers={"Retry-After": retry if retry.isascii() and retry.isdigit() and len(retry) < 7 else "60"})
    if answer.status in (401, 403, 404):
        error = OciError.NAME_UNKNOWN if code == "NAME_UNKNOWN" or answer.status in (401, 403) else unknown
        return RegistryError(error, f"the upstream of {place.upstream.prefix}/ has no {what} {place.repository} ({said})", detail=detail)
    return RegistryError(OciError.UNAVAILABLE, f"the upstream of {place.upstream.prefix}/ failed ({said}): try again later",
                         detail=detail, headers={"Retry-After": "30"})


def _stale_ok(answer) -> bool:
    """Upstream answers that leave a cached tag served as it is: rate limits, failures, refusals."""
    return answer.status == 429 or answer.status >= 500 or answer.status in (401, 403, 404)


# --- manifests ------------------------------------------------------------------------------


def manifest_record(name: str, ref, record: dict | None) -> dict | None:
    """What a manifest pull of ``name`` / ``ref`` serves: ``record`` unless it is a cache's miss or stale tag.

    Records not from a cache are returned at once (no configuration read).
    """
    if record is not None and "upstream" not in record:
        return record
    place = locate(name)
    if place is None:
        return record
    if place.name != name:
        record = metadata.get_record(metadata.manifest_record_key(place.name, ref))
    if record is None:
        return _fetch_manifest(place, ref)
    if isinstance(ref, Digest) or int(record.get("checked") or 0) + settings().tag_seconds > time.time():
        return record
    return _revalidate(place, ref, record)


def _revalidate(place: Place, tag: str, record: dict) -> dict:
    """HEAD the tag upstream: unchanged -> mark checked; moved -> fetch it; no good answer -> serve stale."""
    from registry.log import logger
    from registry.storage import upstream as http

    try:
        answer = _client(place.upstream).request("HEAD", f"/v2/{place.repository}/manifests/{tag}", _scope(place), {"Accept": ACCEPT})
    except http.Unreachable:
        answer = None
    metrics.add(CACHE_REVALIDATIONS)
    if answer is None or _stale_ok(answer):
        logger.warning("serving a stale cached tag", extra={"upstream": place.upstream.prefix, "status": answer.status if answer else None})
        return record
    now = int(time.time())
    if answer.status == 200 and answer.header("docker-content-digest") == record["digest"]:
        if cache_records.mark_checked(place.name, tag, record["digest"], now):
            cache_records.note_fetched(_day(now), place.name, tag)
        return {**record, "checked": now}
    try:
        return _fetch_manifest(place, tag)
    except RegistryError:
        return record  # it moved, but the new one cannot be had now: the old one is still an answer


def _fetch_manifest(place: Place, ref) -> dict:
    """GET the manifest upstream, verify it and store it as a push would; the stored record."""
    from registry.storage import upstream as http

    try:
        answer = _client(place.upstream).request("GET", f"/v2/{place.repository}/manifests/{ref}", _scope(place), {"Accept": ACCEPT},
                                                 limit=media.MAX_MANIFEST_BYTES + 1)
    except http.Unreachable:
        raise _unreachable(place) from None
    metrics.add(CACHE_FETCHES)
    if answer.status != 200:
        raise _refusal(place, answer, OciError.MANIFEST_UNKNOWN, "manifest for")
    body = answer.body
    if len(body) > media.MAX_MANIFEST_BYTES:
        raise RegistryError(OciError.UNAVAILABLE, f"the upstream's manifest is over {media.MAX_MANIFEST_BYTES} bytes, more than this registry stores")
    digest = Digest.of(body, ref.algorithm if isinstance(ref, Digest) else "sha256")
    if isinstance(ref, Digest) and digest != ref:
        raise RegistryError(OciError.UNAVAILABLE, f"the upstream sent a manifest whose digest is {digest}, not {ref}", detail={"upstream": place.upstream.prefix})
    try:
        manifest = media.parse(body, answer.header("content-type"))
    except RegistryError as exc:
        raise RegistryError(OciError.UNAVAILABLE, f"the upstream's manifest cannot be stored here: {exc.message}", detail={"upstream": place.upstream.prefix}) from None
    return _store_manifest(place, ref, body, digest, manifest)


def _store_manifest(place: Place, ref, body: bytes, digest: Digest, manifest) -> dict:
    from registry.services.manifests import new_record

    name = place.name
    tag = None if isinstance(ref, Digest) else ref
    now = int(time.time())
    missing, repository, current, stored = metadata.check_references(name, list(manifest.blobs), [], tag, digest)
    sizes = _blob_sizes(body)
    cache_records.put_pending_links(name, {d: sizes.get(str(d), 0) for d in missing}, place.upstream.prefix)
    if manifest.manifests:
        cache_records.put_children(name, digest, manifest.manifests)
    record, referrer = new_record(digest, body, manifest, upstream=place.upstream.prefix, checked=now)
    if repository is None or "created" not in repository:
        search_index.add_repository(name)
    previous, previous_pushed = (current.get("digest"), current.get("updated")) if current else (None, None)
    try:
        # stored: a manifest already cached is not counted again (storage accounting);
        # previous_pushed: the tag's old push-time entry goes (retention's index).
        metadata.put_manifest(
            name, digest, record, tag, referrer, (), repository,
            blobs=manifest.blobs, previous=previous, stored=stored, previous_pushed=previous_pushed,
        )
    except (metadata.TagMoved, metadata.Missing):
        # Another request stored it (or GC took a pending link) meanwhile: theirs is as good.
        stored_record = metadata.get_record(metadata.manifest_record_key(name, ref))
        if stored_record is None:
            raise RegistryError(OciError.TOOMANYREQUESTS, "the cached image is being updated: try again", headers={"Retry-After": "1"}) from None
        return stored_record
    if tag is not None:
        cache_records.note_fetched(_day(now), name, tag)
    return {**record, "digest": str(digest)}


def _blob_sizes(body: bytes) -> dict[str, int]:
    """digest -> size of an image manifest's config and layers (already parsed: well-formed)."""
    document = json.loads(body)
    sizes = {}
    for descriptor in [document.get("config") or {}, *(document.get("layers") or [])]:
        if isinstance(descriptor, dict) and isinstance(descriptor.get("size"), int) and descriptor["size"] >= 0:
            sizes[str(descriptor.get("digest"))] = descriptor["size"]
    return sizes


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d")


# --- blobs ---------------------------------------------------------------------------------


def blob(request, name: str, digest: Digest, link: dict | None) -> Response | None:
    """A blob pull of ``name`` not answered by a stored link; None when ``name`` is no cache (404 follows).

    HEAD of a pending blob answers from the link (no upstream request). GET
    fetches it (inline, or by the fetch function for a large one) and redirects.
    """
    place = locate(name)
    if place is None:
        return None
    if place.name != name or link is None:
        link = metadata.get_link(place.name, digest)
        if link is None:
            return None  # only blobs of cached manifests are fetched
    headers = {"Docker-Content-Digest": str(digest)}
    if request.method == "HEAD":
        return Response(200, {**headers, "Content-Length": str(link["size"]), "Content-Type": "application/octet-stream"})
    if link.get("pending"):
        located = _fetch_blob(place, digest, int(link["size"]))
        if located is not None:
            return Response(307, {**headers, "Location": located})
    return Response(307, {**headers, "Location": blobstore.presigned_get(digest)})


def _fetch_blob(place: Place, digest: Digest, size: int) -> str | None:
    """Store the blob (None: stored now, serve it from S3) or return where the client gets it meanwhile."""
    from registry.services import storing

    if metadata.get_blob(digest) is not None:  # stored for another repository already
        storing.store(place.name, digest, size, lambda: None)
        return None
    if size > settings().inline_bytes:
        return _fetch_later(place, digest, size)
    data = _download(place, digest, size)
    storing.store(place.name, digest, size, lambda: blobstore.put_blob(digest, data))
    metrics.add_bytes(CACHE_BYTES_FETCHED, size)
    return None


def _download(place: Place, digest: Digest, size: int) -> bytes:
    """The blob's bytes from the upstream, following its redirect; verified against ``digest`` and ``size``."""
    from registry.storage import upstream as http

    try:
        answer = _client(place.upstream).request("GET", f"/v2/{place.repository}/blobs/{digest}", _scope(place), redirect=True, read=False)
    except http.Unreachable:
        raise _unreachable(place) from None
    if answer.status != 200:
        raise _refusal(place, answer, OciError.BLOB_UNKNOWN, "blob in")
    hasher, chunks, received = hashlib.new(digest.algorithm), [], 0
    try:
        for chunk in answer.stream.stream(1024 * 1024):
            received += len(chunk)
            if received > size:
                break
            hasher.update(chunk)
            chunks.append(chunk)
    except Exception:  # noqa: BLE001 - any failure mid-body is the upstream's (urllib3's errors vary)
        raise _unreachable(place) from None
    finally:
        answer.close()
    if received != size or hasher.hexdigest() != digest.hex:
        raise RegistryError(OciError.UNAVAILABLE, f"the upstream sent bytes that are not {digest} ({received} bytes): try again later",
                            detail={"upstream": place.upstream.prefix}, headers={"Retry-After": "30"})
    return b"".join(chunks)


def _fetch_later(place: Place, digest: Digest, size: int) -> str:
    """Queue the fetch function for a blob too large to copy in a request; where the client goes meanwhile.

    The upstream's own redirect (a CDN or presigned URL, usable without
    credentials) when it answers the blob GET with one; otherwise 503
    UNAVAILABLE with Retry-After: the client retries once the copy is done.
    """
    from registry.services import fetching
    from registry.storage import upstream as http

    fetching.start(place.name, place.upstream.prefix, place.repository, digest, size)
    try:
        answer = _client(place.upstream).request("GET", f"/v2/{place.repository}/blobs/{digest}", _scope(place), redirect=False, read=False)
    except http.Unreachable:
        raise _unreachable(place) from None
    location = answer.header("location")
    answer.close()
    if answer.status in (301, 302, 303, 307, 308) and location:
        return http.absolute(place.upstream.url, location)
    if answer.status not in (200, 206):
        raise _refusal(place, answer, OciError.BLOB_UNKNOWN, "blob in")
    raise RegistryError(OciError.UNAVAILABLE, f"the blob ({size} bytes) is being copied from the upstream: try again in a minute",
                        detail={"digest": str(digest), "size": size}, headers={"Retry-After": "60"})


def download_range(prefix: str, repository: str, digest: Digest, first: int, last: int) -> bytes:
    """Bytes ``first..last`` (inclusive) of an upstream blob, following its redirect (the fetch function)."""
    from registry.services.fetching import UpstreamFailed
    from registry.storage import upstream as http

    upstream = upstreams().get(prefix)
    if upstream is None:
        raise UpstreamFailed(f"no upstream {prefix} any more")
    place = Place(upstream, repository, f"{prefix}/{repository}")
    try:
        answer = _client(upstream).request("GET", f"/v2/{repository}/blobs/{digest}", _scope(place), {"Range": f"bytes={first}-{last}"},
                                           redirect=True, read_seconds=120, limit=last - first + 2)
    except http.Unreachable as exc:
        raise UpstreamFailed(f"unreachable: {exc}") from None
    if answer.status == 206 or (answer.status == 200 and first == 0 and len(answer.body) == last + 1):
        return answer.body
    raise UpstreamFailed(f"upstream answered {answer.status} to a range request")


# --- expiry -----------------------------------------------------------------------------------

EXPIRY_PAGE = 100
EXPIRY_LOOKBACK_DAYS = 30


def expire(deadline: float, now: float | None = None) -> int:
    """Delete cached tags not fetched or revalidated for CACHE_EXPIRY_DAYS; how many were deleted.

    Reads the ``CACHEDAY#<day>`` partitions from the day after the cursor up to
    the cutoff, a page at a time (no scan); a tag revalidated since is in a
    later partition and is kept. Deleting a tag writes its manifest's GC
    candidate: the garbage-collection pass frees the rest. Stops at ``deadline``
    (``time.monotonic()``); the next pass goes on from the cursor.
    """
    now = time.time() if now is None else now
    cutoff = now - settings().expiry_days * 86400
    last = _day(cutoff - 86400)
    cursor = cache_records.expiry_cursor()
    day = (datetime.strptime(cursor, "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)) if cursor else None
    if day is None:
        # First run: the schedule runs several times a day, so a month back covers any entry written before it.
        day = datetime.fromtimestamp(cutoff, UTC) - timedelta(days=EXPIRY_LOOKBACK_DAYS)
    deleted = 0
    while day.strftime("%Y-%m-%d") <= last and time.monotonic() < deadline:
        name = day.strftime("%Y-%m-%d")
        while time.monotonic() < deadline:
            entries = cache_records.day_entries(name, EXPIRY_PAGE)
            if not entries:
                break
            for entry in entries:
                tag = metadata.get_tag(entry["name"], entry["tag"])
                if tag is not None and "upstream" in tag and int(tag.get("checked") or 0) < cutoff:
                    deleted += metadata.delete_tag(entry["name"], entry["tag"])
            cache_records.forget_entries(entries)
        else:
            break
        cache_records.set_expiry_cursor(name)
        day += timedelta(days=1)
    return deleted


# Metric names (registry.metrics adds them like its own).
CACHE_FETCHES = "CacheUpstreamFetches"
CACHE_REVALIDATIONS = "CacheRevalidations"
CACHE_BYTES_FETCHED = "CacheBytesFetched"
