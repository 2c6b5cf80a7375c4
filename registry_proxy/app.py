"""The proxy as an aiohttp application: which requests are forwarded and which are uploads it serves.

Routing (everything not listed is forwarded as it is, see ``forward``):

=========================================  ==========================================================
``GET|POST /token``                        forwarded to the registry's token service (the realm it
                                           announces; ``<upstream>/token`` until it announced one)
``POST /v2/<name>/blobs/uploads/``         forwarded; a ``202`` opens a session the proxy serves.
                                           With ``?digest=`` and a body that may not fit a request,
                                           the proxy opens the session itself and uploads in parts
``PATCH /v2/<name>/blobs/uploads/<id>``    body cut into parts to S3; ``202`` with ``Range``
``PUT /v2/<name>/blobs/uploads/<id>``      rest of the body, last part, completion; ``201``
``GET /v2/<name>/blobs/uploads/<id>``      ``204`` with the proxy's ``Range``
``DELETE /v2/<name>/blobs/uploads/<id>``   forwarded, and the session forgotten
=========================================  ==========================================================
"""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from registry_proxy import forward
from registry_proxy.errors import ProxyError, UpstreamError, range_invalid, unreachable, upload_unknown
from registry_proxy.headers import response_headers
from registry_proxy.settings import Settings
from registry_proxy.uploads import OPEN_PATH, SESSION_PATH, Session, Uploads

SETTINGS = web.AppKey("settings", Settings)
CLIENT = web.AppKey("client", aiohttp.ClientSession)
UPLOADS = web.AppKey("uploads", Uploads)
STATE = web.AppKey("state", dict)


def make_app(settings: Settings) -> web.Application:
    """The proxy application for *settings* (its HTTP client opens and closes with the app)."""
    app = web.Application()
    app[SETTINGS] = settings
    app[STATE] = {"realm": settings.upstream + "/token", "cleanups": set()}
    app.cleanup_ctx.append(_client)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


async def _client(app: web.Application):
    client = aiohttp.ClientSession(
        auto_decompress=False,  # bodies pass as the registry sent them
        cookie_jar=aiohttp.DummyCookieJar(),  # no state shared between clients
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300),
        connector=aiohttp.TCPConnector(limit=64),
    )
    app[CLIENT] = client
    app[UPLOADS] = Uploads(app[SETTINGS], client)
    yield
    await client.close()


async def handle(request: web.Request) -> web.StreamResponse:
    """Dispatch one client request (see the module's table)."""
    app = request.app
    path = request.rel_url.raw_path
    try:
        if path == "/token":
            return await forward.relay(request, app[CLIENT], _token_url(app, request), app[STATE], app[SETTINGS].upstream)
        if request.method == "POST" and OPEN_PATH.match(path):
            return await _open(request)
        if SESSION_PATH.match(path) and request.method in ("PATCH", "PUT", "GET", "DELETE"):
            session = app[UPLOADS].get(path)
            if session is not None:
                return await _serve_session(request, session)
            if request.method in ("PATCH", "PUT"):
                raise upload_unknown(path)
        return await forward.relay(request, app[CLIENT], _upstream_url(app, request), app[STATE], app[SETTINGS].upstream)
    except ProxyError as error:
        return error.response()
    except UpstreamError as error:
        return web.Response(status=error.status, body=error.body,
                            headers=response_headers(CIMultiDict(error.headers), app[SETTINGS].upstream,
                                                     forward.proxy_realm(request)))


def _upstream_url(app: web.Application, request: web.Request) -> URL:
    return forward.upstream_url(app[SETTINGS].upstream, request)


def _token_url(app: web.Application, request: web.Request) -> URL:
    query = request.rel_url.raw_query_string
    return URL(app[STATE]["realm"] + (f"?{query}" if query else ""), encoded=True)


# ------------------------------------------------------------------- opening
async def _open(request: web.Request) -> web.StreamResponse:
    """``POST /v2/<name>/blobs/uploads/``: forwarded, or (a monolithic blob too big for one request)
    served in parts."""
    app, settings = request.app, request.app[SETTINGS]
    length = request.content_length
    monolithic = "digest" in request.rel_url.query and request.body_exists
    if monolithic and (length is None or length >= settings.small_limit):
        return await _open_monolithic(request)
    url = _upstream_url(app, request)
    status, headers, body = await forward.exchange(request, app[CLIENT], url, app[STATE])
    if status == 202 and "Location" in headers:
        app[UPLOADS].register(headers["Location"], str(url))
    return web.Response(status=status, body=body,
                        headers=response_headers(headers, settings.upstream, forward.proxy_realm(request)))


