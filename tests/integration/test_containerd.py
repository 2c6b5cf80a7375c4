"""containerd's ``ctr`` (Debian's containerd 1.6, private daemon) against the local stack.

containerd uploads each blob with ``POST /v2/<repo>/blobs/uploads/`` then a
single ``PUT ...?digest=`` carrying the whole blob (the monolithic path),
and keeps the manifest bytes it imported, so an OCI archive round-trips to
the very same digests. It signs in with ``--user`` as the admin (token
authentication is on): ``POST /token`` with ``grant_type=password``.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse

import pytest

from support import images, require, skopeo
from support.containerd import Containerd

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"


@pytest.fixture(scope="module", autouse=True)
def _clients():
    require("ctr", "containerd", "skopeo")


@pytest.fixture(scope="module")
def containerd():
    with Containerd() as daemon:
        yield daemon




def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def oci_archive(layout, tag, path, *, all=False):
    skopeo.copy(images.oci_ref(layout, tag), f"oci-archive:{path}:{tag}", all=all)
    return path


def blob_writes(calls: list, repo: str) -> list:
    return [c for c in calls if c.path.startswith(f"/v2/{repo}/blobs/uploads")]


def test_ctr_push_of_an_oci_archive_then_pull_keeps_every_digest(
        registry, containerd, requests, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "layout", [400_000, 150_000], tag="v1")
    archive = oci_archive(tmp_path / "layout", "v1", tmp_path / "image.tar")
    assert containerd.import_archive(archive, base_name="local/ctr-oci") == ["local/ctr-oci:v1"]
    assert containerd.digest("local/ctr-oci:v1") == image.digest
    repo = "team/ctr-oci"
    ref = f"{registry}/{repo}:v1"
    containerd.tag("local/ctr-oci:v1", ref)

    containerd.push(ref, user=admin_creds)

    assert skopeo.inspect_raw(ref, creds=admin_creds) == image.manifest_bytes
    # Monolithic uploads: per blob (config + 2 layers) one POST that opens an
    # upload, then one PUT of the whole blob to the Location it returned; no PATCH.
    writes = blob_writes(requests, repo)
    posts = [c for c in writes if c.method == "POST"]
    puts = [c for c in writes if c.method == "PUT"]
    assert len(posts) == len(puts) == 3 and len(writes) == 6, writes
    assert all(c.status == 202 for c in posts) and all(c.status == 201 for c in puts), writes
    locations = {urllib.parse.urlsplit(c.reply_headers["location"]).path for c in posts}
    assert {c.path for c in puts} == locations
    assert sorted(c.query["digest"] for c in puts) \
        == sorted([image.config.digest, *image.layer_digests])
    containerd.remove(ref, "local/ctr-oci:v1")
    assert not containerd.has_content(image.digest)

    assert containerd.pull(ref, user=admin_creds) == image.digest
    assert containerd.content(image.digest) == image.manifest_bytes
    assert containerd.content(image.config.digest) == image.config_bytes
    for digest in image.layer_digests:
        assert containerd.content(digest) == images.read_blob(tmp_path / "layout", digest)


def test_ctr_push_of_a_docker_archive_then_pull_by_digest(registry, containerd, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "layout", [200_000], tag="v1")
    archive = images.to_docker_archive(tmp_path / "layout", "v1", tmp_path / "image.tar",
                                       "local/ctr-docker:v1")
    (name,) = containerd.import_archive(archive)
    imported = containerd.digest(name)
    assert containerd.media_type(name) == DOCKER_MANIFEST
    repo = "team/ctr-docker"
    ref = f"{registry}/{repo}:v1"
    containerd.tag(name, ref)

    containerd.push(ref, user=admin_creds)

    raw = skopeo.inspect_raw(ref, creds=admin_creds)
    assert sha256(raw) == imported
    assert raw == containerd.content(imported)
    manifest = json.loads(raw)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert manifest["config"]["digest"] == image.config.digest
    containerd.remove(ref, name)
    by_digest = f"{registry}/{repo}@{imported}"
    assert containerd.pull(by_digest, user=admin_creds) == imported
    assert containerd.content(image.config.digest) == image.config_bytes


def test_ctr_push_of_a_two_platform_index_then_pull_all_platforms(
        registry, containerd, requests, admin_creds, tmp_path):
    index = images.write_index(tmp_path / "layout", [120_000, 30_000], tag="multi")
    archive = oci_archive(tmp_path / "layout", "multi", tmp_path / "index.tar", all=True)
    (name,) = containerd.import_archive(archive, base_name="local/ctr-multi", all_platforms=True)
    assert containerd.digest(name) == index.digest
    repo = "team/ctr-multi"
    ref = f"{registry}/{repo}:1.0"
    containerd.tag(name, ref)

    containerd.push(ref, user=admin_creds)

    assert skopeo.inspect_raw(ref, creds=admin_creds) == index.index_bytes
    for child in index.images:
        assert skopeo.inspect_raw(f"{registry}/{repo}@{child.digest}", creds=admin_creds) == child.manifest_bytes
    # Children go up by digest before the index that names them.
    manifest_puts = [c.path.rsplit("/", 1)[1] for c in requests
                     if c.method == "PUT" and c.path.startswith(f"/v2/{repo}/manifests/")]
    assert manifest_puts[-1] == "1.0"
    assert sorted(manifest_puts[:-1]) == sorted(child.digest for child in index.images)
    containerd.remove(ref, name)

    assert containerd.pull(ref, user=admin_creds, all_platforms=True) == index.digest
    assert set(containerd.image(ref)["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert containerd.content(index.digest) == index.index_bytes
    for child in index.images:
        assert containerd.content(child.digest) == child.manifest_bytes
        assert containerd.content(child.config.digest) == child.config_bytes
        for digest in child.layer_digests:
            assert containerd.content(digest) == images.read_blob(tmp_path / "layout", digest)
