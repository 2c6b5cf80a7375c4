"""skopeo (containers/image) against the local stack: push, pull back, compare bytes.

Every request is signed in as the admin (token authentication is on).
"""

from __future__ import annotations

import json
import urllib.error

import pytest

from support import CommandError, bearer, images, require, skopeo

LAYER_SIZES = [1_000_000, 3_000_000, 4_000_000]


@pytest.fixture(scope="module", autouse=True)
def _skopeo():
    require("skopeo")


def assert_same_blobs(source, copy, digests):
    for digest in digests:
        assert images.read_blob(copy, digest) == images.read_blob(source, digest), digest


def test_three_layer_image_round_trips_with_identical_digests(registry, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "src", LAYER_SIZES, tag="v1")
    ref = f"{registry}/team/app:v1"

    pushed = skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), ref, creds=admin_creds)

    assert pushed == image.digest
    assert skopeo.inspect_raw(ref, creds=admin_creds) == image.manifest_bytes
    skopeo.copy(ref, images.oci_ref(tmp_path / "back", "v1"), creds=admin_creds)
    assert_same_blobs(tmp_path / "src", tmp_path / "back", [image.digest, image.config.digest, *image.layer_digests])


def test_two_platform_index_round_trips_with_all(registry, admin_creds, tmp_path):
    index = images.write_index(tmp_path / "src", [700_000, 300_000], tag="multi")
    ref = f"{registry}/team/multi:1.0"

    skopeo.copy(images.oci_ref(tmp_path / "src", "multi"), ref, all=True, creds=admin_creds)

    assert skopeo.inspect_raw(ref, creds=admin_creds) == index.index_bytes
    for child in index.images:
        assert skopeo.inspect_raw(f"{registry}/team/multi@{child.digest}", creds=admin_creds) == child.manifest_bytes
    skopeo.copy(ref, images.oci_ref(tmp_path / "back", "multi"), all=True, creds=admin_creds)
    digests = [index.digest]
    for child in index.images:
        digests += [child.digest, child.config.digest, *child.layer_digests]
    assert_same_blobs(tmp_path / "src", tmp_path / "back", digests)


def test_deep_repository_name_round_trips(registry, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "src", [10_000], tag="x")
    ref = f"{registry}/a/b/c/d/e:x"
    skopeo.copy(images.oci_ref(tmp_path / "src", "x"), ref, creds=admin_creds)
    assert skopeo.digest(ref, creds=admin_creds) == image.digest


def test_layer_too_large_for_one_request_fails_clearly_and_leaves_nothing(registry, admin_creds, tmp_path):
    images.write_image(tmp_path / "src", [200_000, 5_000_000], tag="big")
    ref = f"{registry}/team/toolarge:big"

    with pytest.raises(CommandError) as failure:
        skopeo.copy(images.oci_ref(tmp_path / "src", "big"), ref, creds=admin_creds)

    assert "413" in failure.value.stderr or "Request Entity Too Large" in failure.value.stderr
    # A failed push never changes what a pull returns: the tag does not exist.
    with pytest.raises(urllib.error.HTTPError) as missing:
        bearer.urlopen(f"http://{registry}/v2/team/toolarge/manifests/big", method="HEAD", creds=admin_creds)
    assert missing.value.code == 404


def test_catalog_and_tags_list_what_was_pushed(registry, admin_creds, tmp_path):
    images.write_image(tmp_path / "src", [5_000], tag="t")
    for tag in ("b", "a", "c"):
        skopeo.copy(images.oci_ref(tmp_path / "src", "t"), f"{registry}/listing/repo:{tag}", creds=admin_creds)

    with bearer.urlopen(f"http://{registry}/v2/listing/repo/tags/list", creds=admin_creds) as response:
        assert json.load(response) == {"name": "listing/repo", "tags": ["a", "b", "c"]}
    with bearer.urlopen(f"http://{registry}/v2/_catalog", creds=admin_creds) as response:
        assert "listing/repo" in json.load(response)["repositories"]
