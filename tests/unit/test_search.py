"""docker search and the repository management API: matching, ranking, visibility, stars, cost."""

from __future__ import annotations

import base64
import json

import pytest

from registry import accounts
from tests.clients import Client

JSON = {"content-type": "application/json"}


@pytest.fixture
def repos(client):
    """A small registry: busybox images with descriptions, stars and official flags."""
    for name in ("library/busybox", "alice/busybox-tools", "bob/mybusybox", "library/alpine", "team/private-busybox"):
        client.push_image(name, "latest")
    for name in ("library/busybox", "alice/busybox-tools", "bob/mybusybox", "library/alpine"):
        accounts.set_visibility(name, "public")
    describe(client, "library/busybox", "Busybox base image.")
    describe(client, "library/alpine", "A minimal image based on Alpine Linux, smaller than busybox")
    set_official(client, "library/busybox", True)
    return client


def describe(client, name, text):
    reply = client.request("PUT", f"/api/v1/repositories/{name}/description", json.dumps({"description": text}).encode(), JSON)
    assert reply.status == 200, reply.body
    return reply


def set_official(client, name, official):
    return client.request("PUT", f"/api/v1/repositories/{name}/official", json.dumps({"official": official}).encode(), JSON)


def search(client, query, headers=None):
    reply = client.raw("GET", f"/v1/search?{query}", headers=headers)
    assert reply.status == 200, reply.body
    return reply.json()


def test_ping_says_standalone(anonymous):
    reply = anonymous.raw("GET", "/v1/_ping")
    assert reply.status == 200 and reply.json() == {"standalone": True}
    assert reply.header("x-docker-registry-standalone") == "true"


def test_response_has_docker_hubs_shape(repos, anonymous):
    document = search(anonymous, "q=busybox&n=25")
    assert set(document) == {"query", "num_results", "num_pages", "page", "page_size", "results"}
    assert document["query"] == "busybox" and document["page"] == 1 and document["page_size"] == 25
    first = document["results"][0]
    assert first == {"name": "library/busybox", "description": "Busybox base image.", "star_count": 0, "is_official": True, "is_automated": False}


def test_matches_name_substrings_and_description_words_case_insensitively(repos, anonymous):
    names = [r["name"] for r in search(anonymous, "q=BusyBox")["results"]]
    # alpine matches by the word "busybox" in its description; the private one is hidden.
    assert sorted(names) == ["alice/busybox-tools", "bob/mybusybox", "library/alpine", "library/busybox"]
    # A substring inside the name; the official one ranks first.
    assert [r["name"] for r in search(anonymous, "q=ybo")["results"]] == ["library/busybox", "alice/busybox-tools", "bob/mybusybox"]
    assert search(anonymous, "q=minimal")["results"][0]["name"] == "library/alpine"
    assert search(anonymous, "q=mini")["num_results"] == 0  # description words match whole


def test_ranking_exact_name_then_official_then_stars_then_name(repos, gateway):
    for user in ("u1", "u2"):
        accounts.create_user(user, "password-" + user)
        fan = Client(gateway, (user, "password-" + user))
        assert fan.request("PUT", "/api/v1/repositories/bob/mybusybox/star").status == 200
    names = [r["name"] for r in search(Client(gateway, None), "q=busybox")["results"]]
    assert names == ["library/busybox", "bob/mybusybox", "alice/busybox-tools", "library/alpine"]


def test_private_repositories_appear_only_to_those_who_may_pull_them(repos, gateway, anonymous):
    assert "team/private-busybox" not in [r["name"] for r in search(anonymous, "q=busybox")["results"]]
    admin = "Basic " + base64.b64encode(b"admin:admin-password-for-tests").decode()
    assert "team/private-busybox" in [r["name"] for r in search(anonymous, "q=busybox", {"authorization": admin})["results"]]
    token = repos.token("registry:catalog:search")
    assert "team/private-busybox" in [r["name"] for r in search(anonymous, "q=busybox", {"authorization": f"Bearer {token}"})["results"]]


