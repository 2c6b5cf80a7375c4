"""The pull-through cache with real clients: skopeo, docker and ctr pull through the local stack
from Debian's reference registry (``docker-registry``, which serves blob bytes itself).

The upstream's access log counts what reached it. Images are pushed to the
upstream under ``library/…``; the cache prefix ``mirror`` has Docker Hub's
``library/`` convention on, so ``mirror/app`` and ``mirror/library/app`` are one image.
"""

from __future__ import annotations

import os
import re

import pytest

from support import CommandError, images, require, skopeo
from support.containerd import Containerd
from support.registry import ReferenceRegistry

LAYER_SIZES = [300_000, 200_000, 100_000]


@pytest.fixture(scope="module", autouse=True)
def _clients():
    require("skopeo", "docker-registry")


def use_upstream(prefix: str, url: str, monkeypatch):
    """Point the running stack's functions at ``url`` for ``prefix`` (they read UPSTREAMS at most once a minute)."""
    from registry.services import pullthrough

    entries = [e for e in os.environ.get("UPSTREAMS", "").split(";") if e and not e.startswith(f"{prefix}=")]
    monkeypatch.setenv("UPSTREAMS", ";".join([*entries, f"{prefix}={url},library"]))
    pullthrough.reset()


@pytest.fixture
def upstream(stack, monkeypatch):
    with ReferenceRegistry() as registry:
        use_upstream("mirror", registry.url, monkeypatch)
        yield registry
    from registry.services import pullthrough

    pullthrough.reset()


def blob_gets(upstream: ReferenceRegistry) -> int:
    return len(re.findall(r'"GET /v2/[^ ]*/blobs/sha256:', upstream.log()))


def push_upstream(upstream: ReferenceRegistry, tmp_path, repo: str, tag: str, sizes=LAYER_SIZES) -> images.Image:
    image = images.write_image(tmp_path / f"src-{repo.replace('/', '-')}-{tag}", sizes, tag=tag)
    skopeo.copy(images.oci_ref(tmp_path / f"src-{repo.replace('/', '-')}-{tag}", tag), f"{upstream.host}/{repo}:{tag}")
    return image


def test_skopeo_pulls_byte_for_byte_and_a_second_pull_fetches_no_blob_upstream(registry, upstream, tmp_path):
    image = push_upstream(upstream, tmp_path, "library/app", "v1")
    source = tmp_path / "src-library-app-v1"
    skopeo.copy(f"{registry}/mirror/app:v1", images.oci_ref(tmp_path / "first", "v1"))
    digests = [image.digest, image.config.digest, *image.layer_digests]
    for digest in digests:
        assert images.read_blob(tmp_path / "first", digest) == images.read_blob(source, digest)
    fetched = blob_gets(upstream)
    assert fetched == 1 + len(LAYER_SIZES)
    skopeo.copy(f"{registry}/mirror/library/app:v1", images.oci_ref(tmp_path / "second", "v1"))
    for digest in digests:
        assert images.read_blob(tmp_path / "second", digest) == images.read_blob(source, digest)
    assert blob_gets(upstream) == fetched


def test_docker_pulls_through_the_cache_with_the_upstreams_digest(registry, upstream, dockerd, tmp_path):
    image = push_upstream(upstream, tmp_path, "library/dockerapp", "v1")
    assert dockerd.pull(f"{registry}/mirror/dockerapp:v1") == image.digest
    assert dockerd.image_id(f"{registry}/mirror/dockerapp:v1") == image.config.digest


def test_ctr_pulls_through_the_cache_with_the_upstreams_digest(registry, upstream, tmp_path):
    require("ctr", "containerd")
    image = push_upstream(upstream, tmp_path, "team/ctrapp", "v1")
    with Containerd() as containerd:
        assert containerd.pull(f"{registry}/mirror/team/ctrapp:v1") == image.digest
        for digest in image.layer_digests:
            assert containerd.content(digest) == images.read_blob(tmp_path / "src-team-ctrapp-v1", digest)


def test_a_changed_upstream_tag_is_seen_after_the_ttl_and_not_before(registry, upstream, tmp_path, monkeypatch):
    monkeypatch.setenv("CACHE_TAG_SECONDS", "3600")
    first = push_upstream(upstream, tmp_path, "library/moving", "latest")
    assert skopeo.digest(f"{registry}/mirror/moving:latest") == first.digest
    second = push_upstream(upstream, tmp_path, "library/moving", "latest", [50_000])
    assert skopeo.digest(f"{registry}/mirror/moving:latest") == first.digest
    monkeypatch.setenv("CACHE_TAG_SECONDS", "0")
    assert skopeo.digest(f"{registry}/mirror/moving:latest") == second.digest


def test_pushing_under_a_cache_prefix_is_refused_even_to_the_admin(registry, upstream, admin_creds, tmp_path):
    images.write_image(tmp_path / "mine", [10_000], tag="mine")
    with pytest.raises(CommandError) as refused:
        skopeo.copy(images.oci_ref(tmp_path / "mine", "mine"), f"{registry}/mirror/library/app:mine", creds=admin_creds)
    assert "denied" in refused.value.stderr.lower()


def test_with_the_upstream_stopped_cached_images_pull_and_uncached_ones_fail_clearly(registry, stack, tmp_path, monkeypatch):
    monkeypatch.setenv("CACHE_TAG_SECONDS", "0")
    gone = ReferenceRegistry().start()
    try:
        use_upstream("gone", gone.url, monkeypatch)
        image = push_upstream(gone, tmp_path, "library/kept", "v1")
        push_upstream(gone, tmp_path, "library/never", "v1")
        skopeo.copy(f"{registry}/gone/kept:v1", images.oci_ref(tmp_path / "first", "v1"))
    finally:
        gone.stop()
    skopeo.copy(f"{registry}/gone/kept:v1", images.oci_ref(tmp_path / "again", "v1"))
    for digest in [image.digest, *image.layer_digests]:
        assert images.read_blob(tmp_path / "again", digest) == images.read_blob(tmp_path / "src-library-kept-v1", digest)
    with pytest.raises(CommandError) as failed:
        skopeo.copy(f"{registry}/gone/never:v1", images.oci_ref(tmp_path / "never", "v1"))
    # containers/image prints a 5xx's status line, not its body (the body's UNAVAILABLE is checked in tests/unit).
    assert "503 Service Unavailable" in failed.value.stderr
