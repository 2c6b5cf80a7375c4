"""Section: what verifying a direct-to-S3 upload costs, per GiB pushed.

A direct upload's bytes reach S3 without Lambda; the one Lambda cost that grows
with the blob is the verification read (``registry.services.verification``):
64 MiB ranged GETs hashed with SHA-256, then one copy. This section pushes a
blob of ``mib`` MiB as S3 parts (in-process moto), runs ``advance`` with no
deadline pressure, and reports per GiB:

* the CPU seconds of the verifying process (``time.process_time``) and the wall
  seconds; moto runs in the same process, so this includes moto serving the
  reads and the copy: an upper bound;
* the CPU seconds of the hashing alone (``registry.hashing``, 64 MiB at a time,
  no I/O): what Lambda's CPU must do for sure;
* the AWS calls made (exact, from a botocore hook).

What Lambda would bill is wall time × memory. On Lambda the read runs at S3's
per-connection throughput (the S3 performance guidelines speak of about 85–90
MB/s per connection) unless CPU is slower: a 1,024 MB function has about 0.58
of a vCPU (Lambda allocates CPU in proportion to memory; 1,769 MB is one vCPU).
So the estimate is max(bytes ÷ 90 MB/s, hashing CPU seconds ÷ 0.58) × 1 GB per
GiB, printed beside the measurements it rests on (boto3's own reading adds CPU
that this does not count).

    python scripts/bench.py --only verify
"""

from __future__ import annotations

import hashlib
import os
import time

from bench import AWS_ENV, use_repo_paths

use_repo_paths()

MIB = 1024 * 1024
S3_CONNECTION_BYTES_PER_SECOND = 90e6
VCPU_AT_1024_MB = 1024 / 1769


def run(options: dict) -> dict:
    from moto import mock_aws

    os.environ.update(AWS_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from local_stack import resources

    for key, value in resources.function_environment().items():
        os.environ[key] = value
    mib = int(options.get("mib", 512))
    with mock_aws():
        from registry import aws, config, keys
        from registry.references import Digest
        from registry.services import verification
        from registry.storage import blobstore, metadata

        aws.reset()
        config.settings.cache_clear()
        resources.create_bucket()
        resources.create_table()
        s3 = aws.s3()
        upload_id = "0" * 32
        metadata.create_upload(upload_id, {"name": "bench/verify", "owner": "", "offset": 0, "etags": [], "hashes": {}})
        multipart = blobstore.start_multipart(keys.upload_parts(upload_id))
        metadata.start_direct_upload(upload_id, multipart)
        digest, part = hashlib.sha256(), os.urandom(16 * MIB)
        for number in range(1, mib // 16 + 1):
            s3.upload_part(Bucket=config.settings().bucket, Key=keys.upload_parts(upload_id), UploadId=multipart, PartNumber=number, Body=part)
            digest.update(part)
        size = blobstore.complete_listed(keys.upload_parts(upload_id), multipart)
        session = verification.begin(upload_id, metadata.get_upload(upload_id), Digest.parse("sha256:" + digest.hexdigest()), size)
        calls: list[str] = []
        for client in (aws.s3(), aws.dynamodb()):
            client.meta.events.register("before-call", lambda model, **kw: calls.append(f"{model.service_model.service_name}:{model.name}"))
        cpu, wall = time.process_time(), time.perf_counter()
        session = verification.advance(upload_id, time.monotonic() + 3600)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        assert session["state"] == "verified", session
    gib = size / 1024**3
    hash_cpu = _hash_cpu_per_gib()
    lambda_seconds = max(1024**3 / S3_CONNECTION_BYTES_PER_SECOND, hash_cpu / VCPU_AT_1024_MB)
    return {
        "mib": mib,
        "cpu_s_per_gib": cpu / gib,
        "hash_cpu_s_per_gib": hash_cpu,
        "wall_s_per_gib": wall / gib,
        "calls": {name: calls.count(name) for name in sorted(set(calls))},
        "lambda_gb_s_per_gib": lambda_seconds * 1.0,
    }


def _hash_cpu_per_gib() -> float:
    from registry import hashing

    block, hasher = os.urandom(64 * MIB), hashing.resume("sha256")
    started = time.process_time()
    for _ in range(16):
        hasher.update(block)
    hasher.serialize()
    return time.process_time() - started


def section(result: dict) -> str:
    calls = ", ".join(f"{n} {name}" for name, n in result["calls"].items())
    return "\n".join(
        [
            "## Verifying a direct-to-S3 upload",
            "",
            f"A {result['mib']} MiB blob sent as S3 parts, then verified by `verification.advance` in-process (moto): "
            "the only Lambda work that grows with a pushed blob. Per GiB:",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| CPU seconds of SHA-256 alone (`rehashes`, 64 MiB blocks) | {result['hash_cpu_s_per_gib']:.2f} |",
            f"| CPU seconds of the whole verification here (moto serving the reads in the same process included: an upper bound) | {result['cpu_s_per_gib']:.2f} |",
            f"| wall seconds here | {result['wall_s_per_gib']:.2f} |",
            f"| Lambda GB-seconds, estimated at 1,024 MB: max(1 GiB ÷ 90 MB/s, SHA-256 CPU ÷ 0.58 vCPU) | {result['lambda_gb_s_per_gib']:.1f} |",
            "",
            f"AWS calls for the whole {result['mib']} MiB: {calls}.",
        ]
    )
