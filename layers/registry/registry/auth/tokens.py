"""Bearer tokens: ES256 JWTs, signed in one of two ways, verified with PyJWT against published keys.

Signing (the token function only), chosen by the template's ``TokenSigning``:

* ``kms`` (default): an asymmetric key in AWS KMS. The private key never
  leaves KMS: signing hashes the JWT's signing input here (SHA-256) and sends
  only the digest to ``kms:Sign`` (``MessageType=DIGEST``, ECDSA_SHA_256),
  because KMS takes at most 4,096 bytes of RAW message
  (https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html); the DER
  signature becomes JOSE's r‖s (RFC 7518 §3.4). One KMS request per token.
* ``secret``: a P-256 key derived from a random seed that CloudFormation
  generates into a Secrets Manager secret encrypted under a KMS key of the
  stack. Read once per token-function container (and again every
  ``KEY_REFRESH_SECONDS``, which is how a rotation reaches warm containers),
  it signs in memory with ``cryptography``: no per-token AWS request. The
  private key then lives in the token function's memory.

Either way, the signer publishes its public key (``registry.storage.signing_keys``)
before its first signature, so a new key is in the JWKS before any token
carries it. Every function verifies with PyJWT (``jwt.decode``: ES256 only,
``iss``, ``aud``, ``exp``/``nbf``/``iat`` within a small leeway) against the
published key the token's ``kid`` names, read once per container and kid:
tokens signed by an older key stay valid until they expire, until that key
is retired. No verifying function reads the secret or calls KMS.

A token is at most ``MAX_TOKEN_BYTES``, so it fits an ``Authorization`` header
within API Gateway's 10,240 bytes for the request line and all headers
together (HTTP API quotas).

Imports: PyJWT (with the parts of ``cryptography`` it loads, about 0.2 ×
``import boto3`` of CPU) is not imported with this module but by the first
``verify`` of a container, i.e. the first request that carries a bearer token:
a request without one (a 401 challenge, ``GET /v2/`` before signing in) never
pays it, a pull's first authenticated request does. This module itself is
imported there too (``registry.auth.guard``), not at a verifying function's
INIT. What only signing needs is imported on a container's first token. docs/performance.md, section 3, reports
both INIT and INIT plus those first-use imports.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import time
from functools import cache

from registry import aws
from registry.config import settings
from registry.storage import signing_keys

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
# A kid is 15 bytes of SHA-256 of the key's DER, base64url: 20 characters. A
# token's kid is checked against this before it names a DynamoDB item.
_KID = re.compile(r"[A-Za-z0-9_-]{20}")
# Secret mode: the token function re-reads the secret this often, so a rotated
# secret signs within this many seconds everywhere (one GetSecretValue each time).
KEY_REFRESH_SECONDS = 300
# A verifier re-reads a cached published key this often (a retirement reaches it).
KEY_CACHE_SECONDS = 300
# The order n of P-256's base point (SEC 2 v2 §2.4.2; FIPS 186-5 / SP 800-186 §3.2.1.3).
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
# The seed CloudFormation generates is 64 characters; refuse a short one (low entropy).
MIN_SEED_CHARS = 32
REQUIRED_CLAIMS = ["exp", "nbf", "iat", "iss", "aud", "sub", "jti"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _kid_of(der: bytes) -> str:
    return _b64(hashlib.sha256(der).digest()[:15])


# --- signing (the token function) ------------------------------------------------------------


def _jose_signature(der: bytes) -> bytes:
    """DER ECDSA signature -> JOSE's 64-byte r‖s (RFC 7518 §3.4)."""
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


@cache
def _kms_key() -> tuple[str, bytes]:
    """(kid, DER public key) of the KMS signing key, published before it signs; once per container."""
    der = aws.kms().get_public_key(KeyId=settings().token_key_id)["PublicKey"]
    kid = _kid_of(der)
    signing_keys.publish(kid, der)
    return kid, der


def _kms_sign(signing_input: bytes) -> bytes:
    # ES256 signs SHA-256(signing input): KMS gets that digest, whatever the token's size.
    der = aws.kms().sign(
        KeyId=settings().token_key_id,
        Message=hashlib.sha256(signing_input).digest(),
        MessageType="DIGEST",
        SigningAlgorithm="ECDSA_SHA_256",
    )["Signature"]
    return _jose_signature(der)


def derive_private_key(seed: str):
    """The P-256 private key a secret's seed stands for.

    FIPS 186-5 Appendix A.2.1 (key pair generation using extra random bits):
    320 bits c, from the seed by HKDF-SHA256 (RFC 5869), give d = (c mod (n-1)) + 1.
    The seed is CloudFormation's 64 random alphanumeric characters (about 380
    bits). ValueError if it is shorter than MIN_SEED_CHARS.
    """
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    if len(seed) < MIN_SEED_CHARS:
        raise ValueError(f"the token signing secret must hold at least {MIN_SEED_CHARS} random characters")
    material = HKDF(algorithm=hashes.SHA256(), length=40, salt=None, info=b"serverless-registry ES256 token key").derive(seed.encode())
    return ec.derive_private_key(int.from_bytes(material, "big") % (_P256_ORDER - 1) + 1, ec.SECP256R1())


def public_der(private_key) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return private_key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


_secret_key: dict = {}  # "loaded" (monotonic s), "key", "kid": the secret mode's signing key


