"""Section: what a garbage-collection pass costs (registry.services.gc).

A registry of ``images`` images of 10 layers each (10 distinct blobs an image,
1,000 blobs for 100 images) is written through the storage layer in-process
(moto), as pushes write it: blobs stored and linked, manifests put with a tag
(the items a push leaves, written in batches: ``_write_directly``; moto's
TransactWriteItems copies the whole table per call, which made building
through the push path itself quadratic).
The passes run against moto with two bench-only replacements that keep its
semantics: TransactWriteItems' rollback journals the items it touches instead
of copying the table (bench/moto_journal.py), and a Query reads its partition
instead of sorting the table (bench/moto_query.py); without them a pass over
10,000 blobs was quadratic in the emulator and did not finish.
A first pass consumes the candidates the uploads left (the steady state of a
registry whose passes run on schedule). Then:

* **nothing to do**: a pass right away;
* **1 % garbage**: one image in a hundred untagged, then a pass (its manifest,
  its 10 links and its 10 blobs go);
* **retention**: a policy on one repository (``bench/app1``, a tenth of the
  images) keeping its 90 % newest tags, then a pass: the policy deletes 1 % of
  the registry's tags and the same pass frees their images (untagged days 0).

Reported: the AWS calls of each pass (exact, botocore hook) and its wall time
here (moto in the same process: about 1 ms a call; on AWS a DynamoDB call takes
a few ms, so the call count is what transfers).

    python scripts/bench.py --only gc        # 1,000 and 10,000 blobs
"""

from __future__ import annotations

import json
import os
import time

from bench import AWS_ENV, use_repo_paths

use_repo_paths()

LAYERS = 10


def run(options: dict) -> dict:
    from moto import mock_aws

    from bench import moto_journal, moto_query

    # moto's whole-table copy per transaction and whole-table sort per Query made a 10,000-blob pass
    # quadratic in the emulator; both replacements keep moto's semantics (their docstrings, their tests).
    moto_journal.install()
    moto_query.install()
    os.environ.update(AWS_ENV)
    os.environ.pop("AWS_ENDPOINT_URL", None)
    from local_stack import resources

    for key, value in resources.function_environment().items():
        os.environ[key] = value
    os.environ.update({"GC_UNTAGGED_DAYS": "0", "GC_LINK_GRACE_SECONDS": "0"})
    results = {}
    for images in options.get("images", (100,)):
        with mock_aws():
            results[str(images)] = _measure(images, resources)
    return {"layers": LAYERS, "by_images": results}


