"""The proxy's tunables, in one frozen value handed to every part of it."""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """What the proxy forwards to and how it uploads.

    upstream: the registry's base URL, e.g. ``https://registry.example.com`` (no trailing slash).
    part_size: bytes of each S3 part (the first 1,000 parts; see ``parts.part_size``). S3 needs at
        least 5 MiB for every part but the last (S3 User Guide, "Amazon S3 multipart upload limits").
    parallel: parts uploaded at once, over all uploads the proxy serves; with ``part_size`` it bounds
        memory: about (parallel + uploads being received) × part_size.
    small_limit: a blob whose whole body is below this many bytes goes to the registry in one ordinary
        request (``PUT ?digest=`` with the body), which API Gateway carries (about 4.7 MB per request).
    part_attempts: tries per part before the client's request fails.
    """

    upstream: str
    part_size: int = 8 * MiB
    parallel: int = 4
    small_limit: int = 4 * MiB
    part_attempts: int = 6

    def __post_init__(self):
        if self.part_size < 5 * MiB:
            raise ValueError("part size must be at least 5 MiB (S3's minimum for every part but the last)")
        if self.parallel < 1:
            raise ValueError("parallel must be at least 1")
        if self.small_limit > self.part_size:
            raise ValueError("small_limit must not exceed part_size")
