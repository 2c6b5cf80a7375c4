"""Manifest media types and validation.

``parse(body, content_type)`` returns a ``Manifest`` naming what the manifest
references (blobs for an image, child manifests for an index), or raises
MANIFEST_INVALID with a message that says what is wrong.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from registry import inputs
from registry.errors import OciError, RegistryError
from registry.references import Digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)

IMAGE_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_LIST, OCI_INDEX)
SUPPORTED = IMAGE_TYPES + INDEX_TYPES

# The spec asks registries to take manifests of at least 4 MB.
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
# RFC 6838 §4.2: a type and a subtype name of at most 127 characters each.
MAX_MEDIA_TYPE = 255
# What a referrer's descriptor copies from its manifest (artifactType and
# annotations, as JSON) is kept in one DynamoDB item (400 KB at most) and
# repeated in every referrers page: a manifest with a subject may carry this much.
MAX_REFERRER_EXTRA = 16 * 1024
# Descriptors one manifest may list (an image's config and layers, an index's
# manifests). Storing a manifest reads and writes one item per reference, so
# this bounds a push's AWS calls; ECR refuses images of more than 127 layers,
# and Docker cannot run one (overlay2 stacks at most 128 layers).
MAX_REFERENCES = 256


class Manifest(NamedTuple):
    media_type: str
    blobs: tuple[Digest, ...]  # config and layers this manifest needs in the repository
    manifests: tuple[Digest, ...]  # child manifests of an index
    subject: Digest | None = None
    artifact_type: str | None = None
    config_media_type: str | None = None
    annotations: dict | None = None

    @property
    def referrer_artifact_type(self) -> str | None:
        """What the referrers API reports: artifactType, else the config's media type (image spec)."""
        return self.artifact_type or self.config_media_type


def _invalid(message: str) -> RegistryError:
    return RegistryError(OciError.MANIFEST_INVALID, message)


def _descriptor(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise _invalid(f"{where} is not a descriptor object")
    if not isinstance(value.get("mediaType"), str):
        raise _invalid(f"{where} has no mediaType")
    size = value.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise _invalid(f"{where} has no valid size")
    try:
        Digest.parse(value.get("digest", ""))
    except RegistryError:
        raise _invalid(f"{where} has an invalid digest") from None
    return value


def _check_referrer_extra(artifact_type, annotations, config):
    """A manifest with a subject: what its referrer descriptor copies fits MAX_REFERRER_EXTRA bytes."""
    config_type = config.get("mediaType") if isinstance(config, dict) else None
    extra = json.dumps([artifact_type or config_type, annotations], ensure_ascii=False).encode()
    if len(extra) > MAX_REFERRER_EXTRA:
        raise _invalid(
            f"a manifest with a subject may carry at most {MAX_REFERRER_EXTRA} bytes of artifactType and annotations "
            "(the referrers API copies them into every listing)"
        )


def _check_count(count: int, what: str):
    if count > MAX_REFERENCES:
        raise _invalid(f"a manifest may list at most {MAX_REFERENCES} descriptors ({what}); this one lists {count}")


def media_type_of(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def parse(body: bytes, content_type: str | None) -> Manifest:
    header_type = media_type_of(content_type)
    if header_type in SCHEMA1:
        raise _invalid("Docker schema 1 manifests are not supported: push with schema 2 or OCI")
    try:
        document = inputs.json_document(body)
    except inputs.DocumentInvalid as exc:
        raise _invalid(f"manifest is {exc}") from None
    if not isinstance(document, dict):
        raise _invalid("manifest is not a JSON object")
    body_type = document.get("mediaType")
    if body_type is not None and not isinstance(body_type, str):
        raise _invalid("mediaType is not a string")
    if document.get("schemaVersion") == 1 or body_type in SCHEMA1:
        raise _invalid("Docker schema 1 manifests are not supported: push with schema 2 or OCI")
    if document.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    if header_type and body_type and header_type != body_type:
        raise _invalid(f"Content-Type {header_type} does not match the manifest's mediaType {body_type}")
    media_type = body_type or header_type
    if not media_type:
        media_type = OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if media_type not in SUPPORTED:
        raise _invalid(f"unsupported manifest media type {media_type!r}")

    subject = None
    if document.get("subject") is not None:
        subject = Digest.parse(_descriptor(document["subject"], "subject")["digest"])
    artifact_type = document.get("artifactType")
    if artifact_type is not None and not (isinstance(artifact_type, str) and len(artifact_type) <= MAX_MEDIA_TYPE):
        raise _invalid(f"artifactType is not a media type (a string of at most {MAX_MEDIA_TYPE} characters)")
    annotations = document.get("annotations")
    if annotations is not None and not (isinstance(annotations, dict) and all(isinstance(v, str) for v in annotations.values())):
        raise _invalid("annotations must map strings to strings")

    if subject is not None:
        _check_referrer_extra(artifact_type, annotations, document.get("config"))

    if media_type in INDEX_TYPES:
        children = document.get("manifests")
        if not isinstance(children, list):
            raise _invalid("an index needs a manifests list")
        _check_count(len(children), "manifests")
        digests = tuple(Digest.parse(_descriptor(c, f"manifests[{i}]")["digest"]) for i, c in enumerate(children))
        return Manifest(media_type, (), digests, subject, artifact_type, None, annotations)

    config = _descriptor(document.get("config"), "config")
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise _invalid("an image manifest needs a layers list")
    _check_count(len(layers) + 1, "config and layers")
    needed = [Digest.parse(config["digest"])]
    for i, layer in enumerate(layers):
        layer = _descriptor(layer, f"layers[{i}]")
        # Foreign (non-distributable) layers live at their urls, not here.
        if not layer.get("urls"):
            needed.append(Digest.parse(layer["digest"]))
    return Manifest(media_type, tuple(dict.fromkeys(needed)), (), subject, artifact_type, config["mediaType"], annotations)


# The platform a registry serves to a client that takes no index, as distribution does.
DEFAULT_PLATFORM = ("linux", "amd64")


def platform_manifest(body: bytes, platform: tuple[str, str] = DEFAULT_PLATFORM) -> Digest | None:
    """The digest of the index's first manifest for ``platform`` (os, architecture), or None.

    ``body`` is an index already validated at push. Like distribution
    (registry/handlers/manifests.go), the first entry whose platform has that
    os and architecture is taken, whatever its variant.
    """
    try:
        children = inputs.json_document(body).get("manifests") or []
    except (inputs.DocumentInvalid, AttributeError):
        return None
    for child in children:
        found = child.get("platform") if isinstance(child, dict) else None
        if isinstance(found, dict) and (found.get("os"), found.get("architecture")) == platform:
            try:
                return Digest.parse(child.get("digest", ""))
            except RegistryError:
                return None
    return None


def acceptable(media_type: str, accept: str | None) -> bool:
    """Whether a client's Accept header (repeated headers joined by commas) admits ``media_type``.

    No Accept header, or a wildcard, admits the manifest as stored.
    """
    if not accept:
        return True
    offered = {media_type_of(part) for part in accept.split(",")}
    return bool(offered & {media_type, "*/*", "application/*"})
