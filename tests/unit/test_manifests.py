"""Manifests: validation, Accept negotiation, tags, deletes."""

from __future__ import annotations

import hashlib
import json

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_pull_by_tag_and_by_digest_returns_the_bytes_pushed(client):
    manifest, digest = client.push_image("team/app", "v1")
    for reference in ("v1", digest):
        reply = client.request("GET", f"/v2/team/app/manifests/{reference}")
        assert reply.status == 200
        assert reply.body == manifest
        assert reply.header("docker-content-digest") == digest
        assert reply.header("content-type") == OCI_MANIFEST


def test_head_answers_digest_and_length_without_a_body(client):
    manifest, digest = client.push_image("team/app", "v1")
    reply = client.request("HEAD", "/v2/team/app/manifests/v1")
    assert (reply.status, reply.body) == (200, b"")
    assert reply.header("content-length") == str(len(manifest))
    assert reply.header("docker-content-digest") == digest


def test_put_answers_201_with_location_and_digest(client):
    config = client.push_blob("team/app", b"{}")
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 2}, "layers": []}
    ).encode()
    reply = client.request("PUT", "/v2/team/app/manifests/latest", manifest, {"content-type": DOCKER_MANIFEST})
    assert reply.status == 201
    assert reply.header("location") == f"/v2/team/app/manifests/{sha256(manifest)}"
    assert reply.header("docker-content-digest") == sha256(manifest)
    assert client.request("GET", "/v2/team/app/manifests/latest").header("content-type") == DOCKER_MANIFEST


def test_manifest_referencing_a_missing_blob_is_refused(client):
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"mediaType": "x", "digest": sha256(b"absent"), "size": 6}, "layers": []}
    ).encode()
    reply = client.request("PUT", "/v2/team/app/manifests/v1", manifest, {"content-type": OCI_MANIFEST})
    assert (reply.status, reply.error_codes) == (400, ["MANIFEST_BLOB_UNKNOWN"])
    assert client.request("GET", "/v2/team/app/manifests/v1").status == 404


def test_a_blob_in_another_repository_does_not_satisfy_a_manifest(client):
    digest = client.push_blob("team/elsewhere", b"config")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {"mediaType": "x", "digest": digest, "size": 6}, "layers": []}).encode()
    reply = client.request("PUT", "/v2/team/app/manifests/v1", manifest, {"content-type": OCI_MANIFEST})
    assert reply.error_codes == ["MANIFEST_BLOB_UNKNOWN"]


def test_index_needs_its_child_manifests_in_the_repository(client):
    child, child_digest = client.push_image("team/multi", "amd64")
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": child_digest, "size": len(child), "platform": {"os": "linux", "architecture": "amd64"}},
                {"mediaType": OCI_MANIFEST, "digest": sha256(b"missing"), "size": 7, "platform": {"os": "linux", "architecture": "arm64"}},
            ],
        }
    ).encode()
    reply = client.request("PUT", "/v2/team/multi/manifests/1.0", index, {"content-type": OCI_INDEX})
    assert reply.error_codes == ["MANIFEST_BLOB_UNKNOWN"]
    good = json.loads(index)
    good["manifests"] = good["manifests"][:1]
    good = json.dumps(good).encode()
    assert client.request("PUT", "/v2/team/multi/manifests/1.0", good, {"content-type": OCI_INDEX}).status == 201


def test_invalid_manifests_are_manifest_invalid(client):
    cases = [
        (b"not json", OCI_MANIFEST),
        (b"[]", OCI_MANIFEST),
        (json.dumps({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": []}).encode(), "application/vnd.docker.distribution.manifest.v1+prettyjws"),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}).encode(), OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode(), OCI_MANIFEST),
        (json.dumps({"schemaVersion": 2, "mediaType": "application/x-unknown"}).encode(), "application/x-unknown"),
    ]
    for body, content_type in cases:
        reply = client.request("PUT", "/v2/team/app/manifests/v1", body, {"content-type": content_type})
        assert (reply.status, reply.error_codes) == (400, ["MANIFEST_INVALID"]), body


def test_put_by_digest_must_match_the_body(client):
    manifest, _ = client.push_image("team/app", "v1")
    reply = client.request("PUT", f"/v2/team/app/manifests/{sha256(b'other')}", manifest, {"content-type": OCI_MANIFEST})
    assert (reply.status, reply.error_codes) == (400, ["DIGEST_INVALID"])


def test_invalid_tag_is_tag_invalid(client):
    reply = client.request("PUT", "/v2/team/app/manifests/-bad", b"{}", {"content-type": OCI_MANIFEST})
    assert (reply.status, reply.error_codes) == (400, ["TAG_INVALID"])


def test_manifest_over_4_mib_is_refused_with_413(client):
    body = b"{" + b" " * (4 * 1024 * 1024) + b"}"
    reply = client.request("PUT", "/v2/team/app/manifests/big", body, {"content-type": OCI_MANIFEST})
    assert reply.status == 413


def test_large_manifest_round_trips_through_s3(client):
    config = client.push_blob("team/big", b"{}")
    layer = client.push_blob("team/big", b"layer")
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer, "size": 5}],
            "annotations": {"padding": "x" * 600_000},
        }
    ).encode()
    assert client.request("PUT", "/v2/team/big/manifests/v1", manifest, {"content-type": OCI_MANIFEST}).status == 201
    assert client.request("GET", "/v2/team/big/manifests/v1").body == manifest


