"""Signing in as attackers and careless users do: secrets typed into the wrong field, huge or
odd user names, wrong passwords meant to lock someone out, and user names in capitals.

Every sign-in path is covered: ``GET /token`` with Basic credentials, ``POST /token`` with
``grant_type=password`` and ``grant_type=refresh_token``, and Basic credentials on ``/v1/search``.
Each test talks to the registry through the in-process gateway from chosen source addresses.
"""

from __future__ import annotations

import base64
import json
import re
from urllib.parse import urlencode

import boto3
import pytest

from registry import accounts, aws
from registry.storage import dynamo
from tests.clients import Reply
from tests.dynamo_limits import KeyLimits

SERVICE = "registry.test"
HOME = "192.0.2.10"  # the owner's address
ATTACKER = "198.51.100.66"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def send(gateway, method: str, path: str, body: bytes = b"", headers: dict | None = None, source: str = HOME) -> Reply:
    raw_path, _, query = path.partition("?")
    pairs = [*(headers or {}).items(), ("host", SERVICE)]
    if body:
        pairs.append(("content-length", str(len(body))))
    return Reply(*gateway.invoke(method, raw_path, query, pairs, body, source_ip=source, host=SERVICE))


def basic(user: str, secret: str) -> dict:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()}


def get_token(gateway, user, secret, source=HOME, offline=False) -> Reply:
    query = f"/token?service={SERVICE}" + ("&offline_token=true&client_id=docker" if offline else "")
    return send(gateway, "GET", query, headers=basic(user, secret), source=source)


def post_password(gateway, user, secret, source=HOME) -> Reply:
    form = urlencode({"grant_type": "password", "username": user, "password": secret, "service": SERVICE, "client_id": "test"})
    return send(gateway, "POST", "/token", form.encode(), FORM, source)


def post_refresh(gateway, refresh, source=HOME) -> Reply:
    form = urlencode({"grant_type": "refresh_token", "refresh_token": refresh, "service": SERVICE, "client_id": "test"})
    return send(gateway, "POST", "/token", form.encode(), FORM, source)


def search_basic(gateway, user, secret, source=HOME) -> Reply:
    return send(gateway, "GET", "/v1/search?q=app", headers=basic(user, secret), source=source)


