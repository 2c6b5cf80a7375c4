"""Which headers cross the proxy, and the two it rewrites: ``Location`` and ``WWW-Authenticate``.

Hop-by-hop headers (RFC 9110 §7.6.1: ``Connection`` and the headers it names, ``Keep-Alive``,
``Proxy-*``, ``TE``, ``Trailer``, ``Transfer-Encoding``, ``Upgrade``) belong to one connection and are
dropped; ``Host`` is set for the registry by the HTTP client, and body framing (``Content-Length``,
chunked) is redone for each side. Everything else, including ``Authorization`` and repeated
``Accept`` lines, passes as it is.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from multidict import CIMultiDict

HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
    "te", "trailer", "transfer-encoding", "upgrade",
})
# Set again for the other side by the HTTP library (Host from the URL, framing from the body).
_REFRAMED = frozenset({"host", "content-length"})
# Response headers aiohttp's server writes itself.
_SERVER_OWNED = frozenset({"date", "server", "content-length"})

_REALM = re.compile(r'(realm=)"([^"]*)"', re.IGNORECASE)


def _named_by_connection(headers) -> set[str]:
    """Header names listed in ``Connection`` (hop-by-hop by RFC 9110 §7.6.1)."""
    return {name.strip().lower() for value in headers.getall("Connection", []) for name in value.split(",") if name.strip()}


def request_headers(headers) -> CIMultiDict:
    """The client's request headers as they go to the registry: hop-by-hop, Host and framing removed."""
    drop = HOP_BY_HOP | _REFRAMED | _named_by_connection(headers)
    return CIMultiDict((name, value) for name, value in headers.items() if name.lower() not in drop)


def response_headers(headers, upstream: str, proxy_realm: str) -> CIMultiDict:
    """The registry's response headers as they go to the client, with ``Location`` and the Bearer
    challenge's realm pointing at the proxy (``proxy_realm``, e.g. ``http://127.0.0.1:5500/token``)."""
    drop = HOP_BY_HOP | _SERVER_OWNED | _named_by_connection(headers)
    out = CIMultiDict()
    for name, value in headers.items():
        lower = name.lower()
        if lower in drop:
            continue
        if lower == "location":
            value = rewrite_location(value, upstream)
        elif lower == "www-authenticate":
            value = rewrite_realm(value, proxy_realm)
        out.add(name, value)
    return out


def rewrite_location(location: str, upstream: str) -> str:
    """A ``Location`` on the registry's own origin made relative, so the client comes back to the proxy.

    ``https://registry.example.com/v2/a/blobs/uploads/u?x=1`` -> ``/v2/a/blobs/uploads/u?x=1``. Relative
    locations stay (the client resolves them against the proxy), and so do other hosts: a blob GET's
    ``307`` to a presigned S3 URL is followed by the client straight to S3.
    """
    target, origin = urlsplit(location), urlsplit(upstream)
    if not target.scheme or (target.scheme, target.netloc.lower()) != (origin.scheme, origin.netloc.lower()):
        return location
    return target.path + (f"?{target.query}" if target.query else "")


def realm_of(challenge: str) -> str | None:
    """The ``realm`` of a ``Bearer`` challenge, or None (another scheme, or no realm)."""
    if not challenge.strip().lower().startswith("bearer"):
        return None
    match = _REALM.search(challenge)
    return match.group(2) if match else None


def rewrite_realm(challenge: str, proxy_realm: str) -> str:
    """A ``Bearer`` challenge with its realm replaced by *proxy_realm*; ``service`` and ``scope`` stay
    as the registry gave them (the token's audience is the registry). Other schemes are unchanged."""
    if realm_of(challenge) is None:
        return challenge
    return _REALM.sub(lambda m: f'{m.group(1)}"{proxy_realm}"', challenge, count=1)
