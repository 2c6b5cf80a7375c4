"""Protocol details other registries' users reported: what a client sees on the wire.

Invalid references pulled (404, as the OCI conformance suite expects), mounts
that cannot be served (a new upload), a tag holding an index pulled by a client
that takes only image manifests (the linux/amd64 image, as distribution does),
the token leeway, and the rate-limit headers on a path that is no endpoint.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from registry import accounts, config, ratelimit
from registry.auth import tokens
from tests.clients import Client

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
IMAGES_ONLY = {"accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"}


# --- a reference that is neither a tag nor a digest ----------------------------------------


@pytest.mark.parametrize("reference", [".INVALID_MANIFEST_NAME", "sha256:totallywrong", "-dash", "x" * 129, "md5:abc"])
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_pulling_or_deleting_an_invalid_reference_is_manifest_unknown(client, method, reference):
    client.push_image("team/app", "v1")

    reply = client.request(method, f"/v2/team/app/manifests/{reference}")

    assert reply.status == 404
    if method != "HEAD":
        assert reply.error_codes == ["MANIFEST_UNKNOWN"]


def test_an_invalid_reference_in_an_unknown_repository_is_name_unknown(client):
    reply = client.request("GET", "/v2/team/nothing/manifests/.INVALID_MANIFEST_NAME")

    assert (reply.status, reply.error_codes) == (404, ["NAME_UNKNOWN"])


def test_pushing_to_an_invalid_tag_is_still_tag_invalid(client):
    manifest, _ = client.push_image("team/app", "v1")

    reply = client.request("PUT", "/v2/team/app/manifests/.INVALID_MANIFEST_NAME", manifest, {"content-type": OCI_MANIFEST})

    assert (reply.status, reply.error_codes) == (400, ["TAG_INVALID"])


# --- mounts that cannot be served ----------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "mount=sha256:{hex}&from=Not..A..Name",
        "mount=sha256:{hex}&from=" + "a" * 300,
        "mount=not-a-digest&from=team/app",
        "mount=sha256:short&from=team/app",
    ],
)
def test_a_mount_with_an_invalid_from_or_digest_falls_back_to_a_new_upload(client, query):
    client.push_blob("team/app", b"layer")
    hex_digest = hashlib.sha256(b"layer").hexdigest()

    reply = client.request("POST", "/v2/team/copy/blobs/uploads/?" + query.format(hex=hex_digest))

    assert reply.status == 202, reply.body
    location = reply.header("location")
    assert location.startswith("/v2/team/copy/blobs/uploads/")
    finished = client.request("PUT", f"{location}?digest=sha256:{hex_digest}", b"layer", {"content-type": "application/octet-stream"})
    assert finished.status == 201


def test_a_mount_without_from_reads_the_tokens_repositories_in_one_call(client, aws_calls):
    digest = client.push_blob("team/app", b"layer")
    token = client.token("repository:team/copy:pull,push", *[f"repository:team/r{i}:pull" for i in range(8)], "repository:team/app:pull")
    aws_calls.calls.clear()

    reply = client.raw("POST", f"/v2/team/copy/blobs/uploads/?mount={digest}", headers={"authorization": f"Bearer {token}"})

    assert reply.status == 201
    # One for the token's ten repositories, one for the blob record and the storage counters the link updates.
    assert aws_calls.calls.count(("dynamodb", "BatchGetItem")) == 2
    assert ("dynamodb", "GetItem") not in aws_calls.calls


# --- a tag holding an index, for a client that takes only image manifests -------------------


def push_index(client, name: str, tag: str, media_type: str = OCI_INDEX):
    """An index of an arm64 and an amd64 image (in that order); returns (index digest, amd64 manifest, amd64 digest)."""
    children = []
    for arch in ("arm64", "amd64"):
        config = json.dumps({"architecture": arch, "os": "linux"}).encode()
        manifest, digest = client.push_image(name, f"only-{arch}", [f"layer-{arch}".encode()], config)
        children.append((arch, manifest, digest))
    child_type = DOCKER_MANIFEST if media_type == DOCKER_LIST else OCI_MANIFEST
    if media_type == DOCKER_LIST:  # a Docker list names Docker manifests: push them again as such
        rewritten = []
        for arch, manifest, _ in children:
            body = json.loads(manifest)
            body["mediaType"] = DOCKER_MANIFEST
            body["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
            for layer in body["layers"]:
                layer["mediaType"] = "application/vnd.docker.image.rootfs.diff.tar.gzip"
            data = json.dumps(body).encode()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            assert client.request("PUT", f"/v2/{name}/manifests/{digest}", data, {"content-type": DOCKER_MANIFEST}).status == 201
            rewritten.append((arch, data, digest))
        children = rewritten
    index = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "manifests": [
                {"mediaType": child_type, "digest": digest, "size": len(manifest), "platform": {"architecture": arch, "os": "linux"}}
                for arch, manifest, digest in children
            ],
        }
    ).encode()
    reply = client.request("PUT", f"/v2/{name}/manifests/{tag}", index, {"content-type": media_type})
    assert reply.status == 201, reply.body
    _, amd64_manifest, amd64_digest = children[1]
    return "sha256:" + hashlib.sha256(index).hexdigest(), amd64_manifest, amd64_digest


@pytest.mark.parametrize("index_type", [OCI_INDEX, DOCKER_LIST])
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_an_index_tag_pulled_without_index_types_answers_the_linux_amd64_image(client, method, index_type):
    _, manifest, digest = push_index(client, "team/multi", "1", index_type)

    reply = client.request(method, "/v2/team/multi/manifests/1", headers=IMAGES_ONLY)

    assert reply.status == 200, reply.body
    assert reply.header("docker-content-digest") == digest
    assert reply.header("content-length") == str(len(manifest))
    if method == "GET":
        assert reply.body == manifest
        assert "sha256:" + hashlib.sha256(reply.body).hexdigest() == digest


def test_clients_that_take_indexes_still_get_the_index(client):
    index_digest, _, _ = push_index(client, "team/multi", "1")

    reply = client.request("GET", "/v2/team/multi/manifests/1", headers={"accept": f"{OCI_INDEX}, {OCI_MANIFEST}"})

    assert (reply.status, reply.header("docker-content-digest")) == (200, index_digest)


def test_an_index_pulled_by_digest_without_index_types_is_still_unknown(client):
    index_digest, _, _ = push_index(client, "team/multi", "1")

    reply = client.request("GET", f"/v2/team/multi/manifests/{index_digest}", headers=IMAGES_ONLY)

    assert (reply.status, reply.error_codes) == (404, ["MANIFEST_UNKNOWN"])


def test_an_index_without_linux_amd64_is_unknown_to_an_image_only_client(client):
    config = json.dumps({"architecture": "arm64", "os": "linux"}).encode()
    manifest, digest = client.push_image("team/arm", "a", [b"arm"], config)
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": digest, "size": len(manifest), "platform": {"architecture": "arm64", "os": "linux"}}]}).encode()
    assert client.request("PUT", "/v2/team/arm/manifests/1", index, {"content-type": OCI_INDEX}).status == 201

    reply = client.request("GET", "/v2/team/arm/manifests/1", headers=IMAGES_ONLY)

    assert (reply.status, reply.error_codes) == (404, ["MANIFEST_UNKNOWN"])


def test_the_image_served_for_an_index_counts_as_one_pull(limits, client, anonymous):
    push_index(client, "library/multi", "1")
    accounts.set_visibility("library/multi", "public")

    first = anonymous.request("GET", "/v2/library/multi/manifests/1", headers=IMAGES_ONLY)
    second = anonymous.request("GET", "/v2/library/multi/manifests/1", headers=IMAGES_ONLY)

    assert [first.header("ratelimit-remaining"), second.header("ratelimit-remaining")] == ["2;w=60", "1;w=60"]


# --- token leeway --------------------------------------------------------------------------


@pytest.mark.parametrize(("past_exp", "status"), [(20, 200), (45, 401)])
def test_tokens_are_accepted_for_30_seconds_past_their_expiry(client, monkeypatch, past_exp, status):
    client.push_image("team/app", "v1")
    real = time.time
    lifetime = config.settings().token_seconds
    monkeypatch.setattr(tokens.time, "time", lambda: real() - lifetime - past_exp)
    token = tokens.issue("admin", "registry.test", [{"type": "repository", "name": "team/app", "actions": ["pull"]}])[0]
    monkeypatch.undo()

    reply = client.raw("GET", "/v2/team/app/manifests/v1", headers={"authorization": f"Bearer {token}"})

    assert reply.status == status
    assert tokens.LEEWAY_SECONDS == 30


# --- rate-limit headers on a path that is no endpoint --------------------------------------


@pytest.fixture
def frozen(monkeypatch):
    now = {"t": 1_800_000_000.0}
    monkeypatch.setattr(ratelimit, "clock", lambda: now["t"])
    return now


def test_a_head_of_ratelimitpreview_shows_the_callers_budget_without_counting(limits, client, frozen, aws_calls):
    client.push_image("team/app", "v1")
    token = client.token("repository:team/app:pull")
    auth = {"authorization": f"Bearer {token}"}
    assert client.raw("GET", "/v2/team/app/manifests/v1", headers=auth).status == 200  # one pull counted
    aws_calls.calls.clear()

    previews = [client.raw("HEAD", "/v2/ratelimitpreview", headers=auth) for _ in range(2)]

    for reply in previews:
        assert reply.status == 404
        assert reply.header("ratelimit-limit") == "5;w=60"
        assert reply.header("ratelimit-remaining") == "4;w=60"
        assert reply.header("docker-ratelimit-source") == "admin"
    assert aws_calls.calls == [("dynamodb", "GetItem")] * 2


def test_an_anonymous_preview_shows_the_addresss_budget(limits, anonymous, frozen):
    reply = anonymous.raw("GET", "/v2/ratelimitpreview")

    assert (reply.status, reply.error_codes) == (404, ["NOT_FOUND"])
    assert (reply.header("ratelimit-limit"), reply.header("ratelimit-remaining")) == ("3;w=60", "3;w=60")


def test_a_preview_with_an_invalid_token_shows_no_budget(limits, anonymous):
    reply = anonymous.raw("HEAD", "/v2/ratelimitpreview", headers={"authorization": "Bearer not-a-token"})

    assert reply.status == 404 and reply.header("ratelimit-limit") is None
