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

Verification is RFC 7515/7519 done with ``cryptography``'s ECDSA (no PyJWT):
the signature check is the library's; what is written here is the parsing
(three base64url parts, JSON header and claims) and the claim checks PyJWT
made. PyJWT imports every algorithm it supports, and with them most of
``cryptography``: about 80-150 ms of every cold start. ``cryptography`` itself
is imported on first use (the first signature or verification of a
container), so a request that carries no token (``GET /v2/``'s challenge)
never loads it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from functools import cache

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


def _unb64(text: str) -> bytes:
    """base64url without padding (RFC 7515 §2); ValueError on anything else."""
    if not text or len(text) % 4 == 1 or not text.isascii():
        raise ValueError("not base64url")
    return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)


# A P-256 public key's SubjectPublicKeyInfo (RFC 5480 §2) is this fixed
# 26-byte DER prefix (id-ecPublicKey, secp256r1, BIT STRING) then the 65-byte
# uncompressed point 04‖x‖y. Matching the prefix exactly refuses any other key.
_P256_SPKI_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d030107034200")


@cache
def _public_key() -> tuple[object, str, bytes]:
    """(key object, kid, DER) of the signing key; one KMS call per container."""
    from cryptography.hazmat.primitives.asymmetric import ec

    der = aws.kms().get_public_key(KeyId=settings().token_key_id)["PublicKey"]
    if len(der) != len(_P256_SPKI_PREFIX) + 65 or not der.startswith(_P256_SPKI_PREFIX):
        raise ValueError("the token signing key is not an ECC_NIST_P256 key")
    kid = _b64(hashlib.sha256(der).digest()[:15])
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), der[len(_P256_SPKI_PREFIX):]), kid, der


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
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(der)
    return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}", now, lifetime


REQUIRED_CLAIMS = ("exp", "nbf", "iat", "iss", "aud", "sub", "jti")


def _signature_valid(key, signing_input: bytes, signature: bytes) -> bool:
    """ES256 (RFC 7518 §3.4): the 64-byte r‖s over SHA-256(signing input), checked by cryptography."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    if len(signature) != 64:
        return False
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        key.verify(der, signing_input, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def _check_claims(claims: dict, audience: str, now: float) -> None:
    """RFC 7519 §4.1: every required claim present, iss/aud ours, exp/nbf/iat within LEEWAY_SECONDS."""
    missing = [name for name in REQUIRED_CLAIMS if name not in claims]
    if missing:
        raise InvalidToken(f"missing claims: {', '.join(missing)}")
    for name in ("exp", "nbf", "iat"):
        if not isinstance(claims[name], (int, float)) or isinstance(claims[name], bool):
            raise InvalidToken(f"{name} is not a number")
    if claims["exp"] <= now - LEEWAY_SECONDS:
        raise InvalidToken("expired")
    if claims["nbf"] > now + LEEWAY_SECONDS or claims["iat"] > now + LEEWAY_SECONDS:
        raise InvalidToken("not yet valid")
    if claims["iss"] != settings().token_issuer:
        raise InvalidToken("another issuer")
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if audience not in audiences:
        raise InvalidToken("another audience")


def verify(token: str, audience: str) -> dict:
    """The token's claims, or InvalidToken."""
    key, kid, _ = _public_key()
    try:
        encoded_header, encoded_claims, encoded_signature = token.split(".")
        header = json.loads(_unb64(encoded_header))
        signature = _unb64(encoded_signature)
        if not isinstance(header, dict) or header.get("alg") != ALGORITHM or header.get("kid") != kid:
            raise InvalidToken("unexpected algorithm or key")
        if not _signature_valid(key, f"{encoded_header}.{encoded_claims}".encode(), signature):
            raise InvalidToken("bad signature")
        claims = json.loads(_unb64(encoded_claims))
    except (ValueError, UnicodeDecodeError) as exc:  # json.JSONDecodeError and binascii.Error are ValueErrors
        raise InvalidToken(f"malformed token: {type(exc).__name__}") from None
    if not isinstance(claims, dict):
        raise InvalidToken("claims are not an object")
    _check_claims(claims, audience, time.time())
    if not isinstance(claims.get("access"), list):
        raise InvalidToken("no access claim")
    return claims


def reset():
    _public_key.cache_clear()
