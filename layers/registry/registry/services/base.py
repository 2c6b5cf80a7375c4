"""``GET /v2/``: tells clients this is a registry speaking the v2 API."""

from registry.http import Request, Response


def version(request: Request) -> Response:
    return Response.json(200, {})
