"""Content discovery: the repository catalog and tag lists, in lexical order, paginated."""

from __future__ import annotations

from registry.errors import OciError, RegistryError
from registry.http import Request, Response, link_header
from registry.references import parse_name
from registry.storage import metadata

# The most entries one page returns; a larger or absent ``n`` gets this many and a Link.
MAX_PAGE = 1000


def page_size(request: Request) -> int:
    n = request.arg("n")
    if n is None or n == "":
        return MAX_PAGE
    if not n.isdigit():
        raise RegistryError(OciError.PAGINATION_NUMBER_INVALID, f"n must be a non-negative integer, not {n[:50]!r}")
    return min(int(n), MAX_PAGE)


def _page(path: str, key: str, items: list[str], more: bool, limit: int, extra: dict) -> Response:
    headers = {}
    if more and items:
        headers["Link"] = link_header(path, {"n": limit, "last": items[-1]})
    return Response.json(200, {**extra, key: items}, headers)


def repositories(request: Request) -> Response:
    limit = page_size(request)
    if limit == 0:
        return Response.json(200, {"repositories": []})
    names, more = metadata.list_repositories(limit, request.arg("last"))
    return _page("/v2/_catalog", "repositories", names, more, limit, {})


def tags(request: Request, name: str) -> Response:
    parse_name(name)
    limit = page_size(request)
    last = request.arg("last")
    found, more = metadata.list_tags(name, limit, last) if limit else ([], False)
    if not found and not metadata.repository_exists(name):
        raise RegistryError(OciError.NAME_UNKNOWN, f"repository {name} not known to registry", detail={"name": name})
    return _page(f"/v2/{name}/tags/list", "tags", found, more, limit, {"name": name})
