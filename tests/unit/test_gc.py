"""Online garbage collection (registry.services.gc) and immutable tags.

What a user checks: after deleting an image and running a pass its unshared
blobs are gone from S3 (objects and bytes counted), shared ones stay, and
every other image still pulls byte for byte; a push interleaved with any
step of a pass loses nothing; a dry run deletes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading

import pytest
import requests

from registry import aws, config
from registry.services import gc
from registry.storage import metadata
from tests.clients import Client

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def collecting(monkeypatch):
    """No grace periods: as if the untagged days, the link grace and an hour since every push had passed."""
    monkeypatch.setenv("GC_UNTAGGED_DAYS", "0")
    monkeypatch.setenv("GC_LINK_GRACE_SECONDS", "0")
    monkeypatch.setattr(gc, "USES_FRESH_SECONDS", 0)
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()


def s3_blobs() -> dict[str, int]:
    """Every object under blobs/ and its size."""
    found = {}
    for page in aws.s3().get_paginator("list_objects_v2").paginate(Bucket=config.settings().bucket, Prefix="blobs/"):
        found.update({item["Key"]: item["Size"] for item in page.get("Contents", [])})
    return found


def key_of(digest: str) -> str:
    return "blobs/" + digest.replace(":", "/")


def pull(client: Client, name: str, reference: str) -> dict[str, bytes]:
    """What a client pulls: the manifest and every blob, by digest (bytes checked against the digest)."""
    reply = client.request("GET", f"/v2/{name}/manifests/{reference}", headers={"accept": OCI_MANIFEST})
    assert reply.status == 200, reply
    manifest = json.loads(reply.body)
    pulled = {"manifest": reply.body}
    for descriptor in [manifest["config"], *manifest["layers"]]:
        redirect = client.request("GET", f"/v2/{name}/blobs/{descriptor['digest']}")
        assert redirect.status == 307, redirect
        data = requests.get(redirect.header("location"), timeout=10).content
        assert "sha256:" + hashlib.sha256(data).hexdigest() == descriptor["digest"]
        pulled[descriptor["digest"]] = data
    return pulled


def delete_image(client: Client, name: str, tag: str, digest: str):
    assert client.request("DELETE", f"/v2/{name}/manifests/{tag}").status == 202
    assert client.request("DELETE", f"/v2/{name}/manifests/{digest}").status == 202


SHARED = b"shared-base-layer" * 100


def test_a_pass_frees_the_unshared_blobs_of_a_deleted_image_and_keeps_shared_ones(client, collecting):
    unique = [os.urandom(3000), os.urandom(5000)]
    doomed_manifest, doomed = client.push_image("team/old", "v1", [SHARED, *unique], config=b'{"old":1}')
    client.push_image("team/app", "v1", [SHARED, b"app layer"])
    client.push_image("other/tool", "1.0", [b"tool layer"])
    before_pulls = {image: pull(client, *image) for image in (("team/app", "v1"), ("other/tool", "1.0"))}
    before = s3_blobs()
    delete_image(client, "team/old", "v1", doomed)

    report = gc.run()

    after = s3_blobs()
    freed = {key_of(d) for d in (*("sha256:" + hashlib.sha256(u).hexdigest() for u in unique), "sha256:" + hashlib.sha256(b'{"old":1}').hexdigest())}
    assert set(before) - set(after) == freed
    assert sum(before.values()) - sum(after.values()) == 3000 + 5000 + len(b'{"old":1}')
    assert report.objects_freed == 3 and report.bytes_freed == 8000 + len(b'{"old":1}')
    assert key_of("sha256:" + hashlib.sha256(SHARED).hexdigest()) in after
    for image, blobs in before_pulls.items():
        assert pull(client, *image) == blobs
    assert client.request("HEAD", f"/v2/team/old/blobs/sha256:{hashlib.sha256(unique[0]).hexdigest()}").status == 404
    assert gc.run().removed == []  # nothing left to do: the candidates were consumed


def test_an_untagged_manifest_is_collected_only_after_its_grace_period(client, monkeypatch):
    monkeypatch.setattr(gc, "USES_FRESH_SECONDS", 0)
    _, digest = client.push_image("team/app", "v1", [os.urandom(100)])
    client.push_image("team/app", "v1", [os.urandom(100)])  # moves the tag: v1's first manifest is untagged
    assert gc.run().removed == []  # kept for GC_UNTAGGED_DAYS (7 by default)
    assert client.request("HEAD", f"/v2/team/app/manifests/{digest}").status == 200
    monkeypatch.setenv("GC_UNTAGGED_DAYS", "0")
    monkeypatch.setenv("GC_LINK_GRACE_SECONDS", "0")
    config.settings.cache_clear()
    removed = gc.run().removed
    assert ("manifest", "team/app", digest) in {(r.kind, r.name, r.digest) for r in removed}
    assert client.request("HEAD", f"/v2/team/app/manifests/{digest}").status == 404
    assert [r.kind for r in removed].count("blob") == 1  # its layer (the config is the new manifest's too)
    pull(client, "team/app", "v1")


def test_a_manifest_an_index_lists_and_a_referrer_of_a_live_subject_are_kept(client, collecting):
    manifest, digest = client.push_image("team/app", "v1")
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}]}).encode()
    assert client.request("PUT", "/v2/team/app/manifests/multi", index, {"content-type": "application/vnd.oci.image.index.v1+json"}).status == 201
    signature = json.loads(manifest)
    signature["subject"] = {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest)}
    body = json.dumps(signature).encode()
    sig = "sha256:" + hashlib.sha256(body).hexdigest()
    assert client.request("PUT", f"/v2/team/app/manifests/{sig}", body, {"content-type": OCI_MANIFEST}).status == 201
    assert client.request("DELETE", "/v2/team/app/manifests/v1").status == 202  # only the index refers to it now

    assert gc.run().removed == []

    assert client.request("HEAD", f"/v2/team/app/manifests/{digest}").status == 200
    assert client.request("HEAD", f"/v2/team/app/manifests/{sig}").status == 200
    pull(client, "team/app", digest)


def test_a_dry_run_deletes_nothing_and_lists_what_a_pass_removes(client, collecting):
    _, doomed = client.push_image("team/old", "v1", [os.urandom(1000)])
    delete_image(client, "team/old", "v1", doomed)
    before = s3_blobs()

    dry = gc.run(dry_run=True)

    assert s3_blobs() == before
    assert dry.objects_freed == 2 and dry.removed
    real = gc.run()
    assert sorted((r.kind, r.name, r.digest) for r in real.removed) == sorted((r.kind, r.name, r.digest) for r in dry.removed)


# --- safety: a push interleaved with every step of a pass ---------------------------------------

STEPS = [
    ("MANIFEST", "mark"),
    ("MANIFEST", "check"),
    ("MANIFEST", "delete"),
    ("LINK", "mark"),
    ("LINK", "check"),
    ("LINK", "delete"),
    ("BLOB", "mark"),
    ("BLOB", "check"),
    ("BLOB", "doom"),
    ("BLOB", "delete-object"),
    ("BLOB", "forget"),
]
LAYER = b"layer pushed again while gc runs" * 50
CONFIG = b'{"architecture":"amd64","os":"linux","gc":true}'


@pytest.mark.parametrize("target", ["team/old", "team/new"], ids=["same-repository", "other-repository"])
@pytest.mark.parametrize("kind,step", STEPS, ids=[f"{k.lower()}-{s}" for k, s in STEPS])
def test_a_push_interleaved_with_any_step_of_a_pass_loses_nothing(client, gateway, collecting, kind, step, target):
    client.push_image("team/old", "v1", [LAYER], CONFIG)
    # Untagged only: the pass removes the manifest, then its links, then its blobs (every step below).
    assert client.request("DELETE", "/v2/team/old/manifests/v1").status == 202
    pusher = Client(gateway)
    pusher.authorize(f"/v2/{target}/manifests/v2")
    reached, pushed, errors = [], [], []

    def push():
        try:
            pushed.append(pusher.push_image(target, "v2", [LAYER], CONFIG))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def hook(at_step, at_kind, item):
        if (at_kind, at_step) == (kind, step) and not reached:
            reached.append(item)
            # The push runs while the pass waits at this step; one blocked by the pass
            # (a blob being deleted this instant) goes on when the pass moves on.
            thread = threading.Thread(target=push)
            thread.start()
            thread.join(timeout=3)
            reached.append(thread)

    gc.run(hook=hook)
    assert reached, f"the pass never reached {kind} {step}"
    reached[1].join(timeout=30)
    assert not errors, errors
    assert pushed
    pulled = pull(client, target, "v2")
    assert pulled[f"sha256:{hashlib.sha256(LAYER).hexdigest()}"] == LAYER
    gc.run()  # and a later pass takes nothing the new image needs
    assert pull(client, target, "v2") == pulled


def test_a_pass_between_a_manifest_puts_two_writes_keeps_the_links_it_references(client, monkeypatch):
    """USES# records younger than an hour count even before their manifest exists (the push's window)."""
    monkeypatch.setenv("GC_UNTAGGED_DAYS", "0")
    monkeypatch.setenv("GC_LINK_GRACE_SECONDS", "0")
    config.settings.cache_clear()
    _, digest = client.push_image("team/app", "v1", [LAYER], CONFIG)
    delete_image(client, "team/app", "v1", digest)
    real_transact, ran = metadata.dynamo.transact, []

    def transact(writes):
        if not ran and any("MANIFEST#" in str(w) for w in writes):
            ran.append(gc.run())  # after the USES# records, before the manifest
        return real_transact(writes)

    monkeypatch.setattr(metadata.dynamo, "transact", transact)
    client.push_image("team/app", "v1", [LAYER], CONFIG)  # blobs already linked: only the manifest PUT
    monkeypatch.setattr(metadata.dynamo, "transact", real_transact)
    assert ran and ran[0].removed == []
    pull(client, "team/app", "v1")


