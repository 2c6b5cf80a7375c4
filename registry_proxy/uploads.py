"""Blob upload sessions: what the client sees as an ordinary upload, sent to S3 in parts.

A session is opened on the registry by the client's own ``POST`` (forwarded as it is, so mounts and
the registry's answers are untouched); the proxy remembers it under the same path, which the
registry's relative ``Location`` already names on the proxy. Then:

* ``PATCH`` bodies (and the body of a ``PUT``) are read as they arrive into a buffer of one part;
  each full part goes to S3 while the next is read, at most ``Settings.parallel`` parts at a time
  over all sessions, so a client whose parts wait is simply read more slowly (its progress display
  follows the bytes that really left);
* ``PATCH`` answers ``202`` once the parts it filled are in S3, with ``Range: 0-<last byte>``;
* ``PUT ?digest=`` uploads what is left as the last part and completes the upload on the registry,
  which verifies the client's digest before the blob becomes visible.

A blob that ends below ``Settings.small_limit`` never switches the session to direct mode: it goes in
one ordinary ``PUT ?digest=`` with the body, which fits a request through API Gateway.

Memory: a session holds at most one part being filled; parts in flight are bounded globally.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp import web
from yarl import URL

from registry_proxy import errors
from registry_proxy.direct import Direct, PartUrls
from registry_proxy.errors import ProxyError, UpstreamError
from registry_proxy.headers import rewrite_location
from registry_proxy.parts import Buffer, TooManyParts, fill, part_size
from registry_proxy.settings import Settings

# /v2/<name>/blobs/uploads/<id>: the registry's session path (OCI Distribution Spec, end-5 .. end-6).
SESSION_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/(?P<id>[^/]+)$")
OPEN_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/uploads/?$")
# Sessions untouched this long are forgotten (the registry expires them on its own, default 24 h).
IDLE_SECONDS = 3600


@dataclass
class Session:
    """One upload the proxy serves.

    path: the session path, on the proxy and on the registry alike (``/v2/<name>/blobs/uploads/<id>``).
    upstream_url: the registry's absolute URL of the session.
    sent: bytes already handed to S3 as parts; pending: received bytes of the part being filled.
    """

    path: str
    upstream_url: str
    sent: int = 0
    pending: Buffer = field(default_factory=Buffer)
    next_part: int = 1
    direct: bool = False
    urls: PartUrls = field(default_factory=PartUrls)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    touched: float = field(default_factory=time.monotonic)

    @property
    def offset(self) -> int:
        """Bytes received from the client so far."""
        return self.sent + len(self.pending)

    def range_header(self) -> str:
        """``Range: 0-<last byte>`` as registries answer (``0-0`` before the first byte)."""
        return f"0-{max(self.offset - 1, 0)}"


class Uploads:
    """The sessions this proxy serves and the work of sending their bytes to S3."""

    def __init__(self, settings: Settings, client: aiohttp.ClientSession):
        self.settings = settings
        self.direct = Direct(client, settings.part_attempts)
        self.client = client
        self.in_flight = asyncio.Semaphore(settings.parallel)
        self.sessions: dict[str, Session] = {}

    # ----------------------------------------------------------------- table
    def register(self, location: str, request_url: str) -> Session | None:
        """Remember the session a registry ``202`` named in *location* (relative or absolute), or None
        when it is no session path. *request_url* is the registry URL the answer came from."""
        upstream_url = urljoin(request_url, location)
        path = urlsplit(upstream_url).path
        if not SESSION_PATH.match(path):
            return None
        self._forget_idle()
        session = self.sessions[path] = Session(path, upstream_url.split("?", 1)[0])
        return session

    def get(self, path: str) -> Session | None:
        session = self.sessions.get(path)
        if session is not None:
            session.touched = time.monotonic()
        return session

    def forget(self, session: Session) -> None:
        self.sessions.pop(session.path, None)

    def _forget_idle(self) -> None:
        cutoff = time.monotonic() - IDLE_SECONDS
        for path in [p for p, s in self.sessions.items() if s.touched < cutoff and not s.lock.locked()]:
            del self.sessions[path]

    # ----------------------------------------------------------------- bytes
    async def receive(self, session: Session, stream, authorization: str | None) -> None:
        """Read *stream* to its end into *session*, sending every full part to S3.

        Returns once every part it started is in S3. Raises ProxyError / UpstreamError when a part
        cannot be sent (the other parts of this request are cancelled).
        """
        tasks: set[asyncio.Task] = set()
        try:
            while True:
                size = part_size(session.next_part, self.settings.part_size)
                ended = await fill(session.pending, size, stream)
                _raise_failed(tasks)
                if ended:
                    break
                await self._start_direct(session, authorization)
                await self.in_flight.acquire()
                number, data = session.next_part, session.pending
                session.pending, session.next_part, session.sent = Buffer(), number + 1, session.sent + len(data)
                task = asyncio.create_task(self._send(session, number, data, authorization))
                # Released when the task ends, also if it is cancelled before it ever ran.
                task.add_done_callback(lambda _: self.in_flight.release())
                tasks.add(task)
                _raise_failed(tasks)
            if tasks:
                await asyncio.gather(*tasks)
        except TooManyParts as error:
            raise ProxyError(400, "BLOB_UPLOAD_INVALID", str(error)) from error
        finally:
            for task in tasks:
                task.cancel()

    async def _send(self, session: Session, number: int, data: Buffer, authorization: str | None) -> None:
        await self.direct.upload_part(session.upstream_url, number, data, authorization, session.urls)

    async def _start_direct(self, session: Session, authorization: str | None) -> None:
        """Switch the registry's session to direct mode (its first part-URL request does it)."""
        if not session.direct:
            await self.direct.request_urls(session.upstream_url, session.next_part, authorization, session.urls)
            session.direct = True

    async def finish(self, session: Session, digest: str, authorization: str | None) -> web.Response:
        """Send what is left and complete the upload: the client's ``201`` (Location, Docker-Content-Digest)."""
        if not session.direct and session.offset < self.settings.small_limit:
            return await self._finish_small(session, digest, authorization)
        if session.pending or not session.direct:
            await self._start_direct(session, authorization)
            number, data = session.next_part, session.pending
            session.pending, session.next_part, session.sent = Buffer(), number + 1, session.sent + len(data)
            async with self.in_flight:
                await self._send(session, number, data, authorization)
        response = await self.direct.complete(session.upstream_url, digest, authorization)
        return _created(response.headers, self.settings.upstream)

    async def _finish_small(self, session: Session, digest: str, authorization: str | None) -> web.Response:
        """The whole blob in one ordinary ``PUT ?digest=`` with its body (it fits one request)."""
        target = URL(session.upstream_url, encoded=True).update_query(digest=digest)
        headers = {"Content-Type": "application/octet-stream"}
        if authorization:
            headers["Authorization"] = authorization
        try:
            async with self.client.put(target, headers=headers, data=session.pending.join()) as response:
                body = await response.read()
                if response.status != 201:
                    raise UpstreamError(response.status, list(response.headers.items()), body)
                return _created(response.headers, self.settings.upstream)
        except aiohttp.ClientError as error:
            raise errors.unreachable("the registry", error) from error

    async def cancel(self, session: Session, authorization: str | None) -> None:
        """Forget *session* and ask the registry to drop it (best effort)."""
        self.forget(session)
        await self.direct.cancel(session.upstream_url, authorization)


def _raise_failed(tasks: set[asyncio.Task]) -> None:
    """Raise the error of the first part task that failed; drop finished ones."""
    for task in [t for t in tasks if t.done()]:
        tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()


def _created(headers, upstream: str) -> web.Response:
    """``201`` with the registry's ``Location`` (made relative to the proxy) and ``Docker-Content-Digest``."""
    out = {"Content-Length": "0"}
    if "Location" in headers:
        out["Location"] = rewrite_location(headers["Location"], upstream)
    if "Docker-Content-Digest" in headers:
        out["Docker-Content-Digest"] = headers["Docker-Content-Digest"]
    return web.Response(status=201, headers=out)
