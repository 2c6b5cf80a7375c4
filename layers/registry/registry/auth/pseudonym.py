"""Keyed hashes that stand in for what a client sends (a user name, an address) in storage keys.

A sign-in throttle is keyed by what the client typed, and clients type
secrets into the wrong field: a password or an access token in the user-name
field. So no throttle key holds the value itself, nor a plain hash of it (a
password is guessable, and SHA-256 of a guess is cheap to check against a
table dump): it holds HMAC-SHA-256 under a key the table does not hold.

The key comes from KMS: an HMAC key (``SignInHashKey`` in template.yaml,
``HMAC_256``, usage ``GENERATE_VERIFY_MAC``; its id in ``SIGNIN_HASH_KEY_ID``)
that never leaves KMS. Each container derives its working key once, as
``GenerateMac(HMAC_SHA_256, LABEL)`` (the KMS key's HMAC of a fixed label: a
one-block HMAC key derivation), so a sign-in makes no KMS call after the first. Anyone who may call ``kms:GenerateMac`` on that key
can recompute the working key; the table, its backups and exports cannot.
See https://docs.aws.amazon.com/kms/latest/developerguide/hmac.html.

Changing the key (a new stack, a replaced key) only forgets open throttle
windows: counters are short-lived (registry.accounts.THROTTLE_WINDOW).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from functools import cache

from registry import aws
from registry.config import settings

LABEL = b"serverless-registry sign-in throttle key v1"


@cache
def _working_key() -> bytes:
    """32 bytes derived from the KMS HMAC key; one ``kms:GenerateMac`` per container."""
    key_id = settings().sign_in_hash_key_id
    if not key_id:
        raise RuntimeError("SIGNIN_HASH_KEY_ID is not set: sign-in throttles need the KMS HMAC key")
    return aws.kms().generate_mac(KeyId=key_id, Message=LABEL, MacAlgorithm="HMAC_SHA_256")["Mac"]


def pseudonym(kind: str, *parts: str) -> str:
    """43 URL-safe characters (HMAC-SHA-256, base64url) for ``kind`` and ``parts``.

    The message is the JSON array ``[kind, *parts]``, so ("a", "b|c") and
    ("a|b", "c") never collide and a pseudonym of one kind never equals one
    of another.
    """
    message = json.dumps([kind, *parts], ensure_ascii=True, separators=(",", ":")).encode()
    digest = hmac.new(_working_key(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def reset():
    """Forget the working key (tests: a new emulated KMS, or one container per function)."""
    _working_key.cache_clear()
