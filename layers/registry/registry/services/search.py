"""``docker search``: ``GET /v1/_ping`` and ``GET /v1/search?q=&n=&page=``.

Results are the repositories the caller may pull whose name contains the term
(case-insensitive) or whose description has it as a whole word, ranked: exact
name match first (the whole name or its last component), then official, then
stars, then name. Callers are anonymous, or signed in with Basic credentials
(what ``docker search`` sends when logged in) or a bearer token (after a
``registry:catalog:search`` token request).
"""

from __future__ import annotations

import base64
import binascii
import math

from registry import accounts, inputs, keys
from registry.auth import guard, tokens
from registry.config import settings
from registry.errors import OciError, RegistryError
from registry.http import Request, Response
from registry.storage import dynamo, principals, search_index

PAGE_DEFAULT = 25
PAGE_MAX = 100
# Bounds on the work one search does for its term (README, "Limits and costs"):
# a name is at most 255 characters, so no longer term can be in one;
TERM_MAX = 255
# each distinct word of the term reads its description-index partition;
WORDS_MAX = 10
# a longer term reads the partitions of at most this many of its 3-grams
# (spread over the term): the intersection only narrows candidates, and each
# candidate name is checked against the whole term anyway.
GRAMS_MAX = 4
# Each partition is read up to this many names (one Query), and at most this many
# matches are looked up (10 BatchGetItem calls): a term as common as one letter is
# answered from the first 1,000 candidates in name order, so a search's cost does
# not grow with the registry. Refine the term to see past them.
MATCHES_MAX = 1000

def ping(request: Request) -> Response:
    return Response.json(200, {"standalone": True}, {"X-Docker-Registry-Standalone": "true"})


def _principal(request: Request) -> accounts.Principal:
    scheme, _, value = (request.header("authorization") or "").partition(" ")
    if scheme.lower() == "basic":
        try:
            user, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
            return accounts.sign_in(user, secret, request.source_ip)
        except (binascii.Error, UnicodeDecodeError, accounts.SignInFailed):
            raise RegistryError(OciError.UNAUTHORIZED, "incorrect username or password") from None
        except accounts.Throttled as exc:
            raise RegistryError(OciError.TOOMANYREQUESTS, headers={"Retry-After": str(exc.retry_after)}) from None
    if scheme.lower() == "bearer":
        try:
            claims = tokens.verify(value.strip(), guard.service_of(request))
        except tokens.InvalidToken:
            raise RegistryError(OciError.UNAUTHORIZED, "invalid or expired token") from None
        user = claims.get("sub") or ""
        record = principals.get_user(user) if user else None
        return accounts.Principal(user, bool(record and record.get("admin")))
    return accounts.ANONYMOUS


def _positive(request: Request, name: str, default: int, maximum: int) -> int:
    value = request.arg(name)
    if value in (None, ""):
        return default
    try:
        number = inputs.natural(value)
    except inputs.NumberInvalid:
        number = 0
    if number < 1:
        raise RegistryError(OciError.PAGINATION_NUMBER_INVALID, f"{name} must be a positive integer")
    return min(number, maximum)


def _checked_term(term: str) -> str:
    """The term, or 400 REQUEST_INVALID when it is over TERM_MAX characters or WORDS_MAX distinct words."""
    if len(term) > TERM_MAX:
        raise RegistryError(OciError.REQUEST_INVALID, f"q is limited to {TERM_MAX} characters", detail={"maxLength": TERM_MAX})
    if len(search_index.words(term)) > WORDS_MAX:
        raise RegistryError(OciError.REQUEST_INVALID, f"q is limited to {WORDS_MAX} distinct words", detail={"maxWords": WORDS_MAX})
    return term


def _spread(grams: list[str], count: int) -> list[str]:
    """At most ``count`` of ``grams`` (in term order), evenly spread, first and last included."""
    if len(grams) <= count:
        return grams
    return [grams[round(i * (len(grams) - 1) / (count - 1))] for i in range(count)]


def matching_names(term: str) -> set[str]:
    """Names containing ``term`` or whose description has it as a word; reads only the term's partitions.

    At most GRAMS_MAX gram partitions and WORDS_MAX word partitions, each read up
    to MATCHES_MAX names (the term is checked by ``_checked_term`` first).
    """
    term = term.lower()
    found: set[str] = set()
    if term:
        if len(term) <= search_index.GRAM_MAX:
            candidates = search_index.names_with_gram(term, MATCHES_MAX)
        else:
            size = search_index.GRAM_MAX
            in_order = list(dict.fromkeys(term[i : i + size] for i in range(len(term) - size + 1)))
            candidates = None
            for gram in _spread(in_order, GRAMS_MAX):
                names = search_index.names_with_gram(gram, MATCHES_MAX)
                candidates = names if candidates is None else candidates & names
                if not candidates:
                    break
        found = {name for name in candidates or () if term in name}
    wanted = search_index.words(term)
    if wanted:
        by_word = None
        for word in sorted(wanted):
            names = search_index.names_with_word(word, MATCHES_MAX)
            by_word = names if by_word is None else by_word & names
            if not by_word:
                break
        found |= by_word or set()
    return found


def search(request: Request) -> Response:
    term = _checked_term((request.arg("q") or "").strip())
    size = _positive(request, "n", PAGE_DEFAULT, PAGE_MAX)
    page = _positive(request, "page", 1, 10_000)
    principal = _principal(request)
    open_registry = not settings().auth_enabled  # authentication off: everything is visible
    names = sorted(matching_names(term))[:MATCHES_MAX]
    items = dynamo.get_many([keys.catalog_key(name) for name in names])
    visible = [
        item
        for item in items
        if item is not None
        and "created" in item
        and (open_registry or "pull" in accounts.allowed_actions(principal, item["sk"], item))
    ]
    lowered = term.lower()
    visible.sort(
        key=lambda item: (
            not (item["sk"] == lowered or item["sk"].rsplit("/", 1)[-1] == lowered),
            not item.get("official"),
            -int(item.get("stars") or 0),
            item["sk"],
        )
    )
    start = (page - 1) * size
    results = [
        {
            "name": item["sk"],
            "description": item.get("description") or "",
            "star_count": int(item.get("stars") or 0),
            "is_official": bool(item.get("official")),
            "is_automated": False,
        }
        for item in visible[start : start + size]
    ]
    return Response.json(
        200,
        {
            "query": term,
            "num_results": len(visible),
            "num_pages": max(1, math.ceil(len(visible) / size)),
            "page": page,
            "page_size": size,
            "results": results,
        },
    )
