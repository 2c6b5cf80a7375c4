"""Section: pulls through the pull-through cache, against pulling from the upstream directly.

The upstream is Debian's docker-registry (filesystem storage, serving blob bytes
itself, anonymous) on 127.0.0.1; the cache is the local stack with
``UPSTREAMS=mirror=<upstream>,library``. A 3-layer image (3 × 4 MB) is pushed to
the upstream, then skopeo copies it to a fresh OCI layout, each pull timed
from skopeo's start to its exit:

* directly from the upstream (the yardstick);
* through the cache, first pull (manifest and blobs fetched upstream, stored in S3);
* through the cache, second pull (served from DynamoDB and S3 only).

Upstream requests are counted from the upstream's access log (manifest and
blob GETs and HEADs). Runs are repeated with fresh image names; medians shown.

    python scripts/bench.py --only cache       this section alone (under a minute on 2 cores)
"""

from __future__ import annotations

import os
import re
import shutil
import time

from bench import median, quiet_env, use_repo_paths

use_repo_paths()

from support import images, skopeo  # noqa: E402
from support._process import make_scratch  # noqa: E402
from support.registry import ReferenceRegistry  # noqa: E402

LAYERS = [4_000_000] * 3


def _upstream_requests(upstream: ReferenceRegistry) -> dict:
    log = upstream.log()
    return {
        "manifest": len(re.findall(r'"(?:GET|HEAD) /v2/[^ ]*/manifests/', log)),
        "blob": len(re.findall(r'"(?:GET|HEAD) /v2/[^ ]*/blobs/', log)),
    }


def _timed_pull(ref: str, layout) -> float:
    started = time.perf_counter()
    skopeo.copy(ref, images.oci_ref(layout, "v1"))
    return time.perf_counter() - started


def _delta(after: dict, before: dict) -> dict:
    return {k: after[k] - before[k] for k in after}


def one_run(stack, upstream: ReferenceRegistry, scratch, n: int) -> dict:
    source = scratch / f"src{n}"
    images.write_image(source, LAYERS, tag="v1", compresslevel=0)
    skopeo.copy(images.oci_ref(source, "v1"), f"{upstream.host}/library/bench{n}:v1")
    row = {}
    for label, ref in (("direct", f"{upstream.host}/library/bench{n}:v1"), ("first", f"{stack.address}/mirror/bench{n}:v1"),
                       ("second", f"{stack.address}/mirror/bench{n}:v1")):
        before = _upstream_requests(upstream)
        row[f"{label}_s"] = _timed_pull(ref, scratch / f"{label}{n}")
        row[f"{label}_upstream"] = _delta(_upstream_requests(upstream), before)
        shutil.rmtree(scratch / f"{label}{n}", ignore_errors=True)
    shutil.rmtree(source, ignore_errors=True)
    return row


def run(options: dict) -> dict:
    quiet_env()
    from local_stack.stack import LocalStack

    import support

    scratch = make_scratch("bench-cache-")
    upstream = ReferenceRegistry().start()
    stack = None
    try:
        env = {"REGISTRY_UPSTREAMS": f"mirror={upstream.url},library", "REGISTRY_RATE_LIMIT_ANONYMOUS": "unlimited"}
        stack = LocalStack(port=support.free_port(), env=env).start()
        from registry.log import logger

        logger.registered_handler.setStream(open(os.devnull, "w"))
        rows = [one_run(stack, upstream, scratch, n) for n in range(int(options.get("runs", 3)))]
    finally:
        if stack is not None:
            stack.stop()
        upstream.stop()
        shutil.rmtree(scratch, ignore_errors=True)
    return {
        "rows": rows,
        "image": f"{len(LAYERS)} × {LAYERS[0] / 1e6:.0f} MB",
        **{f"{k}_median": median(r[f"{k}_s"] for r in rows) for k in ("direct", "first", "second")},
    }


def section(result: dict) -> str:
    """The Markdown section of docs/performance.md."""
    from bench.report import num, table

    last = result["rows"][-1]
    rows = []
    for label, key in (("upstream directly", "direct"), ("through the cache, first pull", "first"), ("through the cache, second pull", "second")):
        requests = last[f"{key}_upstream"]
        rows.append([label, num(result[f"{key}_median"]), str(requests["manifest"]), str(requests["blob"])])
    return "\n\n".join([
        "## Pull-through cache",
        f"skopeo pulls a {result['image']} image (config and 3 layers) to a fresh OCI layout: from Debian's docker-registry "
        "directly, then through the local stack's cache prefix twice (`python scripts/bench.py --only cache`). Median of "
        f"{len(result['rows'])} runs, each with a new image; upstream requests (manifest, blob: GET and HEAD) from the "
        "upstream's access log, for the last run.",
        table(["pull", "seconds", "upstream manifest requests", "upstream blob requests"], rows),
        "The first pull pays for the upstream fetch (each blob is read from the upstream, hashed and written to S3 "
        "before the 307) on top of the pull itself; the second makes no upstream request at all within `CacheTagSeconds`, "
        "and after it one manifest HEAD per tag.",
    ])