def table_items() -> list[dict]:
    """Every item of the table (a test may scan; the registry never does)."""
    client = boto3.client("dynamodb")
    items, args = [], {"TableName": dynamo.table()}
    while True:
        page = client.scan(**args)
        items += [dynamo.decode(item) for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            return items
        args["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def throttle_items() -> list[dict]:
    return [item for item in table_items() if item["pk"].startswith("THROTTLE#")]


def forgive_all():
    """What the end of the 15-minute window (TTL) does: every throttle window is over."""
    for item in throttle_items():
        dynamo.put({"pk": item["pk"], "sk": item["sk"]}, {"failures": item["failures"], "expires_at": 1})


@pytest.fixture
def key_limits(moto):
    """DynamoDB's key-size limits on every call of the test; no violation at the end."""
    limits = KeyLimits()
    aws.reset()
    aws.dynamodb().meta.events.register("before-parameter-build", limits)
    yield limits
    assert limits.violations == []
    aws.reset()


@pytest.fixture
def alice(moto, key_limits):
    accounts.create_user("alice", "alice-password")
    return accounts.create_access_token("alice", "read-write")["token"]


# --- no secret is stored, whatever field it is typed into --------------------------------------

# Credential-shaped values typed where they do not belong: alice's access token and password as a
# user name (her password is a valid user-name shape), a wrong password, and a capitalised secret.
def typed_values(pat: str) -> list[tuple[str, str]]:
    return [
        (pat, ""),
        (pat, "whatever"),
        ("alice-password", "x"),
        ("Hunter2-Secret-Horse", "alice-password"),
        ("alice", "Wrong-Secret-Horse"),
        ("alice", pat + "x"),
    ]


def sign_in_everywhere(gateway, path: str, pat: str):
    for user, secret in typed_values(pat):
        if path == "get":
            reply = get_token(gateway, user, secret)
        elif path == "post-password":
            reply = post_password(gateway, user, secret)
        elif path == "search":
            reply = search_basic(gateway, user, secret)
        else:  # refresh: a secret pasted as the refresh token, or as the user name it carries
            refresh = f"rrt_0123456789ab_{secret or 'x'}.{user}"
            assert post_refresh(gateway, user).status == 401
            reply = post_refresh(gateway, refresh)
        assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"]), (user, reply)


@pytest.mark.parametrize("path", ["get", "post-password", "post-refresh", "search"])
def test_no_secret_typed_into_a_sign_in_is_stored_anywhere_in_the_table(gateway, alice, path):
    sign_in_everywhere(gateway, path, alice)

    stored = json.dumps(table_items(), default=str)
    assert throttle_items(), "the failures were counted"
    secret_of_pat = alice.split("_", 2)[2]
    for secret in ("alice-password", "Hunter2-Secret-Horse", "Wrong-Secret-Horse", secret_of_pat, HOME):
        assert secret not in stored and secret.lower() not in stored, secret


def test_throttle_keys_are_keyed_hashes_of_fixed_size(gateway, alice):
    assert get_token(gateway, "alice", "wrong-password").status == 401
    assert get_token(gateway, alice, "").status == 401

    pks = sorted(item["pk"] for item in throttle_items())
    assert len(pks) == 3  # source, account+source, account (the token in the name counted once, on the source)
    for pk in pks:
        assert re.fullmatch(r"THROTTLE#(source|account-source|account)#[A-Za-z0-9_-]{43}", pk), pk
        assert "alice" not in pk


# --- user names that cannot be a user's -------------------------------------------------------


@pytest.mark.parametrize("path", ["get", "post-password", "search"])
def test_a_3000_character_user_name_is_a_failed_sign_in_counted_against_the_source(gateway, alice, key_limits, monkeypatch, path):
    monkeypatch.setattr(accounts, "THROTTLE_SOURCE", 2)
    sign = {"get": get_token, "post-password": post_password, "search": search_basic}[path]

    for _ in range(2):
        reply = sign(gateway, "a" * 3000, "alice-password")
        assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"])
    assert sign(gateway, "alice", "alice-password").status == 429  # the source's budget is spent
    assert sign(gateway, "alice", "alice-password", source=ATTACKER).status == 200  # the account is not touched
    assert key_limits.keys_seen > 0


def test_names_that_are_no_user_name_get_401_without_an_account_counter(gateway, alice):
    for user in ("", "a", "x" * 31, "ａlice", "al ice", "alice\x00", "\u212aate"):
        assert get_token(gateway, user, "alice-password").status == 401, user
    assert [item["pk"].split("#")[1] for item in throttle_items()] == ["source"]


# --- lock-out is no denial of service -----------------------------------------------------------


def test_wrong_passwords_from_one_address_do_not_lock_the_owner_out_from_another(gateway, alice):
    for _ in range(accounts.THROTTLE_ACCOUNT_SOURCE):
        assert get_token(gateway, "alice", "wrong-password", source=ATTACKER).status == 401
    reply = get_token(gateway, "alice", "alice-password", source=ATTACKER)
    assert (reply.status, reply.error_codes) == (429, ["TOOMANYREQUESTS"])
    assert 0 < int(reply.header("retry-after")) <= accounts.THROTTLE_WINDOW

    assert get_token(gateway, "alice", "alice-password", source=HOME).status == 200
    assert post_password(gateway, "alice", "alice-password", source=HOME).status == 200
    assert search_basic(gateway, "alice", "alice-password", source=HOME).status == 200


def test_the_account_ceiling_stops_a_distributed_guess_but_never_the_tokens(gateway, alice, monkeypatch):
    monkeypatch.setattr(accounts, "THROTTLE_ACCOUNT_SOURCE", 2)
    monkeypatch.setattr(accounts, "THROTTLE_ACCOUNT", 4)
    refresh = get_token(gateway, "alice", "alice-password", offline=True).json()["refresh_token"]
    for source in ("203.0.113.1", "203.0.113.2"):
        for _ in range(2):
            assert get_token(gateway, "alice", "wrong-password", source=source).status == 401

    # The password is locked from everywhere for the window...
    assert get_token(gateway, "alice", "alice-password", source=HOME).status == 429
    assert search_basic(gateway, "alice", "alice-password", source=HOME).status == 429
    # ... but no number of wrong passwords locks an access token or a refresh token.
    assert get_token(gateway, "alice", alice, source=HOME).status == 200
    assert search_basic(gateway, "alice", alice, source=HOME).status == 200
    assert post_refresh(gateway, refresh, source=HOME).status == 200
    forgive_all()
    assert get_token(gateway, "alice", "alice-password", source=HOME).status == 200


def test_the_default_ceilings_need_many_sources_to_lock_a_password():
    assert accounts.THROTTLE_ACCOUNT >= 10 * accounts.THROTTLE_ACCOUNT_SOURCE
    assert accounts.THROTTLE_SOURCE > accounts.THROTTLE_ACCOUNT_SOURCE


def test_wrong_tokens_count_against_the_source_only(gateway, alice, monkeypatch):
    monkeypatch.setattr(accounts, "THROTTLE_SOURCE", 3)
    fake = "rpat_0123456789ab_" + "x" * 43
    assert get_token(gateway, "alice", fake, source=ATTACKER).status == 401
    assert post_refresh(gateway, "rrt_0123456789ab_xyz.alice", source=ATTACKER).status == 401
    assert search_basic(gateway, "alice", fake, source=ATTACKER).status == 401
    assert get_token(gateway, "alice", alice, source=ATTACKER).status == 429  # that source is spent
    assert [item["pk"].split("#")[1] for item in throttle_items()] == ["source"]
    assert get_token(gateway, "alice", "alice-password", source=HOME).status == 200


def test_a_sign_in_reads_everything_in_one_batch_and_writes_a_bounded_number_of_counters(gateway, alice):
    from tests.clients import CallCounter

    assert get_token(gateway, "admin", "admin-password-for-tests").status == 200  # a warm container: the signing key is published
    counter = CallCounter()
    aws.dynamodb().meta.events.register("before-call", counter)
    assert get_token(gateway, "alice", "alice-password").status == 200
    assert [op for _, op in counter.calls] == ["BatchGetItem"]

    counter.calls.clear()
    assert get_token(gateway, "alice", "wrong-password").status == 401
    reads = [op for _, op in counter.calls if op in ("GetItem", "BatchGetItem", "Query")]
    assert reads == ["BatchGetItem"] and len(counter.calls) <= 1 + 2 * 3

    counter.calls.clear()
    assert get_token(gateway, "alice", alice).status == 200
    assert [op for _, op in counter.calls] == ["BatchGetItem"]


# --- user names are lower case ------------------------------------------------------------------


def test_sign_in_folds_the_user_name_to_lower_case_on_every_path(gateway, alice):
    reply = get_token(gateway, "Alice", "alice-password", offline=True)
    assert reply.status == 200
    claims = json.loads(base64.urlsafe_b64decode(reply.json()["token"].split(".")[1] + "=="))
    assert claims["sub"] == "alice"
    assert post_refresh(gateway, reply.json()["refresh_token"]).status == 200
    assert post_password(gateway, "ALICE", "alice-password").status == 200
    assert search_basic(gateway, "aLiCe", "alice-password").status == 200
    assert get_token(gateway, "ALICE", alice).status == 200


def test_failures_under_any_capitalisation_count_against_the_same_account(gateway, alice, monkeypatch):
    monkeypatch.setattr(accounts, "THROTTLE_ACCOUNT_SOURCE", 2)
    assert get_token(gateway, "ALICE", "wrong-password").status == 401
    assert post_password(gateway, "Alice", "wrong-password").status == 401
    assert get_token(gateway, "alice", "alice-password").status == 429
