"""Section: pushes of large layers through registry-proxy, side by side with the reference registry.

The local stack (AWS limits on, the direct-upload extension) with ``registry-proxy`` in front of it,
against Debian's docker-registry with its S3 driver on the **same moto server** (``e2e.Reference``).
For each image (1 × 1 GiB, 3 × 200 MB; random bytes in stored-deflate gzip layers) skopeo pushes it
through a freshly started proxy and then, the same bytes, to the reference. Measured per image:

* push seconds through the proxy (from skopeo's start to its exit, digest verification included)
  and to the reference;
* the proxy's peak resident memory during that push (``VmHWM`` of /proc/PID/status, the kernel's
  high-water mark, which is what ``/usr/bin/time -v`` reports as "Maximum resident set size"),
  and its resident memory when idle before the push.

    python scripts/bench.py --only proxy       this section alone (a few minutes on 2 cores)
"""

from __future__ import annotations

import shutil
import time

from bench import median, quiet_env, use_repo_paths

use_repo_paths()

from bench.e2e import ADMIN, Ours, Reference  # noqa: E402
from support import images, skopeo  # noqa: E402
from support._process import make_scratch  # noqa: E402
from support.proxy import RegistryProxy  # noqa: E402

GiB = 1024 ** 3
IMAGES = {"1 × 1 GiB": [GiB], "3 × 200 MB": [200_000_000] * 3}


def _timed_push(layout, ref: str, creds) -> float:
    started = time.perf_counter()
    skopeo.copy(images.oci_ref(layout, "v1"), ref, creds=creds, timeout=3600)
    return time.perf_counter() - started


def push_both(ours: Ours, reference: Reference, label: str, sizes: list[int], scratch, n: int) -> dict:
    """One image pushed through a fresh proxy, then to the reference: a result row."""
    layout = scratch / f"img{n}"
    images.write_image(layout, sizes, tag="v1", compresslevel=0)
    try:
        with RegistryProxy(ours.stack.url) as proxy:
            idle = proxy.peak_rss()
            through = _timed_push(layout, f"{proxy.address}/bench/proxy{n}:v1", ours.creds)
            peak = proxy.peak_rss()
        direct = _timed_push(layout, f"{reference.host}/bench/proxy{n}:v1", reference.creds)
    finally:
        shutil.rmtree(layout, ignore_errors=True)
    total = sum(sizes)
    return {"image": label, "bytes": total, "proxy_s": through, "reference_s": direct, "ratio": through / direct,
            "proxy_mb_s": total / through / 1e6, "peak_rss_mb": peak / 1e6, "idle_rss_mb": idle / 1e6}


def run(options: dict) -> dict:
    quiet_env()
    scratch = make_scratch("bench-proxy-")
    ours = reference = None
    try:
        ours = Ours()
        reference = Reference(ours.stack.aws_endpoint)
        rows = [push_both(ours, reference, label, sizes, scratch, n) for n, (label, sizes) in enumerate(IMAGES.items())]
        return {"rows": rows, "ratio_median": median(r["ratio"] for r in rows), "admin": ADMIN[0]}
    finally:
        for target in (reference, ours):
            if target is not None:
                target.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def section(result: dict) -> str:
    """The Markdown section of docs/performance.md."""
    from bench.report import num, table

    rows = [[r["image"], num(r["proxy_s"]), num(r["reference_s"]), f"{r['ratio']:.2f}×", num(r["proxy_mb_s"]),
             num(r["peak_rss_mb"], 0), num(r["idle_rss_mb"], 0)] for r in result["rows"]]
    return "\n\n".join([
        "## Large layers through registry-proxy",
        "skopeo pushes each image through `registry-proxy` (8 MiB parts, 4 in flight) to the local stack with AWS "
        "limits on, and the same image to docker-registry 2.8 (S3 driver on the same moto). The proxy's time includes "
        "the registry's digest verification before the blob becomes visible (202 and polling for large blobs). "
        "Peak memory is the proxy process's `VmHWM` (what `/usr/bin/time -v` reports as maximum resident set size).",
        table(["image", "through the proxy, s", "docker-registry, s", "ratio", "proxy MB/s", "proxy peak RSS, MB",
               "proxy idle RSS, MB"], rows),
    ])