def test_a_manifest_put_whose_blob_link_was_collected_after_its_check_fails_and_stores_nothing(client, collecting, monkeypatch):
    _, digest = client.push_image("team/app", "v1", [LAYER], CONFIG)
    delete_image(client, "team/app", "v1", digest)
    real_check, ran = metadata.check_references, []

    def check_then_collect(*args, **kwargs):
        found = real_check(*args, **kwargs)
        ran.append(gc.run())  # the links go after the check found them
        return found

    monkeypatch.setattr(metadata, "check_references", check_then_collect)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + hashlib.sha256(CONFIG).hexdigest(), "size": len(CONFIG)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + hashlib.sha256(LAYER).hexdigest(), "size": len(LAYER)}],
        }
    ).encode()
    reply = client.request("PUT", "/v2/team/app/manifests/v1", manifest, {"content-type": OCI_MANIFEST})
    assert ran and any(r.kind == "link" for r in ran[0].removed)
    assert reply.status == 400 and reply.error_codes == ["MANIFEST_BLOB_UNKNOWN"]
    assert client.request("HEAD", "/v2/team/app/manifests/v1").status == 404


def test_a_pass_stopped_by_its_deadline_continues_on_the_next(client, collecting):
    for number in range(3):
        _, digest = client.push_image(f"team/old{number}", "v1", [os.urandom(100)])
        delete_image(client, f"team/old{number}", "v1", digest)
    first = gc.run(deadline=0)  # out of time at once
    assert not first.complete and first.removed == []
    second = gc.run()
    assert second.complete and second.objects_freed == 4  # three layers and the config they share


