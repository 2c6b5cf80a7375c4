"""Cross-repository blob mounts: a copy inside the registry moves no layer bytes.

skopeo remembers (in containers/image's blob-info cache) which repositories
of a registry hold a blob; copying into another repository of the same
registry it asks ``POST /v2/<dst>/blobs/uploads/?mount=<digest>&from=<src>``
and the registry answers 201 Created with the blob already in place (the
token it asks for covers ``pull`` on the source as well: a mount only happens
from a repository the caller may pull). Everything here is signed in as the
admin (token authentication is on).
"""

from __future__ import annotations

import hashlib
import urllib.error
import urllib.parse

import pytest

from support import bearer, images, require, skopeo

LAYER_SIZES = [600_000, 250_000]


@pytest.fixture(scope="module", autouse=True)
def _skopeo():
    require("skopeo")




def head_blob(registry: str, repo: str, digest: str, creds):
    with bearer.urlopen(f"http://{registry}/v2/{repo}/blobs/{digest}", method="HEAD", creds=creds) as response:
        return response.status, response.headers


def get_blob(registry: str, repo: str, digest: str, creds) -> bytes:
    with bearer.urlopen(f"http://{registry}/v2/{repo}/blobs/{digest}", creds=creds) as response:
        return response.read()


def test_skopeo_copy_between_repositories_mounts_every_layer(registry, requests, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "layout", LAYER_SIZES, tag="v1")
    source, target = "mount/source", "mount/target"
    skopeo.copy(images.oci_ref(tmp_path / "layout", "v1"), f"{registry}/{source}:v1", creds=admin_creds)
    requests.clear()

    copied = skopeo.copy(f"docker://{registry}/{source}:v1", f"docker://{registry}/{target}:v1", creds=admin_creds)

    assert copied == image.digest
    to_target = [c for c in requests if c.path.startswith(f"/v2/{target}/blobs/")]
    mounts = [c for c in to_target if c.method == "POST" and "mount" in c.query]
    for digest in image.layer_digests:
        (mount,) = [c for c in mounts if c.query["mount"] == digest]
        assert mount.query["from"] == source
        assert mount.status == 201, mount
        assert mount.reply_headers["docker-content-digest"] == digest
        assert urllib.parse.urlsplit(mount.reply_headers["location"]).path \
            == f"/v2/{target}/blobs/{digest}"
    # No layer byte crossed the wire: no layer was downloaded or uploaded again
    # (skopeo does copy the small config blob through the client).
    uploads = [c for c in to_target if c.method in ("PATCH", "PUT")]
    assert not {c.query.get("digest") for c in uploads} & set(image.layer_digests), uploads
    downloads = [c for c in requests if c.method == "GET" and "/blobs/" in c.path]
    assert not {c.path.rsplit("/", 1)[1] for c in downloads} & set(image.layer_digests), downloads
    # Both repositories serve the same manifest bytes and the same blobs.
    assert skopeo.inspect_raw(f"{registry}/{target}:v1", creds=admin_creds) == image.manifest_bytes
    assert skopeo.inspect_raw(f"{registry}/{source}:v1", creds=admin_creds) == image.manifest_bytes
    for blob in [image.config, *image.layers]:
        for repo in (source, target):
            status, headers = head_blob(registry, repo, blob.digest, admin_creds)
            assert status == 200
            assert int(headers["Content-Length"]) == blob.size
            assert headers["Docker-Content-Digest"] == blob.digest
        data = get_blob(registry, target, blob.digest, admin_creds)
        assert "sha256:" + hashlib.sha256(data).hexdigest() == blob.digest
        assert data == images.read_blob(tmp_path / "layout", blob.digest)


def test_mounted_blobs_stay_in_the_target_after_the_source_tag_moves(registry, admin_creds, tmp_path):
    first = images.write_image(tmp_path / "one", [90_000], tag="v1")
    second = images.write_image(tmp_path / "two", [70_000], tag="v1")
    source, target = "mount/moving-source", "mount/moving-target"
    skopeo.copy(images.oci_ref(tmp_path / "one", "v1"), f"{registry}/{source}:v1", creds=admin_creds)
    skopeo.copy(f"docker://{registry}/{source}:v1", f"docker://{registry}/{target}:v1", creds=admin_creds)

    skopeo.copy(images.oci_ref(tmp_path / "two", "v1"), f"{registry}/{source}:v1", creds=admin_creds)

    assert skopeo.digest(f"{registry}/{source}:v1", creds=admin_creds) == second.digest
    assert skopeo.digest(f"{registry}/{target}:v1", creds=admin_creds) == first.digest
    skopeo.copy(f"docker://{registry}/{target}:v1", images.oci_ref(tmp_path / "back", "v1"), creds=admin_creds)
    for digest in [first.digest, first.config.digest, *first.layer_digests]:
        assert images.read_blob(tmp_path / "back", digest) == images.read_blob(tmp_path / "one", digest)


def test_mount_from_a_repository_without_the_blob_starts_an_ordinary_upload(registry, admin_creds, tmp_path):
    # What a client with a stale cache hint sees: not an error, an upload to continue.
    image = images.write_image(tmp_path / "layout", [20_000], tag="v1")
    digest = image.layer_digests[0]
    query = urllib.parse.urlencode({"mount": digest, "from": "mount/never-pushed"})
    with bearer.urlopen(f"http://{registry}/v2/mount/fallback/blobs/uploads/?{query}", method="POST", data=b"",
                        creds=admin_creds) as response:
        assert response.status == 202
        location = urllib.parse.urljoin(f"http://{registry}/", response.headers["Location"])
    blob = images.read_blob(tmp_path / "layout", digest)
    separator = "&" if "?" in location else "?"
    with bearer.urlopen(f"{location}{separator}digest={digest}", method="PUT", data=blob,
                        headers={"Content-Type": "application/octet-stream"}, creds=admin_creds) as response:
        assert response.status == 201
    assert get_blob(registry, "mount/fallback", digest, admin_creds) == blob
    with pytest.raises(urllib.error.HTTPError) as missing:
        head_blob(registry, "mount/fallback-elsewhere", digest, admin_creds)
    assert missing.value.code == 404
