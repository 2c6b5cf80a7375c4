"""Section 2: skopeo push and pull, our local stack side by side with Debian's docker-registry.

Both registries keep their bytes in the **same moto server**: ours is the
local stack (``LocalStack``: moto + the gateway running the real handlers,
AWS limits on), the reference is distribution 2.8 with its S3 storage driver
pointed at that moto (its own bucket, redirects on, so both serve blob pulls
with a 307 to a presigned moto URL). A WSGI middleware around moto's app
counts every request moto serves; since runs are sequential, each run's
counts are its own.

Every run pushes freshly generated images (nothing can be deduplicated or
cross-mounted from an earlier run) and pulls them into an empty OCI layout.
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager, nullcontext
import re
import secrets
import shutil
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs

import boto3

from bench import AWS_ENV, NO_LIMIT_REACHED, median, quiet_env, use_repo_paths

use_repo_paths()

import support  # noqa: E402  (tests/integration/support: the real-client harness)
from support import images, skopeo  # noqa: E402
from support._process import make_scratch, spawn, terminate  # noqa: E402

IMAGES = {"3 × 4 MB": [4_000_000] * 3, "30 × 1 MB": [1_000_000] * 30}
REFERENCE_BUCKET = "reference-registry"
ADMIN = ("admin", secrets.token_urlsafe(18))
# distribution's access log: 127.0.0.1 - - [date] "HEAD /v2/… HTTP/1.1" 404 157 "" "skopeo/1.9.3"
ACCESS_LINE = re.compile(r'^\S+ - \S* \[[^\]]+\] "[A-Z]+ /v2/')


# --- counting what moto serves ----------------------------------------------------------------


class MotoCounter:
    """WSGI middleware: counts moto's requests by service (S3 per bucket, DynamoDB, KMS)."""

    def __init__(self, app):
        self.app = app
        self._lock = threading.Lock()
        self._counts: Counter = Counter()

    def __call__(self, environ, start_response):
        with self._lock:
            self._counts[self.classify(environ)] += 1
        return self.app(environ, start_response)

    @staticmethod
    def classify(environ) -> str:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if target:
            service = {"DynamoDB": "dynamodb", "TrentService": "kms"}.get(target.split("_")[0].split(".")[0], target)
            return f"{service}.{target.split('.')[-1]}"
        bucket = environ.get("PATH_INFO", "/").lstrip("/").split("/")[0]
        signed = "X-Amz-Signature" in parse_qs(environ.get("QUERY_STRING", ""))
        return f"s3:{bucket}:{'presigned ' if signed else ''}{environ['REQUEST_METHOD']}"

    def take(self) -> Counter:
        """The counts since the last take."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts


def s3_summary(counts: Counter, bucket: str) -> dict:
    """Requests to one bucket: made by the registry (signed) and by the client (presigned)."""
    mine = {key.split(":", 2)[2]: n for key, n in counts.items() if key.startswith(f"s3:{bucket}:")}
    by_registry = {method: n for method, n in mine.items() if not method.startswith("presigned")}
    return {
        "registry": sum(by_registry.values()),
        "presigned": sum(n for method, n in mine.items() if method.startswith("presigned")),
        "by_method": dict(sorted(by_registry.items())),
    }


# --- the two registries ---------------------------------------------------------------------


class Ours:
    """The local stack, token auth on (skopeo signs in as the admin), pull limits out of reach."""

    label = "ours (local stack, auth on, admin creds)"
    creds = ADMIN

    def __init__(self):
        from local_stack.stack import LocalStack

        env = {"REGISTRY_ADMIN_USER": ADMIN[0], "REGISTRY_ADMIN_PASSWORD": ADMIN[1],
               "RATE_LIMIT_ANONYMOUS": NO_LIMIT_REACHED, "RATE_LIMIT_AUTHENTICATED": NO_LIMIT_REACHED}
        self.stack = LocalStack(port=support.free_port(), env=env).start()
        self.requests = 0
        self._lock = threading.Lock()
        self._count_requests()
        self._silence_logs()

    @staticmethod
    def _silence_logs():
        """The functions log one JSON line per request at INFO (the template's level): keep them off the console."""
        from registry.log import logger

        logger.registered_handler.setStream(open(os.devnull, "w"))

    def active(self):
        return nullcontext()

    def _count_requests(self):
        invoke = self.stack.gateway.invoke

        def counted(*args, **kwargs):
            with self._lock:
                self.requests += 1
            return invoke(*args, **kwargs)

        self.stack.gateway.invoke = counted

    @property
    def host(self) -> str:
        return self.stack.address

    @property
    def bucket(self) -> str:
        return self.stack.state["bucket"]

    def take_requests(self) -> int:
        """Requests the gateway served since the last take (``/token`` included)."""
        with self._lock:
            taken, self.requests = self.requests, 0
        return taken

    def stop(self):
        self.stack.stop()


class OursAuthOff:
    """The same stack with token auth switched off for its runs (AUTH_ENABLED=false), like the reference."""

    label = "ours (local stack, auth off)"
    creds = None

    def __init__(self, ours: Ours):
        self.ours = ours
        self.host, self.bucket = ours.host, ours.bucket

    def take_requests(self) -> int:
        return self.ours.take_requests()

    @contextmanager
    def active(self):
        from registry.config import settings

        before = os.environ.get("AUTH_ENABLED")
        os.environ["AUTH_ENABLED"] = "false"
        settings.cache_clear()
        try:
            yield
        finally:
            if before is None:
                del os.environ["AUTH_ENABLED"]
            else:
                os.environ["AUTH_ENABLED"] = before
            settings.cache_clear()

    def stop(self):
        pass


class Reference:
    """Debian's docker-registry (distribution 2.8) with the S3 driver on the same moto server."""

    label = "docker-registry 2.8 (S3 driver, same moto)"
    creds = None
    bucket = REFERENCE_BUCKET

    def __init__(self, aws_endpoint: str):
        boto3.client("s3", endpoint_url=aws_endpoint, region_name="us-east-1").create_bucket(Bucket=REFERENCE_BUCKET)
        (binary,) = support.require("docker-registry")
        self.port = support.free_port()
        self.scratch = make_scratch("bench-refreg-")
        self.log = self.scratch / "registry.log"
        (self.scratch / "config.yml").write_text(json.dumps(self.config(aws_endpoint)))
        # The Go SDK refuses a custom CA bundle with the driver's own transport: drop AWS_CA_BUNDLE.
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        self.proc = spawn([binary, "serve", str(self.scratch / "config.yml")], self.log, env=env)
        self._seen = 0
        try:
            support.wait_until(self._ready, 30, f"docker-registry on {self.host}")
        except Exception:
            self.stop()
            raise

    def config(self, aws_endpoint: str) -> dict:
        s3 = {"region": "us-east-1", "regionendpoint": aws_endpoint, "bucket": REFERENCE_BUCKET,
              "accesskey": AWS_ENV["AWS_ACCESS_KEY_ID"], "secretkey": AWS_ENV["AWS_SECRET_ACCESS_KEY"],
              "secure": False, "v4auth": True}
        return {"version": 0.1, "log": {"level": "error", "accesslog": {"disabled": False}},
                "storage": {"s3": s3, "delete": {"enabled": True}}, "http": {"addr": self.host}}

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited:\n{self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://{self.host}/v2/", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def active(self):
        return nullcontext()

    def take_requests(self) -> int:
        """HTTP requests in the access log since the last take."""
        lines = [line for line in self.log.read_text(errors="replace").splitlines() if ACCESS_LINE.match(line)]
        taken, self._seen = len(lines) - self._seen, len(lines)
        return taken

    def stop(self):
        terminate(self.proc, timeout=5)
        shutil.rmtree(self.scratch, ignore_errors=True)


# --- runs -----------------------------------------------------------------------------------


def timed_copy(src: str, dst: str, creds) -> float:
    started = time.perf_counter()
    skopeo.copy(src, dst, creds=creds)
    return time.perf_counter() - started


def one_run(target, counter: MotoCounter, layout: Path, tag: str, repo: str, scratch: Path) -> list[dict]:
    """Push image ``tag`` of ``layout`` to ``target``, then pull it back; a record per direction."""
    ref = f"{target.host}/{repo}:{tag}"
    records = []
    counter.take(), target.take_requests()
    steps = (("push", images.oci_ref(layout, tag), ref), ("pull", ref, f"oci:{scratch / secrets.token_hex(4)}:{tag}"))
    for direction, src, dst in steps:
        with target.active():
            seconds = timed_copy(src, dst, target.creds)
        counts = counter.take()
        records.append({
            "target": target.label, "direction": direction, "seconds": seconds,
            "http_requests": target.take_requests(),
            "s3": s3_summary(counts, target.bucket),
            "dynamodb": sum(n for k, n in counts.items() if k.startswith("dynamodb.")),
            "kms": sum(n for k, n in counts.items() if k.startswith("kms.")),
            "dynamodb_ops": {k: n for k, n in sorted(counts.items()) if k.startswith(("dynamodb.", "kms."))},
        })
    return records


def warm_up(targets, counter, scratch: Path) -> None:
    """A small push and pull per registry first, so no timed run pays for first use."""
    for k, target in enumerate(targets):
        layout = scratch / f"warm{k}"
        images.write_image(layout, [10_000], tag="warm")
        one_run(target, counter, layout, "warm", f"bench/warm{k}", scratch)


def timed_runs(targets, counter, scratch: Path, runs: int) -> list[dict]:
    """``runs`` rounds; each target gets its own fresh images (the two "ours" share a stack)."""
    records = []
    for n in range(runs):
        order = list(enumerate(targets))
        for k, target in order if n % 2 == 0 else order[::-1]:
            layout = scratch / f"run{n}-{k}"
            for i, (image, sizes) in enumerate(IMAGES.items()):
                images.write_image(layout, sizes, tag=f"img{i}")
                for record in one_run(target, counter, layout, f"img{i}", f"bench/img{i}-{n}-{k}", scratch):
                    records.append({**record, "image": image})
            shutil.rmtree(layout, ignore_errors=True)
    return records


def summarize(records: list[dict], labels: list[str]) -> list[dict]:
    """Median time and counts per (image, direction, target)."""
    rows = []
    keys = sorted({(r["image"], r["direction"], r["target"]) for r in records}, key=lambda k: (list(IMAGES).index(k[0]), k[1] != "push", labels.index(k[2])))
    for image, direction, target in keys:
        mine = [r for r in records if (r["image"], r["direction"], r["target"]) == (image, direction, target)]
        rows.append({
            "image": image, "direction": direction, "target": target, "runs": len(mine),
            "median_s": median(r["seconds"] for r in mine),
            "all_s": [round(r["seconds"], 3) for r in mine],
            "http_requests": median(r["http_requests"] for r in mine),
            "s3_registry": median(r["s3"]["registry"] for r in mine),
            "s3_presigned": median(r["s3"]["presigned"] for r in mine),
            "s3_by_method": mine[0]["s3"]["by_method"],
            "dynamodb": median(r["dynamodb"] for r in mine),
            "kms": median(r["kms"] for r in mine),
            "dynamodb_ops": mine[0]["dynamodb_ops"],
        })
    return rows


def run(options: dict) -> dict:
    quiet_env()
    scratch = make_scratch("bench-e2e-")
    ours = reference = None
    try:
        ours = Ours()
        counter = MotoCounter(ours.stack.moto.server.app)
        ours.stack.moto.server.app = counter  # werkzeug serves self.server.app on each request
        reference = Reference(ours.stack.aws_endpoint)
        targets = (ours, OursAuthOff(ours), reference)
        warm_up(targets, counter, scratch)
        records = timed_runs(targets, counter, scratch, options.get("runs", 3))
        return {
            "rows": summarize(records, [t.label for t in targets]),
            "runs": options.get("runs", 3),
            "images": list(IMAGES),
            "labels": [t.label for t in targets],
            "skopeo": _version("skopeo", "--version"),
            "reference_version": _version("docker-registry", "--version"),
        }
    finally:
        for target in (reference, ours):
            if target is not None:
                target.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def _version(binary: str, flag: str) -> str:
    return support.run([support.find(binary), flag]).stdout.strip()
