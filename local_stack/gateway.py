"""A local stand-in for API Gateway's HTTP API in front of the Lambda functions.

It routes with ``template.yaml``'s own route keys and API Gateway's precedence
(exact path, then path variables, then greedy ``{proxy+}``, then ``$default``;
a specific method before ``ANY``), turns each request into a payload-2.0 event
as AWS does (lower-case headers, repeated headers joined by commas, binary
bodies base64-encoded), calls the function's ``lambda_handler`` in-process and
writes back its result.

Limits, on by default so local behaviour matches AWS (``REGISTRY_LOCAL_LIMITS=off``
lifts them):

* request body over 10,485,760 bytes: 413 ``{"message":"Request Entity Too Large"}``
  (API Gateway's quota);
* event over 6,291,556 bytes (Lambda's synchronous payload limit, base64 body
  included): 413 ``{"message":"Request Entity Too Large"}``;
* a function running over 30 s: 503 ``{"message":"Service Unavailable"}``;
* a function that raises: 500 ``{"message":"Internal Server Error"}``;
* a ``Content-Length`` that is not ASCII digits (``-1``, ``abc``), two different
  ones, or a chunk size that is not hex: 400 ``{"message":"Bad Request"}`` and the
  connection is closed (the body's end cannot be known); a client that hangs
  up before its body ends gets nothing and no event is sent.
"""

from __future__ import annotations

import base64
import concurrent.futures
import importlib.util
import json
import re
import socket
import sys
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl

from local_stack import template

API_GATEWAY_BODY_LIMIT = 10 * 1024 * 1024
LAMBDA_EVENT_LIMIT = 6_291_556
INTEGRATION_TIMEOUT = 30.0

_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|x-www-form-urlencoded)\b)")


@dataclass
class Limits:
    body: int | None = API_GATEWAY_BODY_LIMIT
    event: int | None = LAMBDA_EVENT_LIMIT
    timeout: float | None = INTEGRATION_TIMEOUT

    @classmethod
    def off(cls) -> "Limits":
        return cls(None, None, None)


class _Route:
    """One route key, with what API Gateway's precedence needs to rank it."""

    def __init__(self, route: template.GatewayRoute):
        self.route = route
        self.segments = route.path.strip("/").split("/") if route.path else []
        self.greedy = bool(self.segments) and self.segments[-1].endswith("+}")
        self.variables = any(s.startswith("{") for s in self.segments)

    def match(self, method: str, segments: list[str]) -> bool:
        if self.route.method not in (method, "ANY"):
            return False
        fixed = self.segments[:-1] if self.greedy else self.segments
        if self.greedy:
            # {proxy+} takes one or more remaining characters (a trailing slash included).
            if len(segments) <= len(fixed) or not "/".join(segments[len(fixed) :]):
                return False
        elif len(segments) != len(fixed):
            return False
        for want, got in zip(fixed, segments):
            if want.startswith("{"):
                if not got:  # a path variable never matches an empty segment
                    return False
            elif want != got:
                return False
        return True

    def rank(self) -> tuple:
        literal = sum(1 for s in self.segments if not s.startswith("{"))
        return (self.greedy, self.variables, -literal, self.route.method == "ANY")


class Router:
    def __init__(self, routes: list[template.GatewayRoute]):
        self.default = next((r for r in routes if r.method == "$default"), None)
        self.routes = sorted((_Route(r) for r in routes if r.method != "$default"), key=lambda r: r.rank())

    def find(self, method: str, path: str) -> template.GatewayRoute | None:
        segments = path.strip("/").split("/") if path.strip("/") else []
        if path.endswith("/") and segments:
            segments.append("")
        for candidate in self.routes:
            if candidate.match(method, segments):
                return candidate.route
        return self.default


def load_handler(code_uri: str, root: Path = template.ROOT):
    """Import ``<code_uri>/app.py`` under its own module name and return ``lambda_handler``."""
    path = root / code_uri / "app.py"
    module_name = "fn_" + code_uri.strip("/").replace("/", "_")
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module.lambda_handler


class LambdaContext:
    """The attributes of Lambda's context object that our code and Powertools read."""

    def __init__(self, function_name: str, request_id: str, timeout: float = INTEGRATION_TIMEOUT):
        self._deadline = time.monotonic() + timeout
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def build_event(method, raw_path, raw_query, header_pairs, body: bytes, route_key, source_ip, host) -> dict:
    """A payload-2.0 event the way API Gateway builds one."""
    headers: dict[str, str] = {}
    for name, value in header_pairs:
        name = name.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    binary = not _TEXT_TYPES.match(headers.get("content-type", ""))
    now = time.time()
    request_id = base64.b32encode(uuid.uuid4().bytes)[:16].decode()
    event = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": binary and bool(body),
    }
    if query:
        event["queryStringParameters"] = query
    if body:
        event["body"] = base64.b64encode(body).decode() if binary else body.decode("utf-8", "replace")
    return event


