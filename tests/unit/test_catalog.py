"""Catalog and tag lists: lexical order, n/last pagination, Link headers."""

from __future__ import annotations


def test_tags_are_listed_in_lexical_order(client):
    for tag in ("v2", "latest", "v10", "A"):
        client.push_image("team/app", tag)
    reply = client.request("GET", "/v2/team/app/tags/list")
    assert reply.json() == {"name": "team/app", "tags": ["A", "latest", "v10", "v2"]}
    assert reply.header("link") is None


def test_tags_paginate_with_n_last_and_link(client):
    for tag in ("a", "b", "c", "d", "e"):
        client.push_image("team/app", tag)
    reply = client.request("GET", "/v2/team/app/tags/list?n=2")
    assert reply.json()["tags"] == ["a", "b"]
    assert reply.header("link") == '</v2/team/app/tags/list?n=2&last=b>; rel="next"'
    reply = client.request("GET", "/v2/team/app/tags/list?n=2&last=b")
    assert reply.json()["tags"] == ["c", "d"]
    reply = client.request("GET", "/v2/team/app/tags/list?n=2&last=d")
    assert reply.json()["tags"] == ["e"]
    assert reply.header("link") is None


def test_exactly_n_remaining_gives_no_link(client):
    for tag in ("a", "b"):
        client.push_image("team/app", tag)
    reply = client.request("GET", "/v2/team/app/tags/list?n=2")
    assert reply.json()["tags"] == ["a", "b"] and reply.header("link") is None


def test_n_zero_gives_an_empty_list_without_link(client):
    client.push_image("team/app", "a")
    reply = client.request("GET", "/v2/team/app/tags/list?n=0")
    assert reply.json() == {"name": "team/app", "tags": []} and reply.header("link") is None


def test_invalid_n_is_pagination_number_invalid(client):
    client.push_image("team/app", "a")
    for n in ("-1", "abc", "1.5"):
        reply = client.request("GET", f"/v2/team/app/tags/list?n={n}")
        assert (reply.status, reply.error_codes) == (400, ["PAGINATION_NUMBER_INVALID"])


def test_tags_of_unknown_repository_is_name_unknown(client):
    reply = client.request("GET", "/v2/team/none/tags/list")
    assert (reply.status, reply.error_codes) == (404, ["NAME_UNKNOWN"])


def test_catalog_lists_repositories_in_order_with_pagination(client):
    for name in ("zeta/app", "alpha/app", "mid/a/b"):
        client.push_image(name, "v1")
    assert client.request("GET", "/v2/_catalog").json() == {"repositories": ["alpha/app", "mid/a/b", "zeta/app"]}
    reply = client.request("GET", "/v2/_catalog?n=1&last=alpha/app")
    assert reply.json() == {"repositories": ["mid/a/b"]}
    assert reply.header("link") == '</v2/_catalog?n=1&last=mid%2Fa%2Fb>; rel="next"'
