"""The one structured logger (Powertools): JSON lines with request id, never a secret.

What the handlers log carries no credential (request id, function, method,
path, repository, status). As a second line of defence every line is scrubbed
before it is written, exception text and stack traces included: values under
keys that name a credential, ``Authorization``-style ``Basic``/``Bearer``
values, JWTs, the registry's own access and refresh tokens (``rpat_``,
``rrt_``) and ``password=``/``token=`` form or query fields become
``[redacted]``.
"""

from __future__ import annotations

import json
import re

from aws_lambda_powertools import Logger

REDACTED = "[redacted]"
SECRET_KEYS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "password", "secret", "token", "access_token", "refresh_token",
     "x-amz-security-token", "aws_secret_access_key", "aws_session_token"}
)
_PATTERNS = (
    # Authorization header values: "Basic dXNlcjpwYXNz", "Bearer eyJ..."
    (re.compile(r"(?i)\b(basic|bearer)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    # JWTs anywhere (header.payload.signature, base64url)
    (re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"), REDACTED),
    # The registry's access tokens and refresh tokens (registry.accounts)
    (re.compile(r"\b(rpat_|rrt_)[A-Za-z0-9_-]+"), rf"\1{REDACTED}"),
    # password=..., refresh_token=..., token=... in forms, queries and reprs
    (re.compile(r"(?i)\b(password|passwd|refresh_token|access_token|token|secret)(['\"]?\s*[=:]\s*['\"]?)[^&\s'\",;}]+"), rf"\1\2{REDACTED}"),
)


def scrub(value):
    """``value`` with every credential replaced by ``[redacted]`` (dicts and lists walked)."""
    if isinstance(value, str):
        for pattern, replacement in _PATTERNS:
            value = pattern.sub(replacement, value)
        return value
    if isinstance(value, dict):
        return {key: REDACTED if str(key).lower() in SECRET_KEYS else scrub(item) for key, item in value.items()}
    if hasattr(value, "_fields"):  # a NamedTuple (a Digest, a Caller): logged as its str, not as a list
        return scrub(str(value))
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


def _serialize(log: dict) -> str:
    return json.dumps(scrub(log), default=lambda obj: scrub(str(obj)), separators=(",", ":"))


logger = Logger(service="registry", json_serializer=_serialize)
