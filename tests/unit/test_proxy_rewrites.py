"""registry-proxy's pure rules: the part-size schedule, and the ``Location`` and ``WWW-Authenticate``
rewrites (the same rules run through the proxy in tests/integration/test_proxy_*.py)."""

from __future__ import annotations

import pytest

from registry_proxy.headers import realm_of, rewrite_location, rewrite_realm
from registry_proxy.parts import MAX_PART_SIZE, TooManyParts, part_size, split

MiB = 1024 * 1024
UPSTREAM = "https://registry.example.com"


def test_first_thousand_parts_have_the_base_size_then_it_doubles():
    assert {part_size(n, 8 * MiB) for n in range(1, 1001)} == {8 * MiB}
    assert part_size(1001, 8 * MiB) == 16 * MiB
    assert part_size(2001, 8 * MiB) == 32 * MiB


def test_part_size_never_exceeds_s3s_5_gib_and_part_10001_does_not_exist():
    assert max(part_size(n, 8 * MiB) for n in range(1, 10_001)) == 4 * 1024 ** 3
    assert part_size(10_000, 16 * MiB) == MAX_PART_SIZE
    with pytest.raises(TooManyParts):
        part_size(10_001, 8 * MiB)


def test_s3s_largest_object_fits_in_10000_parts():
    five_tib = 5 * 1024 ** 4
    assert sum(part_size(n, 8 * MiB) for n in range(1, 10_001)) >= five_tib


def test_split_cuts_full_parts_and_a_short_last_one():
    assert split(20 * MiB + 3, 8 * MiB) == [8 * MiB, 8 * MiB, 4 * MiB + 3]
    assert split(16 * MiB, 8 * MiB) == [8 * MiB, 8 * MiB]
    assert split(0, 8 * MiB) == []


def test_location_on_the_registrys_origin_becomes_a_path_on_the_proxy():
    assert rewrite_location(f"{UPSTREAM}/v2/a/b/blobs/uploads/u1?x=1", UPSTREAM) == "/v2/a/b/blobs/uploads/u1?x=1"
    assert rewrite_location("https://REGISTRY.example.com/v2/a/blobs/sha256:00", UPSTREAM) == "/v2/a/blobs/sha256:00"


def test_relative_locations_and_other_hosts_are_left_alone():
    assert rewrite_location("/v2/a/blobs/uploads/u1", UPSTREAM) == "/v2/a/blobs/uploads/u1"
    s3 = "https://bucket.s3.amazonaws.com/blobs/sha256/ab?X-Amz-Signature=1"
    assert rewrite_location(s3, UPSTREAM) == s3
    assert rewrite_location("http://registry.example.com/v2/", UPSTREAM) == "http://registry.example.com/v2/"


def test_bearer_realm_points_at_the_proxy_and_service_and_scope_stay():
    challenge = f'Bearer realm="{UPSTREAM}/token",service="registry.example.com",scope="repository:a/b:pull,push"'

    rewritten = rewrite_realm(challenge, "http://127.0.0.1:5500/token")

    assert rewritten == 'Bearer realm="http://127.0.0.1:5500/token",service="registry.example.com",scope="repository:a/b:pull,push"'
    assert realm_of(challenge) == f"{UPSTREAM}/token"


def test_error_parameters_and_other_schemes_are_kept():
    challenge = 'Bearer realm="https://auth.example.com/t",service="s",error="insufficient_scope"'
    assert rewrite_realm(challenge, "http://p/token").endswith(',service="s",error="insufficient_scope"')
    assert rewrite_realm('Basic realm="Registry"', "http://p/token") == 'Basic realm="Registry"'
    assert realm_of('Basic realm="Registry"') is None
