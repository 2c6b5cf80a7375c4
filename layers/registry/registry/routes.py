"""The route table: every endpoint once, as data.

It drives three things that must never disagree:

* the functions: ``registry.http.dispatch`` matches ``rawPath`` against
  ``Route.regex`` for the routes of the function it runs in;
* ``template.yaml``: ``scripts/generate.py`` writes each function's
  ``HttpApi`` events from ``gateway_routes()`` (a test checks they match);
* the local gateway, which routes from ``template.yaml`` itself, and the
  endpoint table in the docs.

API Gateway's greedy variable ``{proxy+}`` may only end a path, and a path
variable matches exactly one segment, so a repository name with slashes cannot
be one variable. Each ``<name>`` route under ``/v2`` is therefore written out
once per name depth, ``/v2/{n1}/manifests/{reference}`` …
``/v2/{n1}/…/{n8}/manifests/…``, as one ``ANY`` route per path (every method
of a path is served by one function, which answers 405 UNSUPPORTED for the
others; the blob path keeps one key per method, see its route): one route key
and one Lambda permission per path and depth, not per method, which keeps the template far under the HTTP API quota of 300 routes
and each function's resource-based policy under Lambda's 20 KB
(``tests/unit/test_deploy.py`` counts both in the transformed template).
Deeper names reach the ``base`` function through ``ANY /v2/{proxy+}``, which
answers NAME_INVALID. The only route with a trailing slash (``POST …/uploads/``)
is reached through ``POST /v2/{proxy+}``: POST has no use under ``/v2`` but
uploads, so every POST there goes to the upload function, and nothing depends
on how API Gateway treats a trailing slash. The management API (``/api/v1/…``)
is served by one function, so it is one greedy route, ``ANY /api/v1/repositories/{proxy+}``,
at any name depth.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from registry.references import NAME_COMPONENT, NAME_PATTERN

# Names of up to this many components get their own API Gateway routes: deep enough for
# a mirror of a mirror (``cache/ghcr/org/team/app`` is 5); each level adds 6 route keys.
MAX_NAME_COMPONENTS = 8

# How a route is written into API Gateway.
EXACT = "exact"  # the path as it is
PER_DEPTH = "per-depth"  # ANY <path>, once per name depth 1..MAX_NAME_COMPONENTS
GREEDY = "greedy"  # METHOD /v2/{proxy+} or ANY /api/v1/repositories/{proxy+}; the function checks the path itself
DEFAULT = "default"  # the $default route and ANY /v2/{proxy+}

_SEGMENT_PATTERNS = {
    "name": NAME_PATTERN,
    "namespace": NAME_COMPONENT,  # a name's first component: one path segment
    "reference": r"[^/]+",
    "digest": r"[^/]+",
    "uuid": r"[^/]+",
}


class Route(NamedTuple):
    name: str
    function: str
    methods: tuple[str, ...]
    path: str  # OCI form: /v2/<name>/manifests/<reference>
    gateway: str
    summary: str
    spec: str = ""  # the distribution spec's endpoint id (end-N)
    authenticated: bool = True  # needs a bearer token (registry.auth.guard); the token service does not
    # PER_DEPTH routes are one ``ANY`` route key per path unless this is False: then one key per
    # method, for a path a POST of another route must not reach (see ``blob``).
    any_method: bool = True

    @property
    def regex(self) -> re.Pattern:
        return self._compile(strict=True)

    @property
    def shape(self) -> re.Pattern:
        """The route's shape with any name at all: tells a bad name from a path that is no endpoint."""
        return self._compile(strict=False)

    def _compile(self, strict: bool) -> re.Pattern:
        def group(match):
            key = match.group(1)
            pattern = _SEGMENT_PATTERNS[key] if strict or key != "name" else r".+"
            return f"(?P<{key}>{pattern})"

        pieces = re.split(r"(<\w+>)", self.path)
        pattern = "".join(group(re.match(r"<(\w+)>", p)) if p.startswith("<") else re.escape(p) for p in pieces)
        # A path the spec writes with a trailing slash is also taken without it.
        return re.compile("^" + (pattern[:-1] + "/?" if pattern.endswith("/") else pattern) + "$")

    def api_paths(self) -> list[str]:
        """The API Gateway route paths (no method) that reach this route."""
        if self.gateway == EXACT:
            return [self.path]
        if self.gateway == GREEDY:
            prefix = self.path[: self.path.index("/<")]  # /v2 or /api/v1/repositories
            return [f"{prefix}/{{proxy+}}"]
        if self.gateway == DEFAULT:
            return []
        paths = []
        for depth in range(1, MAX_NAME_COMPONENTS + 1):
            name = "/".join(f"{{n{i}}}" for i in range(1, depth + 1))
            paths.append(re.sub(r"<(\w+)>", lambda m: name if m.group(1) == "name" else f"{{{m.group(1)}}}", self.path))
        return paths


