"""Bearer tokens: ES256 JWTs signed by an asymmetric key in AWS KMS.

The private key never leaves KMS: signing hashes the JWT's signing input here
(SHA-256) and sends only the digest to ``kms:Sign`` (``MessageType=DIGEST``,
ECDSA_SHA_256), because KMS takes at most 4,096 bytes of RAW message
(https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html); the DER
signature becomes JOSE's r‖s. A token is at most ``MAX_TOKEN_BYTES``, so it
fits an ``Authorization`` header within API Gateway's 10,240 bytes for the
request line and all headers together (HTTP API quotas). Every
function verifies with the public key, fetched with ``kms:GetPublicKey`` once
per container, and accepts only ES256 with the expected ``kid``, ``iss``,
``aud``, and ``exp``/``nbf``/``iat`` within a small leeway.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from functools import cache

import jwt
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.serialization import load_der_public_key

from registry import aws
from registry.config import settings

ALGORITHM = "ES256"
# Accepted this long past exp (and before nbf/iat): clocks of the functions drift.
LEEWAY_SECONDS = 30
# The largest token issued: leaves about 4 KB of API Gateway's 10,240-byte
# request line + headers for the path, Accept lines and the rest. Ten scopes
# (scopes.MAX_SCOPES) of 255-character names with every action stay below it.
MAX_TOKEN_BYTES = 6144


class TokenTooLarge(ValueError):
    """The token would exceed MAX_TOKEN_BYTES (its access claim is too large)."""


class InvalidToken(Exception):
    """The token is malformed, forged, expired, not yet valid, or meant for another service."""


# An ES256 signature is r‖s, 64 bytes: 86 base64url characters without padding.
_SIGNATURE_CHARS = 86


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@cache
def _public_key() -> tuple[object, str, bytes]:
    """(key object, kid, DER) of the signing key; one KMS call per container."""
    der = aws.kms().get_public_key(KeyId=settings().token_key_id)["PublicKey"]
    kid = _b64(hashlib.sha256(der).digest()[:15])
    return load_der_public_key(der), kid, der


def key_id() -> str:
    return _public_key()[1]


def jwks() -> dict:
    """The public key as a JSON Web Key Set, so others can verify our tokens."""
    key, kid, _ = _public_key()
    numbers = key.public_numbers()
    return {
        "keys": [
            {
                "kty": "EC",
                "crv": "P-256",
                "alg": ALGORITHM,
                "use": "sig",
                "kid": kid,
                "x": _b64(numbers.x.to_bytes(32, "big")),
                "y": _b64(numbers.y.to_bytes(32, "big")),
            }
        ]
    }


def issue(subject: str, audience: str, access: list[dict], rate_limit: str | None = None) -> tuple[str, int, int]:
    """Sign a token; returns (token, issued_at, expires_in).

    ``rate_limit`` (claim ``rl``) carries an account's pull-limit override, so
    the manifest function needs no extra read to apply it. Raises TokenTooLarge
    (before calling KMS) when the token would exceed MAX_TOKEN_BYTES.
    """
    now = int(time.time())
    lifetime = settings().token_seconds
    header = {"typ": "JWT", "alg": ALGORITHM, "kid": key_id()}
    claims = {
        "iss": settings().token_issuer,
        "sub": subject,
        "aud": audience,
        "exp": now + lifetime,
        "nbf": now,
        "iat": now,
        "jti": secrets.token_hex(16),
        "access": access,
    }
    if rate_limit:
        claims["rl"] = rate_limit
    signing_input = f"{_b64(json.dumps(header, separators=(',', ':')).encode())}.{_b64(json.dumps(claims, separators=(',', ':')).encode())}"
    if len(signing_input) + 1 + _SIGNATURE_CHARS > MAX_TOKEN_BYTES:
        raise TokenTooLarge(f"the token would exceed {MAX_TOKEN_BYTES} bytes: ask for fewer or shorter scopes")
    # ES256 signs SHA-256(signing input): KMS gets that digest, whatever the token's size.
    der = aws.kms().sign(
        KeyId=settings().token_key_id,
        Message=hashlib.sha256(signing_input.encode()).digest(),
        MessageType="DIGEST",
        SigningAlgorithm="ECDSA_SHA_256",
    )["Signature"]
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}", now, lifetime


def verify(token: str, audience: str) -> dict:
    """The token's claims, or InvalidToken."""
    key, kid, _ = _public_key()
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM or header.get("kid") != kid:
            raise InvalidToken("unexpected algorithm or key")
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=settings().token_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if not isinstance(claims.get("access"), list):
        raise InvalidToken("no access claim")
    return claims


def reset():
    _public_key.cache_clear()