def test_wrong_credentials_are_refused(repos, anonymous):
    bad = "Basic " + base64.b64encode(b"admin:nope").decode()
    reply = anonymous.raw("GET", "/v1/search?q=busybox", headers={"authorization": bad})
    assert (reply.status, reply.error_codes) == (401, ["UNAUTHORIZED"])


def test_n_and_page_paginate(repos, anonymous):
    first = search(anonymous, "q=busybox&n=2&page=1")
    second = search(anonymous, "q=busybox&n=2&page=2")
    assert (first["num_results"], first["num_pages"]) == (4, 2)
    assert len(first["results"]) == len(second["results"]) == 2
    assert not {r["name"] for r in first["results"]} & {r["name"] for r in second["results"]}
    reply = anonymous.raw("GET", "/v1/search?q=busybox&n=0")
    assert reply.error_codes == ["PAGINATION_NUMBER_INVALID"]


def test_stars_are_one_per_user_and_idempotent(repos):
    for _ in range(2):
        assert repos.request("PUT", "/api/v1/repositories/library/alpine/star").json()["star_count"] == 1
    view = repos.request("GET", "/api/v1/repositories/library/alpine").json()
    assert (view["star_count"], view["starred"]) == (1, True)
    for _ in range(2):
        assert repos.request("DELETE", "/api/v1/repositories/library/alpine/star").json()["star_count"] == 0


def test_only_admins_mark_official_and_only_owners_describe(repos, gateway):
    accounts.create_user("alice", "alice-password")
    alice = Client(gateway, ("alice", "alice-password"))
    reply = alice.request("PUT", "/api/v1/repositories/library/alpine/official", b'{"official": true}', JSON)
    assert (reply.status, reply.error_codes) == (403, ["DENIED"])
    reply = alice.request("PUT", "/api/v1/repositories/library/alpine/description", b'{"description": "mine now"}', JSON)
    assert (reply.status, reply.error_codes) == (401, ["DENIED"])
    assert describe(alice, "alice/busybox-tools", "Tools").json()["description"] == "Tools"


def test_anonymous_callers_cannot_star(repos, anonymous):
    assert anonymous.request("PUT", "/api/v1/repositories/library/alpine/star").status == 401


def test_bad_bodies_and_unknown_repositories_get_clear_errors(repos):
    reply = repos.request("PUT", "/api/v1/repositories/library/alpine/description", b"not json", JSON)
    assert (reply.status, reply.error_codes) == (400, ["REQUEST_INVALID"])
    reply = repos.request("PUT", "/api/v1/repositories/library/alpine/description", json.dumps({"description": "x" * 101}).encode(), JSON)
    assert reply.error_codes == ["REQUEST_INVALID"]
    assert repos.request("GET", "/api/v1/repositories/library/nothing").error_codes == ["NAME_UNKNOWN"]


def test_a_description_change_moves_its_words_in_the_index(repos, anonymous):
    describe(repos, "library/alpine", "Tiny distribution")
    assert "library/alpine" not in [r["name"] for r in search(anonymous, "q=busybox")["results"]]
    assert [r["name"] for r in search(anonymous, "q=tiny")["results"]] == ["library/alpine"]


def test_search_reads_only_the_terms_partitions_not_the_registry(client, aws_calls):
    """Items read grow with the matches, not with the number of repositories."""
    from registry.storage import search_index

    for i in range(40):
        search_index.add_repository(f"filler/repo{i:03d}")
    client.push_image("library/needle", "latest")
    accounts.set_visibility("library/needle", "public")
    aws_calls.calls.clear()
    calls_before = len(aws_calls.calls)
    reply = Client(client.gateway, None).raw("GET", "/v1/search?q=needle")
    assert [r["name"] for r in reply.json()["results"]] == ["library/needle"]
    operations = [op for _, op in aws_calls.calls[calls_before:]]
    assert "Scan" not in operations
    # 4 trigram partitions of "needle" + 1 word partition + 1 BatchGetItem of matching repositories.
    assert operations.count("Query") == 5 and operations.count("BatchGetItem") == 1
