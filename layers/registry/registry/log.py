"""The one structured logger: JSON lines with request id, never a secret.

Standard-library ``logging`` with a JSON formatter that writes the fields
Powertools' Logger wrote (``level``, ``location``, ``message``, ``timestamp``,
``service``, the ``extra`` keys, ``exception``), so log queries keep working:
importing Powertools cost about 65 ms of every cold start (docs/performance.md),
more than everything else the functions import besides boto3. The level comes
from ``POWERTOOLS_LOG_LEVEL`` (the template's name for it), then ``LOG_LEVEL``.

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
import logging
import os
import re
import sys
import time

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
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


def _serialize(log: dict) -> str:
    return json.dumps(scrub(log), default=lambda obj: scrub(str(obj)), separators=(",", ":"))


# The attributes every LogRecord has: whatever else is on a record came from ``extra=``.
_RECORD_FIELDS = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One scrubbed JSON object per record, in Powertools' field names."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(record.created))
        line = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": f"{created},{int(record.msecs):03d}+0000",
            "service": self.service,
        }
        # Powertools left out keys whose value is None; so do we.
        line.update((key, value) for key, value in record.__dict__.items() if key not in _RECORD_FIELDS and value is not None)
        if record.exc_info:
            line["exception_name"] = record.exc_info[0].__name__ if record.exc_info[0] else ""
            line["exception"] = self.formatException(record.exc_info)
        if os.environ.get("_X_AMZN_TRACE_ID"):
            line["xray_trace_id"] = os.environ["_X_AMZN_TRACE_ID"].partition(";")[0].partition("=")[2]
        return _serialize(line)


class Logger:
    """The registry's logger: ``info``/``warning``/``error``/``exception`` with ``extra=`` fields.

    ``registered_formatter``, ``registered_handler``, ``log_level`` and
    ``setLevel`` are the names the tests and the benchmark (Powertools users)
    know; ``_logger`` is the stdlib logger.
    """

    def __init__(self, service: str):
        self._logger = logging.getLogger(service)
        self._logger.propagate = False
        self.registered_formatter = JsonFormatter(service)
        self.registered_handler = logging.StreamHandler(sys.stdout)
        self.registered_handler.setFormatter(self.registered_formatter)
        self._logger.handlers = [self.registered_handler]
        self.setLevel(os.environ.get("POWERTOOLS_LOG_LEVEL") or os.environ.get("LOG_LEVEL") or "INFO")

    @property
    def log_level(self) -> int:
        return self._logger.level

    def setLevel(self, level) -> None:  # noqa: N802 - logging's and Powertools' name
        self._logger.setLevel(level.upper() if isinstance(level, str) else level)

    def addHandler(self, handler: logging.Handler) -> None:  # noqa: N802
        self._logger.addHandler(handler)

    def __getattr__(self, name):
        # debug, info, warning, error, exception, critical, isEnabledFor: the stdlib logger's.
        return getattr(self._logger, name)


logger = Logger("registry")
