"""Namespace quotas: a push that would take a namespace's deduplicated bytes past its quota is refused
with 403 DENIED and leaves nothing visible; blobs the namespace stores already still link; admins set
quotas through the CLI and the management API, and a namespace's owner reads its usage.
"""

from __future__ import annotations

import hashlib
import json
import os

import requests

from registry import accounts
from registry.references import Digest
from registry.services import usage
from registry.storage import metadata
from registry.storage import usage as counters
from registry_admin import cli
from local_stack import resources
from tests.clients import Client

TABLE = ["--table", resources.TABLE_NAME]
OCTETS = {"content-type": "application/octet-stream"}
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = b'{"architecture":"amd64","os":"linux"}'
KIB = 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def set_quota(namespace: str, size: str):
    assert cli.main([*TABLE, "usage", "quota", namespace, size]) == 0


def monolithic(client: Client, name: str, data: bytes):
    return client.request("POST", f"/v2/{name}/blobs/uploads/?digest={sha256(data)}", data, OCTETS)


def manifest_of(layers: list[bytes]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(CONFIG), "size": len(CONFIG)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(layer), "size": len(layer)} for layer in layers],
        }
    ).encode()


def test_a_push_past_the_quota_is_denied_with_the_quota_and_usage_and_leaves_nothing_visible(client):
    set_quota("team", "8KiB")
    small, large = os.urandom(3 * KIB), os.urandom(6 * KIB)
    assert monolithic(client, "team/app", CONFIG).status == 201
    assert monolithic(client, "team/app", small).status == 201
    refused = monolithic(client, "team/app", large)
    assert (refused.status, refused.error_codes) == (403, ["DENIED"])
    detail = refused.json()["errors"][0]["detail"]
    assert detail == {"namespace": "team", "quota": 8 * KIB, "usage": len(CONFIG) + len(small), "size": len(large)}
    assert client.request("HEAD", f"/v2/team/app/blobs/{sha256(large)}").status == 404
    pushed = client.request("PUT", "/v2/team/app/manifests/v1", manifest_of([small, large]), {"content-type": OCI_MANIFEST})
    assert pushed.error_codes == ["MANIFEST_BLOB_UNKNOWN"]
    assert client.request("GET", "/v2/team/app/tags/list").status == 404  # no manifest, no tag: the repository never appeared
    assert usage.namespace("team")["deduplicated_bytes"] == len(CONFIG) + len(small)
    # What fits still goes in, up to the quota exactly.
    exact = os.urandom(8 * KIB - len(CONFIG) - len(small))
    assert monolithic(client, "team/app", exact).status == 201
    assert usage.namespace("team")["deduplicated_bytes"] == 8 * KIB


def test_a_chunked_upload_past_the_quota_is_denied_at_completion(client):
    set_quota("team", "4KiB")
    data = os.urandom(5 * KIB)
    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    assert client.request("PATCH", location, data, OCTETS).status == 202
    reply = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert (reply.status, reply.error_codes) == (403, ["DENIED"])
    assert client.request("HEAD", f"/v2/team/app/blobs/{sha256(data)}").status == 404
    assert usage.namespace("team")["deduplicated_bytes"] == 0


def test_a_direct_upload_past_the_quota_is_denied_at_completion(client):
    set_quota("team", "1KiB")
    data = os.urandom(64 * KIB)
    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    url = client.request("POST", f"{location}/parts?first=1&count=1").json()["parts"][0]["url"]
    assert requests.put(url, data=data, timeout=10).status_code == 200
    reply = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert (reply.status, reply.error_codes) == (403, ["DENIED"])
    assert client.request("HEAD", f"/v2/team/app/blobs/{sha256(data)}").status == 404
    assert usage.namespace("team")["deduplicated_bytes"] == 0