def test_the_scheduled_function_reports_its_pass_as_metrics(client, collecting, monkeypatch, capsys):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    _, digest = client.push_image("team/old", "v1", [b"x" * 1000])
    delete_image(client, "team/old", "v1", digest)
    capsys.readouterr()

    class Context:
        aws_request_id = "gc-test"

        @staticmethod
        def get_remaining_time_in_millis():
            return 900_000

    result = gc.handle_schedule({}, Context())

    assert result["complete"] and result["objects_freed"] == 2
    document = json.loads([line for line in capsys.readouterr().out.splitlines() if "GcBytesFreed" in line][-1])
    assert document["GcBytesFreed"] == [result["bytes_freed"]] and document["GcObjectsFreed"] == [2] and "GcPassSeconds" in document


# --- immutable tags -----------------------------------------------------------------------------


def test_an_immutable_tag_refuses_a_push_that_would_move_it(client):
    first, digest = client.push_image("team/app", "v1", [b"one"])
    reply = client.request("PUT", "/api/v1/repositories/team/app/immutable", b'{"immutable": true}', {"content-type": "application/json"})
    assert reply.status == 200 and reply.json()["immutable"] is True

    moved = client.request("PUT", "/v2/team/app/manifests/v1", first.replace(b'"layers"', b'"annotations":{"a":"b"},"layers"'), {"content-type": OCI_MANIFEST})
    again = client.request("PUT", "/v2/team/app/manifests/v1", first, {"content-type": OCI_MANIFEST})
    other = client.request("PUT", "/v2/team/app/manifests/v2", first, {"content-type": OCI_MANIFEST})

    assert moved.status == 400 and moved.error_codes == ["TAG_INVALID"]
    assert again.status == 201 and other.status == 201
    assert client.request("HEAD", "/v2/team/app/manifests/v1").header("docker-content-digest") == digest
    client.request("PUT", "/api/v1/repositories/team/app/immutable", b'{"immutable": false}', {"content-type": "application/json"})
    assert client.request("PUT", "/v2/team/app/manifests/v1", first.replace(b'"layers"', b'"annotations":{"a":"b"},"layers"'), {"content-type": OCI_MANIFEST}).status == 201


