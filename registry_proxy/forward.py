"""Pass a request to the registry as it is and its answer back as it is, both bodies streamed.

Method, path, query, headers (``Authorization`` included) and body go unchanged, apart from the
hop-by-hop headers (see ``headers``). Redirects are not followed: a blob GET's ``307`` to a presigned
S3 URL reaches the client, which fetches the bytes from S3 itself. Responses are not decompressed.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from yarl import URL

from registry_proxy import errors
from registry_proxy.headers import realm_of, request_headers, response_headers

STREAM_CHUNK = 1 << 16


def upstream_url(base: str, request: web.Request) -> URL:
    """The registry URL for *request*: its raw path and query, unchanged, on *base*."""
    return URL(base + request.raw_path, encoded=True)


def proxy_realm(request: web.Request) -> str:
    """The proxy's own token endpoint as the client addresses the proxy."""
    return f"{request.scheme}://{request.host}/token"


def body_of(request: web.Request):
    """The client's body as a stream for the HTTP client, or None when the request has none."""
    return request.content if request.body_exists else None


def outgoing_headers(request: web.Request):
    """Headers to send on: the client's, minus hop-by-hop; its ``Content-Length`` kept so a body with a
    known length is not turned into a chunked one (API Gateway and S3 both like a length)."""
    headers = request_headers(request.headers)
    if request.body_exists and request.content_length is not None:
        headers["Content-Length"] = str(request.content_length)
    return headers


async def relay(request: web.Request, client: aiohttp.ClientSession, url: URL, state: dict,
                upstream: str) -> web.StreamResponse:
    """Send *request* to *url* and stream the registry's answer back (see module doc).

    *state* is the app's mutable state: a Bearer realm the registry announces is remembered in
    ``state["realm"]`` so the proxy's ``/token`` goes to it.
    """
    try:
        async with client.request(request.method, url, headers=outgoing_headers(request), data=body_of(request),
                                  allow_redirects=False,
                                  skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type")) as answer:
            remember_realm(answer.headers, state)
            response = web.StreamResponse(status=answer.status, reason=answer.reason,
                                          headers=response_headers(answer.headers, upstream, proxy_realm(request)))
            if "Content-Length" in answer.headers:
                response.content_length = int(answer.headers["Content-Length"])
            await response.prepare(request)
            if request.method != "HEAD":
                async for chunk in answer.content.iter_chunked(STREAM_CHUNK):
                    await response.write(chunk)
            await response.write_eof()
            return response
    except aiohttp.ClientError as error:
        return errors.unreachable("the registry", error).response()


async def exchange(request: web.Request, client: aiohttp.ClientSession, url: URL, state: dict):
    """Send *request* to *url*; the registry's answer as (status, headers, body), read whole.

    For requests whose answers are small (opening an upload): the caller decides what to answer.
    """
    try:
        async with client.request(request.method, url, headers=outgoing_headers(request), data=body_of(request),
                                  allow_redirects=False,
                                  skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type")) as answer:
            remember_realm(answer.headers, state)
            return answer.status, answer.headers.copy(), await answer.read()
    except aiohttp.ClientError as error:
        raise errors.unreachable("the registry", error) from error


def remember_realm(headers, state: dict) -> None:
    """Keep the registry's Bearer realm (its token service) for the proxy's ``/token``."""
    for challenge in headers.getall("WWW-Authenticate", []):
        realm = realm_of(challenge)
        if realm:
            state["realm"] = realm