def test_accept_header_that_excludes_the_stored_type_is_refused(client):
    client.push_image("team/app", "v1")
    reply = client.request("GET", "/v2/team/app/manifests/v1", headers={"accept": DOCKER_MANIFEST})
    assert (reply.status, reply.error_codes) == (404, ["MANIFEST_UNKNOWN"])
    joined = f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"
    assert client.request("GET", "/v2/team/app/manifests/v1", headers={"accept": joined}).status == 200
    assert client.request("GET", "/v2/team/app/manifests/v1", headers={"accept": "*/*"}).status == 200


def test_pushing_a_tag_again_moves_it(client):
    _, first = client.push_image("team/app", "latest", [b"one"])
    _, second = client.push_image("team/app", "latest", [b"two"])
    assert first != second
    assert client.request("HEAD", "/v2/team/app/manifests/latest").header("docker-content-digest") == second
    assert client.request("HEAD", f"/v2/team/app/manifests/{first}").status == 200


def test_unknown_manifest_and_unknown_repository(client):
    client.push_image("team/app", "v1")
    reply = client.request("GET", "/v2/team/app/manifests/nope")
    assert (reply.status, reply.error_codes) == (404, ["MANIFEST_UNKNOWN"])
    reply = client.request("GET", "/v2/team/never/manifests/v1")
    assert (reply.status, reply.error_codes) == (404, ["NAME_UNKNOWN"])


def test_deleting_a_manifest_by_digest_removes_its_tags(client):
    _, digest = client.push_image("team/app", "v1")
    client.push_image("team/app", "v1")  # same content: same digest
    client.request("PUT", "/v2/team/app/manifests/alias", client.request("GET", "/v2/team/app/manifests/v1").body, {"content-type": OCI_MANIFEST})
    assert client.request("DELETE", f"/v2/team/app/manifests/{digest}").status == 202
    for reference in (digest, "v1", "alias"):
        assert client.request("GET", f"/v2/team/app/manifests/{reference}").status == 404


def test_deleting_a_tag_keeps_the_manifest(client):
    _, digest = client.push_image("team/app", "v1")
    assert client.request("DELETE", "/v2/team/app/manifests/v1").status == 202
    assert client.request("GET", "/v2/team/app/manifests/v1").status == 404
    assert client.request("GET", f"/v2/team/app/manifests/{digest}").status == 200


def test_deletes_can_be_switched_off(client, monkeypatch):
    from registry import config

    _, digest = client.push_image("team/app", "v1")
    monkeypatch.setenv("DELETES_ENABLED", "false")
    config.settings.cache_clear()
    reply = client.request("DELETE", f"/v2/team/app/manifests/{digest}")
    assert (reply.status, reply.error_codes) == (405, ["UNSUPPORTED"])
    config.settings.cache_clear()


def _index(client, name, children):
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": sha256(c), "size": len(c)} for c in children],
        }
    ).encode()
    assert client.request("PUT", f"/v2/{name}/manifests/multi", body, {"content-type": OCI_INDEX}).status == 201
    return body


def test_a_manifest_listed_by_an_index_is_kept_until_the_index_is_deleted(client):
    child, child_digest = client.push_image("team/multi", "amd64")
    index = _index(client, "team/multi", [child])
    reply = client.request("DELETE", f"/v2/team/multi/manifests/{child_digest}")
    assert (reply.status, reply.error_codes) == (403, ["DENIED"])
    assert reply.json()["errors"][0]["detail"] == {"indexes": [sha256(index)]}
    assert client.request("GET", f"/v2/team/multi/manifests/{child_digest}").status == 200
    assert client.request("DELETE", f"/v2/team/multi/manifests/{sha256(index)}").status == 202
    assert client.request("DELETE", f"/v2/team/multi/manifests/{child_digest}").status == 202


def test_deleting_an_unknown_manifest_is_manifest_unknown(client):
    client.push_image("team/app", "v1")
    reply = client.request("DELETE", f"/v2/team/app/manifests/{sha256(b'never')}")
    assert (reply.status, reply.error_codes) == (404, ["MANIFEST_UNKNOWN"])
    reply = client.request("DELETE", "/v2/team/app/manifests/nosuchtag")
    assert (reply.status, reply.error_codes) == (404, ["MANIFEST_UNKNOWN"])


def test_artifact_manifest_with_empty_config_is_accepted(client):
    empty = client.push_blob("team/app", b"{}")
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.thing",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2}],
        }
    ).encode()
    reply = client.request("PUT", "/v2/team/app/manifests/artifact", body, {"content-type": OCI_MANIFEST})
    assert reply.status == 201
    assert client.request("GET", "/v2/team/app/manifests/artifact").body == body


def test_manifest_pushed_by_sha512_digest_answers_in_sha512(client):
    manifest, _ = client.push_image("team/app", "v1")
    digest = "sha512:" + hashlib.sha512(manifest).hexdigest()
    reply = client.request("PUT", f"/v2/team/app/manifests/{digest}", manifest, {"content-type": OCI_MANIFEST})
    assert (reply.status, reply.header("docker-content-digest")) == (201, digest)
    reply = client.request("GET", f"/v2/team/app/manifests/{digest}")
    assert (reply.status, reply.header("docker-content-digest"), reply.body) == (200, digest, manifest)
