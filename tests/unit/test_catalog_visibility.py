"""The catalog shows each caller exactly what they may pull, page by page, at a bounded cost.

Nothing a caller may not see appears in a page, a Link or its ``last``; a
page's AWS calls do not grow with the registry or with what the caller may
not see; a deleted user's name passes nothing to the next user of that name.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from registry import accounts, config, keys
from registry.references import Digest
from registry.storage import dynamo, metadata
from tests.clients import Client

HIDDEN = [f"hidden/r{n:03d}" for n in range(40)]


def seed(name: str):
    """A repository with one tagged manifest, written as a push writes it (no blobs needed for the catalog)."""
    body = b'{"schemaVersion":2,"name":"%s"}' % name.encode()
    record = {"media_type": "application/vnd.oci.image.manifest.v1+json", "size": len(body), "body": body}
    metadata.put_manifest(name, Digest.of(body), record, "v1")


@pytest.fixture
def users(moto):
    accounts.create_user("alice", "alice-password")
    accounts.create_user("bob", "bob-password")


@pytest.fixture
def registry(client, users):
    """40 private repositories among a public one, alice's namespace, and a grant to alice."""
    for name in HIDDEN + ["team/granted", "alice/own", "open/app"]:
        seed(name)
    accounts.set_visibility("open/app", "public")
    accounts.grant("team/granted", "alice", "pull")
    return client


def walk(client: Client, n: int) -> tuple[list[str], list[str]]:
    """Every name the catalog lists following its Links, and every ``last`` the Links carried."""
    names, lasts, path = [], [], f"/v2/_catalog?n={n}"
    for _ in range(100):
        reply = client.request("GET", path)
        assert reply.status == 200
        names += reply.json()["repositories"]
        link = reply.header("link")
        if link is None:
            return names, lasts
        path = link[1 : link.index(">")]
        lasts += parse_qs(urlsplit(path).query)["last"]
    raise AssertionError("the Links never ended")


@pytest.mark.parametrize("n", [1, 2, 3, 1000])
def test_following_links_lists_exactly_what_each_caller_may_pull(registry, gateway, anonymous, n):
    alice = Client(gateway, ("alice", "alice-password"))
    bob = Client(gateway, ("bob", "bob-password"))
    expected = {
        anonymous: ["open/app"],
        alice: ["alice/own", "open/app", "team/granted"],
        bob: ["open/app"],
        registry: sorted(HIDDEN + ["alice/own", "open/app", "team/granted"]),
    }
    for caller, visible in expected.items():
        names, lasts = walk(caller, n)
        assert names == visible
        assert set(lasts) <= set(visible)


def test_a_hidden_name_as_last_reveals_nothing(registry, anonymous):
    for last in ("hidden/r005", "hidden", "a", "zzz", "hidden/r039"):
        reply = anonymous.request("GET", f"/v2/_catalog?n=1&last={last}")
        assert reply.status == 200
        assert set(reply.json()["repositories"]) <= {"open/app"}
        assert "hidden" not in (reply.header("link") or "")


def test_a_page_reads_the_callers_partitions_once_each(registry, gateway, anonymous, aws_calls):
    """Anonymous: 1 Query (public); a user: their admin flag and 3 Queries (public, namespace, grants)."""
    alice = Client(gateway, ("alice", "alice-password"))
    for caller, calls in ((anonymous, ["Query"]), (alice, ["GetItem", "Query", "Query", "Query"]), (registry, ["GetItem", "Query"])):
        caller.authorize("/v2/_catalog")
        caller.request("GET", "/v2/_catalog?n=1")  # a warm container: the signing key's one read is behind it
        aws_calls.calls.clear()
        assert caller.request("GET", "/v2/_catalog?n=1").status == 200
        assert sorted(op for _, op in aws_calls.calls) == calls


def test_without_a_visibility_a_repository_follows_the_default_visibility(registry, anonymous, monkeypatch, aws_calls):
    seed("plain/app")  # no visibility set
    accounts.set_visibility("hidden/r001", "private")  # set explicitly: private whatever the default
    assert walk(anonymous, 2)[0] == ["open/app"]
    monkeypatch.setenv("DEFAULT_VISIBILITY", "public")
    config.settings.cache_clear()
    anonymous.authorize("/v2/_catalog")
    aws_calls.calls.clear()
    names = walk(anonymous, 5)[0]
    assert names == sorted(["open/app", "plain/app", "team/granted", "alice/own"] + [h for h in HIDDEN if h != "hidden/r001"])
    assert sorted(op for _, op in aws_calls.calls)[:2] == ["Query", "Query"]


