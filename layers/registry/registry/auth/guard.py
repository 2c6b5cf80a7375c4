"""The check every registry function runs before a handler: a valid token whose
``access`` claim covers what the route needs, or a 401 with the challenge that
tells the client where to get one.

* no bearer token: ``401 UNAUTHORIZED`` with ``WWW-Authenticate: Bearer
  realm,service,scope``;
* a token that does not verify: the same with ``error="invalid_token"``;
* a valid token without the action: ``error="insufficient_scope"``, code
  ``UNAUTHORIZED`` for an anonymous token (sign in) and ``DENIED`` for a
  signed-in one (docker prints "denied: requested access to the resource is
  denied").

The realm and service derive from the request's host (so the execute-api
domain and a custom domain both work) unless TOKEN_REALM / TOKEN_SERVICE set
them.
"""

from __future__ import annotations

from typing import NamedTuple

from registry.auth.scopes import Scope
from registry.config import settings
from registry.errors import OciError, RegistryError

# distribution's method -> action mapping: writes need pull as well as push.
_ACTIONS = {"GET": ("pull",), "HEAD": ("pull",), "POST": ("pull", "push"), "PUT": ("pull", "push"), "PATCH": ("pull", "push"), "DELETE": ("delete",)}
CATALOG_SCOPE = Scope("registry", "catalog", ("*",))
# The management API's routes, by the repository action each needs.
_ROUTE_ACTIONS = {"repo": ("pull",), "repo.star": ("pull",), "repo.official": ("pull",), "repo.description": ("pull", "push"), "repo.immutable": ("pull", "push")}


class Caller(NamedTuple):
    """Who made the request, and what their token lets them do."""

    user: str  # "" for an anonymous token
    access: tuple = ()
    unrestricted: bool = False  # authentication switched off
    rate_limit: str | None = None  # the account's pull-limit override (claim "rl")

    @property
    def anonymous(self) -> bool:
        return not self.user

    def may(self, kind: str, name: str, action: str) -> bool:
        if self.unrestricted:
            return True
        for entry in self.access:
            if entry.get("type") == kind and entry.get("name") == name:
                actions = entry.get("actions") or []
                if action in actions or "*" in actions:
                    return True
        return False

    def readable_repositories(self) -> list[str]:
        return [e["name"] for e in self.access if e.get("type") == "repository" and ({"pull", "*"} & set(e.get("actions") or []))]


UNRESTRICTED = Caller("", (), True)


def needed(route_name: str, method: str, params: dict) -> list[Scope]:
    """The scopes a request needs; an empty list means any valid token will do."""
    if route_name == "base":
        return []
    if route_name == "catalog":
        return [CATALOG_SCOPE]
    if route_name.startswith("namespace."):
        return []  # any valid token: the handler checks the caller owns the namespace or is an admin
    actions = _ROUTE_ACTIONS.get(route_name) or _ACTIONS[method]
    return [Scope("repository", params["name"], actions)]


def service_of(request) -> str:
    return settings().token_service or request.header("host") or "registry"


def realm_of(request) -> str:
    if settings().token_realm:
        return settings().token_realm
    scheme = (request.header("x-forwarded-proto") or "http").split(",")[0].strip()
    return f"{scheme}://{request.header('host') or 'localhost'}/token"


def challenge(request, scopes: list[Scope], error: str | None = None) -> str:
    parts = [f'realm="{realm_of(request)}"', f'service="{service_of(request)}"']
    if scopes:
        parts.append(f'scope="{" ".join(str(scope) for scope in scopes)}"')
    if error:
        parts.append(f'error="{error}"')
    return "Bearer " + ",".join(parts)


def _verified_claims(request, token: str) -> dict | None:
    """The claims of a bearer token issued for this request's service; None when it does not verify."""
    from registry.auth import tokens  # with PyJWT, by the first bearer token (INIT time, issue 15: cold starts)

    try:
        return tokens.verify(token.strip(), service_of(request))
    except tokens.InvalidToken:
        return None


def identify(request) -> Caller | None:
    """Who a request's bearer token names, without requiring one: anonymous when there is no
    bearer token (or authentication is off), None when the token does not verify."""
    scheme, _, token = (request.header("authorization") or "").partition(" ")
    if not settings().auth_enabled or scheme.lower() != "bearer" or not token.strip():
        return Caller("")
    claims = _verified_claims(request, token)
    if claims is None:
        return None
    return Caller(claims.get("sub") or "", rate_limit=claims.get("rl"))


def authorize(request, route_name: str, params: dict) -> Caller:
    """The caller, if their token covers the route; otherwise raise the 401 with its challenge."""
    if request.method not in ("GET", "HEAD") and params.get("name"):
        from registry.services import pullthrough

        pullthrough.refuse_writes(route_name, request.method, params["name"])  # 403 DENIED under a cache prefix
    if not settings().auth_enabled:
        return UNRESTRICTED
    scopes = needed(route_name, request.method, params)
    header = request.header("authorization") or ""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise RegistryError(OciError.UNAUTHORIZED, headers={"WWW-Authenticate": challenge(request, scopes)})
    claims = _verified_claims(request, token)
    if claims is None:
        raise RegistryError(
            OciError.UNAUTHORIZED, "invalid or expired token", headers={"WWW-Authenticate": challenge(request, scopes, "invalid_token")}
        )
    caller = Caller(claims.get("sub") or "", tuple(e for e in claims["access"] if isinstance(e, dict)), rate_limit=claims.get("rl"))
    for scope in scopes:
        if not all(caller.may(scope.type, scope.name, action) for action in scope.actions):
            error = OciError.UNAUTHORIZED if caller.anonymous else OciError.INSUFFICIENT_SCOPE
            raise RegistryError(error, headers={"WWW-Authenticate": challenge(request, scopes, "insufficient_scope")})
    return caller
