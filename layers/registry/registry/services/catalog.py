"""Content discovery: the repository catalog and tag lists, in lexical order, paginated."""

from __future__ import annotations

from registry import accounts, inputs
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


def _pull_filter(request: Request):
    """A predicate on catalog items: may the caller pull this repository?"""
    caller = request.caller
    if caller is None or caller.unrestricted:
        return lambda item: "created" in item
    user = principals.get_user(caller.user) if caller.user else None
    principal = accounts.Principal(caller.user, bool(user and user.get("admin")))
    return lambda item: "created" in item and "pull" in accounts.allowed_actions(principal, item["sk"], item)


# At most this many catalog items are examined per request: a caller who may
# pull few of many repositories gets a short page and a Link to go on from,
# so a page's cost is bounded whatever the size of the registry.
EXAMINE_MAX = 2 * MAX_PAGE


def repositories(request: Request) -> Response:
    """Repositories the caller may pull, in lexical order, ``limit`` at a time."""
    limit = page_size(request)
    if limit == 0:
        return Response.json(200, {"repositories": []})
    visible = _pull_filter(request)
    names: list[str] = []
    last, more, examined = request.arg("last"), True, 0
    while more and len(names) < limit and examined < EXAMINE_MAX:
        items, more = metadata.list_repositories(min(limit, EXAMINE_MAX - examined), last)
        for position, item in enumerate(items):
            examined += 1
            last = item["sk"]
            if visible(item):
                names.append(item["sk"])
                if len(names) == limit:
                    more = more or position < len(items) - 1
                    break
    headers = {}
    if more:
        # ``last`` is the last name examined, visible or not: the next page starts after it.
        headers["Link"] = link_header("/v2/_catalog", {"n": limit, "last": last})
    return Response.json(200, {"repositories": names}, headers)


def tags(request: Request, name: str) -> Response:
    parse_name(name)
    limit = page_size(request)
    last = request.arg("last")
    found, more = metadata.list_tags(name, limit, last) if limit else ([], False)
    if not found and not metadata.repository_exists(name):
        raise RegistryError(OciError.NAME_UNKNOWN, f"repository {name} not known to registry", detail={"name": name})
    return _page(f"/v2/{name}/tags/list", "tags", found, more, limit, {"name": name})