ROUTES: tuple[Route, ...] = (
    Route("base", "base", ("GET", "HEAD"), "/v2/", DEFAULT, "API version check", "end-1"),
    Route("catalog", "catalog", ("GET",), "/v2/_catalog", EXACT, "list repositories"),
    Route("tags", "catalog", ("GET",), "/v2/<name>/tags/list", PER_DEPTH, "list tags", "end-8"),
    Route(
        "manifest",
        "manifest",
        ("GET", "HEAD", "PUT", "DELETE"),
        "/v2/<name>/manifests/<reference>",
        PER_DEPTH,
        "pull, push or delete a manifest",
        "end-3, end-7, end-9",
    ),
    # Per method: ``POST /v2/<name>/blobs/uploads`` (no trailing slash) has the shape of a blob path
    # with the digest ``uploads``; as ``ANY`` it would reach the blob function instead of uploads.
    Route("blob", "blob", ("GET", "HEAD", "DELETE"), "/v2/<name>/blobs/<digest>", PER_DEPTH, "pull or delete a blob", "end-2, end-10", any_method=False),
    Route("upload.start", "upload", ("POST",), "/v2/<name>/blobs/uploads/", GREEDY, "start, finish in one request, or mount an upload", "end-4, end-11"),
    Route(
        "referrers",
        "catalog",
        ("GET",),
        "/v2/<name>/referrers/<digest>",
        PER_DEPTH,
        "list the manifests whose subject is a digest",
        "end-12",
    ),
    Route("token", "token", ("GET", "POST"), "/token", EXACT, "issue a bearer token (Docker token authentication)", authenticated=False),
    Route("jwks", "token", ("GET",), "/.well-known/jwks.json", EXACT, "the public keys tokens are signed with", authenticated=False),
    Route("search.ping", "search", ("GET",), "/v1/_ping", EXACT, "docker search's version check", authenticated=False),
    Route("search", "search", ("GET",), "/v1/search", EXACT, "docker search", authenticated=False),
    Route("repo.description", "search", ("PUT",), "/api/v1/repositories/<name>/description", GREEDY, "set a repository's description"),
    Route("repo.star", "search", ("PUT", "DELETE"), "/api/v1/repositories/<name>/star", GREEDY, "star or unstar a repository"),
    Route("repo.official", "search", ("PUT",), "/api/v1/repositories/<name>/official", GREEDY, "mark a repository official (admins)"),
    Route("repo.immutable", "search", ("PUT",), "/api/v1/repositories/<name>/immutable", GREEDY, "make a repository's tags immutable, or not"),
    Route("repo.retention", "search", ("GET", "PUT"), "/api/v1/repositories/<name>/retention", GREEDY, "a repository's retention policy: read or set"),
    Route("repo", "search", ("GET",), "/api/v1/repositories/<name>", GREEDY, "a repository's description, stars, flags and stored bytes"),
    Route("namespace.usage", "search", ("GET",), "/api/v1/namespaces/<namespace>/usage", GREEDY, "a namespace's stored bytes and quota (its owner, admins)"),
    Route("namespace.quota", "search", ("PUT",), "/api/v1/namespaces/<namespace>/quota", GREEDY, "set or remove a namespace's storage quota (admins)"),
    Route(
        "upload.session",
        "upload",
        ("GET", "PATCH", "PUT", "DELETE"),
        "/v2/<name>/blobs/uploads/<uuid>",
        PER_DEPTH,
        "upload status, send a chunk, complete, cancel",
        "end-5, end-6, end-13",
    ),
    Route(
        "upload.parts",
        "upload",
        ("GET", "POST"),
        "/v2/<name>/blobs/uploads/<uuid>/parts",
        PER_DEPTH,
        "direct-to-S3 upload: presigned part URLs (POST), the parts received (GET)",
    ),
)