def test_access_changes_move_repositories_in_and_out_of_pages(registry, gateway, anonymous):
    bob = Client(gateway, ("bob", "bob-password"))
    accounts.grant("hidden/r010", "bob", "push")
    assert walk(bob, 1)[0] == ["hidden/r010", "open/app"]
    accounts.revoke("hidden/r010", "bob")
    accounts.set_visibility("open/app", "private")
    accounts.set_visibility("hidden/r020", "public")
    assert walk(bob, 1)[0] == ["hidden/r020"]
    assert walk(anonymous, 1)[0] == ["hidden/r020"]


def test_a_first_push_racing_an_access_change_indexes_the_change(client, anonymous):
    """The push read the catalog item before the visibility was set: its transaction must not index the stale read."""
    body = b'{"schemaVersion":2}'
    record = {"media_type": "application/vnd.oci.image.manifest.v1+json", "size": len(body), "body": body}
    stale = None  # what the push read: no catalog item yet
    accounts.set_visibility("race/app", "public")
    metadata.put_manifest("race/app", Digest.of(body), record, "v1", repository=stale)
    assert walk(anonymous, 10)[0] == ["race/app"]


def test_a_long_or_empty_last_is_a_page_not_an_error(registry, anonymous):
    for last in ("", "z" * 3000, "\u00e9" * 400):
        reply = anonymous.request("GET", f"/v2/_catalog?n=5&last={last}")
        assert reply.status == 200, last


# --- deleted users --------------------------------------------------------------------------------


def test_deleting_a_user_with_repositories_is_refused_without_force(registry):
    with pytest.raises(accounts.AccountError):
        accounts.delete_user("alice")
    assert walk(registry, 1000)[0].count("alice/own") == 1


def test_a_deleted_users_successor_inherits_nothing(registry, gateway):
    accounts.delete_user("alice", force=True)
    item = dynamo.get(keys.catalog_key("team/granted"))
    assert "alice" not in (item.get("grants") or {})
    assert dynamo.get(keys.catalog_key("alice/own")) is None
    assert dynamo.query_page(keys.repo_pk("alice/own"), "", 10, None)[0] == []
    accounts.create_user("alice", "new-alice-password")
    successor = Client(gateway, ("alice", "new-alice-password"))
    assert walk(successor, 1000)[0] == ["open/app"]
    for path in ("/v2/team/granted/manifests/v1", "/v2/alice/own/tags/list"):
        assert successor.request("GET", path).status in (401, 404)
    assert "alice/own" not in walk(registry, 1000)[0]


def test_a_grant_before_the_first_push_is_removed_with_its_user(registry, gateway):
    accounts.grant("later/app", "bob", "pull")  # nothing pushed there yet
    accounts.delete_user("bob")
    accounts.create_user("bob", "new-bob-password")
    seed("later/app")
    successor = Client(gateway, ("bob", "new-bob-password"))
    assert walk(successor, 1000)[0] == ["open/app"]
    assert successor.request("GET", "/v2/later/app/manifests/v1").status == 401


def clone(template: str, names: list[str]):
    """Copy a pushed repository's catalog item and catalog index entries to ``names`` (as its push wrote them).

    Pushing 2,000 repositories one transaction at a time is too slow under moto
    (its transactions copy the table); the copies are the real items.
    """
    from registry.storage import catalog_index

    originals = [dynamo.get(keys.catalog_key(template))]
    originals += [dynamo.get(key) for key in catalog_index.entries(template, originals[0])]
    dynamo.batch_put([{**item, "sk": name} for name in names for item in originals])


def test_past_two_thousand_private_repositories_an_anonymous_page_names_none_of_them(client, anonymous):
    """The reported case: 2,100 private repositories and one public one; the anonymous catalog and its Link."""
    seed("private/r0000")
    clone("private/r0000", [f"private/r{n:04d}" for n in range(1, 2100)])
    seed("zz/public")
    accounts.set_visibility("zz/public", "public")
    assert len(walk(client, 1000)[0]) == 2101
    reply = anonymous.request("GET", "/v2/_catalog")
    assert reply.json()["repositories"] == ["zz/public"]
    assert reply.header("link") is None
    reply = anonymous.request("GET", "/v2/_catalog?n=1000&last=private/r0999")
    assert reply.json()["repositories"] == ["zz/public"] and reply.header("link") is None
