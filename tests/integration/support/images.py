"""Write OCI image layouts with random, incompressible test images.

A layout is a directory with ``oci-layout``, ``index.json`` and
``blobs/sha256/<hex>`` (OCI image-layout spec). Images are referenced from
``index.json`` by the ``org.opencontainers.image.ref.name`` annotation, so
``oci:DIR:TAG`` works with skopeo. Every function returns the digests it
wrote so tests can compare what a registry serves byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

__all__ = [
    "OCI_MANIFEST", "OCI_INDEX", "OCI_CONFIG", "OCI_LAYER_GZIP", "REF_NAME",
    "DEFAULT_PLATFORMS", "Blob", "Layer", "Image", "Index",
    "init_layout", "blob_path", "read_blob", "write_blob", "write_layer",
    "write_image", "write_index", "add_ref", "oci_ref", "to_docker_archive",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
DEFAULT_PLATFORMS = (("linux", "amd64"), ("linux", "arm64"))

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    """A blob written to a layout."""
    digest: str
    size: int
    media_type: str

    def descriptor(self, **extra) -> dict:
        """OCI descriptor for this blob; *extra* keys (platform, annotations) added."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Layer(Blob):
    """A gzip'd tar layer; ``diff_id`` is the sha256 of the uncompressed tar."""
    diff_id: str = ""


@dataclass(frozen=True)
class Image:
    """One image manifest with its config and layers."""
    manifest: Blob
    config: Blob
    layers: list[Layer]
    platform: dict
    manifest_bytes: bytes = field(repr=False)
    config_bytes: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        """The manifest digest."""
        return self.manifest.digest

    @property
    def layer_digests(self) -> list[str]:
        return [layer.digest for layer in self.layers]

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]


@dataclass(frozen=True)
class Index:
    """An image index (multi-platform) and the images it lists, in order."""
    index: Blob
    images: list[Image]
    index_bytes: bytes = field(repr=False)

    @property
    def digest(self) -> str:
        """The index digest."""
        return self.index.digest

    def image(self, architecture: str, os: str = "linux") -> Image:
        """The image for one platform."""
        for img in self.images:
            if img.platform.get("architecture") == architecture and img.platform.get("os") == os:
                return img
        raise KeyError(f"{os}/{architecture}")


def _dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":"), sort_keys=True).encode()


def init_layout(path: str | os.PathLike) -> Path:
    """Create (or reuse) an OCI layout at *path*; returns it as a Path."""
    root = Path(path)
    (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    if not (root / "oci-layout").exists():
        (root / "oci-layout").write_bytes(_dumps({"imageLayoutVersion": "1.0.0"}))
    if not (root / "index.json").exists():
        (root / "index.json").write_bytes(_dumps({"schemaVersion": 2, "manifests": []}))
    return root


def blob_path(layout: str | os.PathLike, digest: str) -> Path:
    """Path of the blob *digest* inside *layout*."""
    algo, hexdigest = digest.split(":", 1)
    return Path(layout) / "blobs" / algo / hexdigest


def read_blob(layout: str | os.PathLike, digest: str) -> bytes:
    """Bytes of blob *digest* from *layout*."""
    return blob_path(layout, digest).read_bytes()


def write_blob(layout: str | os.PathLike, data: bytes, media_type: str) -> Blob:
    """Store *data* as a blob in *layout*."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(init_layout(layout), digest)
    if not path.exists():
        path.write_bytes(data)
    return Blob(digest, len(data), media_type)


class _HashingWriter(io.RawIOBase):
    """File-like wrapper counting and sha256-hashing what is written."""

    def __init__(self, f):
        self.f, self.sha, self.size = f, hashlib.sha256(), 0

    def writable(self):
        return True

    def write(self, b):
        self.f.write(b)
        self.sha.update(b)
        self.size += len(b)
        return len(b)


def _randbytes(rng: random.Random | None, n: int) -> bytes:
    return os.urandom(n) if rng is None else rng.randbytes(n)


def _write_tar_gz(tmp: Path, payload: int, name: str, rng: random.Random | None, compresslevel: int = 1):
    """Stream a one-file tar of *payload* random bytes, gzipped at *compresslevel*, to *tmp*.
    Returns (compressed sha256, compressed size, uncompressed sha256)."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = payload, 0o644, 0
    header = info.tobuf(format=tarfile.USTAR_FORMAT)
    trailer = b"\0" * (-payload % 512) + b"\0" * 1024
    raw = hashlib.sha256()
    with open(tmp, "wb") as f:
        out = _HashingWriter(f)
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=compresslevel, mtime=0) as gz:
            def put(b):
                raw.update(b)
                gz.write(b)
            put(header)
            left = payload
            while left:
                chunk = _randbytes(rng, min(_CHUNK, left))
                put(chunk)
                left -= len(chunk)
            put(trailer)
    return out.sha.hexdigest(), out.size, raw.hexdigest()


