"""urllib with Docker token authentication, done the way registry clients do it.

A request that comes back ``401`` with a ``WWW-Authenticate: Bearer
realm=...,service=...,scope=...`` challenge is sent again with a token from
the realm (``GET realm?service=...&scope=...``, with Basic credentials when
*creds* are given, anonymous otherwise). Anything else, including a second
401, raises :class:`urllib.error.HTTPError` as ``urlopen`` does.

    with bearer.urlopen(f"http://{registry}/v2/team/app/tags/list", creds=("admin", pw)) as r:
        json.load(r)
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["basic", "fetch_token", "parse_challenge", "urlopen"]

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(header: str) -> tuple[str, dict]:
    """``'Bearer realm="x",service="y"'`` -> ``("bearer", {"realm": "x", "service": "y"})``."""
    scheme, _, rest = header.strip().partition(" ")
    return scheme.lower(), dict(_PARAM.findall(rest))


def basic(creds) -> str:
    """The ``Authorization`` value for (user, secret) or "user:secret"."""
    text = creds if isinstance(creds, str) else f"{creds[0]}:{creds[1]}"
    return "Basic " + base64.b64encode(text.encode()).decode()


def fetch_token(realm: str, service: str, scopes=(), creds=None, **params) -> dict:
    """The token service's JSON answer to ``GET realm?service=&scope=...``."""
    query = [("service", service), *(("scope", s) for s in scopes), *params.items()]
    request = urllib.request.Request(f"{realm}?{urllib.parse.urlencode(query)}")
    if creds is not None:
        request.add_header("Authorization", basic(creds))
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def urlopen(url: str, *, method: str = "GET", data: bytes | None = None, headers: dict | None = None, creds=None, token: str | None = None):
    """``urllib.request.urlopen`` that answers a Bearer challenge once (see module doc).

    *token* sends that bearer token straight away (and no retry happens)."""

    def request(bearer: str | None):
        req = urllib.request.Request(url, data=data, method=method, headers=dict(headers or {}))
        if bearer:
            req.add_header("Authorization", "Bearer " + bearer)
        return urllib.request.urlopen(req, timeout=60)

    if token is not None:
        return request(token)
    try:
        return request(None)
    except urllib.error.HTTPError as error:
        challenge = error.headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(challenge)
        if error.code != 401 or scheme != "bearer":
            raise
        error.close()
    scopes = params.get("scope", "").split()
    answer = fetch_token(params["realm"], params.get("service", ""), scopes, creds)
    return request(answer["token"])
