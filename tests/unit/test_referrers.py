"""The referrers API: manifests with a subject, listed under that subject."""

from __future__ import annotations

import hashlib
import json

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
EMPTY = "application/vnd.oci.empty.v1+json"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_artifact(client, name, subject_bytes, artifact_type, annotations=None, tag=None):
    """An OCI 1.1 artifact: empty config, one layer, a subject."""
    empty = client.push_blob(name, b"{}")
    layer = client.push_blob(name, artifact_type.encode())
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": EMPTY, "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": layer, "size": len(artifact_type)}],
        "subject": {"mediaType": OCI_MANIFEST, "digest": sha256(subject_bytes), "size": len(subject_bytes)},
    }
    if annotations:
        document["annotations"] = annotations
    body = json.dumps(document).encode()
    reply = client.request("PUT", f"/v2/{name}/manifests/{tag or sha256(body)}", body, {"content-type": OCI_MANIFEST})
    assert reply.status == 201, reply.body
    assert reply.header("oci-subject") == sha256(subject_bytes)
    return body


def test_unknown_digest_has_an_empty_referrers_index_not_a_404(client):
    reply = client.request("GET", f"/v2/team/app/referrers/{sha256(b'nothing')}")
    assert reply.status == 200
    assert reply.header("content-type") == OCI_INDEX
    assert reply.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_referrers_list_artifacts_with_artifact_type_and_annotations(client):
    image, digest = client.push_image("team/app", "v1")
    signature = push_artifact(client, "team/app", image, "application/vnd.example.sig", {"org.example.signer": "ci"})
    sbom = push_artifact(client, "team/app", image, "application/spdx+json")
    reply = client.request("GET", f"/v2/team/app/referrers/{digest}")
    manifests = sorted(reply.json()["manifests"], key=lambda d: d["digest"])
    expected = sorted(
        [
            {"mediaType": OCI_MANIFEST, "digest": sha256(signature), "size": len(signature), "artifactType": "application/vnd.example.sig", "annotations": {"org.example.signer": "ci"}},
            {"mediaType": OCI_MANIFEST, "digest": sha256(sbom), "size": len(sbom), "artifactType": "application/spdx+json"},
        ],
        key=lambda d: d["digest"],
    )
    assert manifests == expected
    assert reply.header("oci-filters-applied") is None


def test_image_referrer_without_artifact_type_reports_its_config_media_type(client):
    image, digest = client.push_image("team/app", "v1")
    config = client.push_blob("team/app", b'{"kind":"attestation"}')
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.example.config+json", "digest": config, "size": 22},
            "layers": [],
            "subject": {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(image)},
        }
    ).encode()
    assert client.request("PUT", "/v2/team/app/manifests/att", body, {"content-type": OCI_MANIFEST}).status == 201
    [descriptor] = client.request("GET", f"/v2/team/app/referrers/{digest}").json()["manifests"]
    assert descriptor["artifactType"] == "application/vnd.example.config+json"


def test_artifact_type_filter_is_applied_and_announced(client):
    image, digest = client.push_image("team/app", "v1")
    push_artifact(client, "team/app", image, "application/vnd.example.sig")
    sbom = push_artifact(client, "team/app", image, "application/spdx+json")
    reply = client.request("GET", f"/v2/team/app/referrers/{digest}?artifactType=application/spdx%2Bjson")
    assert reply.header("oci-filters-applied") == "artifactType"
    assert [d["digest"] for d in reply.json()["manifests"]] == [sha256(sbom)]


def test_a_subject_that_does_not_exist_yet_is_accepted(client):
    missing = b'{"not":"pushed"}'
    artifact = push_artifact(client, "team/app", missing, "application/vnd.example.sig")
    reply = client.request("GET", f"/v2/team/app/referrers/{sha256(missing)}")
    assert [d["digest"] for d in reply.json()["manifests"]] == [sha256(artifact)]


def test_referrers_paginate_with_link(client):
    image, digest = client.push_image("team/app", "v1")
    for kind in ("a", "b", "c"):
        push_artifact(client, "team/app", image, f"application/vnd.example.{kind}")
    first = client.request("GET", f"/v2/team/app/referrers/{digest}?n=2")
    assert len(first.json()["manifests"]) == 2
    link = first.header("link")
    assert link.startswith(f"</v2/team/app/referrers/{digest}?n=2&last=") and link.endswith('>; rel="next"')
    second = client.request("GET", link[1 : link.index(">")])
    seen = {d["digest"] for d in first.json()["manifests"] + second.json()["manifests"]}
    assert len(seen) == 3 and second.header("link") is None


def test_deleting_a_referrer_removes_it_from_the_list(client):
    image, digest = client.push_image("team/app", "v1")
    artifact = push_artifact(client, "team/app", image, "application/vnd.example.sig")
    assert client.request("DELETE", f"/v2/team/app/manifests/{sha256(artifact)}").status == 202
    assert client.request("GET", f"/v2/team/app/referrers/{digest}").json()["manifests"] == []


def test_referrers_are_per_repository(client):
    image, digest = client.push_image("team/app", "v1")
    push_artifact(client, "team/app", image, "application/vnd.example.sig")
    assert client.request("GET", f"/v2/team/other/referrers/{digest}").json()["manifests"] == []
