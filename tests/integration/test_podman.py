"""podman (Debian's podman 4.3, rootful, vfs, private storage) against the local stack.

podman keeps images uncompressed, so a push recompresses the layers: the
manifest podman writes is a new one (new layer digests, same config and
diff_ids). What must hold is that the registry serves exactly the manifest
podman says it wrote, every blob it names, and gives the same image back.

Registry access is signed in as the admin (token authentication is on).
"""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from support import bearer, images, require, skopeo
from support.podman import MEDIA_TYPES, Podman

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"


@pytest.fixture(scope="module", autouse=True)
def _clients():
    require("podman", "skopeo")


@pytest.fixture(scope="module")
def podman():
    with Podman() as client:
        yield client


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fetch_blob(registry: str, repo: str, digest: str, creds) -> bytes:
    with bearer.urlopen(f"http://{registry}/v2/{repo}/blobs/{digest}", creds=creds) as response:
        return response.read()


def assert_serves_valid_image(registry, repo, ref, pushed, media_type, image, creds):
    """The manifest at *ref* is the one podman wrote (digest *pushed*), of
    *media_type*, for *image*'s config, and every blob it names is served
    with its digest; the layers unpack to *image*'s diff_ids."""
    raw = skopeo.inspect_raw(ref, creds=creds)
    assert sha256(raw) == pushed
    manifest = json.loads(raw)
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == media_type
    assert manifest["config"]["digest"] == image.config.digest
    config = fetch_blob(registry, repo, image.config.digest, creds)
    assert config == image.config_bytes
    assert skopeo.inspect_raw(ref, config=True, creds=creds) == image.config_bytes
    diff_ids = []
    for layer in manifest["layers"]:
        blob = fetch_blob(registry, repo, layer["digest"], creds)
        assert sha256(blob) == layer["digest"] and len(blob) == layer["size"]
        diff_ids.append(sha256(gzip.decompress(blob)))
    assert diff_ids == image.diff_ids
    # skopeo's own parse of it agrees.
    described = skopeo.inspect(ref, creds=creds)
    assert described["Digest"] == pushed
    assert described["Layers"] == [layer["digest"] for layer in manifest["layers"]]
    return manifest


def test_podman_pull_from_an_oci_layout_keeps_its_digest(podman, tmp_path):
    image = images.write_image(tmp_path / "layout", [50_000], tag="v1")

    assert podman.pull(images.oci_ref(tmp_path / "layout", "v1")) == image.digest
    assert podman.image_id(image.config.digest) == image.config.digest


def test_podman_push_in_oci_format_then_pull_back(registry, podman, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "layout", [300_000, 120_000], tag="v1")
    podman.pull(images.oci_ref(tmp_path / "layout", "v1"))
    repo = "team/podman-oci"
    ref = f"{registry}/{repo}:v1"
    podman.tag(image.config.digest, ref)

    pushed = podman.push(ref, format="oci", creds=admin_creds)

    manifest = assert_serves_valid_image(registry, repo, ref, pushed, MEDIA_TYPES["oci"], image, admin_creds)
    assert manifest["config"]["mediaType"] == images.OCI_CONFIG
    assert {layer["mediaType"] for layer in manifest["layers"]} == {images.OCI_LAYER_GZIP}
    podman.rmi(image.config.digest, force=True)
    assert not podman.exists(ref)
    assert podman.pull(ref, creds=admin_creds) == pushed
    assert podman.image_id(ref) == image.config.digest
    assert podman.pull(f"{registry}/{repo}@{pushed}", creds=admin_creds) == pushed


def test_podman_push_with_format_v2s2_serves_a_docker_manifest(registry, podman, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "layout", [250_000, 80_000], tag="v1")
    podman.pull(images.oci_ref(tmp_path / "layout", "v1"))
    repo = "team/podman-v2s2"
    ref = f"{registry}/{repo}:v1"
    podman.tag(image.config.digest, ref)

    pushed = podman.push(ref, format="v2s2", creds=admin_creds)

    # Converting to a Docker manifest changes the manifest digest, not the config.
    assert pushed != image.digest
    manifest = assert_serves_valid_image(registry, repo, ref, pushed, MEDIA_TYPES["v2s2"], image, admin_creds)
    assert manifest["config"]["mediaType"] == DOCKER_CONFIG
    assert {layer["mediaType"] for layer in manifest["layers"]} == {DOCKER_LAYER}
    podman.rmi(image.config.digest, force=True)
    assert not podman.exists(ref)
    assert podman.pull(ref, creds=admin_creds) == pushed
    assert podman.image_id(ref) == image.config.digest


def test_podman_pulls_what_skopeo_pushed_by_tag_and_by_digest(registry, podman, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "layout", [150_000], tag="v1")
    ref = f"{registry}/team/podman-from-skopeo:v1"
    skopeo.copy(images.oci_ref(tmp_path / "layout", "v1"), ref, creds=admin_creds)

    assert podman.pull(ref, creds=admin_creds) == image.digest
    assert podman.image_id(ref) == image.config.digest
    podman.rmi(image.config.digest, force=True)
    assert podman.pull(f"{registry}/team/podman-from-skopeo@{image.digest}", creds=admin_creds) == image.digest