class Gateway:
    """Routes from ``template.yaml`` to in-process handlers, enforcing the AWS limits."""

    def __init__(self, limits: Limits | None = None, template_routes=None):
        routes = template_routes or template.routes()
        # Lambda puts each layer's python/ on sys.path; our layer's ContentUri is that folder.
        for layer in template.layer_paths():
            if str(layer) not in sys.path:
                sys.path.insert(0, str(layer))
        self.router = Router(routes)
        self.limits = limits or Limits()
        self.handlers = {}
        for route in routes:
            if route.function not in self.handlers:
                self.handlers[route.function] = load_handler(route.code_uri)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=16, thread_name_prefix="lambda")

    def invoke(self, method, raw_path, raw_query, header_pairs, body, source_ip="127.0.0.1", host="localhost"):
        """Returns (status, [(header, value)], body bytes) as API Gateway would answer."""
        route = self.router.find(method, raw_path)
        if route is None:
            return _message(404, "Not Found")
        event = build_event(method, raw_path, raw_query, header_pairs, body, route.key, source_ip, host)
        if self.limits.event is not None and len(json.dumps(event)) > self.limits.event:
            return _message(413, "Request Entity Too Large")
        context = LambdaContext(route.function, event["requestContext"]["requestId"])
        future = self.pool.submit(self.handlers[route.function], event, context)
        try:
            result = future.result(timeout=self.limits.timeout)
        except concurrent.futures.TimeoutError:
            return _message(503, "Service Unavailable")
        except Exception:  # noqa: BLE001 - what API Gateway shows for a crashed function
            return _message(500, "Internal Server Error")
        status = int(result.get("statusCode", 200))
        headers = list((result.get("headers") or {}).items())
        payload = result.get("body") or ""
        data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
        headers.append(("apigw-requestid", event["requestContext"]["requestId"]))
        return status, headers, data


def _message(status: int, message: str):
    return status, [("Content-Type", "application/json")], json.dumps({"message": message}).encode()


class _TooLarge(Exception):
    pass


class _BadFraming(Exception):
    """A Content-Length or chunk size that is not a number: 400, as API Gateway answers, then close."""


class _ClientGone(Exception):
    """The connection ended before the body did: nobody is left to answer."""


# A Content-Length is 1*DIGIT (RFC 9110 §8.6) and a chunk size 1*HEXDIG (RFC 9112 §7.1);
# anything longer than these is far over the 10 MB body limit anyway.
_CONTENT_LENGTH = re.compile(rb"[0-9]{1,19}")
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")
_LINE_MAX = 4096  # a chunk-size line (with extensions) or trailer line


class GatewayRequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "local-api-gateway"
    gateway: Gateway  # set by serve()

    def log_message(self, format, *args):  # quiet: the functions log each request
        pass

    def handle(self):
        # dockerd tries TLS first on a plain-HTTP registry port. A ClientHello
        # (first byte 0x16) has no line ending for the HTTP parser to wait for,
        # so answer 400 at once and close; the client then retries over HTTP.
        try:
            first = self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return
        if first == b"\x16":
            message = b"This port speaks plain HTTP, not TLS.\n"
            self.wfile.write(
                b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + b"Content-Length: " + str(len(message)).encode() + b"\r\n\r\n" + message
            )
            return
        super().handle()

    def _line(self) -> bytes:
        line = self.rfile.readline(_LINE_MAX + 1)
        if not line:
            raise _ClientGone()
        if len(line) > _LINE_MAX or not line.endswith(b"\n"):
            raise _BadFraming()
        return line

    def _exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) < size:
            raise _ClientGone()
        return data

    def _read_body(self) -> bytes:
        """The request body, or _TooLarge / _BadFraming / _ClientGone."""
        limit = self.gateway.limits.body
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                size_field = self._line().split(b";")[0].strip()
                if not _CHUNK_SIZE.fullmatch(size_field):
                    raise _BadFraming()
                size = int(size_field, 16)
                if size == 0:
                    while self._line() not in (b"\r\n", b"\n"):
                        pass
                    break
                total += size
                if limit is not None and total > limit:
                    raise _TooLarge()
                chunks.append(self._exactly(size))
                if self._line() not in (b"\r\n", b"\n"):
                    raise _BadFraming()
            return b"".join(chunks)
        declared = self.headers.get_all("Content-Length") or []
        if not declared:
            return b""
        if len(set(declared)) > 1 or not _CONTENT_LENGTH.fullmatch(declared[0].strip().encode()):
            raise _BadFraming()
        length = int(declared[0])
        if limit is not None and length > limit:
            raise _TooLarge()
        return self._exactly(length) if length else b""

    def _serve(self):
        raw_path, _, raw_query = self.path.partition("?")
        try:
            body = self._read_body()
        except _TooLarge:
            self.close_connection = True  # the rest of the body is not read
            self._write(*_message(413, "Request Entity Too Large"))
            return
        except _BadFraming:
            self.close_connection = True  # where the next request would start is unknown
            self._write(*_message(400, "Bad Request"))
            return
        except _ClientGone:
            self.close_connection = True
            return
        # API Gateway joins repeated headers with commas; so does build_event.
        pairs = [(k, v) for k, v in self.headers.items() if k.lower() not in ("transfer-encoding", "connection")]
        if body and not any(k.lower() == "content-length" for k, _ in pairs):
            pairs.append(("content-length", str(len(body))))
        host = self.headers.get("Host", "localhost")
        self._write(*self.gateway.invoke(self.command, raw_path, raw_query, pairs, body, self.client_address[0], host))

    def _write(self, status, headers, data):
        self.send_response(status)
        names = set()
        for name, value in headers:
            if name.lower() in ("connection", "transfer-encoding", "date", "server"):
                continue
            if name.lower() == "content-length" and self.command != "HEAD":
                continue  # recomputed below from the body actually sent
            names.add(name.lower())
            self.send_header(name, value)
        if self.command != "HEAD" or "content-length" not in names:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD" and data:
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        # A client that hangs up mid-request (or speaks TLS to a plain port) is not our error.
        pass


def serve(gateway: Gateway, host: str = "127.0.0.1", port: int = 5000) -> GatewayServer:
    handler = type("BoundHandler", (GatewayRequestHandler,), {"gateway": gateway})
    return GatewayServer((host, port), handler)
