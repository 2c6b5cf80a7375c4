"""Token authentication: the token service, and every way a request without the right token is refused."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.clients import ADMIN, Client
from registry import accounts
from registry.auth import tokens
from registry.storage import signing_keys

SERVICE = "registry.test"


def basic(user: str, secret: str) -> dict:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def bearer(token: str) -> dict:
    return {"authorization": f"Bearer {token}"}


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def challenge(reply) -> dict:
    header = reply.header("www-authenticate")
    assert header.startswith("Bearer ")
    import re

    return dict(re.findall(r'(\w+)="([^"]*)"', header))


@pytest.fixture
def users(moto):
    accounts.create_user("alice", "alice-password")
    accounts.create_user("bob", "bob-password")


@pytest.fixture
def alice(gateway, users) -> Client:
    return Client(gateway, ("alice", "alice-password"))


@pytest.fixture
def bob(gateway, users) -> Client:
    return Client(gateway, ("bob", "bob-password"))


def token_for(client: Client, *scopes: str, credentials=None) -> dict:
    from urllib.parse import urlencode

    query = urlencode([("service", SERVICE)] + [("scope", s) for s in scopes])
    reply = client.raw("GET", f"/token?{query}", headers=basic(*credentials) if credentials else None)
    return reply


# --- the challenge -------------------------------------------------------------------------


def test_a_request_without_a_token_gets_401_with_the_full_challenge(anonymous):
    reply = anonymous.raw("GET", "/v2/team/app/manifests/latest", headers={"host": "registry.test"})
    assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"])
    assert challenge(reply) == {"realm": "http://registry.test/token", "service": "registry.test", "scope": "repository:team/app:pull"}


def test_the_challenge_asks_for_push_and_pull_on_writes_and_delete_on_deletes(anonymous):
    post = anonymous.raw("POST", "/v2/team/app/blobs/uploads/")
    assert challenge(post)["scope"] == "repository:team/app:pull,push"
    delete = anonymous.raw("DELETE", "/v2/team/app/manifests/latest")
    assert challenge(delete)["scope"] == "repository:team/app:delete"
    catalog = anonymous.raw("GET", "/v2/_catalog")
    assert challenge(catalog)["scope"] == "registry:catalog:*"


def test_the_version_check_needs_a_token_but_any_valid_one(anonymous):
    reply = anonymous.raw("GET", "/v2/")
    assert reply.status == 401 and "scope" not in challenge(reply)
    token = token_for(anonymous).json()["token"]
    assert anonymous.raw("GET", "/v2/", headers=bearer(token)).status == 200


def test_realm_follows_the_forwarded_scheme_and_host(anonymous):
    reply = anonymous.raw("GET", "/v2/", headers={"host": "registry.example.com", "x-forwarded-proto": "https"})
    assert challenge(reply)["realm"] == "https://registry.example.com/token"
    assert challenge(reply)["service"] == "registry.example.com"


# --- rejected tokens ---------------------------------------------------------------------------


def assert_invalid_token(client, token):
    reply = client.raw("GET", "/v2/team/app/tags/list", headers=bearer(token))
    assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"])
    assert challenge(reply)["error"] == "invalid_token"


def valid_claims() -> dict:
    now = int(time.time())
    return {
        "iss": "serverless-registry",
        "sub": "admin",
        "aud": SERVICE,
        "exp": now + 300,
        "nbf": now,
        "iat": now,
        "jti": "x",
        "access": [{"type": "repository", "name": "team/app", "actions": ["pull", "push", "delete"]}],
    }


def test_a_token_signed_by_another_key_is_refused(client):
    forger = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(valid_claims(), forger, algorithm="ES256", headers={"kid": tokens.key_id()})
    assert_invalid_token(client, forged)


def test_alg_none_is_refused(client):
    unsigned = jwt.encode(valid_claims(), None, algorithm="none", headers={"kid": tokens.key_id()})
    assert_invalid_token(client, unsigned)


def test_hs256_with_the_public_key_as_secret_is_refused(client):
    kid = tokens.key_id()
    der = signing_keys.get(kid)["public_key"]
    pem = serialization.load_der_public_key(der).public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode()).rstrip(b"=")
    payload = base64.urlsafe_b64encode(json.dumps(valid_claims()).encode()).rstrip(b"=")
    import hashlib
    import hmac

    signature = base64.urlsafe_b64encode(hmac.new(pem, header + b"." + payload, hashlib.sha256).digest()).rstrip(b"=")
    assert_invalid_token(client, (header + b"." + payload + b"." + signature).decode())


def test_a_tampered_access_claim_breaks_the_signature(client):
    token = tokens.issue("alice", SERVICE, [{"type": "repository", "name": "alice/app", "actions": ["pull"]}])[0]
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["access"] = [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]
    tampered = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_invalid_token(client, f"{header}.{tampered}.{signature}")


def test_an_expired_token_is_refused(client, monkeypatch):
    real = time.time
    monkeypatch.setattr(tokens.time, "time", lambda: real() - 3600)
    token = tokens.issue("admin", SERVICE, valid_claims()["access"])[0]
    monkeypatch.undo()
    assert_invalid_token(client, token)


def test_a_token_not_yet_valid_is_refused(client, monkeypatch):
    real = time.time
    monkeypatch.setattr(tokens.time, "time", lambda: real() + 600)
    token = tokens.issue("admin", SERVICE, valid_claims()["access"])[0]
    monkeypatch.undo()
    assert_invalid_token(client, token)


def test_a_token_for_another_service_is_refused(client):
    token = tokens.issue("admin", "other.registry", valid_claims()["access"])[0]
    assert_invalid_token(client, token)


def test_a_token_from_another_issuer_is_refused(client, monkeypatch):
    from registry import config

    monkeypatch.setenv("TOKEN_ISSUER", "someone-else")
    config.settings.cache_clear()
    token = tokens.issue("admin", SERVICE, valid_claims()["access"])[0]
    monkeypatch.undo()
    config.settings.cache_clear()
    assert_invalid_token(client, token)


def test_garbage_in_the_authorization_header_is_an_invalid_token(client):
    assert_invalid_token(client, "not-a-jwt")


# --- scopes and what the token service grants -----------------------------------------------------


def test_a_token_for_repository_a_does_not_open_repository_b(client):
    client.push_image("team/a", "v1")
    client.push_image("team/b", "v1")
    token = client.token("repository:team/a:pull")
    assert client.raw("GET", "/v2/team/a/manifests/v1", headers=bearer(token)).status == 200
    reply = client.raw("GET", "/v2/team/b/manifests/v1", headers=bearer(token))
    assert (reply.status, reply.error_codes) == (401, ["DENIED"])
    assert challenge(reply)["error"] == "insufficient_scope"


def test_asking_for_more_than_allowed_gets_the_permitted_subset(alice):
    reply = token_for(alice, "repository:bob/app:pull,push", "repository:alice/app:pull,push,delete", credentials=("alice", "alice-password"))
    assert reply.status == 200
    access = claims_of(reply.json()["token"])["access"]
    assert access == [{"type": "repository", "name": "alice/app", "actions": ["pull", "push", "delete"]}]


def test_star_asks_for_everything_the_caller_may_do(alice):
    reply = token_for(alice, "repository:alice/app:*", credentials=("alice", "alice-password"))
    assert claims_of(reply.json()["token"])["access"][0]["actions"] == ["delete", "pull", "push"]


def test_a_user_cannot_push_into_another_namespace(alice, bob):
    bob.push_image("bob/app", "v1")
    reply = alice.request("POST", "/v2/bob/app/blobs/uploads/")
    assert (reply.status, reply.error_codes) == (401, ["DENIED"])


def test_admins_may_push_anywhere(client):
    client.push_image("library/hello", "latest")
    assert client.request("GET", "/v2/library/hello/manifests/latest").status == 200


def test_anonymous_callers_pull_public_repositories_and_nothing_else(client, anonymous):
    client.push_image("library/public", "v1")
    client.push_image("library/private", "v1")
    accounts.set_visibility("library/public", "public")
    assert anonymous.request("GET", "/v2/library/public/manifests/v1").status == 200
    reply = anonymous.request("GET", "/v2/library/private/manifests/v1")
    assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"])
    reply = anonymous.request("POST", "/v2/library/public/blobs/uploads/")
    assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"])


def test_an_owner_grant_opens_a_private_repository_to_another_user(client, alice, bob):
    alice.push_image("alice/secret", "v1")
    assert bob.request("GET", "/v2/alice/secret/manifests/v1").status == 401
    accounts.grant("alice/secret", "bob", "pull")
    bob.tokens.clear()
    assert bob.request("GET", "/v2/alice/secret/manifests/v1").status == 200
    assert bob.request("POST", "/v2/alice/secret/blobs/uploads/").status == 401
    accounts.grant("alice/secret", "bob", "push")
    bob.tokens.clear()
    assert bob.request("POST", "/v2/alice/secret/blobs/uploads/").status == 202
    accounts.revoke("alice/secret", "bob")
    bob.tokens.clear()
    assert bob.request("GET", "/v2/alice/secret/manifests/v1").status == 401


def test_the_catalog_lists_only_what_the_caller_may_pull(client, alice, anonymous):
    client.push_image("library/public", "v1")
    accounts.set_visibility("library/public", "public")
    client.push_image("library/private", "v1")
    alice.push_image("alice/own", "v1")
    assert client.request("GET", "/v2/_catalog").json()["repositories"] == ["alice/own", "library/private", "library/public"]
    assert alice.request("GET", "/v2/_catalog").json()["repositories"] == ["alice/own", "library/public"]
    assert anonymous.request("GET", "/v2/_catalog").json()["repositories"] == ["library/public"]


def test_catalog_pages_stay_full_when_hidden_repositories_are_skipped(client, anonymous):
    for name in ("a/one", "b/hidden", "c/two", "d/hidden", "e/three"):
        client.push_image(name, "v1")
        if "hidden" not in name:
            accounts.set_visibility(name, "public")
    first = anonymous.request("GET", "/v2/_catalog?n=2")
    assert first.json()["repositories"] == ["a/one", "c/two"]
    link = first.header("link")
    second = anonymous.request("GET", link[1 : link.index(">")])
    assert second.json()["repositories"] == ["e/three"]


# --- uploads and mounts ------------------------------------------------------------------------------


def test_another_users_upload_session_is_unknown_to_them(client, users):
    accounts.grant("team/shared", "bob", "push")
    location = client.request("POST", "/v2/team/shared/blobs/uploads/").header("location")
    bob = Client(client.gateway, ("bob", "bob-password"))
    reply = bob.request("PATCH", location, b"hijack", {"content-type": "application/octet-stream"})
    assert (reply.status, reply.error_codes) == (404, ["BLOB_UPLOAD_UNKNOWN"])
    assert client.request("GET", location).header("range") == "0-0"


def test_a_mount_from_a_repository_the_caller_cannot_read_does_not_leak_the_blob(client, alice):
    digest = client.push_blob("library/private", b"secret layer")
    token = alice.token("repository:alice/app:pull,push", "repository:library/private:pull")
    assert "library/private" not in json.dumps(claims_of(token)["access"])
    for query in (f"mount={digest}&from=library/private", f"mount={digest}"):
        reply = alice.raw("POST", f"/v2/alice/app/blobs/uploads/?{query}", headers=bearer(token))
        assert reply.status == 202, query
    assert alice.request("HEAD", f"/v2/alice/app/blobs/{digest}").status == 404


# --- signing in ------------------------------------------------------------------------------------


def test_a_wrong_password_gets_401_from_the_token_service(alice):
    reply = token_for(alice, credentials=("alice", "wrong-password"))
    assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"])
    assert token_for(alice, credentials=("nobody", "whatever-pass")).status == 401


def test_a_disabled_user_cannot_sign_in(alice):
    accounts.set_disabled("alice", True)
    assert token_for(alice, credentials=("alice", "alice-password")).status == 401
    accounts.set_disabled("alice", False)
    assert token_for(alice, credentials=("alice", "alice-password")).status == 200


def test_an_access_token_signs_in_within_its_scope_until_revoked(alice):
    issued = accounts.create_access_token("alice", "read")
    reply = token_for(alice, "repository:alice/app:pull,push", credentials=("alice", issued["token"]))
    assert reply.status == 200
    assert claims_of(reply.json()["token"])["access"] == [{"type": "repository", "name": "alice/app", "actions": ["pull"]}]
    accounts.revoke_access_token("alice", issued["id"])
    assert token_for(alice, credentials=("alice", issued["token"])).status == 401


def test_an_expired_access_token_is_refused(alice):
    from registry.storage import principals

    issued = accounts.create_access_token("alice", "read-write", expires_days=1)
    item = principals.get_access_token("alice", issued["id"])
    principals.put_access_token  # noqa: B018 - the item is rewritten below with a past expiry
    from registry import keys
    from registry.storage import dynamo

    dynamo.put(keys.access_token_key("alice", issued["id"]), {**{k: v for k, v in item.items() if k not in ("pk", "sk")}, "expires_at": 1})
    assert token_for(alice, credentials=("alice", issued["token"])).status == 401


def test_an_access_token_of_another_user_is_refused(alice, users):
    issued = accounts.create_access_token("bob", "read-write")
    assert token_for(alice, credentials=("alice", issued["token"])).status == 401


def test_failed_sign_ins_are_throttled_per_account_and_address_then_forgiven(alice):
    import boto3

    from registry.storage import dynamo

    for _ in range(accounts.THROTTLE_ACCOUNT_SOURCE):
        assert token_for(alice, credentials=("alice", "wrong-password")).status == 401
    reply = token_for(alice, credentials=("alice", "alice-password"))
    assert (reply.status, reply.error_codes) == (429, ["TOOMANYREQUESTS"])
    assert int(reply.header("retry-after")) > 0
    assert token_for(alice, credentials=("bob", "bob-password")).status == 200  # other accounts are unaffected
    # The window ends (TTL): sign-in works again, no permanent lock-out.
    for item in boto3.client("dynamodb").scan(TableName=dynamo.table())["Items"]:
        if item["pk"]["S"].startswith("THROTTLE#"):
            dynamo.put({"pk": item["pk"]["S"], "sk": item["sk"]["S"]}, {"failures": 99, "expires_at": 1})
    assert token_for(alice, credentials=("alice", "alice-password")).status == 200


def test_failed_sign_ins_are_throttled_per_source_address(monkeypatch, alice):
    monkeypatch.setattr(accounts, "THROTTLE_SOURCE", 3)
    for user in ("u1", "u2", "u3"):
        assert token_for(alice, credentials=(user, "wrong-password")).status == 401
    assert token_for(alice, credentials=("alice", "alice-password")).status == 429


def test_ipv6_sources_are_counted_per_64():
    assert accounts.source_key("2001:db8:1:2:3:4:5:6") == accounts.source_key("2001:db8:1:2:ffff::1") == "2001:db8:1:2::/64"
    assert accounts.source_key("192.0.2.7") == "192.0.2.7"


def test_passwords_and_tokens_are_stored_only_as_hashes(alice):
    from registry.storage import principals

    issued = accounts.create_access_token("alice", "read")
    stored = json.dumps([principals.get_user("alice"), principals.list_access_tokens("alice")], default=str)
    assert "alice-password" not in stored
    assert issued["token"].split("_", 2)[2] not in stored
    assert principals.get_user("alice")["password"].startswith("scrypt$")


# --- refresh tokens and the OAuth2 form -----------------------------------------------------------


def test_offline_token_returns_a_refresh_token_that_post_redeems(alice):
    from urllib.parse import urlencode

    reply = alice.raw("GET", f"/token?service={SERVICE}&offline_token=true&client_id=docker", headers=basic("alice", "alice-password"))
    refresh = reply.json()["refresh_token"]
    form = urlencode({"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE, "scope": "repository:alice/app:pull"})
    post = alice.raw("POST", "/token", form.encode(), {"content-type": "application/x-www-form-urlencoded"})
    assert post.status == 200
    assert claims_of(post.json()["access_token"])["sub"] == "alice"
    accounts.set_disabled("alice", True)
    assert alice.raw("POST", "/token", form.encode(), {"content-type": "application/x-www-form-urlencoded"}).status == 401


def test_post_password_grant_and_bad_grant_types(alice):
    from urllib.parse import urlencode

    good = urlencode({"grant_type": "password", "username": "alice", "password": "alice-password", "service": SERVICE, "scope": "repository:alice/app:pull push"})
    reply = alice.raw("POST", "/token", good.encode(), {"content-type": "application/x-www-form-urlencoded"})
    assert reply.status == 200 and "refresh_token" not in reply.json()
    bad = urlencode({"grant_type": "client_credentials"})
    reply = alice.raw("POST", "/token", bad.encode(), {"content-type": "application/x-www-form-urlencoded"})
    assert (reply.status, reply.error_codes) == (405, ["UNSUPPORTED"])


def test_a_refresh_token_from_a_revoked_access_token_stops_working(alice):
    from urllib.parse import urlencode

    issued = accounts.create_access_token("alice", "read-write")
    reply = alice.raw("GET", f"/token?service={SERVICE}&offline_token=true", headers=basic("alice", issued["token"]))
    refresh = reply.json()["refresh_token"]
    accounts.revoke_access_token("alice", issued["id"])
    form = urlencode({"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE})
    assert alice.raw("POST", "/token", form.encode(), {"content-type": "application/x-www-form-urlencoded"}).status == 401


def test_the_jwks_document_verifies_issued_tokens(client):
    token = client.token("repository:team/app:pull")
    key = jwt.PyJWKSet.from_dict(client.raw("GET", "/.well-known/jwks.json").json()).keys[0]
    claims = jwt.decode(token, key.key, algorithms=["ES256"], audience=SERVICE)
    assert claims["sub"] == ADMIN[0] and claims["iss"] == "serverless-registry"
    assert {"exp", "nbf", "iat", "jti", "access"} <= set(claims)
    assert jwt.get_unverified_header(token)["kid"] == key.key_id


def test_authentication_can_be_switched_off_explicitly(anonymous, monkeypatch):
    from registry import config

    monkeypatch.setenv("AUTH_ENABLED", "false")
    config.settings.cache_clear()
    assert anonymous.raw("POST", "/v2/anyone/app/blobs/uploads/").status == 202
    config.settings.cache_clear()


def test_a_password_change_cuts_off_earlier_refresh_tokens(alice):
    from urllib.parse import urlencode

    reply = alice.raw("GET", f"/token?service={SERVICE}&offline_token=true", headers=basic("alice", "alice-password"))
    form = urlencode({"grant_type": "refresh_token", "refresh_token": reply.json()["refresh_token"], "service": SERVICE})
    headers = {"content-type": "application/x-www-form-urlencoded"}
    assert alice.raw("POST", "/token", form.encode(), headers).status == 200
    accounts.set_password("alice", "a-new-password")
    assert alice.raw("POST", "/token", form.encode(), headers).status == 401


def test_access_set_before_the_first_push_does_not_list_the_repository(client):
    accounts.set_visibility("team/later", "public")
    assert "team/later" not in client.request("GET", "/v2/_catalog").json()["repositories"]
    assert client.request("GET", "/v2/team/later/tags/list").error_codes == ["NAME_UNKNOWN"]
    client.push_image("team/later", "v1")
    assert "team/later" in client.request("GET", "/v2/_catalog").json()["repositories"]


def test_revoking_a_grant_that_does_not_exist_is_a_clear_error(users):
    with pytest.raises(accounts.AccountError):
        accounts.revoke("alice/app", "bob")
    with pytest.raises(accounts.AccountError):
        accounts.create_access_token("alice", "read", expires_days=0)