def mount(client: Client, name: str, digest: str, source: str):
    token = client.token(f"repository:{name}:pull,push", f"repository:{source}:pull")
    return client.raw("POST", f"/v2/{name}/blobs/uploads/?mount={digest}&from={source}", headers={"authorization": f"Bearer {token}"})


def test_blobs_the_namespace_stores_already_link_at_the_quota_and_mounts_from_elsewhere_do_not(client):
    layer = os.urandom(4 * KIB)
    client.push_blob("team/app", layer)
    client.push_blob("other/app", CONFIG)
    set_quota("team", "4KiB")  # full
    assert mount(client, "team/copy", sha256(layer), "team/app").status == 201  # stored once in team already
    assert monolithic(client, "team/third", layer).status == 201
    refused = mount(client, "team/copy", sha256(CONFIG), "other/app")
    assert (refused.status, refused.error_codes) == (403, ["DENIED"])
    assert client.request("HEAD", f"/v2/team/copy/blobs/{sha256(CONFIG)}").status == 404
    team = usage.namespace("team")
    assert (team["deduplicated_bytes"], team["logical_bytes"]) == (4 * KIB, 12 * KIB)


def test_a_link_that_read_room_the_quota_no_longer_has_is_refused(client):
    """Two pushes both read room for their blob; the second to write finds the quota full (the condition, not the read, decides)."""
    first, second = os.urandom(3 * KIB), os.urandom(3 * KIB)
    client.push_blob("seed/app", first)
    client.push_blob("seed/app", second)
    set_quota("team", "4KiB")
    digests = Digest.parse(sha256(first)), Digest.parse(sha256(second))
    stale = [counters.read_link_state("team/app", digest) for digest in digests]
    metadata.link_blob("team/app", digests[0], len(first), state=stale[0])
    try:
        metadata.link_blob("team/app", digests[1], len(second), state=stale[1])
        raise AssertionError("the second link was not refused")
    except counters.QuotaExceeded as exc:
        assert exc.error.code == "DENIED"
    assert metadata.get_link("team/app", digests[1]) is None
    assert usage.namespace("team")["deduplicated_bytes"] == 3 * KIB


def test_removing_the_quota_lets_the_push_through(client):
    set_quota("team", "1KiB")
    data = os.urandom(2 * KIB)
    assert monolithic(client, "team/app", data).status == 403
    set_quota("team", "none")
    assert usage.namespace("team")["quota_bytes"] is None
    assert monolithic(client, "team/app", data).status == 201


def test_admins_set_quotas_through_the_api_and_owners_read_their_usage(client, gateway):
    reply = client.request("PUT", "/api/v1/namespaces/alice/quota", b'{"quota": "1.5GiB"}')
    assert reply.status == 200 and reply.json()["quota_bytes"] == 3 * 2**29
    for body in (b'{"quota": "lots"}', b'{"quota": -1}', b'{"quota": true}', b'{"size": 1}', b"[]", b"{"):
        refused = client.request("PUT", "/api/v1/namespaces/alice/quota", body)
        assert (refused.status, refused.error_codes) == (400, ["REQUEST_INVALID"]), body
    accounts.create_user("alice", "alice-password")
    accounts.create_user("bob", "bob-password")
    alice, bob = Client(gateway, ("alice", "alice-password")), Client(gateway, ("bob", "bob-password"))
    alice.push_blob("alice/app", b"alice's layer")
    reply = alice.request("GET", "/api/v1/namespaces/alice/usage")
    assert reply.status == 200
    assert reply.json() == {"namespace": "alice", "repositories": 1, "logical_bytes": 13, "deduplicated_bytes": 13, "quota_bytes": 3 * 2**29}
    assert bob.request("GET", "/api/v1/namespaces/alice/usage").error_codes == ["DENIED"]
    assert alice.request("PUT", "/api/v1/namespaces/alice/quota", b'{"quota": null}').error_codes == ["DENIED"]
    assert client.request("PUT", "/api/v1/namespaces/alice/quota", b'{"quota": null}').json()["quota_bytes"] is None
