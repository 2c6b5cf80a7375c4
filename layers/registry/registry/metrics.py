"""The registry's CloudWatch metrics, as embedded metric format (EMF) log lines (Powertools).

``registry.http.make_handler`` opens a set per invocation (``begin``), the
services add to it (``add``) and the handler flushes it (``end``): at most one
EMF document per request, printed to stdout, which CloudWatch Logs turns into
metrics in the ``ServerlessRegistry`` namespace (``POWERTOOLS_METRICS_NAMESPACE``)
with the single dimension ``service`` (``POWERTOOLS_SERVICE_NAME``). The
function name and request id ride along as EMF metadata: searchable in the log
line, no extra custom metrics. An invocation that adds nothing prints nothing.

Each invocation gets its own ``Metrics`` with its own provider, held in a
context variable: Powertools' shared class-level metric set would mix
requests that the local stack serves concurrently in threads.
``POWERTOOLS_METRICS_DISABLED=true`` (the local stack's default) prints nothing.
Outside a handler (the admin CLI, service tests) ``add`` does nothing.
"""

from __future__ import annotations

import contextvars
import os

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from registry.log import logger

NAMESPACE = "ServerlessRegistry"
SERVICE = "registry"  # the one dimension

PULLS = "Pulls"  # manifest GETs that count as a pull (image manifests, not indexes)
PUSHES = "Pushes"  # manifests stored (every successful manifest PUT)
BYTES_UPLOADED = "BytesUploaded"  # size of each blob whose upload completed
CLIENT_ERRORS = "ClientErrors"  # 4xx answers (401 challenges included)
SERVER_ERRORS = "ServerErrors"  # 5xx answers
RATE_LIMITED = "RateLimited"  # 429 TOOMANYREQUESTS answers
GC_BYTES_FREED = "GcBytesFreed"  # S3 bytes a garbage-collection pass deleted
GC_OBJECTS_FREED = "GcObjectsFreed"  # S3 blob objects a pass deleted
GC_PASS_SECONDS = "GcPassSeconds"  # how long a pass ran
# Emitted once per garbage-collection pass (registry.services.usage.emit_stored_bytes):
STORED_BYTES = "StoredBytes"  # a namespace's deduplicated bytes (dimensions service, namespace)
STORED_LOGICAL_BYTES = "StoredLogicalBytes"  # a namespace's logical bytes (dimensions service, namespace)
REGISTRY_STORED_BYTES = "RegistryStoredBytes"  # every blob object once: what S3 bills for blobs/
NAMESPACE_DIMENSION = "namespace"

_current: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar("registry_metrics", default=None)


def _provider() -> AmazonCloudWatchEMFProvider:
    """A fresh metric set of its own (never Powertools' shared class-level one)."""
    return AmazonCloudWatchEMFProvider(
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE,
        service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE,
        metric_set={},
        dimension_set={},
        metadata_set={},
    )


def begin(function: str, request_id: str) -> contextvars.Token:
    """Open this invocation's metric set; pass the token to ``end``."""
    metrics = Metrics(provider=_provider())
    metrics.add_metadata("function", function)
    if request_id:
        metrics.add_metadata("request_id", request_id)
    return _current.set(metrics)


def add(name: str, value: float = 1, unit: MetricUnit = MetricUnit.Count) -> None:
    """Add to a metric of the current invocation (none: nothing happens)."""
    metrics = _current.get()
    if metrics is not None:
        metrics.add_metric(name=name, unit=unit, value=value)


def add_bytes(name: str, size: int) -> None:
    add(name, size, MetricUnit.Bytes)


def emit_namespace(namespace: str, stored: int, logical: int) -> None:
    """A namespace's stored bytes, as its own EMF document with the extra dimension ``namespace``.

    Only the stored-bytes metrics carry it (each namespace is one more custom
    metric in CloudWatch's bill, so request metrics stay per service). Printed
    at once, only inside an invocation, and not when ``POWERTOOLS_METRICS_DISABLED`` is set.
    """
    if _current.get() is None or os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in ("1", "true"):
        return
    try:
        document = Metrics(provider=_provider())
        document.add_dimension(NAMESPACE_DIMENSION, namespace)
        document.add_metric(name=STORED_BYTES, unit=MetricUnit.Bytes, value=stored)
        document.add_metric(name=STORED_LOGICAL_BYTES, unit=MetricUnit.Bytes, value=logical)
        document.flush_metrics()
    except Exception:  # noqa: BLE001 - a metric must never fail a pass
        logger.warning("stored-bytes metric not emitted", exc_info=True)


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
    if metrics is None or not metrics.provider.metric_set:
        return
    try:
        metrics.flush_metrics()
    except Exception:  # noqa: BLE001 - a metric must never fail a request
        logger.warning("metrics not flushed", exc_info=True)
