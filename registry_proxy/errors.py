"""OCI error responses the proxy itself gives (OCI Distribution Spec v1.1, "Error Codes").

Errors from the registry are passed to the client as the registry sent them; these are for what only
the proxy can know: an upload session it does not hold, a chunk out of order, a blob too large for
S3's part count, and a registry or S3 it cannot reach.
"""

from __future__ import annotations

import json

from aiohttp import web


class ProxyError(Exception):
    """An error to answer with: HTTP *status*, OCI *code*, *message*, optional extra headers."""

    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The ``{"errors":[{"code","message"}]}`` JSON response."""
        body = json.dumps({"errors": [{"code": self.code, "message": self.message}]})
        return web.Response(status=self.status, text=body, content_type="application/json", headers=self.headers)


class UpstreamError(Exception):
    """The registry answered a step of an upload with an error: pass its answer to the client as it is."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes):
        super().__init__(f"registry answered {status}")
        self.status, self.headers, self.body = status, headers, body


def upload_unknown(path: str) -> ProxyError:
    """404 BLOB_UPLOAD_UNKNOWN: a session this proxy did not open (or forgot, e.g. after a restart)."""
    return ProxyError(404, "BLOB_UPLOAD_UNKNOWN", f"this proxy holds no upload session {path}; start the upload again")


def range_invalid(offset: int) -> ProxyError:
    """416 RANGE_INVALID: a chunk that does not start where the upload is."""
    return ProxyError(416, "RANGE_INVALID", f"the chunk must start at byte {offset}", {"Range": f"0-{max(offset - 1, 0)}"})


def unreachable(what: str, error: BaseException) -> ProxyError:
    """502 with code UNKNOWN: the registry or S3 could not be reached (the spec has no code for it)."""
    return ProxyError(502, "UNKNOWN", f"{what} could not be reached: {type(error).__name__}")
