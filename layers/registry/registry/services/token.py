"""The token service (Docker token authentication): ``GET /token`` and ``POST /token``.

GET takes optional Basic credentials (a password or a personal access token),
``scope`` (repeatable), ``offline_token=true`` for a refresh token. POST is the
OAuth2 form: ``grant_type=password`` (username, password) or
``grant_type=refresh_token``, with space-separated ``scope`` and
``access_type=offline``. Asking for more than the caller may do is not an
error: the token carries the permitted subset (possibly nothing). A request
naming more than ``scopes.MAX_SCOPES`` distinct resources, or whose token would
exceed ``tokens.MAX_TOKEN_BYTES``, gets ``400 REQUEST_INVALID`` in the
``{"errors": [...]}`` form distribution's token server uses.
"""

from __future__ import annotations

import base64
import binascii
import time
from urllib.parse import parse_qs

from registry import accounts
from registry.auth import guard, scopes, tokens
from registry.errors import OciError, RegistryError
from registry.http import Request, Response
from registry.storage import principals


def _signed_in(user: str, secret: str, source: str) -> accounts.Principal:
    try:
        return accounts.sign_in(user, secret, source)
    except accounts.Throttled as exc:
        raise RegistryError(OciError.TOOMANYREQUESTS, "too many failed sign-ins: try again later", headers={"Retry-After": str(exc.retry_after)}) from None
    except accounts.SignInFailed:
        raise RegistryError(OciError.UNAUTHORIZED, "incorrect username or password") from None


def _basic(request: Request) -> tuple[str, str] | None:
    scheme, _, value = (request.header("authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise RegistryError(OciError.UNAUTHORIZED, "malformed Basic credentials") from None
    if not sep:
        raise RegistryError(OciError.UNAUTHORIZED, "malformed Basic credentials")
    return user, secret


def _requested(values: list[str]) -> list[scopes.Scope]:
    """The scopes asked for, or 400 REQUEST_INVALID past scopes.MAX_SCOPES distinct resources."""
    try:
        return scopes.parse_all(values)
    except scopes.TooManyScopes as exc:
        raise RegistryError(OciError.REQUEST_INVALID, str(exc), detail={"maxScopes": scopes.MAX_SCOPES}) from None


def _grant(principal: accounts.Principal, requested: list[scopes.Scope]) -> list[dict]:
    """The permitted subset of each requested scope (scopes with nothing permitted are left out).

    Every repository's access (visibility, grants) is read in one BatchGetItem:
    requested holds at most scopes.MAX_SCOPES resources.
    """
    names = [scope.name for scope in requested if scope.type == "repository"]
    found = dict(zip(names, principals.repositories(names)))
    access = []
    for scope in requested:
        if scope.type == "registry":
            # Anyone may list; the catalog shows each caller only what they may pull.
            granted = [a for a in scope.actions if a in ("*", "search")]
        else:
            allowed = accounts.allowed_actions(principal, scope.name, found[scope.name])
            if "pull" not in allowed or set(scope.actions) - {"pull"}:
                # Under a pull-through cache prefix: pull only, even before the repository exists here.
                # Imported here: a pull the caller may make never needs it (INIT time, issue 15: cold starts).
                from registry.services import pullthrough

                allowed = pullthrough.cache_actions(principal.anonymous, principal.token_actions, scope.name, allowed)
            granted = sorted(allowed) if "*" in scope.actions else [a for a in scope.actions if a in allowed]
        if granted:
            access.append({"type": scope.type, "name": scope.name, "actions": granted})
    return access


def _issue(request: Request, principal: accounts.Principal, requested: list[scopes.Scope]) -> dict:
    access = _grant(principal, requested)
    try:
        token, issued, lifetime = tokens.issue(principal.user, guard.service_of(request), access, principal.pull_limit)
    except tokens.TokenTooLarge as exc:
        raise RegistryError(OciError.REQUEST_INVALID, str(exc), detail={"maxTokenBytes": tokens.MAX_TOKEN_BYTES}) from None
    return {
        "token": token,
        "access_token": token,
        "expires_in": lifetime,
        "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(issued)),
        "scope": " ".join(str(scopes.Scope(a["type"], a["name"], tuple(a["actions"]))) for a in access),
    }


def get_token(request: Request) -> Response:
    credentials = _basic(request)
    principal = accounts.ANONYMOUS
    if credentials is not None:
        principal = _signed_in(*credentials, request.source_ip)
    document = _issue(request, principal, _requested(request.query.get("scope", [])))
    if request.arg("offline_token") == "true" and not principal.anonymous:
        document["refresh_token"] = accounts.issue_refresh_token(principal)
    return Response.json(200, document, {"Cache-Control": "no-store"})


def post_token(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    grant_type = form.get("grant_type")
    if grant_type == "password":
        principal = _signed_in(form.get("username", ""), form.get("password", ""), request.source_ip)
    elif grant_type == "refresh_token":
        try:
            principal = accounts.redeem_refresh_token(form.get("refresh_token", ""), request.source_ip)
        except accounts.Throttled as exc:
            raise RegistryError(OciError.TOOMANYREQUESTS, headers={"Retry-After": str(exc.retry_after)}) from None
        except accounts.SignInFailed:
            raise RegistryError(OciError.UNAUTHORIZED, "invalid or expired refresh token") from None
    else:
        raise RegistryError(OciError.UNSUPPORTED, "grant_type must be password or refresh_token")
    document = _issue(request, principal, _requested([form.get("scope", "")]))
    document.pop("token")
    if grant_type == "password" and form.get("access_type") == "offline":
        document["refresh_token"] = accounts.issue_refresh_token(principal)
    return Response.json(200, document, {"Cache-Control": "no-store"})


def jwks(request: Request) -> Response:
    return Response.json(200, tokens.jwks(), {"Cache-Control": "max-age=300"})
