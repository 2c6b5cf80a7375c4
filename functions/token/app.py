"""The token function: Docker token authentication (``/token``) and the signing keys (JWKS)."""

from registry.http import make_handler
from registry.services import token

lambda_handler = make_handler("token", {"token": {"GET": token.get_token, "POST": token.post_token}, "jwks": {"GET": token.jwks}})
