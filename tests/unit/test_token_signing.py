"""Token signing modes (TokenSigning=kms | secret) and key rotation: a new key is published
before it signs, tokens of an older key verify until it is retired, verifiers never read the secret."""

from __future__ import annotations

import time

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from local_stack import resources
from registry import config
from registry.auth import tokens
from registry.storage import signing_keys

SERVICE = "registry.test"


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def kid_of(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


@pytest.fixture
def secret_mode(moto, monkeypatch) -> str:
    secret = resources.create_signing_secret()
    monkeypatch.setenv("TOKEN_SIGNING", "secret")
    monkeypatch.setenv("TOKEN_SECRET_ID", secret)
    monkeypatch.setenv("TOKEN_KEY_ID", "")
    config.settings.cache_clear()
    tokens.reset()
    return secret


def test_a_secret_mode_token_is_accepted_and_its_key_is_in_the_jwks(client, secret_mode):
    token = client.token("repository:team/app:pull")
    assert client.raw("GET", "/v2/", headers=bearer(token)).status == 200
    listed = client.raw("GET", "/.well-known/jwks.json").json()["keys"]
    assert [key["kid"] for key in listed] == [kid_of(token)]


def test_the_secret_mode_key_is_the_one_its_seed_stands_for(secret_mode):
    """Deterministic: every token-function container derives the same key from the secret."""
    seed = boto3.client("secretsmanager").get_secret_value(SecretId=secret_mode)["SecretString"]
    token = tokens.issue("admin", SERVICE, [])[0]
    public = tokens.derive_private_key(seed).public_key()
    assert jwt.decode(token, public, algorithms=["ES256"], audience=SERVICE)["sub"] == "admin"


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError):
        tokens.derive_private_key("x" * (tokens.MIN_SEED_CHARS - 1))


def test_a_rotated_secret_signs_only_after_its_key_is_published_and_old_tokens_stay_valid(client, secret_mode, monkeypatch):
    old = client.token("repository:team/app:pull")
    boto3.client("secretsmanager").put_secret_value(SecretId=secret_mode, SecretString="n" * 64)
    monkeypatch.setattr(tokens, "KEY_REFRESH_SECONDS", 0)  # the refresh interval has passed

    published_before_signing = []
    original = tokens._secret_signer

    def watched():
        kid, key = original()
        published_before_signing.append(signing_keys.get(kid) is not None)
        return kid, key

    monkeypatch.setattr(tokens, "_secret_signer", watched)
    new = client.token("repository:team/app:pull")
    assert kid_of(new) != kid_of(old)
    assert published_before_signing == [True]
    for token in (old, new):
        assert client.raw("GET", "/v2/", headers=bearer(token)).status == 200
    listed = {key["kid"] for key in client.raw("GET", "/.well-known/jwks.json").json()["keys"]}
    assert listed == {kid_of(old), kid_of(new)}


def test_a_new_kms_key_is_published_before_it_signs_and_the_old_keys_tokens_stay_valid(client, monkeypatch):
    old = client.token("repository:team/app:pull")
    monkeypatch.setenv("TOKEN_KEY_ID", resources.create_signing_key())  # a stack update with a new key
    config.settings.cache_clear()
    tokens.reset()  # new containers
    new = client.token("repository:team/app:pull")
    assert kid_of(new) != kid_of(old)
    for token in (old, new):
        assert client.raw("GET", "/v2/", headers=bearer(token)).status == 200
    listed = {key["kid"] for key in client.raw("GET", "/.well-known/jwks.json").json()["keys"]}
    assert listed == {kid_of(old), kid_of(new)}


def test_a_retired_key_verifies_until_its_last_token_expires_then_is_refused(client, monkeypatch):
    token = client.token("repository:team/app:pull")
    at = tokens.retire(kid_of(token))
    assert at >= int(time.time()) + config.settings().token_seconds + tokens.KEY_REFRESH_SECONDS
    tokens.reset()
    assert client.raw("GET", "/v2/", headers=bearer(token)).status == 200
    signing_keys.retire(kid_of(token), int(time.time()) - 1)  # that time has come
    tokens.reset()  # (or KEY_CACHE_SECONDS later)
    reply = client.raw("GET", "/v2/", headers=bearer(token))
    assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"])
    assert kid_of(token) not in {key["kid"] for key in client.raw("GET", "/.well-known/jwks.json").json()["keys"]}


def test_retiring_a_key_never_published_is_refused(moto):
    with pytest.raises(signing_keys.Conflict):
        tokens.retire("A" * 20)


@pytest.mark.parametrize("kid", ["A" * 20, "A" * 2000, "../x", ""])
def test_a_token_naming_an_unpublished_or_malformed_key_is_refused(client, kid):
    now = int(time.time())
    claims = {"iss": "serverless-registry", "sub": "admin", "aud": SERVICE, "exp": now + 300, "nbf": now, "iat": now, "jti": "x",
              "access": [{"type": "repository", "name": "team/app", "actions": ["pull"]}]}
    forged = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid})
    reply = client.raw("GET", "/v2/team/app/tags/list", headers=bearer(forged))
    assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"])


def test_the_admin_cli_lists_the_published_keys_and_retires_one(client, monkeypatch, capsys):
    from registry_admin import cli

    kid = kid_of(client.token("repository:team/app:pull"))
    monkeypatch.setenv("METADATA_TABLE", config.settings().table)
    assert cli.main(["signing-key", "list", "--json"]) == 0
    assert [entry["kid"] for entry in __import__("json").loads(capsys.readouterr().out)] == [kid]
    assert cli.main(["signing-key", "retire", kid, "--token-seconds", "300"]) == 0
    retired = signing_keys.get(kid)
    assert retired["expires_at"] >= int(time.time()) + 300 + tokens.KEY_REFRESH_SECONDS
    assert cli.main(["signing-key", "retire", "B" * 20]) != 0
