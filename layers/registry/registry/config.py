"""Settings read once from the environment the template (or the local stack) sets."""

from __future__ import annotations

import os
from functools import cache
from typing import NamedTuple

MIB = 1024 * 1024


class Settings(NamedTuple):
    bucket: str
    table: str
    # Lifetime of the presigned S3 URL a blob GET redirects to.
    presign_seconds: int
    # The largest chunk one request can carry: a 6,291,556-byte Lambda event
    # holds about 4.7 MB of base64-encoded body; 4 MiB leaves room for headers.
    chunk_max: int
    # Upload sessions (and their staging objects) expire after this long.
    upload_ttl_seconds: int
    # Direct-to-S3 uploads: lifetime of a presigned part URL; the SQS queue that
    # carries verification on past the completing request; how long that request
    # verifies itself before handing over (API Gateway's integration timeout is 30 s).
    part_url_seconds: int
    verify_queue_url: str
    fetch_queue_url: str  # the pull-through cache's large-blob fetches (registry.services.fetching)
    verify_inline_seconds: float
    deletes_enabled: bool
    # Access control (registry.auth): on unless explicitly switched off.
    auth_enabled: bool
    default_visibility: str  # of a repository nobody set one for: public or private
    token_issuer: str
    token_service: str | None  # None: the request's host name
    token_realm: str | None  # None: <scheme>://<host>/token of the request
    token_signing: str  # "kms" (kms:Sign per token) or "secret" (an ES256 key from Secrets Manager)
    token_key_id: str  # the KMS key that signs tokens (kms mode)
    token_secret_id: str  # the Secrets Manager secret the signing key derives from (secret mode)
    token_seconds: int  # lifetime of an issued bearer token
    sign_in_hash_key_id: str  # the KMS HMAC key that keys sign-in throttles (registry.auth.pseudonym)
    # Pull rate limits, COUNT;w=SECONDS or unlimited (registry.ratelimit).
    rate_limit_anonymous: str
    rate_limit_authenticated: str
    # Garbage collection (registry.services.gc): an untagged manifest is kept this long after
    # it was pushed or lost its last tag (a push in progress tags its manifest last).
    gc_untagged_seconds: int = 7 * 86400
    # ... and a blob link no manifest references is kept this long after it was written
    # (a push uploads its blobs before its manifest); by default the upload expiry.
    gc_link_grace_seconds: int = 24 * 3600

    @classmethod
    def from_env(cls) -> "Settings":
        env = os.environ
        return cls(
            bucket=env.get("BLOB_BUCKET", "registry-blobs"),
            table=env.get("METADATA_TABLE", "registry-metadata"),
            presign_seconds=int(env.get("PRESIGN_SECONDS", "600")),
            chunk_max=int(env.get("CHUNK_MAX_BYTES", str(4 * MIB))),
            upload_ttl_seconds=int(env.get("UPLOAD_TTL_SECONDS", str(24 * 3600))),
            part_url_seconds=int(env.get("PART_URL_SECONDS", "900")),
            verify_queue_url=env.get("VERIFY_QUEUE_URL", ""),
            fetch_queue_url=env.get("FETCH_QUEUE_URL", ""),
            verify_inline_seconds=float(env.get("VERIFY_INLINE_SECONDS", "15")),
            deletes_enabled=env.get("DELETES_ENABLED", "true").lower() == "true",
            auth_enabled=env.get("AUTH_ENABLED", "true").lower() != "false",
            default_visibility=env.get("DEFAULT_VISIBILITY", "private"),
            token_issuer=env.get("TOKEN_ISSUER", "serverless-registry"),
            token_service=env.get("TOKEN_SERVICE") or None,
            token_realm=env.get("TOKEN_REALM") or None,
            token_signing=env.get("TOKEN_SIGNING", "kms"),
            token_key_id=env.get("TOKEN_KEY_ID", ""),
            token_secret_id=env.get("TOKEN_SECRET_ID", ""),
            token_seconds=int(env.get("TOKEN_SECONDS", "300")),
            sign_in_hash_key_id=env.get("SIGNIN_HASH_KEY_ID", ""),
            rate_limit_anonymous=env.get("RATE_LIMIT_ANONYMOUS", "100;w=21600"),
            rate_limit_authenticated=env.get("RATE_LIMIT_AUTHENTICATED", "200;w=21600"),
            gc_untagged_seconds=int(float(env.get("GC_UNTAGGED_DAYS", "7")) * 86400),
            gc_link_grace_seconds=int(env.get("GC_LINK_GRACE_SECONDS") or env.get("UPLOAD_TTL_SECONDS", str(24 * 3600))),
        )


@cache
def settings() -> Settings:
    return Settings.from_env()
