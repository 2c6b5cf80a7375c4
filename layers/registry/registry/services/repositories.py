"""The management API, ``/api/v1/repositories/<name>…``: description, stars, the official flag.

Token-protected like the registry routes: reading and starring need pull on
the repository, the description needs push (its owners), the official flag
needs an admin. Described by ``docs/openapi.yaml``.
"""

from __future__ import annotations

from registry import inputs, keys
from registry.errors import OciError, RegistryError
from registry.http import Request, Response
from registry.references import parse_name
from registry.storage import dynamo, principals, search_index

DESCRIPTION_MAX = 100  # Docker Hub's short description
# A body larger than this is refused before it is parsed: the largest valid one
# (100 characters, each escaped as a 12-byte surrogate pair) is about 1.3 KB.
BODY_MAX = 16 * 1024


def _repository(name: str) -> dict:
    parse_name(name)
    item = dynamo.get(keys.catalog_key(name))
    if item is None or "created" not in item:
        raise RegistryError(OciError.NAME_UNKNOWN, f"repository {name} not known to registry", detail={"name": name})
    return item


def _json_body(request: Request, field: str, kind: type):
    if len(request.body) > BODY_MAX:
        raise RegistryError(OciError.REQUEST_INVALID, f"the body is larger than {BODY_MAX} bytes")
    try:
        document = inputs.json_document(request.body or b"null", max_depth=2)
    except inputs.DocumentInvalid:
        document = None
    if not isinstance(document, dict) or not isinstance(document.get(field), kind):
        raise RegistryError(OciError.REQUEST_INVALID, f'the body must be a JSON object with "{field}" ({kind.__name__})')
    return document[field]


def _view(item: dict, user: str) -> dict:
    return {
        "name": item["sk"],
        "description": item.get("description") or "",
        "star_count": int(item.get("stars") or 0),
        "is_official": bool(item.get("official")),
        "visibility": item.get("visibility") or None,
        "created": int(item["created"]),
        "updated": int(item.get("updated") or item["created"]),
        "starred": bool(user) and search_index.starred_by(item["sk"], user),
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