def write_layer(layout: str | os.PathLike, size: int, *, rng: random.Random | None = None,
                tolerance: int = 256, name: str = "payload.bin", compresslevel: int = 1) -> Layer:
    """Write a gzip'd tar layer whose *compressed* size is within *tolerance*
    bytes of *size* (sizes below ~100 bytes cannot be reached). The tar holds
    one file of random bytes (``os.urandom`` unless *rng* is given).
    *compresslevel* 0 writes stored deflate blocks: still valid gzip, about
    nine times cheaper to write, for the large layers of push tests."""
    root = init_layout(layout)
    tmp = root / "blobs" / "sha256" / f".tmp-{os.getpid()}-{os.urandom(4).hex()}"
    # Random data gzips to ~0.031% larger (stored blocks: ~0.008%), plus headers; then correct once or twice.
    payload = max(0, int((size - 180) / (1.00008 if compresslevel == 0 else 1.00031)))
    try:
        for _ in range(4):
            hexdigest, csize, diff = _write_tar_gz(tmp, payload, name, rng, compresslevel)
            if abs(csize - size) <= tolerance or (payload == 0 and csize > size):
                break
            payload = max(0, payload + size - csize)
        digest = "sha256:" + hexdigest
        os.replace(tmp, blob_path(root, digest))
    finally:
        tmp.unlink(missing_ok=True)
    return Layer(digest, csize, OCI_LAYER_GZIP, diff_id="sha256:" + diff)


def add_ref(layout: str | os.PathLike, blob: Blob, tag: str, **extra) -> None:
    """Point ``index.json`` tag *tag* at *blob* (replacing a previous *tag*)."""
    root = init_layout(layout)
    index = json.loads((root / "index.json").read_bytes())
    index["manifests"] = [d for d in index["manifests"]
                          if d.get("annotations", {}).get(REF_NAME) != tag]
    index["manifests"].append(blob.descriptor(annotations={REF_NAME: tag}, **extra))
    (root / "index.json").write_bytes(_dumps(index))


def _platform(os_: str, architecture: str, variant: str | None) -> dict:
    p = {"architecture": architecture, "os": os_}
    if variant:
        p["variant"] = variant
    return p


def write_image(layout: str | os.PathLike, layer_sizes: Sequence[int], *,
                tag: str | None = "latest", os: str = "linux", architecture: str = "amd64",
                variant: str | None = None, seed: int | None = None,
                rng: random.Random | None = None, compresslevel: int = 1) -> Image:
    """Write an OCI image (config, layers of the given compressed sizes,
    manifest) to *layout*, tagged *tag* in ``index.json`` unless tag is None.
    *seed* makes the content reproducible; default is fresh random bytes.
    *compresslevel* is the layers' gzip level (see :func:`write_layer`)."""
    if rng is None and seed is not None:
        rng = random.Random(seed)
    layers = [write_layer(layout, s, rng=rng, name=f"layer{i}.bin", compresslevel=compresslevel)
              for i, s in enumerate(layer_sizes)]
    platform = _platform(os, architecture, variant)
    config_bytes = _dumps({
        **platform,
        "created": "1970-01-01T00:00:00Z",
        "config": {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [l.diff_id for l in layers]},
        "history": [{"created": "1970-01-01T00:00:00Z",
                     "created_by": f"tests.integration.support layer {i}"}
                    for i in range(len(layers))],
    })
    config = write_blob(layout, config_bytes, OCI_CONFIG)
    manifest_bytes = _dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [l.descriptor() for l in layers],
    })
    manifest = write_blob(layout, manifest_bytes, OCI_MANIFEST)
    if tag is not None:
        add_ref(layout, manifest, tag)
    return Image(manifest, config, layers, platform, manifest_bytes, config_bytes)


def write_index(layout: str | os.PathLike, layer_sizes: Sequence[int], *,
                tag: str | None = "latest",
                platforms: Iterable[tuple[str, str]] = DEFAULT_PLATFORMS,
                seed: int | None = None) -> Index:
    """Write a multi-platform image index: one image per ``(os, architecture)``
    in *platforms* (default linux/amd64 + linux/arm64), each with its own
    config and distinct layers of *layer_sizes*. Tags the index as *tag*."""
    rng = random.Random(seed) if seed is not None else None
    images = [write_image(layout, layer_sizes, tag=None, os=o, architecture=a, rng=rng)
              for o, a in platforms]
    index_bytes = _dumps({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [img.manifest.descriptor(platform=img.platform) for img in images],
    })
    index = write_blob(layout, index_bytes, OCI_INDEX)
    if tag is not None:
        add_ref(layout, index, tag)
    return Index(index, images, index_bytes)


def oci_ref(layout: str | os.PathLike, tag: str) -> str:
    """The skopeo/containers-image reference ``oci:LAYOUT:TAG``."""
    return f"oci:{Path(layout)}:{tag}"


def to_docker_archive(layout: str | os.PathLike, tag: str, archive: str | os.PathLike,
                      repo_tag: str) -> Path:
    """Convert image *tag* of *layout* to a ``docker load``-able tar at
    *archive* named *repo_tag* (e.g. ``127.0.0.1:5000/test/img:v1``), via
    skopeo. For an index, skopeo picks the host's platform. Docker recompresses
    layers on push, so after a docker round trip compare the config digest
    (= docker image ID) and diff_ids, not layer digests."""
    from . import skopeo
    archive = Path(archive)
    archive.unlink(missing_ok=True)  # docker-archive: refuses to append to a file
    skopeo.copy(oci_ref(layout, tag), f"docker-archive:{archive}:{repo_tag}")
    return archive
