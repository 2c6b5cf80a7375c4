"""Content discovery: the repository catalog and tag lists, in lexical order, paginated."""

from __future__ import annotations

from registry import inputs, keys
from registry.config import settings
from registry.errors import OciError, RegistryError
from registry.http import Request, Response, link_header
from registry.references import parse_name
from registry.storage import metadata, principals

# The most entries one page returns; a larger or absent ``n`` gets this many and a Link.
MAX_PAGE = 1000


def page_size(request: Request) -> int:
    n = request.arg("n")
    if n is None or n == "":
        return MAX_PAGE
    try:
        return min(inputs.natural(n), MAX_PAGE)
    except inputs.NumberInvalid:
        raise RegistryError(OciError.PAGINATION_NUMBER_INVALID, f"n must be a non-negative integer, not {n[:50]!r}") from None


def _page(path: str, key: str, items: list[str], more: bool, limit: int, extra: dict) -> Response:
    headers = {}
    if more and items:
        headers["Link"] = link_header(path, {"n": limit, "last": items[-1]})
    return Response.json(200, {**extra, key: items}, headers)


# The longest repository name; a longer ``last`` cuts to it without changing the
# page (no name sorts between the cut and the whole), and stays a valid
# DynamoDB sort key (1,024 bytes at most: 255 characters of UTF-8 fit).
_NAME_MAX = 255


def _pull_filter(request: Request) -> list[tuple[str, str]]:
    """The catalog index partitions the caller may list, as (partition, sort-key prefix) pairs.

    Everything for an admin or with authentication off; otherwise the public
    repositories (and those without a visibility while the default is public),
    plus, for a signed-in user, their namespace and their grants. A caller
    sees exactly the union: each partition holds only names they may pull.
    """
    caller = request.caller
    if caller is None or caller.unrestricted:
        return [(keys.VISIBLE_ALL_PK, "")]
    user = principals.get_user(caller.user) if caller.user else None
    if user and user.get("admin"):
        return [(keys.VISIBLE_ALL_PK, "")]
    streams = [(keys.VISIBLE_PUBLIC_PK, "")]
    if settings().default_visibility == "public":
        streams.append((keys.VISIBLE_DEFAULT_PK, ""))
    if user:
        streams += [(keys.VISIBLE_ALL_PK, f"{caller.user}/"), (keys.grantee_pk(caller.user), "")]
    return streams


def repositories(request: Request) -> Response:
    """Repositories the caller may pull, in lexical order, ``limit`` at a time.

    At most 1 GetItem (the caller's admin flag) and 4 Query calls of
    ``limit + 1`` index items each, whatever the size of the registry; the
    next page's ``last`` is the last name returned (or the index key a
    truncated Query stopped at), always a name the caller may pull.
    """
    limit = page_size(request)
    if limit == 0:
        return Response.json(200, {"repositories": []})
    last = (request.arg("last") or "")[:_NAME_MAX] or None
    names, after = metadata.list_repositories(_pull_filter(request), limit, last)
    headers = {}
    if after is not None:
        headers["Link"] = link_header("/v2/_catalog", {"n": limit, "last": after})
    return Response.json(200, {"repositories": names}, headers)


def tags(request: Request, name: str) -> Response:
    parse_name(name)
    limit = page_size(request)
    last = request.arg("last")
    found, more = metadata.list_tags(name, limit, last) if limit else ([], False)
    if not found and not metadata.repository_exists(name):
        # Imported here: only an unknown name needs it (INIT time, issue 15: cold starts).
        from registry.services import pullthrough

        stored = pullthrough.stored_name(name)  # a pull-through cache's library/ alias lists its canonical name's tags
        if stored == name or not metadata.repository_exists(stored):
            raise RegistryError(OciError.NAME_UNKNOWN, f"repository {name} not known to registry", detail={"name": name})
        found, more = metadata.list_tags(stored, limit, last) if limit else ([], False)
    return _page(f"/v2/{name}/tags/list", "tags", found, more, limit, {"name": name})
