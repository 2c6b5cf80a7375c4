"""API Gateway HTTP API (payload 2.0) events in, responses out, errors rendered.

``make_handler(function, handlers)`` builds a function's ``lambda_handler``:
it turns the event into a ``Request``, finds the route in ``registry.routes``,
calls ``handlers[route.name][method](request, **params)`` and renders the
``Response`` it returns or the ``RegistryError`` it raises. An unexpected
exception is logged with the request id and answered as ``UNKNOWN``. Each
invocation logs one ``response`` line (request id, function, method, path,
repository, status: never a header or body) and flushes its metrics
(``registry.metrics``: 4xx, 5xx and 429 counted here, pulls, pushes and bytes
by the services).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlencode

from registry import metrics, routes
from registry.auth import guard
from registry.errors import OciError, RegistryError
from registry.log import logger

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}


class Request:
    """An HTTP request as the function sees it.

    A plain class, not a dataclass: making a dataclass costs about 1 ms of a
    cold start (the methods it generates are compiled when the module loads).
    """

    __slots__ = ("method", "path", "query", "headers", "body", "source_ip", "request_id", "caller", "repository")

    def __init__(self, method: str, path: str, query: dict[str, list[str]] | None = None, headers: dict[str, str] | None = None,
                 body: bytes = b"", source_ip: str = "", request_id: str = "", caller: object = None, repository: str | None = None):
        self.method, self.path = method, path
        self.query = {} if query is None else query
        self.headers = {} if headers is None else headers  # lower-case names
        self.body, self.source_ip, self.request_id = body, source_ip, request_id
        self.caller = caller  # registry.auth.guard.Caller, set by dispatch
        self.repository = repository  # the route's repository name, set by dispatch (for logs)

    def __repr__(self) -> str:
        return f"Request({self.method} {self.path}, request_id={self.request_id!r})"

    @classmethod
    def from_event(cls, event: dict) -> "Request":
        http = event.get("requestContext", {}).get("http", {})
        body = event.get("body") or ""
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
        return cls(
            method=http.get("method", "GET").upper(),
            path=event.get("rawPath", "/"),
            query=parse_qs(event.get("rawQueryString", ""), keep_blank_values=True),
            headers={k.lower(): v for k, v in (event.get("headers") or {}).items()},
            body=raw,
            source_ip=http.get("sourceIp", ""),
            request_id=event.get("requestContext", {}).get("requestId", ""),
        )

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default


class Response:
    """An HTTP response: status, headers, body (a plain class, as ``Request``)."""

    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, headers: dict[str, str] | None = None, body: bytes = b""):
        self.status, self.body = status, body
        self.headers = {} if headers is None else headers

    def __repr__(self) -> str:
        return f"Response({self.status}, {self.headers!r}, {len(self.body)} bytes)"

    @classmethod
    def json(cls, status: int, document, headers: dict | None = None) -> "Response":
        body = json.dumps(document, separators=(",", ":")).encode()
        return cls(status, {"Content-Type": "application/json", **(headers or {})}, body)

    def to_result(self, head: bool = False) -> dict:
        """The payload-2.0 result. HEAD keeps the headers (Content-Length included) but no body."""
        headers = {**API_VERSION_HEADER, **self.headers}
        headers.setdefault("Content-Length", str(len(self.body)))
        body = b"" if head else self.body
        return {
            "statusCode": self.status,
            "headers": headers,
            "body": base64.b64encode(body).decode(),
            "isBase64Encoded": True,
        }


def error_response(exc: RegistryError) -> Response:
    return Response(exc.status, {"Content-Type": "application/json", **exc.headers}, exc.body())


def link_header(path: str, params: dict) -> str:
    """An RFC 5988 ``Link`` to the next page, as the distribution spec shows it."""
    return f'<{path}?{urlencode(params)}>; rel="next"'


def dispatch(function: str, handlers: dict, request: Request) -> Response:
    route, params = routes.match(request.path, routes.routes_for(function), request.method)
    if route is None:
        return _unrouted(request)
    if request.method not in route.methods:
        raise RegistryError(OciError.UNSUPPORTED, f"{request.method} is not supported on {route.path}")
    name = params.get("name")
    if name is not None and name.count("/") >= routes.MAX_NAME_COMPONENTS:
        raise _too_deep(name)
    request.repository = name
    if route.authenticated:
        request.caller = guard.authorize(request, route.name, params)
    return handlers[route.name][request.method](request, **params)


def _too_deep(name: str) -> RegistryError:
    return RegistryError(
        OciError.NAME_INVALID,
        f"repository names may have at most {routes.MAX_NAME_COMPONENTS} path components",
        detail={"name": name[:300]},
    )


def _unrouted(request: Request) -> Response:
    """What reaches no route of this function: a name too deep, a wrong method, or no endpoint.

    No endpoint (404 NOT_FOUND) under ``/v2/`` carries the caller's rate-limit
    headers, read without counting (registry.ratelimit.preview_headers).
    """
    route, params = routes.match(request.path, method=request.method)
    if route is not None:
        name = params.get("name")
        if name is not None and name.count("/") >= routes.MAX_NAME_COMPONENTS:
            raise _too_deep(name)
        if request.method not in route.methods:
            raise RegistryError(OciError.UNSUPPORTED, f"{request.method} is not supported on {route.path}")
    for candidate in routes.ROUTES:
        found = candidate.shape.match(request.path)
        if found and "name" in found.groupdict():
            raise RegistryError(OciError.NAME_INVALID, f"invalid repository name: {found['name'][:300]!r}")
    # As on Docker Hub, the caller's pull budget (read, not counted) on any /v2/ path. Imported
    # here: only the manifest function counts pulls, and the accounts module it brings costs the
    # other functions' cold start about 9 ms (docs/performance.md, section 3).
    from registry import ratelimit

    headers = ratelimit.preview_headers(request) if request.path.startswith("/v2/") else {}
    raise RegistryError(OciError.NOT_FOUND, f"no endpoint at {request.path[:300]}", headers=headers)


def make_handler(function: str, handlers: dict):
    """Build ``lambda_handler(event, context)`` for one function's routes.

    PyJWT (and the ``cryptography`` modules it loads) is not imported here but
    by the first request that carries a bearer token
    (``registry.auth.tokens.verify``), so a 401 challenge or any other request
    without one never loads it. docs/performance.md (section 3) reports INIT and
    INIT plus that first token side by side.
    """

    def lambda_handler(event, context):
        request = Request.from_event(event)
        # Passed on each call (not append_keys): the local stack runs requests in threads.
        fields = {"request_id": request.request_id, "function": function, "method": request.method, "path": request.path}
        recording = metrics.begin(function, request.request_id)
        try:
            try:
                response = dispatch(function, handlers, request)
            except RegistryError as exc:
                if exc.status >= 500:
                    logger.error("registry error", extra={**fields, "repository": request.repository, "code": exc.error.code})
                response = error_response(exc)
            except Exception:  # noqa: BLE001 - the one catch-all: never leak internals
                logger.exception("unhandled error", extra={**fields, "repository": request.repository})
                response = error_response(RegistryError(OciError.UNKNOWN, "internal error", detail={"requestId": request.request_id}))
            metrics.count_status(response.status)
            logger.info("response", extra={**fields, "repository": request.repository, "status": response.status})
            return response.to_result(head=request.method == "HEAD")
        finally:
            metrics.end(recording)

    return lambda_handler
