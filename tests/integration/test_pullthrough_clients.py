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


# --- a second local stack as the upstream: token auth and 307 blob redirects, as Docker Hub answers ---------------

_UPSTREAM_STACK = """
import signal, sys, threading
from local_stack.gateway import Limits
from local_stack.stack import LocalStack
stack = LocalStack(port=int(sys.argv[1]), limits=Limits.off()).start()
print("ready", flush=True)
stopped = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stopped.set())
stopped.wait()
stack.stop()
"""


class UpstreamStack:
    """This registry, run as its own process (its own moto), signed in to as its admin."""

    def __init__(self):
        import secrets

        from support import free_port

        self.port = free_port()
        self.user, self.password = "admin", secrets.token_urlsafe(18)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self):
        import sys
        from pathlib import Path

        from support import wait_until
        from support._process import make_scratch, spawn

        self.scratch = make_scratch("upstream-stack-")
        root = Path(__file__).resolve().parents[2]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "UPSTREAMS", "CACHE_"))}
        env.update(REGISTRY_ADMIN_USER=self.user, REGISTRY_ADMIN_PASSWORD=self.password, PYTHONPATH=str(root))
        self.log = self.scratch / "stack.log"
        self.proc = spawn([sys.executable, "-c", _UPSTREAM_STACK, str(self.port)], self.log, env=env)
        wait_until(lambda: "ready" in self.log.read_text(errors="replace") or self.proc.poll() is not None, 60, "upstream stack")
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        return self

    def __exit__(self, *exc):
        import shutil

        from support._process import terminate

        terminate(self.proc, timeout=10)
        shutil.rmtree(self.scratch, ignore_errors=True)


def test_through_a_token_upstream_a_large_layer_is_served_by_the_upstreams_redirect_then_from_our_s3(
        registry, stack, requests, tmp_path, monkeypatch):
    """Like Docker Hub: Bearer challenge, a token for the upstream's credentials (from Secrets Manager here),
    blob GETs answered 307 to presigned S3. A layer over CACHE_INLINE_BYTES is pulled from the upstream's
    redirect while the fetch function copies it; once copied, it is served from our S3."""
    from registry.references import Digest
    from registry.services import pullthrough
    from registry.storage import metadata
    from registry.storage import upstream as http
    from registry_admin import upstreams
    from support import wait_until

    monkeypatch.setenv("CACHE_INLINE_BYTES", str(1024 * 1024))
    with UpstreamStack() as upstream:
        image = images.write_image(tmp_path / "src", [6_000_000, 200_000], tag="v1", compresslevel=0)
        skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), f"{upstream.host}/team/big:v1", creds=(upstream.user, upstream.password))
        upstreams.set_upstream("ours", f"http://{upstream.host}", upstream.user, upstream.password)
        http.reset()
        pullthrough.reset()
        try:
            skopeo.copy(f"{registry}/ours/team/big:v1", images.oci_ref(tmp_path / "first", "v1"))
            for digest in [image.digest, image.config.digest, *image.layer_digests]:
                assert images.read_blob(tmp_path / "first", digest) == images.read_blob(tmp_path / "src", digest)
            big = Digest.parse(image.layer_digests[0])
            [first_get] = [c for c in requests if c.method == "GET" and c.path.endswith(f"/blobs/{big}") and c.status == 307]
            assert not first_get.reply_headers["location"].startswith(stack.aws_endpoint)  # the upstream's own S3, not ours

            def copied() -> bool:
                link = metadata.get_link("ours/team/big", big)
                return link is not None and not link.get("pending")

            wait_until(copied, 120, "the fetch function's copy of the large layer", interval=0.5)
            requests.clear()
            skopeo.copy(f"{registry}/ours/team/big:v1", images.oci_ref(tmp_path / "second", "v1"))
            [second_get] = [c for c in requests if c.method == "GET" and c.path.endswith(f"/blobs/{big}") and c.status == 307]
            assert second_get.reply_headers["location"].startswith(stack.aws_endpoint)
            assert images.read_blob(tmp_path / "second", str(big)) == images.read_blob(tmp_path / "src", str(big))
        finally:
            upstreams.delete_upstream("ours")
