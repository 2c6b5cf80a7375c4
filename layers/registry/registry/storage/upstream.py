"""HTTP to upstream registries (pull-through cache): the only module that speaks to them.

A client of the distribution API as docker is one: it asks, and on ``401``
reads the ``WWW-Authenticate`` challenge (distribution ``spec/auth/token.md``):

* ``Bearer realm="…",service="…",scope="…"``: GET ``realm?service=…&scope=…``
  (anonymously, or with the upstream's Basic credentials) for a token,
  kept per container and scope until a little before its ``expires_in``
  (at least 60 s, the spec's minimum), and ask again with it;
* ``Basic realm="…"``: ask again with the upstream's credentials.

Timeouts are explicit (``CONNECT_SECONDS``, ``READ_SECONDS``); redirects are
never followed for manifests and followed for blobs only when asked (a blob
GET answered ``307`` to a CDN or presigned URL is handed to the client as it
is). Nothing here logs a header, a token or a credential: errors carry the
upstream's status and error code only.

Interface::

    parse_challenge(header) -> (scheme, {param: value})     (ValueError: not a challenge)
    Client(upstream_url, credentials).request(method, path, scope, headers, ...) -> Answer
    Unreachable: no answer at all (connection refused, timeout, TLS)
    credentials(secret_id) -> (user, password) | None       (Secrets Manager, cached per container)
"""

from __future__ import annotations

import json
import re
import threading
import time
from urllib.parse import urlencode, urljoin

import urllib3

from registry import aws

CONNECT_SECONDS = 3.0
READ_SECONDS = 20.0
# A token is used until this long before it expires (clock skew, the request's own duration).
TOKEN_MARGIN_SECONDS = 30
# The spec: a token without expires_in lasts 60 s.
TOKEN_DEFAULT_SECONDS = 60
# At most this many tokens (upstream, scope) kept per container.
TOKEN_CACHE_MAX = 256
# Error bodies and token documents read at most this much.
SMALL_BODY_MAX = 64 * 1024
CREDENTIALS_SECONDS = 300
REDIRECTS = 5

_pool = urllib3.PoolManager(num_pools=16, maxsize=8, retries=False, timeout=urllib3.Timeout(connect=CONNECT_SECONDS, read=READ_SECONDS))

# RFC 7235 section 2.1: auth-param = token BWS "=" BWS ( token / quoted-string ).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*(,|$)')


class Unreachable(Exception):
    """The upstream gave no answer (connection refused, DNS, TLS, timeout)."""


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """The first challenge of a ``WWW-Authenticate`` value: (scheme in lower case, {param: value}).

    Parameter names are case-insensitive (kept in lower case); quoted values are
    unescaped (``\\"`` -> ``"``). Raises ValueError when the header is no challenge.
    Source: RFC 7235 section 4.1; distribution ``spec/auth/token.md``.
    """
    text = header.strip()
    scheme, _, rest = text.partition(" ")
    if not re.fullmatch(_TOKEN, scheme or ""):
        raise ValueError("no authentication scheme")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        found = _PARAM.match(rest, position)
        if found is None:
            break  # a second challenge, or a token68: the first challenge's parameters end here
        name, quoted, plain, _ = found.groups()
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else plain
        params.setdefault(name.lower(), value)
        position = found.end()
    return scheme.lower(), params


class Answer:
    """An upstream response: status, headers (lower-case names), the body when read."""

    __slots__ = ("status", "headers", "body", "stream")

    def __init__(self, status: int, headers: dict[str, str], body: bytes = b"", stream: object = None):
        self.status, self.headers, self.body = status, headers, body
        self.stream = stream  # the open urllib3 response when the body was not read

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def error_code(self) -> str | None:
        """The first OCI error code of the body (``{"errors":[{"code":…}]}``), if any."""
        try:
            errors = json.loads(self.body or b"{}").get("errors") or []
            code = errors[0].get("code") if errors and isinstance(errors[0], dict) else None
        except (ValueError, AttributeError):
            return None
        return code if isinstance(code, str) and re.fullmatch(r"[A-Z_]{1,40}", code) else None

    def close(self):
        if self.stream is not None:
            _release(self.stream)
            self.stream = None


def _release(response):
    """Give the connection back to the pool, or drop it when its body was not read to the end
    (the next request on it would read the rest as its answer)."""
    if response.length_remaining != 0:
        response.close()
    response.release_conn()


class _Tokens:
    def __init__(self):
        self.lock = threading.Lock()
        self.entries: dict = {}  # (url, scope) -> (header value, expires at)

    def get(self, key):
        with self.lock:
            value = self.entries.get(key)
        return value[0] if value and value[1] > time.time() else None

    def put(self, key, value: str, lifetime: float):
        with self.lock:
            if len(self.entries) >= TOKEN_CACHE_MAX:
                self.entries.clear()
            self.entries[key] = (value, time.time() + lifetime)


_tokens = _Tokens()


def reset():
    """Forget cached tokens and credentials (tests)."""
    _tokens.entries.clear()
    _credentials.clear()