async def _open_monolithic(request: web.Request) -> web.Response:
    """``POST ?digest=`` with a large body: open a session on the registry, send the body in parts, complete."""
    app, settings = request.app, request.app[SETTINGS]
    query = request.rel_url.query.copy()
    digest = query.pop("digest")
    url = URL(settings.upstream + request.rel_url.raw_path, encoded=True).with_query(query)
    headers = {"Content-Length": "0"}
    if request.headers.get("Authorization"):
        headers["Authorization"] = request.headers["Authorization"]
    try:
        async with app[CLIENT].post(url, headers=headers, data=b"", allow_redirects=False) as answer:
            body = await answer.read()
            forward.remember_realm(answer.headers, app[STATE])
            if answer.status != 202 or "Location" not in answer.headers:
                raise UpstreamError(answer.status, list(answer.headers.items()), body)
            session = app[UPLOADS].register(answer.headers["Location"], str(url))
    except aiohttp.ClientError as error:
        raise unreachable("the registry", error) from error
    if session is None:
        raise ProxyError(502, "UNKNOWN", "the registry opened an upload at an unexpected location")
    return await _finish(request, session, digest, body=True)


# ------------------------------------------------------------------- sessions
async def _serve_session(request: web.Request, session: Session) -> web.StreamResponse:
    if request.method == "PATCH":
        return await _patch(request, session)
    if request.method == "PUT":
        digest = request.rel_url.query.get("digest")
        if not digest:
            raise ProxyError(400, "DIGEST_INVALID", "PUT of an upload needs ?digest=")
        return await _finish(request, session, digest, body=request.body_exists)
    if request.method == "GET":
        return web.Response(status=204, headers=_session_headers(session))
    app = request.app
    app[UPLOADS].forget(session)
    return await forward.relay(request, app[CLIENT], _upstream_url(app, request), app[STATE], app[SETTINGS].upstream)


async def _patch(request: web.Request, session: Session) -> web.Response:
    """A chunk of the blob: into parts; ``202`` with ``Range`` once its full parts are in S3."""
    async with session.lock:
        _check_content_range(request, session)
        await _guarded(request, session, request.app[UPLOADS].receive(session, request.content, _authorization(request)))
        return web.Response(status=202, headers=_session_headers(session))


async def _finish(request: web.Request, session: Session, digest: str, body: bool) -> web.Response:
    """The last of the body (if any) and completion on the registry; the client's ``201``."""
    uploads = request.app[UPLOADS]
    authorization = _authorization(request)

    async def work():
        if body:
            await uploads.receive(session, request.content, authorization)
        return await uploads.finish(session, digest, authorization)

    async with session.lock:
        response = await _guarded(request, session, work())
        uploads.forget(session)
        return response


async def _guarded(request: web.Request, session: Session, work):
    """Await *work*; if it fails (the registry, S3, or the client hanging up), drop the session here and
    on the registry: none of the clients resumes an upload whose body was lost, they start a new one."""
    try:
        return await work
    except BaseException:
        uploads = request.app[UPLOADS]
        uploads.forget(session)
        cleanups = request.app[STATE]["cleanups"]
        task = asyncio.ensure_future(uploads.direct.cancel(session.upstream_url, _authorization(request)))
        cleanups.add(task)
        task.add_done_callback(cleanups.discard)
        raise


def _check_content_range(request: web.Request, session: Session) -> None:
    """A ``Content-Range: <start>-<end>`` must start where the upload is (OCI spec: else 416)."""
    value = request.headers.get("Content-Range")
    if not value:
        return
    start = value.strip().removeprefix("bytes ").removeprefix("bytes=").split("-", 1)[0]
    if not start.isascii() or not start.isdigit() or int(start) != session.offset:
        raise range_invalid(session.offset)


def _session_headers(session: Session) -> dict:
    return {"Location": session.path, "Range": session.range_header(),
            "Docker-Upload-UUID": session.path.rsplit("/", 1)[1], "Content-Length": "0"}


def _authorization(request: web.Request) -> str | None:
    return request.headers.get("Authorization")
