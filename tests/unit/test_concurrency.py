"""Racing requests end in a consistent state: no lost tag, no wrong bytes, no orphaned link."""

from __future__ import annotations

import hashlib
import os

import boto3

from local_stack.resources import BUCKET_NAME

OCTETS = {"content-type": "application/octet-stream"}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_racing_patches_on_one_session_one_wins_and_the_blob_is_right(client, monkeypatch):
    from registry.services import uploads
    from registry.storage import metadata

    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    upload_id = location.rsplit("/", 1)[1]
    assert client.request("PATCH", location, b"abc", OCTETS).status == 202
    stale = metadata.get_upload(upload_id)  # what a second request read at the same moment
    assert client.request("PATCH", location, b"def", {**OCTETS, "content-range": "3-5"}).status == 202

    reads = iter([stale])
    real_get_upload = metadata.get_upload
    monkeypatch.setattr(uploads.metadata, "get_upload", lambda _id: next(reads, None) or real_get_upload(_id))
    loser = client.request("PATCH", location, b"XYZ", {**OCTETS, "content-range": "3-5"})
    monkeypatch.undo()

    assert (loser.status, loser.error_codes, loser.header("range")) == (416, ["RANGE_INVALID"], "0-5")
    reply = client.request("PUT", f"{location}?digest={sha256(b'abcdef')}")
    assert reply.status == 201
    key = f"blobs/sha256/{sha256(b'abcdef').split(':')[1]}"
    assert boto3.client("s3").get_object(Bucket=BUCKET_NAME, Key=key)["Body"].read() == b"abcdef"
    leftovers = boto3.client("s3").list_objects_v2(Bucket=BUCKET_NAME, Prefix="uploads/").get("Contents", [])
    assert leftovers == []


def test_interleaved_uploads_of_one_blob_all_succeed_and_store_it_once(client):
    """Eight clients upload the same blob, their requests interleaved step by step.

    (Interleaved, not threaded: moto's in-process backends are not thread-safe,
    so a threaded test would measure moto. Real S3 makes each PUT of the one
    content-addressed key atomic, and DynamoDB transactions either commit or
    are cancelled and retried: see the transaction-conflict test below.)
    """
    data = os.urandom(50_000)
    locations = [client.request("POST", f"/v2/team/app{i % 3}/blobs/uploads/").header("location") for i in range(8)]
    assert {client.request("PATCH", location, data, OCTETS).status for location in locations} == {202}
    assert {client.request("PUT", f"{location}?digest={sha256(data)}").status for location in locations} == {201}
    for i in range(3):
        head = client.request("HEAD", f"/v2/team/app{i}/blobs/{sha256(data)}")
        assert (head.status, head.header("content-length")) == (200, str(len(data)))
    objects = boto3.client("s3").list_objects_v2(Bucket=BUCKET_NAME).get("Contents", [])
    assert [o["Key"] for o in objects] == [f"blobs/sha256/{sha256(data).split(':')[1]}"]


def test_a_transaction_conflict_is_retried_not_returned_as_an_error(client):
    """DynamoDB cancels a transaction that races another on the same item (TransactionConflict)."""
    from botocore.exceptions import ClientError

    from registry import aws

    conflicts = iter([True, True])

    def conflict_twice(model, **kwargs):
        if model.name == "TransactWriteItems" and next(conflicts, False):
            reasons = [{"Code": "None"}, {"Code": "TransactionConflict"}]
            raise ClientError(
                {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}, "CancellationReasons": reasons},
                "TransactWriteItems",
            )

    aws.dynamodb().meta.events.register("before-call.dynamodb.TransactWriteItems", conflict_twice)
    digest = client.push_blob("team/app", b"contended")
    assert client.request("HEAD", f"/v2/team/app/blobs/{digest}").status == 200
    assert next(conflicts, "used") == "used"


def test_pushes_of_one_tag_leave_it_on_a_complete_manifest(client):
    pushed = dict(reversed(client.push_image("team/app", "latest", [f"layer {i}".encode()])) for i in range(4))
    reply = client.request("GET", "/v2/team/app/manifests/latest")
    winner = reply.header("docker-content-digest")
    assert reply.body == pushed[winner]
    for digest in pushed:  # every pushed manifest stays pullable by digest
        assert client.request("HEAD", f"/v2/team/app/manifests/{digest}").status == 200


def test_two_first_pushes_of_a_repository_interleaved_both_land(client, monkeypatch):
    """A client pushing an index's platform manifests in parallel into a new repository (ctr, buildx).

    The first push of a repository creates its catalog item on condition that
    it is still absent; here the second push commits between the first one's
    read of the catalog (absent) and its transaction: the first is cancelled on
    the catalog item, re-reads and commits. Both manifests pull by digest, and
    the shared layer counts once.
    """
    import hashlib
    import json

    from registry.services import usage
    from registry.storage import metadata

    name, shared = "team/multi", client.push_blob("team/multi", b"shared layer")
    manifests = []
    for platform in ("amd64", "arm64"):
        config = json.dumps({"architecture": platform, "os": "linux"}).encode()
        own = f"{platform} layer".encode()
        body = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": client.push_blob(name, config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": shared, "size": 12},
                       {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": client.push_blob(name, own), "size": len(own)}],
        }).encode()
        manifests.append((body, "sha256:" + hashlib.sha256(body).hexdigest()))
    content = {"content-type": "application/vnd.oci.image.manifest.v1+json"}
    real_put, replies = metadata.put_manifest, []

    def second_push_lands_first(*args, **kwargs):
        monkeypatch.setattr(metadata, "put_manifest", real_put)
        assert args[6] is None  # the first push read the repository as new
        replies.append(client.request("PUT", f"/v2/{name}/manifests/{manifests[1][1]}", manifests[1][0], content))
        return real_put(*args, **kwargs)

    monkeypatch.setattr(metadata, "put_manifest", second_push_lands_first)
    first = client.request("PUT", f"/v2/{name}/manifests/{manifests[0][1]}", manifests[0][0], content)

    assert (first.status, [r.status for r in replies]) == (201, [201])
    for body, digest in manifests:
        assert client.request("GET", f"/v2/{name}/manifests/{digest}").body == body
    assert name in json.loads(client.request("GET", "/v2/_catalog").body)["repositories"]
    stored = usage.repository_view(name)
    blobs = len(b"shared layer") + sum(len(json.dumps({"architecture": p, "os": "linux"})) + len(f"{p} layer") for p in ("amd64", "arm64"))
    assert stored["logical_bytes"] == blobs + sum(len(body) for body, _ in manifests)