class Client:
    """Requests to one upstream registry (``url``: scheme://host[:port]) with its optional credentials."""

    def __init__(self, url: str, credentials: tuple[str, str] | None = None):
        self.url = url.rstrip("/")
        self.credentials = credentials

    def request(self, method: str, path: str, scope: str, headers: dict | None = None, *, read: bool = True, redirect: bool = False,
                read_seconds: float | None = None, limit: int | None = None) -> Answer:
        """``method`` ``path`` (``/v2/…``) with the authorization ``scope`` needs; one retry after a challenge.

        ``read``: read the whole body, or its first ``limit`` bytes (False: ``Answer.stream`` is open, the caller reads and closes it).
        ``redirect``: follow redirects (blob bytes); otherwise a 3xx is returned as it is.
        Raises Unreachable.
        """
        key = (self.url, scope)
        sent = dict(headers or {})
        authorization = _tokens.get(key)
        if authorization:
            sent["Authorization"] = authorization
        answer = self._send(method, path, sent, read, redirect, read_seconds, limit)
        if answer.status != 401:
            return answer
        challenge = answer.header("www-authenticate") or ""
        answer.close()
        authorization = self._authorize(challenge, scope)
        if authorization is None:
            return answer
        _tokens.put(key, *authorization)
        sent["Authorization"] = authorization[0]
        return self._send(method, path, sent, read, redirect, read_seconds, limit)

    def _send(self, method, path, headers, read, redirect, read_seconds, limit=None) -> Answer:
        """One request; with ``redirect``, up to REDIRECTS hops followed *without* the Authorization header:
        a redirect target (a CDN, a presigned S3 URL) is reached by its URL alone, and S3 refuses a
        presigned request that also carries an Authorization header."""
        url = self.url + path
        for _ in range(REDIRECTS + 1):
            answer = self._once(method, url, headers, read, read_seconds, limit)
            location = answer.header("location")
            if not (redirect and answer.status in (301, 302, 303, 307, 308) and location):
                return answer
            answer.close()
            url = urljoin(url, location)
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
        return answer

    def _once(self, method, url, headers, read, read_seconds, limit=None) -> Answer:
        timeout = urllib3.Timeout(connect=CONNECT_SECONDS, read=read_seconds or READ_SECONDS)
        try:
            response = _pool.request(method, url, headers=headers, preload_content=False, redirect=False, timeout=timeout, retries=False)
        except urllib3.exceptions.HTTPError as exc:
            raise Unreachable(type(exc).__name__) from None
        headers = {k.lower(): v for k, v in response.headers.items()}
        if read or response.status >= 300 or method == "HEAD":
            try:
                body = response.read(limit, decode_content=True) if read and response.status < 300 else response.read(SMALL_BODY_MAX + 1, decode_content=True)
            except urllib3.exceptions.HTTPError as exc:
                raise Unreachable(type(exc).__name__) from None
            finally:
                _release(response)
            return Answer(response.status, headers, body)
        return Answer(response.status, headers, stream=response)

    def _authorize(self, challenge: str, scope: str) -> tuple[str, float] | None:
        """(Authorization value, seconds it may be used) for a challenge, or None when it cannot be met."""
        try:
            scheme, params = parse_challenge(challenge)
        except ValueError:
            return None
        if scheme == "basic":
            if self.credentials is None:
                return None
            return _basic(*self.credentials), CREDENTIALS_SECONDS
        if scheme != "bearer" or not params.get("realm", "").startswith(("http://", "https://")):
            return None
        query = {"service": params.get("service", "")} if params.get("service") else {}
        query["scope"] = scope
        headers = {"Authorization": _basic(*self.credentials)} if self.credentials else {}
        try:
            response = _pool.request("GET", params["realm"] + ("&" if "?" in params["realm"] else "?") + urlencode(query), headers=headers,
                                     preload_content=False, redirect=False)
            body = response.read(SMALL_BODY_MAX + 1)
            response.release_conn()
        except urllib3.exceptions.HTTPError as exc:
            raise Unreachable(type(exc).__name__) from None
        if response.status != 200 or len(body) > SMALL_BODY_MAX:
            return None
        try:
            document = json.loads(body)
            token = document.get("token") or document.get("access_token")
            lifetime = float(document.get("expires_in") or TOKEN_DEFAULT_SECONDS)
        except (ValueError, AttributeError, TypeError):
            return None
        if not isinstance(token, str) or not token:
            return None
        return f"Bearer {token}", max(1.0, min(lifetime, 86400) - TOKEN_MARGIN_SECONDS)


def absolute(base: str, location: str) -> str:
    """A ``Location`` header made absolute against the upstream's URL."""
    return urljoin(base + "/", location)


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


_credentials: dict[str, tuple[tuple[str, str] | None, float]] = {}


def credentials(secret_id: str) -> tuple[str, str] | None:
    """The upstream's (username, password) from Secrets Manager (``{"username","password"}``), cached per container.

    None when the secret does not exist. One GetSecretValue per container per CREDENTIALS_SECONDS.
    """
    cached = _credentials.get(secret_id)
    if cached and cached[1] > time.time():
        return cached[0]
    client = aws.secretsmanager()
    try:
        document = json.loads(client.get_secret_value(SecretId=secret_id)["SecretString"])
        value = (str(document["username"]), str(document["password"]))
    except client.exceptions.ResourceNotFoundException:
        value = None
    _credentials[secret_id] = (value, time.time() + CREDENTIALS_SECONDS)
    return value


def store_credentials(secret_id: str, user: str, password: str):
    """Create or replace the upstream's credentials secret (registry-admin)."""
    client = aws.secretsmanager()
    value = json.dumps({"username": user, "password": password})
    try:
        client.put_secret_value(SecretId=secret_id, SecretString=value)
    except client.exceptions.ResourceNotFoundException:
        client.create_secret(Name=secret_id, Description="pull-through cache upstream credentials (registry-admin upstream set)",
                             SecretString=value)


def delete_credentials(secret_id: str):
    client = aws.secretsmanager()
    try:
        client.delete_secret(SecretId=secret_id, ForceDeleteWithoutRecovery=True)
    except client.exceptions.ResourceNotFoundException:
        pass
