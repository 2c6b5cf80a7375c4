"""The registry's CloudWatch metrics, as embedded metric format (EMF) log lines.

``registry.http.make_handler`` opens a set per invocation (``begin``), the
services add to it (``add``) and the handler flushes it (``end``): at most one
EMF document per request, printed to stdout, which CloudWatch Logs turns into
metrics in the ``ServerlessRegistry`` namespace (``POWERTOOLS_METRICS_NAMESPACE``)
with the single dimension ``service`` (``POWERTOOLS_SERVICE_NAME``). The
function name and request id ride along as properties: searchable in the log
line, no extra custom metrics. An invocation that adds nothing prints nothing.

The document follows the EMF specification
(https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html):
``_aws.Timestamp`` in epoch milliseconds, one ``CloudWatchMetrics`` directive,
each metric's values as a number or an array of at most 100 values (the
specification's limit; past it the set is flushed and a new one started).
Written here rather than with Powertools, whose import cost about 65 ms of every
cold start. Each invocation's set lives in a context variable: the local stack
serves requests concurrently in threads. ``POWERTOOLS_METRICS_DISABLED=true``
(the local stack's default) prints nothing. Outside a handler (the admin CLI,
service tests) ``add`` does nothing.
"""

from __future__ import annotations

import contextvars
import json
import os
import time

from registry.log import logger

NAMESPACE = "ServerlessRegistry"
SERVICE = "registry"  # the one dimension

PULLS = "Pulls"  # manifest GETs that count as a pull (image manifests, not indexes)
PUSHES = "Pushes"  # manifests stored (every successful manifest PUT)
BYTES_UPLOADED = "BytesUploaded"  # size of each blob whose upload completed
CLIENT_ERRORS = "ClientErrors"  # 4xx answers (401 challenges included)
SERVER_ERRORS = "ServerErrors"  # 5xx answers
RATE_LIMITED = "RateLimited"  # 429 TOOMANYREQUESTS answers

COUNT, BYTES = "Count", "Bytes"  # EMF units
MAX_VALUES = 100  # values per metric in one document (EMF specification)


class MetricSet:
    """One invocation's metrics: name -> (unit, values), plus properties (function, request id)."""

    def __init__(self, properties: dict[str, str]):
        self.properties = properties
        self.values: dict[str, tuple[str, list[float]]] = {}

    def add(self, name: str, value: float, unit: str) -> None:
        values = self.values.setdefault(name, (unit, []))[1]
        values.append(value)
        if len(values) >= MAX_VALUES:
            self.flush()

    def document(self) -> dict:
        namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE
        service = os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE
        document = {
            "_aws": {
                "Timestamp": int(time.time() * 1000),
                "CloudWatchMetrics": [
                    {"Namespace": namespace, "Dimensions": [["service"]],
                     "Metrics": [{"Name": name, "Unit": unit} for name, (unit, _) in self.values.items()]}
                ],
            },
            "service": service,
            **self.properties,
        }
        for name, (_, values) in self.values.items():
            document[name] = values[0] if len(values) == 1 else values
        return document

    def flush(self) -> None:
        """Print the document (if any metric was added) and start empty; disabled: just empty."""
        if self.values and os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() != "true":
            print(json.dumps(self.document(), separators=(",", ":")), flush=True)
        self.values = {}


_current: contextvars.ContextVar[MetricSet | None] = contextvars.ContextVar("registry_metrics", default=None)


def begin(function: str, request_id: str) -> contextvars.Token:
    """Open this invocation's metric set; pass the token to ``end``."""
    properties = {"function": function}
    if request_id:
        properties["request_id"] = request_id
    return _current.set(MetricSet(properties))


def add(name: str, value: float = 1, unit: str = COUNT) -> None:
    """Add to a metric of the current invocation (none: nothing happens)."""
    metrics = _current.get()
    if metrics is not None:
        metrics.add(name, value, unit)


def add_bytes(name: str, size: int) -> None:
    add(name, size, BYTES)


def count_status(status: int) -> None:
    """The error counters an answer's status adds to."""
    if status >= 500:
        add(SERVER_ERRORS)
    elif status >= 400:
        add(CLIENT_ERRORS)
        if status == 429:
            add(RATE_LIMITED)


def end(token: contextvars.Token) -> None:
    """Print the invocation's EMF document (if it has a metric) and close the set. Never raises."""
    metrics = _current.get()
    _current.reset(token)
    if metrics is None or not metrics.values:
        return
    try:
        metrics.flush()
    except Exception:  # noqa: BLE001 - a metric must never fail a request
        logger.warning("metrics not flushed", exc_info=True)