def _secret_signer() -> tuple[str, object]:
    """(kid, private key) from the secret: read at most every KEY_REFRESH_SECONDS, a new key published first."""
    now = time.monotonic()
    if not _secret_key or now - _secret_key["loaded"] >= KEY_REFRESH_SECONDS:
        private_key = derive_private_key(signing_keys.secret_value(settings().token_secret_id))
        der = public_der(private_key)
        kid = _kid_of(der)
        if _secret_key.get("kid") != kid:
            signing_keys.publish(kid, der)
        _secret_key.update(loaded=now, key=private_key, kid=kid)
    return _secret_key["kid"], _secret_key["key"]


def _signer():
    """(kid, sign): sign(signing input bytes) -> r‖s, in the template's signing mode."""
    if settings().token_signing == "secret":
        kid, private_key = _secret_signer()

        def sign(signing_input: bytes) -> bytes:
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.asymmetric import ec

            return _jose_signature(private_key.sign(signing_input, ec.ECDSA(hashes.SHA256())))

        return kid, sign
    return _kms_key()[0], _kms_sign


def key_id() -> str:
    """The kid the token function signs with now."""
    return _signer()[0]


def issue(subject: str, audience: str, access: list[dict], rate_limit: str | None = None) -> tuple[str, int, int]:
    """Sign a token; returns (token, issued_at, expires_in).

    ``rate_limit`` (claim ``rl``) carries an account's pull-limit override, so
    the manifest function needs no extra read to apply it. Raises TokenTooLarge
    (before signing) when the token would exceed MAX_TOKEN_BYTES.
    """
    kid, sign = _signer()
    now = int(time.time())
    lifetime = settings().token_seconds
    header = {"typ": "JWT", "alg": ALGORITHM, "kid": kid}
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
    return f"{signing_input}.{_b64(sign(signing_input.encode()))}", now, lifetime


# --- publishing and verifying ------------------------------------------------------------------


def _load_der(der: bytes):
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    return load_der_public_key(der)


def _current_key() -> tuple[str, bytes]:
    """(kid, DER public key) the token function signs with now, published (first use: as before a signature)."""
    if settings().token_signing == "secret":
        kid, private_key = _secret_signer()
        return kid, public_der(private_key)
    return _kms_key()


def jwks() -> dict:
    """Every published key that still verifies, as a JSON Web Key Set (RFC 7517), so others can verify our tokens.

    The current signing key is listed even before the first token (it is published then), unless it was retired.
    """
    current_kid = _current_key()[0]
    entries = signing_keys.published()
    if current_kid not in {entry["kid"] for entry in entries}:
        # Published a moment ago, and the Query (eventually consistent) may not see it yet: read it consistently.
        entries += [entry for entry in [signing_keys.get(current_kid)] if entry is not None]
    found = []
    for entry in entries:
        numbers = _load_der(entry["public_key"]).public_numbers()
        found.append({
            "kty": "EC",
            "crv": "P-256",
            "alg": ALGORITHM,
            "use": "sig",
            "kid": entry["kid"],
            "x": _b64(numbers.x.to_bytes(32, "big")),
            "y": _b64(numbers.y.to_bytes(32, "big")),
        })
    return {"keys": found}


_verifying: dict[str, tuple[object, float, float | None]] = {}  # kid -> (key, read at (monotonic), expires_at)


def _verifying_key(kid: str):
    """The published key ``kid`` names, or None: read once per container and kid (and every KEY_CACHE_SECONDS).

    A kid nobody published is not remembered: each such token costs one GetItem
    (one per request), and the cache holds only keys that were published.
    """
    cached = _verifying.get(kid)
    if cached is None or time.monotonic() - cached[1] >= KEY_CACHE_SECONDS:
        entry = signing_keys.get(kid)
        if entry is None:
            _verifying.pop(kid, None)
            return None
        cached = _verifying[kid] = (_load_der(entry["public_key"]), time.monotonic(), entry["expires_at"])
    key, _, expires_at = cached
    return None if expires_at is not None and expires_at <= time.time() else key


def verify(token: str, audience: str) -> dict:
    """The token's claims, or InvalidToken."""
    import jwt

    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    kid = header.get("kid")
    if header.get("alg") != ALGORITHM or not isinstance(kid, str) or not _KID.fullmatch(kid):
        raise InvalidToken("unexpected algorithm or key")
    key = _verifying_key(kid)
    if key is None:
        raise InvalidToken("unknown or retired key")
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=settings().token_issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    if not isinstance(claims.get("access"), list):
        raise InvalidToken("no access claim")
    return claims


def retire(kid: str, token_seconds: int | None = None) -> int:
    """Retire a published key once every token it may still sign has expired; returns that epoch second.

    Counted from now: a token-function container may sign with it for up to
    KEY_REFRESH_SECONDS more (secret mode), its tokens live ``token_seconds``
    (default: this stack's TokenSeconds), and verifiers allow LEEWAY_SECONDS.
    Raises signing_keys.Conflict for a kid never published.
    """
    lifetime = settings().token_seconds if token_seconds is None else token_seconds
    at = int(time.time()) + KEY_REFRESH_SECONDS + lifetime + LEEWAY_SECONDS
    signing_keys.retire(kid, at)
    return at


def reset():
    """Forget every per-container cache (tests: each function is its own container)."""
    _kms_key.cache_clear()
    _secret_key.clear()
    _verifying.clear()
