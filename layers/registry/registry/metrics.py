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

_current: contextvars.ContextVar[Metrics | None] = contextvars.ContextVar("registry_metrics", default=None)


def begin(function: str, request_id: str) -> contextvars.Token:
    """Open this invocation's metric set; pass the token to ``end``."""
    provider = AmazonCloudWatchEMFProvider(
        namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or NAMESPACE,
        service=os.environ.get("POWERTOOLS_SERVICE_NAME") or SERVICE,
        metric_set={},
        dimension_set={},
        metadata_set={},
    )
    metrics = Metrics(provider=provider)
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
