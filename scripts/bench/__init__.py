"""Helpers for ``scripts/bench.py``: one module per section of docs/performance.md.

    calls      AWS calls, capacity units and handler time per request (in-process, moto)
    e2e        skopeo push/pull against the local stack and Debian's docker-registry (S3 driver)
    coldstart  import time of each function's app.py in fresh interpreters
    scale      manifest GET, tags list and catalog with 10 … 10,000 tags / repositories
    cost       prices applied to the measured counts (pure arithmetic, no AWS)
    proxy      pushes of large layers through registry-proxy, its peak memory
    verify     Lambda cost of verifying a direct-to-S3 upload, per GiB

Each measuring section exposes ``run(options) -> dict`` (JSON-serialisable); the
orchestrator runs each in its own interpreter so emulator state never leaks.
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "registry"
SUPPORT = ROOT / "tests" / "integration"

# A pull limit no benchmark reaches: the metering code (one counter write per
# manifest GET) still runs, as it does with the template's defaults.
NO_LIMIT_REACHED = "100000000;w=21600"

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


def use_repo_paths() -> None:
    """Make the repo root (local_stack, tests), the layer (registry) and the harness (support) importable."""
    for path in (SUPPORT, ROOT, LAYER):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def registry_env() -> dict[str, str]:
    """What the in-process sections set: fake credentials and unreachable pull limits."""
    return {
        **AWS_ENV,
        "RATE_LIMIT_ANONYMOUS": NO_LIMIT_REACHED,
        "RATE_LIMIT_AUTHENTICATED": NO_LIMIT_REACHED,
        "POWERTOOLS_LOG_LEVEL": "INFO",  # the template's level: log volume is part of the cost
    }


def median(values) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def quiet_env() -> None:
    """Keep botocore's deprecation chatter and werkzeug's access log off the console."""
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning")
