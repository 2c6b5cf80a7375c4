"""Storage accounting: bytes stored per repository and namespace, logical and deduplicated, and the registry's total.

What an operator checks: after pushes the counters equal the sizes of what
was pushed (each blob once per namespace, once in the registry), a repeated
push changes nothing, deletes and garbage collection take bytes off, links
made concurrently are counted exactly once, a repository stored before
accounting existed is counted by ``usage --recount``, and ``usage``,
``repo show`` and the management API show the figures.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from registry import config, keys
from registry.references import Digest
from registry.services import gc, usage
from registry.storage import dynamo, metadata
from registry.storage import usage as counters
from registry_admin import cli
from local_stack import resources
from tests.clients import Client  # noqa: F401 - the client fixture's type

TABLE = ["--table", resources.TABLE_NAME]
CONFIG = b'{"architecture":"amd64","os":"linux"}'
BASE = b"shared base layer " * 200


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repository_bytes(name: str) -> int:
    return usage.repository_view(name)["logical_bytes"]


def namespace(name: str) -> dict:
    return usage.namespace(name)


@pytest.fixture
def collecting(monkeypatch):
    monkeypatch.setenv("GC_UNTAGGED_DAYS", "0")
    monkeypatch.setenv("GC_LINK_GRACE_SECONDS", "0")
    monkeypatch.setattr(gc, "USES_FRESH_SECONDS", 0)
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()


def test_pushes_count_logical_bytes_per_repository_and_each_blob_once_per_namespace(client):
    app_layer, tool_layer = b"app layer" * 50, b"tool layer" * 70
    app_manifest, _ = client.push_image("team/app", "v1", [BASE, app_layer], config=CONFIG)
    tool_manifest, _ = client.push_image("team/tool", "v1", [BASE, tool_layer], config=CONFIG)
    other_manifest, _ = client.push_image("other/app", "v1", [BASE], config=CONFIG)

    assert repository_bytes("team/app") == len(CONFIG) + len(BASE) + len(app_layer) + len(app_manifest)
    assert repository_bytes("team/tool") == len(CONFIG) + len(BASE) + len(tool_layer) + len(tool_manifest)
    team = namespace("team")
    assert team["repositories"] == 2
    assert team["logical_bytes"] == repository_bytes("team/app") + repository_bytes("team/tool")
    # The config and the base layer are stored once in the namespace; each repository keeps its own manifest.
    assert team["deduplicated_bytes"] == len(CONFIG) + len(BASE) + len(app_layer) + len(tool_layer) + len(app_manifest) + len(tool_manifest)
    assert namespace("other")["deduplicated_bytes"] == len(CONFIG) + len(BASE) + len(other_manifest)
    # Registry-wide: every blob object once, whichever namespaces link it.
    assert usage.registry_total() == {"dedup": len(CONFIG) + len(BASE) + len(app_layer) + len(tool_layer), "objects": 4}


def test_pushing_the_same_image_again_counts_nothing_more(client):
    client.push_image("team/app", "v1", [BASE], config=CONFIG)
    before = (namespace("team"), repository_bytes("team/app"), usage.registry_total())
    client.push_image("team/app", "v1", [BASE], config=CONFIG)
    client.push_image("team/app", "v2", [BASE], config=CONFIG)  # the same manifest under a second tag
    assert (namespace("team"), repository_bytes("team/app"), usage.registry_total()) == before


def mount(client: Client, name: str, digest: str, source: str):
    """A cross-repository mount with a token for both repositories, as docker asks for one."""
    token = client.token(f"repository:{name}:pull,push", f"repository:{source}:pull")
    return client.raw("POST", f"/v2/{name}/blobs/uploads/?mount={digest}&from={source}", headers={"authorization": f"Bearer {token}"})


def test_a_mount_within_the_namespace_adds_logical_bytes_only(client):
    client.push_image("team/app", "v1", [BASE], config=CONFIG)
    before = namespace("team")
    assert mount(client, "team/copy", digest_of(BASE), "team/app").status == 201
    after = namespace("team")
    assert after["logical_bytes"] == before["logical_bytes"] + len(BASE)
    assert after["deduplicated_bytes"] == before["deduplicated_bytes"]
    assert repository_bytes("team/copy") == len(BASE)


def test_deleting_blobs_and_manifests_takes_their_bytes_off(client):
    manifest, digest = client.push_image("team/app", "v1", [BASE], config=CONFIG)
    client.push_blob("team/other", BASE)
    assert client.request("DELETE", f"/v2/team/app/manifests/{digest}").status == 202
    assert repository_bytes("team/app") == len(CONFIG) + len(BASE)
    assert client.request("DELETE", f"/v2/team/app/blobs/{digest_of(BASE)}").status == 202
    assert client.request("DELETE", f"/v2/team/app/blobs/{digest_of(CONFIG)}").status == 202
    assert repository_bytes("team/app") == 0
    team = namespace("team")
    # team/other still links the base layer: the namespace still stores it once.
    assert team == {**team, "logical_bytes": len(BASE), "deduplicated_bytes": len(BASE)}
    assert client.request("DELETE", f"/v2/team/other/blobs/{digest_of(BASE)}").status == 202
    assert namespace("team")["deduplicated_bytes"] == namespace("team")["logical_bytes"] == 0


def test_garbage_collection_brings_the_counters_back_to_what_remains(client, collecting):
    client.push_image("team/keep", "v1", [BASE], config=CONFIG)
    kept = namespace("team"), usage.registry_total()
    _, digest = client.push_image("team/old", "v1", [BASE, b"old layer" * 30], config=b'{"old":1}')
    assert client.request("DELETE", f"/v2/team/old/manifests/v1").status == 202
    assert client.request("DELETE", f"/v2/team/old/manifests/{digest}").status == 202
    report = gc.run()
    assert report.objects_freed == 2  # the old layer and the old config; the base is shared
    team, total = namespace("team"), usage.registry_total()
    assert (team["logical_bytes"], team["deduplicated_bytes"]) == (kept[0]["logical_bytes"], kept[0]["deduplicated_bytes"])
    assert total == kept[1]
    assert repository_bytes("team/old") == 0


def test_racing_links_of_one_blob_count_it_once_in_the_namespace(client):
    """Six pushes link one blob into six repositories of a namespace, each having read the counters
    before any of them wrote (interleaved, not threaded: moto's in-process backends are not thread-safe)."""
    data = b"popular layer" * 300
    digest = Digest.parse(client.push_blob("seed/app", data))  # stored, in another namespace
    names = [f"team/r{i}" for i in range(6)]
    stale = {name: counters.read_link_state(name, digest) for name in names}
    assert all(state.refs == 0 for state in stale.values())
    for name in names:
        metadata.link_blob(name, digest, len(data), state=stale[name])
    team = namespace("team")
    assert team["logical_bytes"] == len(names) * len(data)
    assert team["deduplicated_bytes"] == len(data)
    assert team["repositories"] == len(names)
    assert usage.registry_total() == {"dedup": len(data), "objects": 1}
    assert dynamo.get(keys.usage_blob_key("team", digest))["refs"] == len(names)
    # And back down, racing the same way: the last unlink takes the blob off the namespace.
    for name in names:
        assert metadata.delete_link(name, digest)
    assert (namespace("team")["logical_bytes"], namespace("team")["deduplicated_bytes"]) == (0, 0)
    assert dynamo.get(keys.usage_blob_key("team", digest)) is None


def test_a_repeated_link_of_one_upload_counts_once(client):
    """A client retrying a completed upload (or two requests completing it) links once."""
    data = b"retried" * 100
    digest = Digest.parse(client.push_blob("team/app", data))
    state = counters.read_link_state("team/app", digest)
    metadata.link_blob("team/app", digest, len(data), state=state)
    client.push_blob("team/app", data)
    assert repository_bytes("team/app") == len(data)
    assert namespace("team")["deduplicated_bytes"] == len(data)


def _forget_counting(name: str):
    """What a repository pushed before accounting existed looks like: nothing marked counted, no counters."""
    for item in dynamo.query_page(keys.repo_pk(name), "", 1000, None)[0]:
        if "counted" in item:
            dynamo.update({"pk": item["pk"], "sk": item["sk"]}, "REMOVE counted")
    namespace_name = name.split("/", 1)[0]
    doomed = [keys.usage_key(namespace_name), *({"pk": i["pk"], "sk": i["sk"]} for i in dynamo.query_page(f"USAGE#{namespace_name}", "", 1000, None)[0])]
    doomed += [keys.usage_total_key(f"{i:x}") for i in range(16)]
    dynamo.batch_delete(doomed)
    for item in dynamo.query_page(keys.repo_pk(name), "BLOB#", 1000, None)[0]:
        dynamo.update(keys.blob_key(Digest.parse(item["sk"][5:])), "REMOVE counted")


def test_recount_counts_a_repository_stored_before_accounting_and_is_idempotent(client, capsys):
    client.push_image("team/app", "v1", [BASE, b"x" * 100], config=CONFIG)
    client.push_image("team/tool", "v1", [BASE], config=CONFIG)
    expected = namespace("team"), repository_bytes("team/app"), repository_bytes("team/tool"), usage.registry_total()
    _forget_counting("team/app")
    _forget_counting("team/tool")
    assert namespace("team")["deduplicated_bytes"] == 0

    assert cli.main([*TABLE, "usage", "--recount", "team/app"]) == 0
    assert cli.main([*TABLE, "usage", "--recount", "team/tool"]) == 0
    assert "counted for the first time" in capsys.readouterr().out
    assert (namespace("team"), repository_bytes("team/app"), repository_bytes("team/tool"), usage.registry_total()) == expected
    assert cli.main([*TABLE, "usage", "--recount", "team/app", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["links_adopted"] == again["manifests_adopted"] == again["references_fixed"] == 0
    assert namespace("team") == expected[0]


def test_recount_repairs_a_wrong_reference_count_and_repository_total(client):
    client.push_image("team/app", "v1", [BASE], config=CONFIG)
    client.push_blob("team/tool", BASE)
    expected = namespace("team"), repository_bytes("team/app")
    # Drift as a lost write would leave it: one reference too few and the repository total off.
    dynamo.update(keys.usage_blob_key("team", Digest.parse(digest_of(BASE))), "SET refs = :one", values={":one": 1})
    dynamo.update(keys.usage_repository_key("team/app"), "SET logical = :wrong", values={":wrong": 5})
    report = usage.recount("team/app")
    assert report["references_fixed"] == 1
    assert report["logical_after"] == expected[1]
    assert repository_bytes("team/app") == expected[1]
    assert dynamo.get(keys.usage_blob_key("team", Digest.parse(digest_of(BASE))))["refs"] == 2


def test_usage_lists_every_namespace_and_shows_one_with_its_repositories(client, capsys):
    client.push_image("team/app", "v1", [BASE], config=CONFIG)
    client.push_image("zeta/app", "v1", [b"z"], config=CONFIG)
    assert cli.main([*TABLE, "usage", "quota", "zeta", "10GiB"]) == 0
    capsys.readouterr()
    assert cli.main([*TABLE, "usage", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [view["namespace"] for view in listed["namespaces"]] == ["team", "zeta"]
    assert listed["namespaces"][1]["quota_bytes"] == 10 * 2**30
    assert cli.main([*TABLE, "usage"]) == 0
    table = capsys.readouterr().out
    assert "NAMESPACE" in table and "10.0 GiB" in table
    assert cli.main([*TABLE, "usage", "team", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert [item["name"] for item in shown["repository_usage"]] == ["team/app"]
    assert shown["logical_bytes"] == repository_bytes("team/app")


def test_usage_refuses_bad_namespaces_and_sizes(moto, capsys):
    assert cli.main([*TABLE, "usage", "quota", "team", "ten gigs"]) == 1
    assert cli.main([*TABLE, "usage", "quota", "team", "-1"]) == 1
    assert cli.main([*TABLE, "usage", "quota", "team/app", "1GiB"]) == 1
    assert cli.main([*TABLE, "usage", "Team"]) == 1
    assert cli.main([*TABLE, "usage", "--recount", "BAD NAME"]) == 1
    assert namespace("team")["quota_bytes"] is None


def test_repo_show_and_the_api_give_the_repository_usage(client, capsys):
    manifest, _ = client.push_image("team/app", "v1", [BASE], config=CONFIG)
    expected = len(BASE) + len(CONFIG) + len(manifest)
    capsys.readouterr()  # the pushes' own log and metric lines
    assert cli.main([*TABLE, "repo", "show", "team/app", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["usage"]["logical_bytes"] == expected
    assert shown["usage"]["namespace"]["deduplicated_bytes"] == expected
    assert cli.main([*TABLE, "repo", "show", "team/app"]) == 0
    assert "stored (logical)" in capsys.readouterr().out
    reply = client.request("GET", "/api/v1/repositories/team/app")
    assert reply.status == 200
    assert json.loads(reply.body)["usage"] == {"logical_bytes": expected}
    reply = client.request("GET", "/api/v1/namespaces/team/usage")  # the admin
    assert reply.status == 200
    assert json.loads(reply.body)["deduplicated_bytes"] == expected


def test_deleting_a_users_namespace_takes_its_repositories_off_the_counters(client):
    from registry import accounts

    accounts.create_user("alice", "alice-password")
    client.push_image("alice/app", "v1", [BASE], config=CONFIG)
    client.push_image("alice/tool", "v1", [BASE, b"t" * 10], config=CONFIG)
    client.push_image("bob/app", "v1", [BASE], config=CONFIG)
    bob = namespace("bob")
    accounts.delete_user("alice", force=True)
    assert namespace("alice") == {**namespace("alice"), "repositories": 0, "logical_bytes": 0, "deduplicated_bytes": 0}
    assert dynamo.get(keys.usage_blob_key("alice", Digest.parse(digest_of(BASE)))) is None
    assert namespace("bob") == bob


def test_the_stored_bytes_metrics_give_each_namespace_its_own_dimension(client, capsys, monkeypatch):
    from registry import metrics

    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    client.push_image("team/app", "v1", [BASE], config=CONFIG)
    client.push_image("other/app", "v1", [b"other"], config=CONFIG)
    capsys.readouterr()
    recording = metrics.begin("gc", "")
    assert usage.emit_stored_bytes() == 2
    metrics.end(recording)
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{") and '"_aws"' in line]
    per_namespace = {d["namespace"]: (d["StoredBytes"][0], d["StoredLogicalBytes"][0]) for d in documents if "namespace" in d}
    assert per_namespace == {n: (namespace(n)["deduplicated_bytes"], namespace(n)["logical_bytes"]) for n in ("team", "other")}
    assert all(d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["namespace", "service"]] for d in documents if "namespace" in d)
    totals = [d for d in documents if "RegistryStoredBytes" in d]
    assert [d["RegistryStoredBytes"][0] for d in totals] == [usage.registry_total()["dedup"]]
    assert totals[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
