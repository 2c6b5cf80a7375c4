"""The OCI error table, and the one exception the registry raises.

Every client-visible failure is an ``OciError`` member: its code, HTTP status
and default message live here once. Services raise ``RegistryError``; the
request dispatcher (``registry.http``) is the only place that renders it, always
inside the ``{"errors": [...]}`` envelope the distribution spec requires.

    RegistryError(OciError.X, message=None, detail=None, headers=None)
      raised by services and storage adapters, rendered by registry.http
"""

from __future__ import annotations

import enum
import json


class OciError(enum.Enum):
    """(code, HTTP status, default message), as in distribution's errcode table."""

    BLOB_UNKNOWN = ("BLOB_UNKNOWN", 404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = ("BLOB_UPLOAD_INVALID", 400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = ("BLOB_UPLOAD_UNKNOWN", 404, "blob upload unknown to registry")
    DIGEST_INVALID = ("DIGEST_INVALID", 400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = ("MANIFEST_BLOB_UNKNOWN", 400, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = ("MANIFEST_INVALID", 400, "manifest invalid")
    MANIFEST_UNKNOWN = ("MANIFEST_UNKNOWN", 404, "manifest unknown to registry")
    NAME_INVALID = ("NAME_INVALID", 400, "invalid repository name")
    NAME_UNKNOWN = ("NAME_UNKNOWN", 404, "repository name not known to registry")
    SIZE_INVALID = ("SIZE_INVALID", 400, "provided length did not match content length")
    TAG_INVALID = ("TAG_INVALID", 400, "manifest tag did not match URI")
    PAGINATION_NUMBER_INVALID = ("PAGINATION_NUMBER_INVALID", 400, "invalid number of results requested")
    RANGE_INVALID = ("RANGE_INVALID", 416, "invalid content range")
    UNAUTHORIZED = ("UNAUTHORIZED", 401, "authentication required")
    DENIED = ("DENIED", 403, "requested access to the resource is denied")
    # A valid token without the action: 401 so clients fetch a better token
    # (and, if the token service still says no, print the DENIED message).
    INSUFFICIENT_SCOPE = ("DENIED", 401, "requested access to the resource is denied")
    UNSUPPORTED = ("UNSUPPORTED", 405, "the operation is unsupported")
    MANIFEST_TOO_LARGE = ("SIZE_INVALID", 413, "manifest too large")
    # Not in the spec's list: a path that is no endpoint at all. Kept distinct
    # from NAME_UNKNOWN so a client never mistakes a typo for a missing repo.
    NOT_FOUND = ("NOT_FOUND", 404, "no such endpoint")
    # Not in the spec's list either: a management API body that is not what it takes,
    # or a request over a per-request bound (search words, token scopes; README's limits table).
    REQUEST_INVALID = ("REQUEST_INVALID", 400, "the request body is not valid")
    TOOMANYREQUESTS = ("TOOMANYREQUESTS", 429, "too many requests")
    # distribution's errcode.ErrorCodeUnavailable: a pull-through cache's upstream did not answer usefully.
    UNAVAILABLE = ("UNAVAILABLE", 503, "service unavailable")
    UNKNOWN = ("UNKNOWN", 500, "unknown error")

    @property
    def code(self) -> str:
        return self.value[0]

    @property
    def status(self) -> int:
        return self.value[1]

    @property
    def message(self) -> str:
        return self.value[2]


class RegistryError(Exception):
    """A client-visible failure: one OCI error, optional detail and extra headers."""

    def __init__(self, error: OciError, message: str | None = None, detail=None, headers: dict | None = None):
        super().__init__(message or error.message)
        self.error = error
        self.message = message or error.message
        self.detail = detail
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return self.error.status

    def body(self) -> bytes:
        entry = {"code": self.error.code, "message": self.message}
        if self.detail is not None:
            entry["detail"] = self.detail
        return json.dumps({"errors": [entry]}).encode()
