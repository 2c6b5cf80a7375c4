"""KMS ``Sign`` as AWS does it, in moto: ``MessageType=DIGEST`` and the RAW size limit.

moto 5 signs every message as RAW (it hashes what it is given, even a digest)
and takes RAW messages of any size. AWS signs a DIGEST message as the hash
itself and refuses a RAW message over 4,096 bytes
(https://docs.aws.amazon.com/kms/latest/APIReference/API_Sign.html). Without
this, a token signed by digest would not verify locally, and a token too large
for AWS would sign fine here. ``install()`` patches moto's KMS responder once,
in this process (the local stack's moto server and the unit tests' mock_aws).
"""

from __future__ import annotations

import base64
import json

RAW_MAX_BYTES = 4096
_DIGEST_BYTES = {"ECDSA_SHA_256": 32, "ECDSA_SHA_384": 48, "ECDSA_SHA_512": 64}
_installed = False


def install():
    global _installed
    if _installed:
        return
    from moto.kms.responses import KmsResponse

    original = KmsResponse.sign

    def sign(self):
        message_type = self._get_param("MessageType") or "RAW"
        message = self._get_param("Message")
        message = message.encode() if isinstance(message, str) else message
        if message_type == "RAW" and len(message) > RAW_MAX_BYTES:
            from moto.kms.exceptions import ValidationException

            raise ValidationException(
                f"1 validation error detected: Value at 'Message' failed to satisfy constraint: "
                f"Member must have length less than or equal to {RAW_MAX_BYTES}"
            )
        if message_type == "DIGEST":
            return _sign_digest(self, message)
        return original(self)

    KmsResponse.sign = sign
    _installed = True


def _sign_digest(response, digest: bytes) -> str:
    """Sign a precomputed digest with the key's ECDSA private key, as KMS does for MessageType=DIGEST."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils
    from moto.kms.exceptions import ValidationException

    algorithm = response._get_param("SigningAlgorithm")
    if _DIGEST_BYTES.get(algorithm) != len(digest):
        raise ValidationException(f"Digest is invalid length for algorithm {algorithm}.")
    key_id = response._get_param("KeyId")
    response._validate_key_id(key_id)
    key = response.kms_backend.describe_key(key_id)
    hash_algorithm = {"ECDSA_SHA_256": hashes.SHA256, "ECDSA_SHA_384": hashes.SHA384, "ECDSA_SHA_512": hashes.SHA512}[algorithm]()
    signature = key.private_key.private_key.sign(digest, ec.ECDSA(utils.Prehashed(hash_algorithm)))
    return json.dumps({"KeyId": key.arn, "Signature": base64.b64encode(signature).decode(), "SigningAlgorithm": algorithm})