def test_two_pushes_racing_to_create_a_tag_cannot_both_win(client):
    from registry.references import Digest

    client.push_image("team/app", "base")
    record = {"media_type": OCI_MANIFEST, "size": 2, "body": b"{}"}
    one, two = Digest.parse("sha256:" + "1" * 64), Digest.parse("sha256:" + "2" * 64)
    metadata.put_manifest("team/app", one, record, "v1", previous=None)
    with pytest.raises(metadata.TagMoved):
        metadata.put_manifest("team/app", two, record, "v1", previous=None)  # read before the first wrote it
    assert metadata.get_tag("team/app", "v1")["digest"] == str(one)


def test_setting_immutable_tags_needs_push_access(client, gateway):
    from registry import accounts

    client.push_image("team/app", "v1")
    accounts.create_user("reader", "reader-password")
    reader = Client(gateway, ("reader", "reader-password"))
    reply = reader.request("PUT", "/api/v1/repositories/team/app/immutable", b'{"immutable": true}', {"content-type": "application/json"})
    assert reply.status in (401, 403)


# --- registry-admin -----------------------------------------------------------------------------

from tests.unit.test_admin_cli import admin_cli  # noqa: E402,F401 - the fixture


def test_registry_admin_gc_dry_run_prints_what_it_would_remove_and_removes_nothing(client, collecting, admin_cli):
    _, digest = client.push_image("team/old", "v1", [b"old layer" * 10])
    delete_image(client, "team/old", "v1", digest)
    before = s3_blobs()

    status, out, _ = admin_cli("gc", "--dry-run")

    layer = "sha256:" + hashlib.sha256(b"old layer" * 10).hexdigest()
    assert status == 0 and f"would remove blob {layer} (90 bytes)" in out and f"would remove link team/old@{layer}" in out
    assert s3_blobs() == before
    status, out, _ = admin_cli("gc")
    assert status == 0 and f"removed blob {layer} (90 bytes)" in out
    assert key_of(layer) not in s3_blobs()


def test_registry_admin_repo_immutable_refuses_moving_a_tag(client, admin_cli):
    first, _ = client.push_image("team/app", "v1", [b"one"])
    status, out, _ = admin_cli("repo", "immutable", "team/app", "--on")
    assert status == 0 and "immutable" in out
    moved = client.request("PUT", "/v2/team/app/manifests/v1", first.replace(b'"layers"', b'"annotations":{"x":"y"},"layers"'), {"content-type": OCI_MANIFEST})
    assert moved.status == 400 and moved.error_codes == ["TAG_INVALID"]
    assert admin_cli("repo", "immutable", "team/app", "--off")[0] == 0
    assert client.request("PUT", "/v2/team/app/manifests/v1", first.replace(b'"layers"', b'"annotations":{"x":"y"},"layers"'), {"content-type": OCI_MANIFEST}).status == 201
    assert admin_cli("repo", "immutable", "team/nothing", "--on")[0] == 1