# What each endpoint answers: its success status(es) and the OciError members
# (registry/errors.py) it may raise besides UNKNOWN. docs/endpoints.md is
# generated from this; a test checks it covers every route and method.
_NAME = ("NAME_INVALID",)
RESPONSES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("base", "GET"): ("200", ()),
    ("base", "HEAD"): ("200", ()),
    ("catalog", "GET"): ("200", ("PAGINATION_NUMBER_INVALID",)),
    ("tags", "GET"): ("200", (*_NAME, "NAME_UNKNOWN", "PAGINATION_NUMBER_INVALID")),
    ("referrers", "GET"): ("200", (*_NAME, "DIGEST_INVALID", "PAGINATION_NUMBER_INVALID")),
    # A reference that is neither a tag nor a digest names nothing: MANIFEST_UNKNOWN (end-3, end-9 fail with 404).
    # UNAVAILABLE: a pull-through cache's upstream did not answer usefully (registry.services.pullthrough).
    ("manifest", "GET"): ("200", (*_NAME, "NAME_UNKNOWN", "MANIFEST_UNKNOWN", "TOOMANYREQUESTS", "UNAVAILABLE")),
    ("manifest", "HEAD"): ("200", (*_NAME, "NAME_UNKNOWN", "MANIFEST_UNKNOWN", "TOOMANYREQUESTS", "UNAVAILABLE")),
    ("manifest", "PUT"): (
        "201",
        (*_NAME, "TAG_INVALID", "DIGEST_INVALID", "MANIFEST_INVALID", "MANIFEST_BLOB_UNKNOWN", "MANIFEST_TOO_LARGE", "TOOMANYREQUESTS", "DENIED"),
    ),
    ("manifest", "DELETE"): ("202", (*_NAME, "NAME_UNKNOWN", "MANIFEST_UNKNOWN", "DENIED", "UNSUPPORTED")),
    ("blob", "GET"): ("307", (*_NAME, "DIGEST_INVALID", "BLOB_UNKNOWN", "TOOMANYREQUESTS", "UNAVAILABLE")),
    ("blob", "HEAD"): ("200", (*_NAME, "DIGEST_INVALID", "BLOB_UNKNOWN")),
    ("blob", "DELETE"): ("202", (*_NAME, "DIGEST_INVALID", "BLOB_UNKNOWN", "UNSUPPORTED", "DENIED")),
    ("upload.start", "POST"): ("202, 201", (*_NAME, "DIGEST_INVALID", "SIZE_INVALID", "TOOMANYREQUESTS", "DENIED")),
    ("upload.session", "GET"): ("204", (*_NAME, "BLOB_UPLOAD_UNKNOWN")),
    ("upload.session", "PATCH"): ("202", (*_NAME, "BLOB_UPLOAD_UNKNOWN", "RANGE_INVALID", "SIZE_INVALID")),
    ("upload.session", "PUT"): (
        "201, 202",
        (*_NAME, "DIGEST_INVALID", "BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "RANGE_INVALID", "SIZE_INVALID", "DENIED", "TOOMANYREQUESTS"),
    ),
    ("upload.session", "DELETE"): ("204", (*_NAME, "BLOB_UPLOAD_UNKNOWN")),
    ("upload.parts", "GET"): ("200", (*_NAME, "BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "PAGINATION_NUMBER_INVALID")),
    ("upload.parts", "POST"): ("200", (*_NAME, "BLOB_UPLOAD_UNKNOWN", "BLOB_UPLOAD_INVALID", "PAGINATION_NUMBER_INVALID")),
    ("token", "GET"): ("200", ("UNAUTHORIZED", "TOOMANYREQUESTS", "REQUEST_INVALID")),
    ("token", "POST"): ("200", ("UNAUTHORIZED", "TOOMANYREQUESTS", "UNSUPPORTED", "REQUEST_INVALID")),
    ("jwks", "GET"): ("200", ()),
    ("search.ping", "GET"): ("200", ()),
    ("search", "GET"): ("200", ("UNAUTHORIZED", "PAGINATION_NUMBER_INVALID", "TOOMANYREQUESTS", "REQUEST_INVALID")),
    ("repo", "GET"): ("200", (*_NAME, "NAME_UNKNOWN")),
    ("repo.description", "PUT"): ("200", (*_NAME, "NAME_UNKNOWN", "REQUEST_INVALID")),
    ("repo.star", "PUT"): ("200", (*_NAME, "NAME_UNKNOWN", "UNAUTHORIZED")),
    ("repo.star", "DELETE"): ("200", (*_NAME, "NAME_UNKNOWN", "UNAUTHORIZED")),
    ("repo.official", "PUT"): ("200", (*_NAME, "NAME_UNKNOWN", "DENIED", "REQUEST_INVALID")),
    ("repo.immutable", "PUT"): ("200", (*_NAME, "NAME_UNKNOWN", "REQUEST_INVALID")),
    # A namespace that is not a valid name component matches no route: 404 NOT_FOUND.
    ("namespace.usage", "GET"): ("200", ("DENIED",)),
    ("namespace.quota", "PUT"): ("200", ("DENIED", "REQUEST_INVALID")),
    ("repo.retention", "GET"): ("200", (*_NAME, "NAME_UNKNOWN")),
    ("repo.retention", "PUT"): ("200", (*_NAME, "NAME_UNKNOWN", "REQUEST_INVALID", "TOOMANYREQUESTS")),
}

# The function behind ``POST /v2/{proxy+}``: every POST under /v2 is an upload.
POST_V2_FUNCTION = "upload"
FALLBACK_FUNCTION = "base"  # serves $default and ANY /v2/{proxy+}
FALLBACK_ROUTE_KEYS = ("$default", "ANY /v2/{proxy+}")

FUNCTIONS = tuple(dict.fromkeys(route.function for route in ROUTES))


def routes_for(function: str) -> tuple[Route, ...]:
    return tuple(route for route in ROUTES if route.function == function)


def gateway_routes() -> dict[str, list[tuple[str, str]]]:
    """function -> [(method, API Gateway path), ...] in template order.

    The fallback routes (``$default`` and ``ANY /v2/{proxy+}``) are included
    under the fallback function with methods ``$default`` and ``ANY``.
    """
    table: dict[str, list[tuple[str, str]]] = {function: [] for function in FUNCTIONS}
    for route in ROUTES:
        for path in route.api_paths():
            if (route.gateway == PER_DEPTH and route.any_method) or path.startswith("/api/"):
                entries = [("ANY", path)]
            elif route.gateway == GREEDY:
                # Every POST under /v2 reaches its function through ``POST /v2/{proxy+}``
                # (see the module docstring).
                if route.methods != ("POST",) or route.function != POST_V2_FUNCTION:
                    raise ValueError(f"{route.name}: only the {POST_V2_FUNCTION} function's POST may be greedy under /v2")
                entries = [("POST", path)]
            else:
                entries = [(method, path) for method in route.methods]
            for entry in entries:
                if entry not in table[route.function]:
                    table[route.function].append(entry)
    table[FALLBACK_FUNCTION] += [("$default", ""), ("ANY", "/v2/{proxy+}")]
    return table


def match(path: str, routes=ROUTES, method: str | None = None):
    """Return (route, params) for the route whose path matches, else (None, {}).

    A path can have the shape of two routes (``/api/v1/repositories/team/star`` is the
    ``star`` of ``team`` or the repository ``team/star``): the first route that also
    serves ``method`` wins, else the first whose path matches (which answers 405).
    """
    first = None
    for route in routes:
        found = route.regex.match(path)
        if found:
            if method is None or method in route.methods:
                return route, found.groupdict()
            first = first or (route, found.groupdict())
    return first or (None, {})
