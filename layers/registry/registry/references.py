"""Repository names, tags and digests: parsing and validation.

The grammars are the distribution spec's. Each parser returns a frozen value or
raises ``RegistryError`` with the code the spec assigns to that input.
"""

from __future__ import annotations

import hashlib
import re
from typing import NamedTuple

from registry.errors import OciError, RegistryError

NAME_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
NAME_PATTERN = rf"{NAME_COMPONENT}(?:/{NAME_COMPONENT})*"
TAG_PATTERN = r"[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}"
DIGEST_PATTERN = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+"

_NAME_RE = re.compile(NAME_PATTERN)
_TAG_RE = re.compile(TAG_PATTERN)
_DIGEST_RE = re.compile(DIGEST_PATTERN)

# Name length limit shared by distribution and Docker Hub (host excluded).
MAX_NAME_LENGTH = 255

# Algorithms we can verify, with the hex length of their encoded part.
ALGORITHMS = {"sha256": 64, "sha512": 128}


def parse_name(name: str) -> str:
    """Return ``name`` if it is a valid repository name, else raise NAME_INVALID."""
    if len(name) > MAX_NAME_LENGTH or not _NAME_RE.fullmatch(name):
        raise RegistryError(OciError.NAME_INVALID, f"invalid repository name: {name[:300]!r}")
    return name


def is_tag(reference: str) -> bool:
    return _TAG_RE.fullmatch(reference) is not None


def parse_tag(tag: str) -> str:
    if not is_tag(tag):
        raise RegistryError(OciError.TAG_INVALID, f"invalid tag: {tag[:200]!r}")
    return tag


class Digest(NamedTuple):
    """A content digest such as ``sha256:<64 hex>``; only verifiable algorithms."""

    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, text: str) -> "Digest":
        """Parse ``text`` or raise DIGEST_INVALID (bad grammar or unsupported algorithm)."""
        if not isinstance(text, str) or not text or not _DIGEST_RE.fullmatch(text):
            raise RegistryError(OciError.DIGEST_INVALID, f"invalid digest: {str(text)[:200]!r}")
        algorithm, _, encoded = text.partition(":")
        size = ALGORITHMS.get(algorithm)
        if size is None:
            raise RegistryError(OciError.DIGEST_INVALID, f"unsupported digest algorithm: {algorithm}")
        if len(encoded) != size or not re.fullmatch(r"[a-f0-9]+", encoded):
            raise RegistryError(OciError.DIGEST_INVALID, f"invalid {algorithm} digest: {text[:200]!r}")
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> "Digest":
        return cls(algorithm, hashlib.new(algorithm, data).hexdigest())


def is_digest(reference: str) -> bool:
    return ":" in reference


def parse_reference(reference: str):
    """Return a ``Digest`` for a digest reference, else the validated tag string."""
    if is_digest(reference):
        return Digest.parse(reference)
    return parse_tag(reference)