def _measure(images: int, resources) -> dict:
    from registry import aws, config
    from registry.references import Digest
    from registry.services import gc, retention
    from registry.storage import blobstore, metadata

    aws.reset()
    config.settings.cache_clear()
    gc.USES_FRESH_SECONDS = 0  # as if an hour had passed since the pushes
    resources.create_bucket()
    resources.create_table()
    for image in range(images):
        if image >= DIRECT_FROM:
            _write_directly(image, blobstore, metadata)
            continue
        blobs = []
        for layer in range(LAYERS):
            data = f"image {image} layer {layer}".encode()
            digest = Digest.of(data)
            blobstore.put_blob(digest, data)
            metadata.link_blob(f"bench/app{image % 10}", digest, len(data), epoch=metadata.claim_blob(digest))
            blobs.append(digest)
        layer = "application/vnd.oci.image.layer.v1.tar+gzip"
        descriptors = [{"mediaType": layer, "digest": str(b), "size": 20} for b in blobs]
        config_descriptor = {**descriptors[0], "mediaType": "application/vnd.oci.image.config.v1+json"}
        body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config_descriptor, "layers": descriptors[1:]}).encode()
        record = {"media_type": "application/vnd.oci.image.manifest.v1+json", "size": len(body), "body": body}
        metadata.put_manifest(f"bench/app{image % 10}", Digest.of(body), record, f"v{image}", blobs=blobs)
    gc.run()  # consumes the uploads' candidates: the steady state
    idle = _pass(gc, aws)
    for image in range(0, images, 100):  # 1 %
        metadata.delete_tag(f"bench/app{image % 10}", f"v{image}")
    garbage = _pass(gc, aws)
    per_repository = images // 10
    keep = max(per_repository - max(per_repository // 10, 1), 1)
    retention.set_policy("bench/app1", retention.parse_policy("bench/app1", {"keep": keep}))
    policy = _pass(gc, aws)
    return {"blobs": images * LAYERS, "idle": idle, "garbage": garbage, "retention": policy, "retention_keep": keep}


# Images from this one on are written as BatchWriteItem of the items a push leaves (see _write_directly).
DIRECT_FROM = 0


def _write_directly(image: int, blobstore, metadata):
    """Image ``image`` as its push leaves the table once a pass has consumed its candidates, written in batches.

    moto's TransactWriteItems deep-copies every table for its rollback, so
    writing 10,000 blobs through ``link_blob`` and ``put_manifest`` is
    quadratic here (it did not finish in 40 minutes); the items are the same:
    blob record, link and reverse link per blob; manifest (with its ``tags``),
    tag, ``USES#`` and ``PUSHED#`` entries per image.
    """
    import json as _json
    import time as _time

    from registry import keys
    from registry.references import Digest
    from registry.storage import dynamo

    name, tag, now = f"bench/app{image % 10}", f"v{image}", int(_time.time()) - 7200
    blobs, items = [], []
    for layer in range(LAYERS):
        data = f"image {image} layer {layer}".encode()
        digest = Digest.of(data)
        blobstore.put_blob(digest, data)
        blobs.append(digest)
        items += [
            {**keys.blob_key(digest), "size": len(data), "created": now, "epoch": "bench"},
            {**keys.link_key(name, digest), "size": len(data), "created": now},
            keys.reverse_link_key(digest, name),
        ]
    layer_type = "application/vnd.oci.image.layer.v1.tar+gzip"
    descriptors = [{"mediaType": layer_type, "digest": str(b), "size": 20} for b in blobs]
    config_descriptor = {**descriptors[0], "mediaType": "application/vnd.oci.image.config.v1+json"}
    body = _json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": config_descriptor, "layers": descriptors[1:]}).encode()
    digest = Digest.of(body)
    record = {"media_type": "application/vnd.oci.image.manifest.v1+json", "size": len(body), "body": body}
    items += [
        {**keys.manifest_key(name, digest), **record, "created": now, "tracked": now, "pushed": now, "tags": {tag}},
        {**keys.tag_key(name, tag), **record, "digest": str(digest), "updated": now},
        keys.pushed_key(name, tag, now),
        *({**keys.uses_key(name, blob, digest), "created": now} for blob in blobs),
    ]
    dynamo.batch_put(items)


def _pass(gc, aws) -> dict:
    calls: list[str] = []

    def count(model, **_):
        calls.append(f"{model.service_model.service_name}:{model.name}")

    clients = (aws.s3(), aws.dynamodb())
    for client in clients:
        client.meta.events.register("before-call", count)
    started = time.perf_counter()
    report = gc.run()
    seconds = time.perf_counter() - started
    for client in clients:
        client.meta.events.unregister("before-call", count)
    return {
        "seconds": seconds,
        "calls": len(calls),
        "by_operation": {name: calls.count(name) for name in sorted(set(calls))},
        "removed": {kind: sum(1 for r in report.removed if r.kind == kind) for kind in ("tag", "manifest", "link", "blob")},
        "bytes_freed": report.bytes_freed,
    }


def section(result: dict) -> str:
    rows = []
    for data in result["by_images"].values():
        for label, key in (("nothing to do", "idle"), ("1 % garbage", "garbage"), ("1 % of tags expired by a policy", "retention")):
            if key not in data:
                continue
            p = data[key]
            removed = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in p["removed"].items() if n) or "nothing"
            ops = ", ".join(f"{n} {name.split(':')[1]}" for name, n in p["by_operation"].items())
            rows.append(f"| {data['blobs']:,} blobs, {label} | {removed} | {p['calls']:,} ({ops}) | {p['seconds']:.2f} |")
    return "\n".join(
        [
            "## Garbage collection",
            "",
            f"A pass over a registry of images of {result['layers']} distinct layers, written in-process (moto) as pushes "
            "write it, after a first pass consumed what the uploads queued. A pass reads only its candidates, so its "
            "calls follow what changed, not the number of blobs. The retention row: a policy on one repository keeping "
            "its 90 % newest tags; the same pass deletes the rest and frees their images. moto's TransactWriteItems "
            "rollback and table Query run as bench-only equivalents that touch the items and the partition concerned, "
            "not the whole table (scripts/bench/moto_journal.py, moto_query.py).",
            "",
            "| registry, pass | removed | AWS calls | seconds here |",
            "|---|---|---|---:|",
            *rows,
        ]
    )
