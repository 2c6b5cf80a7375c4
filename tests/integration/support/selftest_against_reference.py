"""Self-test of the harness against Debian's reference registry.

Not collected by default (no ``test_`` prefix); run explicitly:

    python -m pytest tests/integration/support/selftest_against_reference.py
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from . import MissingClientError, images, require, skopeo
from .dockerd import Dockerd
from .registry import ReferenceRegistry

SIZES = [1_000_000, 3_000_000, 4_000_000]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def registry():
    with ReferenceRegistry() as reg:
        yield reg


@pytest.fixture(scope="module")
def dockerd():
    with Dockerd() as d:
        yield d


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    """One layout with a 3-layer image ``v1`` and a 2-platform index ``multi``."""
    path = tmp_path_factory.mktemp("layout")
    image = images.write_image(path, SIZES, tag="v1")
    index = images.write_index(path, SIZES, tag="multi")
    return path, image, index


def assert_blobs_equal(src: Path, dst: Path, digests) -> None:
    for d in digests:
        assert images.read_blob(dst, d) == images.read_blob(src, d), d
        assert sha256(images.read_blob(dst, d)) == d


def tagged(layout: Path, tag: str) -> dict:
    for desc in json.loads((layout / "index.json").read_text())["manifests"]:
        if desc.get("annotations", {}).get(images.REF_NAME) == tag:
            return desc
    raise KeyError(tag)


def test_require_fails_loudly():
    with pytest.raises(MissingClientError, match="apt-get install"):
        require("no-such-client-binary")
    require("skopeo", "docker", "dockerd", "containerd", "docker-registry")


def test_layout_sizes_and_digests(layout):
    path, image, index = layout
    assert [abs(l.size - s) <= 256 for l, s in zip(image.layers, SIZES)] == [True] * 3
    for blob in [image.manifest, image.config, *image.layers, index.index]:
        data = images.read_blob(path, blob.digest)
        assert (sha256(data), len(data)) == (blob.digest, blob.size)
    config = json.loads(image.config_bytes)
    assert config["rootfs"]["diff_ids"] == image.diff_ids
    assert {i.platform["architecture"] for i in index.images} == {"amd64", "arm64"}
    assert not set(index.images[0].layer_digests) & set(index.images[1].layer_digests)


def test_skopeo_image_round_trip(registry, layout, tmp_path):
    path, image, _ = layout
    ref = f"{registry.host}/test/img:v1"
    assert skopeo.copy(images.oci_ref(path, "v1"), ref) == image.digest
    assert skopeo.inspect_raw(ref) == image.manifest_bytes
    assert skopeo.inspect_raw(ref, config=True) == image.config_bytes
    assert skopeo.digest(ref) == image.digest
    assert skopeo.inspect(ref)["Layers"] == image.layer_digests

    back = tmp_path / "back"
    skopeo.copy(ref, images.oci_ref(back, "v1"))
    assert tagged(back, "v1")["digest"] == image.digest
    assert_blobs_equal(path, back, [image.digest, image.config.digest, *image.layer_digests])


def test_skopeo_index_round_trip(registry, layout, tmp_path):
    path, _, index = layout
    ref = f"{registry.host}/test/multi:latest"
    assert skopeo.copy(images.oci_ref(path, "multi"), ref, all=True) == index.digest
    assert skopeo.inspect_raw(ref) == index.index_bytes
    assert skopeo.digest(ref) == index.digest
    for img in index.images:
        assert skopeo.inspect_raw(f"{registry.host}/test/multi@{img.digest}") == img.manifest_bytes

    back = tmp_path / "back"
    skopeo.copy(ref, images.oci_ref(back, "multi"), all=True)
    assert tagged(back, "multi")["digest"] == index.digest
    assert_blobs_equal(path, back, [index.digest] + [
        d for img in index.images for d in (img.digest, img.config.digest, *img.layer_digests)])


def test_docker_load_push_pull(registry, dockerd, layout, tmp_path):
    path, image, _ = layout
    name = f"{registry.host}/test/docker"
    archive = images.to_docker_archive(path, "v1", tmp_path / "img.tar", f"{name}:v1")
    assert dockerd.load(archive) == [f"{name}:v1"]
    assert dockerd.image_id(f"{name}:v1") == image.config.digest

    pushed = dockerd.push(f"{name}:v1")
    raw = skopeo.inspect_raw(f"{name}:v1")
    assert sha256(raw) == pushed
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest["config"]["digest"] == image.config.digest
    # docker recompresses layers, so only config / diff_ids survive byte for byte
    assert len(manifest["layers"]) == len(image.layers)

    dockerd.docker("tag", f"{name}:v1", f"{registry.host}/test/other:v1")
    assert dockerd.push(f"{registry.host}/test/other:v1") == pushed  # cross-repo mount

    dockerd.docker("rmi", f"{name}:v1", f"{registry.host}/test/other:v1")
    assert dockerd.pull(f"{name}:v1") == pushed
    dockerd.docker("rmi", f"{name}:v1")
    assert dockerd.pull(f"{name}@{pushed}") == pushed
    assert dockerd.image_id(f"{name}@{pushed}") == image.config.digest


def test_docker_pulls_oci_index(registry, dockerd, layout):
    _, _, index = layout
    ref = f"{registry.host}/test/multi:latest"
    skopeo.copy(images.oci_ref(layout[0], "multi"), ref, all=True)
    assert dockerd.pull(ref) == index.digest
    assert dockerd.image_id(ref) == index.image("amd64").config.digest


def test_dockerd_stop_leaves_nothing(tmp_path):
    d = Dockerd().start()
    scratch = d.scratch
    assert d.startup_seconds < 30
    assert d.docker("version", "--format", "{{.Server.Version}}").stdout.strip()
    pids = [d._dockerd.pid, d._containerd.pid]
    d.stop()
    d.stop()  # idempotent
    assert not scratch.exists()
    assert str(scratch) not in Path("/proc/self/mountinfo").read_text()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}")
