"""The management API, ``/api/v1/repositories/<name>…``: description, stars, the official flag, immutable tags,
stored bytes; ``/api/v1/namespaces/<namespace>/usage`` and ``/quota``: a namespace's storage and quota.

Token-protected like the registry routes: reading and starring need pull on
the repository, the description and immutable tags need push (its owners), the official flag
needs an admin. A namespace's usage is for its owner (the user of that name) and
admins; its quota is set by admins. Described by ``docs/openapi.yaml``.
"""

from __future__ import annotations

from registry import inputs, keys
from registry.errors import OciError, RegistryError
from registry.http import Request, Response
from registry.references import parse_name
from registry.storage import dynamo, metadata, principals, search_index

DESCRIPTION_MAX = 100  # Docker Hub's short description
# A body larger than this is refused before it is parsed: the largest valid one
# (100 characters, each escaped as a 12-byte surrogate pair) is about 1.3 KB.
BODY_MAX = 16 * 1024


def _repository(name: str) -> dict:
    """The catalog item, with the repository's usage counter under ``usage`` (both in one BatchGetItem)."""
    parse_name(name)
    item, counter = dynamo.get_many([keys.catalog_key(name), keys.usage_repository_key(name)])
    if item is None or "created" not in item:
        raise RegistryError(OciError.NAME_UNKNOWN, f"repository {name} not known to registry", detail={"name": name})
    return {**item, "usage": counter or {}}


def request_document(request: Request, max_depth: int, max_bytes: int = BODY_MAX):
    """The request's JSON body (``null`` when empty), or None when it is not JSON or too deep.

    A body over ``max_bytes`` is 400 REQUEST_INVALID before it is parsed.
    """
    if len(request.body) > max_bytes:
        raise RegistryError(OciError.REQUEST_INVALID, f"the body is larger than {max_bytes} bytes")
    try:
        return inputs.json_document(request.body or b"null", max_depth=max_depth)
    except inputs.DocumentInvalid:
        return None


def _json_body(request: Request, field: str, kind: type):
    document = request_document(request, max_depth=2)
    if not isinstance(document, dict) or not isinstance(document.get(field), kind):
        raise RegistryError(OciError.REQUEST_INVALID, f'the body must be a JSON object with "{field}" ({kind.__name__})')
    return document[field]


def _view(item: dict, user: str) -> dict:
    return {
        "name": item["sk"],
        "description": item.get("description") or "",
        "star_count": int(item.get("stars") or 0),
        "is_official": bool(item.get("official")),
        "immutable": bool(item.get("immutable")),
        "visibility": item.get("visibility") or None,
        "created": int(item["created"]),
        "updated": int(item.get("updated") or item["created"]),
        "starred": bool(user) and search_index.starred_by(item["sk"], user),
        # The repository's own bytes only: its namespace's totals include repositories the caller may not see.
        "usage": {"logical_bytes": int((item.get("usage") or {}).get("logical") or 0)},
    }


def get(request: Request, name: str) -> Response:
    return Response.json(200, _view(_repository(name), request.caller.user))


def put_description(request: Request, name: str) -> Response:
    item = _repository(name)
    description = _json_body(request, "description", str).strip()
    if len(description) > DESCRIPTION_MAX:
        raise RegistryError(OciError.REQUEST_INVALID, f"a description has at most {DESCRIPTION_MAX} characters")
    search_index.set_description(name, description, item.get("description") or "")
    return Response.json(200, _view(_repository(name), request.caller.user))


def star(request: Request, name: str) -> Response:
    """PUT stars, DELETE unstars; both idempotent (a user's star counts once)."""
    if not request.caller.user:  # anonymous, or authentication switched off: nobody to count
        raise RegistryError(OciError.UNAUTHORIZED, "sign in to star a repository")
    _repository(name)
    search_index.star(name, request.caller.user, request.method == "PUT")
    return Response.json(200, _view(_repository(name), request.caller.user))


def put_official(request: Request, name: str) -> Response:
    user = principals.get_user(request.caller.user) if request.caller.user else None
    if not request.caller.unrestricted and not (user and user.get("admin")):
        raise RegistryError(OciError.DENIED, "only admins mark repositories official")
    _repository(name)
    search_index.set_official(name, _json_body(request, "official", bool))
    return Response.json(200, _view(_repository(name), request.caller.user))


def put_immutable(request: Request, name: str) -> Response:
    """Tags that cannot be moved once pushed (a manifest PUT moving one is 400 TAG_INVALID)."""
    _repository(name)
    metadata.set_immutable(name, _json_body(request, "immutable", bool))
    return Response.json(200, _view(_repository(name), request.caller.user))


def _is_admin(request: Request) -> bool:
    if request.caller.unrestricted:
        return True
    user = principals.get_user(request.caller.user) if request.caller.user else None
    return bool(user and user.get("admin"))


def get_namespace_usage(request: Request, namespace: str) -> Response:
    """A namespace's repositories, logical and deduplicated bytes and quota: for its owner and admins (else 403 DENIED)."""
    if not request.caller.unrestricted and request.caller.user != namespace and not _is_admin(request):
        raise RegistryError(OciError.DENIED, "only the namespace's owner and admins see its usage")
    from registry.services import usage  # only the namespace routes need it (INIT time, issue 15: cold starts)

    return Response.json(200, usage.namespace(namespace))


def put_namespace_quota(request: Request, namespace: str) -> Response:
    """Set (``{"quota": "10GiB"}`` or a number of bytes) or remove (``{"quota": null}``) a namespace's quota: admins only."""
    if not _is_admin(request):
        raise RegistryError(OciError.DENIED, "only admins set quotas")
    document = request_document(request, max_depth=2)
    if not isinstance(document, dict) or "quota" not in document:
        raise RegistryError(OciError.REQUEST_INVALID, 'the body must be a JSON object with "quota": a size ("10GiB"), bytes, or null')
    value = document["quota"]
    try:
        if value is None:
            quota = None
        elif isinstance(value, bool) or not isinstance(value, (int, str)):
            raise inputs.NumberInvalid("not a size")
        else:
            quota = inputs.byte_size(str(value)) if isinstance(value, str) else inputs.natural(str(value))
    except inputs.NumberInvalid:
        raise RegistryError(OciError.REQUEST_INVALID, 'quota: a size such as "10GiB" or "500MB", a number of bytes, or null') from None
    from registry.services import usage  # only the namespace routes need it (INIT time, issue 15: cold starts)

    usage.set_quota(namespace, quota)
    return Response.json(200, usage.namespace(namespace))
