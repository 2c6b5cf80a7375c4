"""Settings read once from the environment the template (or the local stack) sets."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    bucket: str
    table: str
    # Lifetime of the presigned S3 URL a blob GET redirects to.
    presign_seconds: int
    # The largest chunk one request can carry: a 6,291,556-byte Lambda event
    # holds about 4.7 MB of base64-encoded body; 4 MiB leaves room for headers.
    chunk_max: int
    # Upload sessions (and their staging objects) expire after this long.
    upload_ttl_seconds: int
    deletes_enabled: bool

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(
            bucket=env.get("BLOB_BUCKET", "registry-blobs"),
            table=env.get("METADATA_TABLE", "registry-metadata"),
            presign_seconds=int(env.get("PRESIGN_SECONDS", "600")),
            chunk_max=int(env.get("CHUNK_MAX_BYTES", str(4 * MIB))),
            upload_ttl_seconds=int(env.get("UPLOAD_TTL_SECONDS", str(24 * 3600))),
            deletes_enabled=env.get("DELETES_ENABLED", "true").lower() == "true",
        )


@cache
def settings() -> Settings:
    return Settings.from_env()
