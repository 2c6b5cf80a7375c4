"""Pull rate limits like Docker Hub's, as clients see them in headers and 429s."""

from __future__ import annotations

import json

import pytest

from registry import accounts, ratelimit
from tests.clients import Client

OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@pytest.fixture
def public_image(limits, client):
    manifest, digest = client.push_image("library/hello", "latest")
    accounts.set_visibility("library/hello", "public")
    return manifest, digest


@pytest.fixture
def frozen(monkeypatch):
    """An injected clock, at the start of a 60 s window."""
    now = {"t": 1_800_000_000.0}
    monkeypatch.setattr(ratelimit, "clock", lambda: now["t"])
    return now


def test_three_gets_count_down_and_the_fourth_is_429_while_heads_do_not_count(public_image, anonymous, frozen):
    remaining = []
    for _ in range(3):
        head = anonymous.request("HEAD", "/v2/library/hello/manifests/latest")
        assert head.status == 200
        get = anonymous.request("GET", "/v2/library/hello/manifests/latest")
        assert (get.status, get.header("ratelimit-limit")) == (200, "3;w=60")
        assert head.header("ratelimit-remaining") == f"{3 - len(remaining)};w=60"
        remaining.append(get.header("ratelimit-remaining"))
    assert remaining == ["2;w=60", "1;w=60", "0;w=60"]
    refused = anonymous.request("GET", "/v2/library/hello/manifests/latest")
    assert (refused.status, refused.error_codes) == (429, ["TOOMANYREQUESTS"])
    assert refused.json()["errors"][0]["message"].startswith("You have reached your pull rate limit")
    assert int(refused.header("retry-after")) == 60
    assert refused.header("ratelimit-remaining") == "0;w=60"
    # A HEAD still answers at the limit: it is not a pull.
    assert anonymous.request("HEAD", "/v2/library/hello/manifests/latest").status == 200


def test_headers_name_the_source_address_or_account(public_image, anonymous, client, frozen):
    assert anonymous.request("GET", "/v2/library/hello/manifests/latest").header("docker-ratelimit-source") == "127.0.0.1"
    assert client.request("GET", "/v2/library/hello/manifests/latest").header("docker-ratelimit-source") == "admin"


def test_signed_in_users_are_counted_separately_against_their_own_limit(public_image, anonymous, client, frozen):
    for _ in range(3):
        anonymous.request("GET", "/v2/library/hello/manifests/latest")
    assert anonymous.request("GET", "/v2/library/hello/manifests/latest").status == 429
    signed_in = client.request("GET", "/v2/library/hello/manifests/latest")
    assert (signed_in.status, signed_in.header("ratelimit-limit"), signed_in.header("ratelimit-remaining")) == (200, "5;w=60", "4;w=60")


def test_the_window_rolls_over(public_image, anonymous, frozen):
    for _ in range(3):
        anonymous.request("GET", "/v2/library/hello/manifests/latest")
    frozen["t"] += 45
    refused = anonymous.request("GET", "/v2/library/hello/manifests/latest")
    assert (refused.status, refused.header("retry-after")) == (429, "15")
    frozen["t"] += 15
    again = anonymous.request("GET", "/v2/library/hello/manifests/latest")
    assert (again.status, again.header("ratelimit-remaining")) == (200, "2;w=60")


def test_an_account_override_raises_the_limit_or_lifts_it(public_image, users_bob, gateway, frozen):
    accounts.set_pull_limit("bob", "10;w=60")
    bob = Client(gateway, ("bob", "bob-password"))
    assert bob.request("GET", "/v2/library/hello/manifests/latest").header("ratelimit-limit") == "10;w=60"
    accounts.set_pull_limit("bob", "unlimited")
    bob.tokens.clear()
    unlimited = bob.request("GET", "/v2/library/hello/manifests/latest")
    assert unlimited.status == 200
    assert {"ratelimit-limit", "ratelimit-remaining", "docker-ratelimit-source"}.isdisjoint(unlimited.headers)


def test_an_index_get_is_not_a_pull_but_each_platform_manifest_is(limits, client, anonymous, frozen):
    child, child_digest = client.push_image("library/multi", "amd64")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": child_digest, "size": len(child)}]}).encode()
    assert client.request("PUT", "/v2/library/multi/manifests/latest", index, {"content-type": OCI_INDEX}).status == 201
    accounts.set_visibility("library/multi", "public")
    first = anonymous.request("GET", "/v2/library/multi/manifests/latest")
    assert (first.status, first.header("ratelimit-remaining")) == (200, "3;w=60")
    platform = anonymous.request("GET", f"/v2/library/multi/manifests/{child_digest}")
    assert platform.header("ratelimit-remaining") == "2;w=60"


def test_a_get_of_a_missing_manifest_is_not_counted(public_image, anonymous, frozen):
    assert anonymous.request("GET", "/v2/library/hello/manifests/nope").status == 404
    assert anonymous.request("GET", "/v2/library/hello/manifests/latest").header("ratelimit-remaining") == "2;w=60"


def test_ipv6_callers_share_a_counter_per_64(public_image, gateway, frozen):
    def pull(address):
        status, headers, _ = gateway.invoke("GET", "/v2/library/hello/manifests/latest", "", [("authorization", f"Bearer {token}"), ("host", "registry.test")], b"", source_ip=address)
        return status, dict((k.lower(), v) for k, v in headers)

    token = Client(gateway, None).token("repository:library/hello:pull")
    assert pull("2001:db8:0:1::1")[1]["ratelimit-remaining"] == "2;w=60"
    assert pull("2001:db8:0:1:ffff::2")[1]["ratelimit-remaining"] == "1;w=60"
    assert pull("2001:db8:0:2::1")[1]["ratelimit-remaining"] == "2;w=60"


def test_the_counter_never_lets_more_than_the_limit_through(moto, frozen):
    from registry.storage import ratelimits

    key = ratelimits.counter_key("ip:192.0.2.1", 0)
    outcomes = [ratelimits.increment(key, 5, 60) for _ in range(9)]
    assert outcomes == [1, 2, 3, 4, 5, None, None, None, None]


def test_limit_syntax():
    assert str(ratelimit.parse("100;w=21600")) == "100;w=21600"
    assert ratelimit.parse("unlimited") is None
    for bad in ("100", "100;w=0", "w=60", "-1;w=60"):
        with pytest.raises(ValueError):
            ratelimit.parse(bad)
    with pytest.raises(accounts.AccountError):
        accounts.set_pull_limit("admin", "lots")


@pytest.fixture
def users_bob(moto):
    accounts.create_user("bob", "bob-password")
