"""The token signing keys' public halves, published in DynamoDB, and the secret-mode private key.

Every function verifies tokens with the public key a token's ``kid`` names,
read from its item (``keys.signing_key_key``) once per container and kid; the
token function publishes the key it signs with before its first signature.
Nothing here holds a private key but ``secret_value``, which only the token
function in ``TokenSigning=secret`` mode may call (its IAM policy alone allows
``secretsmanager:GetSecretValue`` on the secret).

Shapes: a published key is ``{"kid": str, "public_key": bytes (DER
SubjectPublicKeyInfo, RFC 5480), "published": int (epoch s), "expires_at":
int | None}``; ``expires_at`` (DynamoDB's TTL attribute) is set when the key is
retired: it stops verifying at that second (TTL deletes items days later, so
readers check it themselves).
"""

from __future__ import annotations

import time

from registry import aws, keys
from registry.storage import dynamo
from registry.storage.dynamo import Conflict

# How many published keys the JWKS lists at most: the current key, the one
# before it until its tokens expire, and room for an overlapping rotation.
MAX_PUBLISHED = 10


def get(kid: str) -> dict | None:
    """The published key ``kid`` (None: never published, or retired and past ``expires_at``)."""
    # Consistent: the key may have been published a moment ago, just before the token that names it.
    item = dynamo.get(keys.signing_key_key(kid), consistent=True)
    if item is None or _expired(item, time.time()):
        return None
    return _shape(item)


def publish(kid: str, public_key: bytes) -> None:
    """Publish a key before it signs: a conditional put, so a key already there keeps its
    first ``published`` time and a retirement already set; one write either way."""
    try:
        dynamo.put(keys.signing_key_key(kid), {"public_key": public_key, "published": int(time.time())}, "attribute_not_exists(pk)")
    except Conflict:
        pass


def published() -> list[dict]:
    """The keys that still verify (at most MAX_PUBLISHED, oldest first): one Query."""
    items, _ = dynamo.query_page(keys.SIGNING_KEY_PK, "", MAX_PUBLISHED, None)
    now = time.time()
    return [_shape(item) for item in items if not _expired(item, now)]


def retire(kid: str, at: int) -> None:
    """Stop accepting ``kid`` at epoch second ``at``; raises Conflict if it was never published."""
    dynamo.update(keys.signing_key_key(kid), "SET expires_at = :at", "attribute_exists(pk)", {":at": at})


def secret_value(secret_id: str) -> str:
    """The current (AWSCURRENT) value of the signing secret: one GetSecretValue."""
    return aws.secretsmanager().get_secret_value(SecretId=secret_id)["SecretString"]


def _expired(item: dict, now: float) -> bool:
    return item.get("expires_at") is not None and item["expires_at"] <= now


def _shape(item: dict) -> dict:
    return {"kid": item["sk"], "public_key": bytes(item["public_key"]), "published": int(item["published"]),
            "expires_at": int(item["expires_at"]) if item.get("expires_at") is not None else None}
