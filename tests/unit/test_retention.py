"""Retention policies (registry.services.retention), applied by the garbage-collection pass.

What a user checks: after a pass, a repository holds exactly the tags its
policy keeps (pattern filters, keep-N, expire-days, a namespace policy or the
repository's own); the images whose tags went are freed by the same pass
while every kept image still pulls byte for byte; a dry run changes nothing.

Push times are set by running the pushes on a clock in the past
(``pushed_at``): the registry stamps a tag with ``time.time()`` when it is
pushed, as it does on AWS.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import types

import pytest

from registry import aws, config, keys
from registry.services import gc, retention
from registry.storage import metadata
from tests.clients import Client
from tests.unit.test_admin_cli import admin_cli  # noqa: F401 - the fixture
from tests.unit.test_gc import collecting, key_of, pull, s3_blobs  # noqa: F401 - the fixture

DAY = 86400
JSON = {"content-type": "application/json"}


class Clock:
    """The clock pushes see (metadata stamps tags and manifests with it)."""

    def __init__(self, monkeypatch):
        self.now = time.time()
        monkeypatch.setattr(metadata, "time", types.SimpleNamespace(time=lambda: self.now))

    def days_ago(self, days: float, seconds: int = 0):
        self.now = time.time() - days * DAY + seconds


@pytest.fixture
def clock(monkeypatch):
    return Clock(monkeypatch)


def tags(name: str) -> set[str]:
    return set(metadata.list_tags(name, 1000, None)[0])


def push_tags(client, clock, name: str, spec: list[tuple[str, float]]):
    """Push one image per (tag, days ago), oldest first; returns tag -> manifest digest."""
    digests = {}
    for index, (tag, days) in enumerate(sorted(spec, key=lambda item: -item[1])):
        clock.days_ago(days, seconds=index)  # distinct push times, in the order given
        digests[tag] = client.push_image(name, tag, [f"{name} {tag}".encode()])[1]
    clock.now = time.time()
    return digests


def policy(subject: str, **fields):
    retention.set_policy(subject, retention.parse_policy(subject, fields))


def deleted_tags(report) -> set[tuple[str, str]]:
    return {(r.name, r.tag) for r in report.removed if r.kind == "tag"}


def table_items() -> list[dict]:
    items = []
    for page in aws.dynamodb().get_paginator("scan").paginate(TableName=config.settings().table):
        items += page["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item["sk"]["S"]))


# --- what a policy keeps ---------------------------------------------------------------------------


def test_keep_keeps_the_newest_matching_tags_and_never_touches_the_others(client, clock):
    push_tags(client, clock, "team/app", [("v1", 9), ("v2", 8), ("dev-1", 7), ("v3", 6), ("latest", 5), ("v4", 4)])
    policy("team/app", keep=2, tags="v*")

    report = gc.run()

    assert tags("team/app") == {"v3", "v4", "dev-1", "latest"}
    assert deleted_tags(report) == {("team/app", "v1"), ("team/app", "v2")}
    assert client.request("GET", "/v2/team/app/manifests/v1").status == 404
    assert gc.run().removed == []  # applied already: nothing more to delete


def test_expire_days_deletes_matching_tags_pushed_before_the_cutoff(client, clock):
    push_tags(client, clock, "team/app", [("release-1", 40), ("release-2", 31), ("release-3", 29), ("nightly-1", 60)])
    policy("team/app", expire_days=30, tags="release-*")

    gc.run()

    assert tags("team/app") == {"release-3", "nightly-1"}


def test_keep_and_expire_together_delete_only_what_neither_keeps(client, clock):
    push_tags(client, clock, "team/app", [("a", 50), ("b", 40), ("c", 35), ("d", 10), ("e", 2)])
    policy("team/app", keep=3, expire_days=30)  # the 3 newest (c, d, e) and anything within 30 days (d, e) stay

    gc.run()

    assert tags("team/app") == {"c", "d", "e"}


def test_a_pattern_with_a_character_set_and_a_single_character_wildcard(client, clock):
    push_tags(client, clock, "team/app", [("v1.0", 9), ("v2.0", 8), ("v1.10", 7), ("V1.1", 6), ("x1.0", 5)])
    policy("team/app", expire_days=1, tags="v[12].?")  # whole tag, case-sensitive: v1.10, V1.1 and x1.0 do not match

    gc.run()

    assert tags("team/app") == {"v1.10", "V1.1", "x1.0"}


def test_a_namespace_policy_applies_to_its_repositories_and_a_repository_policy_overrides_it(client, clock):
    spec = [("1", 5), ("2", 4), ("3", 3), ("4", 2)]
    for name in ("team/a", "team/b", "team/sub/c", "other/d"):
        push_tags(client, clock, name, spec)
    policy("team/*", keep=1)
    policy("team/b", keep=3)

    gc.run()

    assert tags("team/a") == {"4"} and tags("team/sub/c") == {"4"}
    assert tags("team/b") == {"2", "3", "4"}  # its own policy replaces the namespace's
    assert tags("other/d") == {"1", "2", "3", "4"}


def test_a_tag_pushed_again_is_renewed_and_its_old_push_time_forgotten(client, clock):
    push_tags(client, clock, "team/app", [("latest", 40), ("old", 39)])
    clock.days_ago(1)
    client.push_image("team/app", "latest", [b"a newer latest"])  # moves the tag: pushed a day ago now
    clock.now = time.time()
    policy("team/app", expire_days=30)

    gc.run()

    assert tags("team/app") == {"latest"}
    entries, _ = metadata.dynamo.query_page(keys.repo_pk("team/app"), keys.PUSHED_PREFIX, 10, None)
    assert [entry["sk"].rsplit("#", 1)[1] for entry in entries] == ["latest"]


def test_a_tag_moved_after_the_policy_read_it_is_not_deleted(client, clock):
    push_tags(client, clock, "team/app", [("v1", 40)])
    old = metadata.get_tag("team/app", "v1")["updated"]
    client.push_image("team/app", "v1", [b"pushed meanwhile"])

    assert metadata.delete_tag("team/app", "v1", pushed=old) is False  # what the pass does with what it read
    assert client.request("GET", "/v2/team/app/manifests/v1", headers={"accept": "application/vnd.oci.image.manifest.v1+json"}).status == 200


def test_retention_deletes_tags_of_an_immutable_repository(client, clock):
    push_tags(client, clock, "team/app", [("v1", 3), ("v2", 2)])
    metadata.set_immutable("team/app", True)
    policy("team/app", keep=1)

    gc.run()

    assert tags("team/app") == {"v2"}


def test_untagged_days_replaces_the_global_grace_for_its_repositories(client, clock, monkeypatch):
    monkeypatch.setattr(gc, "USES_FRESH_SECONDS", 0)
    for name in ("team/short", "team/default", "team/long"):
        clock.days_ago(3)
        _, first = client.push_image(name, "v1", [f"{name} one".encode()])
        client.push_image(name, "v1", [f"{name} two".encode()])  # untags the first, 3 days ago
    clock.now = time.time()
    policy("team/short", untagged_days=2)
    policy("team/long", untagged_days=30)
    monkeypatch.setenv("GC_UNTAGGED_DAYS", "1")
    config.settings.cache_clear()

    removed = {(r.kind, r.name) for r in gc.run().removed}

    assert ("manifest", "team/short") in removed and ("manifest", "team/default") in removed
    assert ("manifest", "team/long") not in removed


def test_a_shorter_untagged_days_than_the_global_one_collects_sooner(client, clock, monkeypatch):
    monkeypatch.setattr(gc, "USES_FRESH_SECONDS", 0)
    for name in ("team/short", "team/default"):
        clock.days_ago(3)
        client.push_image(name, "v1", [f"{name} one".encode()])
        client.push_image(name, "v1", [f"{name} two".encode()])
    clock.now = time.time()
    policy("team/short", untagged_days=2)  # GC_UNTAGGED_DAYS stays 7

    removed = {(r.kind, r.name) for r in gc.run().removed}

    assert ("manifest", "team/short") in removed and ("manifest", "team/default") not in removed
    assert {(r.kind, r.name) for r in gc.run().removed} == set()  # the other candidate waits, untouched


# --- freeing storage -------------------------------------------------------------------------------


def test_a_policys_deletions_free_the_blobs_only_its_expired_images_held_and_kept_images_still_pull(client, clock, collecting):
    base = b"shared base layer" * 200
    layers = {}
    for index, tag in enumerate(["1", "2", "3", "4"]):
        clock.days_ago(10 - index)
        layers[tag] = os.urandom(2000 + index)
        client.push_image("team/app", tag, [base, layers[tag]], config=f'{{"build":{index}}}'.encode())
    clock.now = time.time()
    kept = {tag: pull(client, "team/app", tag) for tag in ("3", "4")}
    before = s3_blobs()
    policy("team/app", keep=2)

    report = gc.run()

    freed = set(before) - set(s3_blobs())
    gone = [layers["1"], layers["2"], b'{"build":0}', b'{"build":1}']
    assert freed == {key_of("sha256:" + hashlib.sha256(data).hexdigest()) for data in gone}
    assert report.bytes_freed == sum(len(data) for data in gone)
    assert key_of("sha256:" + hashlib.sha256(base).hexdigest()) in s3_blobs()
    for tag, blobs in kept.items():
        assert pull(client, "team/app", tag) == blobs


# --- dry runs --------------------------------------------------------------------------------------


def test_dry_runs_change_neither_table_nor_bucket_and_list_what_the_pass_deletes(client, clock, collecting, admin_cli):
    push_tags(client, clock, "team/app", [("v1", 9), ("v2", 8), ("v3", 7)])
    push_tags(client, clock, "team/lib", [("1", 9), ("2", 7)])
    policy("team/app", keep=1)
    policy("team/*", expire_days=8, tags="[0-9]*")
    table, bucket = table_items(), s3_blobs()

    dry = gc.run(dry_run=True)
    status, out, _ = admin_cli("gc", "--dry-run")
    assert status == 0 and "team/app:v1" in out and "team/lib:1" in out
    status, repo_out, _ = admin_cli("repo", "retention", "team/app", "--dry-run")
    assert status == 0 and "would delete tag team/app:v1" in repo_out and "would delete tag team/app:v2" in repo_out
    status, trial, _ = admin_cli("repo", "retention", "team/app", "--keep", "2", "--dry-run")
    assert status == 0 and "team/app:v1" in trial and "team/app:v2" not in trial
    status, namespace_out, _ = admin_cli("repo", "retention", "--namespace", "team", "--dry-run")
    assert status == 0 and "team/lib:1" in namespace_out and "team/app" not in namespace_out

    assert table_items() == table and s3_blobs() == bucket
    real = gc.run()
    assert deleted_tags(real) == deleted_tags(dry) == {("team/app", "v1"), ("team/app", "v2"), ("team/lib", "1")}


# --- a pass's bounded work ---------------------------------------------------------------------------


def test_a_pass_stops_at_its_budget_and_the_next_continues_where_it_stopped(client, clock):
    for name in ("team/a", "team/b", "team/c"):
        push_tags(client, clock, name, [(str(i), 10 - i) for i in range(6)])
        policy(name, keep=1)

    first = retention.apply_all(delete_budget=4)
    assert not first.complete and len(first.deleted) == 4
    second = retention.apply_all(delete_budget=4)
    third = retention.apply_all(delete_budget=100)
    assert third.complete and len(first.deleted) + len(second.deleted) + len(third.deleted) == 15
    assert all(tags(name) == {"5"} for name in ("team/a", "team/b", "team/c"))


def test_reindex_writes_the_push_time_entries_of_tags_pushed_before_retention(client, clock, admin_cli):
    push_tags(client, clock, "team/app", [("old", 1), ("new", 0)])
    entries, _ = metadata.dynamo.query_page(keys.repo_pk("team/app"), keys.PUSHED_PREFIX, 10, None)
    metadata.dynamo.batch_delete([{"pk": e["pk"], "sk": e["sk"]} for e in entries])  # as a table from before this version
    policy("team/app", keep=1)
    assert gc.run().removed == []  # nothing indexed: nothing found

    status, out, _ = admin_cli("reindex")
    assert status == 0 and "2 tag push-time entries" in out
    gc.run()
    assert tags("team/app") == {"new"}


# --- setting a policy --------------------------------------------------------------------------------


def test_the_management_api_sets_shows_and_clears_a_repositorys_policy(client, clock):
    client.push_image("team/app", "v1")
    policy("team/*", expire_days=90)
    body = json.dumps({"keep": 5, "tags": "v*", "untagged_days": 3}).encode()

    reply = client.request("PUT", "/api/v1/repositories/team/app/retention", body, JSON)

    assert reply.status == 200
    assert reply.json()["policy"] == {"keep": 5, "expire_days": None, "tags": "v*", "untagged_days": 3}
    shown = client.request("GET", "/api/v1/repositories/team/app/retention").json()
    assert shown["effective"]["applies_from"] == "team/app" and shown["effective"]["keep"] == 5
    cleared = client.request("PUT", "/api/v1/repositories/team/app/retention", b"{}", JSON).json()
    assert cleared["policy"] is None and cleared["effective"]["applies_from"] == "team/*"


@pytest.mark.parametrize(
    "body",
    [
        b'{"keep": -1}',
        b'{"keep": 0}',
        b'{"keep": 1.5}',
        b'{"keep": true}',
        b'{"keep": 1001}',
        b'{"expire_days": "\xc2\xb2"}',
        b'{"expire_days": 99999999999999999999999}',
        b'{"keep": 1, "tags": "v(1|2)"}',
        b'{"keep": 1, "tags": ""}',
        b'{"keep": 1, "tags": "[abc"}',
        b'{"keep": 1, "tags": "' + b"*" * 129 + b'"}',
        b'{"keep": 1, "tags": ["v*"]}',
        b'{"tags": "v*"}',
        b'{"keep": 1, "colour": "red"}',
        b'{"keep": {"n": 1}}',
        b"[1]",
        b"not json",
        b'{"keep": 1, "tags": "v*"' + b"[" * 5000,
    ],
)
def test_a_bad_policy_body_is_request_invalid(client, body):
    client.push_image("team/app", "v1")
    reply = client.request("PUT", "/api/v1/repositories/team/app/retention", body, JSON)
    assert reply.status == 400 and reply.error_codes == ["REQUEST_INVALID"]
    assert retention.own("team/app") is None


def test_setting_a_policy_needs_push_access_and_reading_it_pull(client, gateway):
    from registry import accounts

    client.push_image("team/app", "v1")
    accounts.create_user("reader", "reader-password")
    accounts.grant("team/app", "reader", "pull")
    reader = Client(gateway, ("reader", "reader-password"))
    reply = reader.request("PUT", "/api/v1/repositories/team/app/retention", b'{"keep": 1}', JSON)
    assert reply.status in (401, 403) and reply.error_codes in (["DENIED"], ["UNAUTHORIZED"])
    assert retention.own("team/app") is None
    assert reader.request("GET", "/api/v1/repositories/team/app/retention").status == 200
    assert client.request("GET", "/api/v1/repositories/nothing/here/retention").error_codes == ["NAME_UNKNOWN"]


def test_registry_admin_sets_shows_and_clears_policies(client, admin_cli):
    client.push_image("team/app", "v1")

    status, out, _ = admin_cli("repo", "retention", "team/app", "--keep", "10", "--tags", "v*")
    assert status == 0 and "keep the 10 newest" in out
    status, out, _ = admin_cli("repo", "retention", "--namespace", "team", "--expire-days", "30", "--untagged-days", "2")
    assert status == 0
    status, out, _ = admin_cli("repo", "show", "team/app")
    assert status == 0 and "keep the 10 newest" in out
    assert admin_cli("repo", "retention", "team/app", "--clear")[0] == 0
    status, out, _ = admin_cli("repo", "show", "team/app")
    assert "namespace policy team/*" in out and "30 days" in out
    status, out, _ = admin_cli("repo", "show", "team/app", "--json")
    assert json.loads(out)["retention"]["applies_from"] == "team/*"


@pytest.mark.parametrize(
    "argv",
    [
        ("team/app", "--keep", "-1"),
        ("team/app", "--keep", "²"),
        ("team/app", "--expire-days", "1e3"),
        ("team/app", "--keep", "1", "--tags", "v{1,2}"),
        ("team/app", "--tags", "v*"),
        ("team/app", "--keep", "1", "--clear"),
        ("team/*", "--keep", "1"),
        ("--namespace", "team/app", "--keep", "1"),
        ("--namespace", "team", "team/app", "--keep", "1"),
        ("team/nothing", "--keep", "1"),
        ("Team/App", "--keep", "1"),
    ],
)
def test_registry_admin_refuses_a_bad_policy_with_a_message(client, admin_cli, argv):
    client.push_image("team/app", "v1")
    status, out, err = admin_cli("repo", "retention", *argv)
    assert status == 1 and err.startswith("registry-admin: error:")
    assert retention.own("team/app") is None and retention.own("team/*") is None


def _tag_directly(name: str, tag: str):
    """A tagged manifest written through the storage layer, as a push writes it (fast: no HTTP, no blobs)."""
    from registry.references import Digest

    body = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": {}, "layers": [], "tag": tag}).encode()
    record = {"media_type": "application/vnd.oci.image.manifest.v1+json", "size": len(body), "body": body}
    metadata.put_manifest(name, Digest.of(body), record, tag)


def test_a_policy_reads_the_tags_it_deletes_and_the_kept_ones_it_counts_not_every_tag(moto, clock, aws_calls):
    for index in range(150):
        clock.days_ago(40 if index < 2 else 1, seconds=index)
        _tag_directly("team/app", f"t{index}")
    policy("team/app", expire_days=30)
    aws_calls.calls.clear()

    report = retention.apply_all()

    assert {d.tag for d in report.deleted} == {"t0", "t1"}
    queries = [op for _, op in aws_calls.calls if op == "Query"]
    assert len(queries) == 2  # the policies page, then the push-time entries from the 30-day cutoff down
    assert len(aws_calls.calls) <= 2 + 1 + 2 * 4 + 2  # + one BatchGetItem of the 2 tags, 4 writes per deletion, the cursor
    aws_calls.calls.clear()
    policy("team/app", keep=140)
    aws_calls.calls.clear()
    report = retention.apply_all()
    assert len(report.deleted) == 8  # 148 left, the 140 newest stay
    assert [op for _, op in aws_calls.calls].count("Query") == 1 + 2 + 1  # policies; 140 counted in pages of 100; the rest
