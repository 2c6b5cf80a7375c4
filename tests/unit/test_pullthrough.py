"""The pull-through cache end to end through the in-process gateway, against a small upstream on 127.0.0.1.

The upstream (tests/fake_upstream.py) answers as Docker Hub does (Bearer
challenge, token endpoint, optionally 307 for blobs) and records every
request, so the tests count what went upstream.
"""

from __future__ import annotations

import hashlib
import json
import os

import pytest

from tests.clients import Client
from tests.fake_upstream import FakeUpstream, digest_of

ACCEPT = {"accept": "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json"}


@pytest.fixture
def upstream(moto, monkeypatch):
    from registry.services import pullthrough
    from registry.storage import upstream as http

    with FakeUpstream() as running:
        monkeypatch.setenv("UPSTREAMS", f"hub={running.url},library")
        pullthrough.reset()
        http.reset()
        yield running
    pullthrough.reset()
    http.reset()


@pytest.fixture
def fetch_queue(moto, monkeypatch):
    import boto3

    from registry import config

    monkeypatch.setenv("FETCH_QUEUE_URL", boto3.client("sqs").get_queue_url(QueueName="registry-FetchQueue")["QueueUrl"])
    config.settings.cache_clear()
    yield
    config.settings.cache_clear()


def stored_bytes(digest: str) -> bytes:
    from registry.references import Digest
    from registry.storage import blobstore

    return blobstore.read_blob(Digest.parse(digest))


def test_a_miss_pulls_the_image_from_the_upstream_and_serves_it_like_a_pushed_one(upstream, anonymous):
    layers = [os.urandom(2000), os.urandom(3000)]
    manifest, digest = upstream.push("library/busybox", "latest", layers)
    reply = anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    assert reply.status == 200, reply.body
    assert reply.body == manifest and reply.header("docker-content-digest") == digest
    for layer in layers:
        head = anonymous.request("HEAD", f"/v2/hub/library/busybox/blobs/{digest_of(layer)}")
        assert head.status == 200 and head.header("content-length") == str(len(layer))
        got = anonymous.request("GET", f"/v2/hub/library/busybox/blobs/{digest_of(layer)}")
        assert got.status == 307 and "blobs/sha256/" in got.header("location")
        assert stored_bytes(digest_of(layer)) == layer


def test_head_of_a_blob_not_yet_fetched_makes_no_upstream_request(upstream, anonymous):
    manifest, digest = upstream.push("library/busybox", "latest", [os.urandom(100)])
    anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    before = len(upstream.requests)
    layer = digest_of(upstream.blobs[[d for d in upstream.blobs][-1]])
    assert anonymous.request("HEAD", f"/v2/hub/library/busybox/blobs/{layer}").status == 200
    assert len(upstream.requests) == before


def test_a_second_pull_makes_no_upstream_request(upstream, anonymous):
    layers = [os.urandom(500)]
    upstream.push("library/busybox", "latest", layers)

    def pull():
        assert anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).status == 200
        assert anonymous.request("GET", f"/v2/hub/library/busybox/blobs/{digest_of(layers[0])}").status == 307

    pull()
    before = len(upstream.requests)
    pull()
    assert len(upstream.requests) == before


def test_one_component_names_are_dockers_library_names_stored_once(upstream, anonymous):
    manifest, digest = upstream.push("library/busybox", "latest", [os.urandom(100)])
    short = anonymous.request("GET", "/v2/hub/busybox/manifests/latest", headers=ACCEPT)
    assert short.status == 200 and short.header("docker-content-digest") == digest
    fetched = upstream.count("GET", "manifests")
    full = anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    assert full.status == 200 and full.header("docker-content-digest") == digest
    assert upstream.count("GET", "manifests") == fetched
    layer = digest_of(next(b for b in upstream.blobs.values() if len(b) == 100))
    assert anonymous.request("GET", f"/v2/hub/busybox/blobs/{layer}").status == 307
    tags = Client.request(anonymous, "GET", "/v2/hub/library/busybox/tags/list")
    assert tags.status == 200 and tags.json()["tags"] == ["latest"]


def test_a_pull_by_digest_never_goes_upstream_once_cached(upstream, anonymous, monkeypatch):
    monkeypatch.setenv("CACHE_TAG_SECONDS", "0")
    _, digest = upstream.push("library/busybox", "latest", [os.urandom(100)])
    assert anonymous.request("GET", f"/v2/hub/library/busybox/manifests/{digest}", headers=ACCEPT).status == 200
    before = len(upstream.requests)
    upstream.mode = "down"
    assert anonymous.request("GET", f"/v2/hub/library/busybox/manifests/{digest}", headers=ACCEPT).status == 200
    assert len(upstream.requests) == before


def test_a_changed_upstream_tag_is_seen_after_the_ttl_and_not_before(upstream, anonymous, monkeypatch):
    monkeypatch.setenv("CACHE_TAG_SECONDS", "3600")
    _, first = upstream.push("library/busybox", "latest", [os.urandom(100)])
    assert anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).header("docker-content-digest") == first
    _, second = upstream.push("library/busybox", "latest", [os.urandom(100)])
    assert anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).header("docker-content-digest") == first
    monkeypatch.setenv("CACHE_TAG_SECONDS", "0")
    assert anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).header("docker-content-digest") == second


def test_an_unchanged_tag_is_revalidated_with_a_head_not_a_pull(upstream, anonymous, monkeypatch):
    monkeypatch.setenv("CACHE_TAG_SECONDS", "0")
    upstream.push("library/busybox", "latest", [os.urandom(100)])
    anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    gets = upstream.count("GET", "manifests")
    heads = upstream.count("HEAD", "manifests")
    assert anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).status == 200
    assert upstream.count("GET", "manifests") == gets
    assert upstream.count("HEAD", "manifests") == heads + 1


@pytest.mark.parametrize("mode", ["down", "429", "500"])
def test_a_cached_tag_is_still_served_when_the_upstream_fails(upstream, anonymous, monkeypatch, mode):
    monkeypatch.setenv("CACHE_TAG_SECONDS", "0")
    layer = os.urandom(100)
    _, digest = upstream.push("library/busybox", "latest", [layer])
    anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    anonymous.request("GET", f"/v2/hub/library/busybox/blobs/{digest_of(layer)}")
    upstream.mode = mode
    reply = anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    assert reply.status == 200 and reply.header("docker-content-digest") == digest
    assert anonymous.request("GET", f"/v2/hub/library/busybox/blobs/{digest_of(layer)}").status == 307


@pytest.mark.parametrize(("mode", "status", "code"), [("down", 503, "UNAVAILABLE"), ("429", 429, "TOOMANYREQUESTS"), ("500", 503, "UNAVAILABLE")])
def test_an_uncached_image_fails_with_the_upstreams_answer_when_it_fails(upstream, anonymous, mode, status, code):
    upstream.push("library/busybox", "latest", [os.urandom(100)])
    upstream.mode = mode
    reply = anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    assert (reply.status, reply.error_codes) == (status, [code])
    if status == 429:
        assert reply.header("retry-after") == "120"


def test_an_image_the_upstream_does_not_have_is_unknown(upstream, anonymous):
    upstream.push("library/busybox", "latest", [os.urandom(100)])
    reply = anonymous.request("GET", "/v2/hub/library/busybox/manifests/nope", headers=ACCEPT)
    assert (reply.status, reply.error_codes) == (404, ["MANIFEST_UNKNOWN"])
    reply = anonymous.request("GET", "/v2/hub/library/nothing/manifests/latest", headers=ACCEPT)
    assert (reply.status, reply.error_codes) == (404, ["NAME_UNKNOWN"])


def test_nobody_pushes_or_deletes_under_a_cache_prefix_not_even_an_admin(upstream, client):
    _, digest = upstream.push("library/busybox", "latest", [os.urandom(100)])
    manifest = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}'
    reply = client.request("PUT", "/v2/hub/library/busybox/manifests/mine", manifest, {"content-type": "application/vnd.oci.image.manifest.v1+json"})
    assert (reply.status, reply.error_codes) == (403, ["DENIED"])
    assert client.request("POST", "/v2/hub/library/busybox/blobs/uploads/").error_codes == ["DENIED"]
    assert client.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).status == 200
    assert client.request("DELETE", f"/v2/hub/library/busybox/manifests/{digest}").error_codes == ["DENIED"]
    assert client.request("DELETE", "/v2/hub/library/busybox/manifests/latest").error_codes == ["DENIED"]


def test_a_token_for_a_cached_repository_grants_pull_only(upstream, client, anonymous):
    import base64
    import json

    for who in (client, anonymous):
        token = who.token("repository:hub/library/busybox:pull,push,delete")
        claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
        assert claims["access"] == [{"type": "repository", "name": "hub/library/busybox", "actions": ["pull"]}]


def test_cached_repositories_can_be_made_sign_in_only(upstream, client, anonymous, monkeypatch):
    monkeypatch.setenv("CACHE_PULL", "signed-in")
    upstream.push("library/busybox", "latest", [os.urandom(100)])
    assert anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).error_codes == ["UNAUTHORIZED"]
    assert client.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).status == 200


def test_our_pull_rate_limit_applies_to_cache_pulls(upstream, anonymous, limits):
    upstream.push("library/busybox", "latest", [os.urandom(100)])
    statuses = [anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


def test_an_index_is_cached_and_its_platform_manifests_are_fetched_by_digest(upstream, anonymous):
    child, child_digest = upstream.push("library/busybox", "amd64", [os.urandom(100)])
    index_digest = upstream.push_index("library/busybox", "multi", [(child, child_digest)])
    reply = anonymous.request("GET", "/v2/hub/library/busybox/manifests/multi", headers=ACCEPT)
    assert reply.status == 200 and reply.header("docker-content-digest") == index_digest
    reply = anonymous.request("GET", f"/v2/hub/library/busybox/manifests/{child_digest}", headers=ACCEPT)
    assert reply.status == 200 and reply.body == child


def test_an_upstream_with_basic_auth_is_signed_in_to_with_credentials_from_secrets_manager(moto, anonymous, monkeypatch):
    from registry.services import pullthrough
    from registry.storage import upstream as http
    from registry_admin import upstreams

    monkeypatch.delenv("UPSTREAMS", raising=False)
    with FakeUpstream(auth="basic", credentials=("mirror", "s3cret-pass")) as basic:
        upstreams.set_upstream("private", basic.url, "mirror", "s3cret-pass")
        http.reset()
        layer = os.urandom(300)
        _, digest = basic.push("team/app", "v1", [layer])
        reply = anonymous.request("GET", "/v2/private/team/app/manifests/v1", headers=ACCEPT)
        assert reply.status == 200 and reply.header("docker-content-digest") == digest
        assert anonymous.request("GET", f"/v2/private/team/app/blobs/{digest_of(layer)}").status == 307
        assert stored_bytes(digest_of(layer)) == layer
        assert [u["prefix"] for u in upstreams.list_upstreams()] == ["private"]
        upstreams.delete_upstream("private")
        pullthrough.reset()
        anonymous.tokens.clear()  # what is cached stays, but is no longer a public cache: private by default
        assert anonymous.request("GET", "/v2/private/team/app/manifests/v1", headers=ACCEPT).error_codes == ["UNAUTHORIZED"]


def test_credentials_never_reach_the_table(moto, monkeypatch):
    from registry import aws
    from registry_admin import upstreams

    upstreams.set_upstream("private", "https://registry.example", "mirror", "s3cret-pass")
    items = aws.dynamodb().scan(TableName=os.environ["METADATA_TABLE"])["Items"]
    assert "s3cret-pass" not in str(items) and "mirror" not in str(items)


def test_a_token_upstream_gets_a_token_once_per_scope_and_reuses_it(upstream, anonymous):
    upstream.push("library/busybox", "latest", [os.urandom(100), os.urandom(200)])
    anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    for blob in list(upstream.blobs):
        anonymous.request("GET", f"/v2/hub/library/busybox/blobs/{blob}")
    assert len(upstream.token_requests) == 1
    assert "scope=repository%3Alibrary%2Fbusybox%3Apull" in upstream.token_requests[0]


def test_a_large_blob_redirects_to_the_upstreams_cdn_while_the_fetch_function_copies_it(upstream, anonymous, monkeypatch, fetch_queue, verifier):
    from registry.services import fetching

    upstream.redirect_blobs = True
    monkeypatch.setenv("CACHE_INLINE_BYTES", "1000")
    monkeypatch.setattr(fetching, "PART", 5 * 1024 * 1024)
    monkeypatch.setattr(fetching, "PART_SECONDS", 0.0)
    big = os.urandom(6 * 1024 * 1024)
    upstream.push("library/busybox", "latest", [big])
    anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    reply = anonymous.request("GET", f"/v2/hub/library/busybox/blobs/{digest_of(big)}")
    assert reply.status == 307 and reply.header("location") == f"{upstream.url}/cdn/{digest_of(big)}"
    assert verifier.drain() >= 1
    verifier.drain()  # the verification the fetch function handed over
    reply = anonymous.request("GET", f"/v2/hub/library/busybox/blobs/{digest_of(big)}")
    assert reply.status == 307 and "blobs/sha256/" in reply.header("location")
    assert hashlib.sha256(stored_bytes(digest_of(big))).hexdigest() == digest_of(big)[7:]


def test_a_large_blob_the_upstream_serves_itself_answers_retry_later_until_copied(upstream, anonymous, monkeypatch, fetch_queue, verifier):
    from registry.services import fetching

    monkeypatch.setenv("CACHE_INLINE_BYTES", "1000")
    monkeypatch.setattr(fetching, "PART", 5 * 1024 * 1024)
    monkeypatch.setattr(fetching, "PART_SECONDS", 0.0)
    big = os.urandom(6 * 1024 * 1024)
    upstream.push("library/busybox", "latest", [big])
    anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT)
    reply = anonymous.request("GET", f"/v2/hub/library/busybox/blobs/{digest_of(big)}")
    assert (reply.status, reply.error_codes) == (503, ["UNAVAILABLE"]) and reply.header("retry-after")
    assert verifier.drain() >= 1
    verifier.drain()  # the verification the fetch function handed over
    reply = anonymous.request("GET", f"/v2/hub/library/busybox/blobs/{digest_of(big)}")
    assert reply.status == 307 and "blobs/sha256/" in reply.header("location")


def test_cached_tags_not_pulled_for_the_expiry_days_are_deleted_and_others_kept(upstream, anonymous, monkeypatch):
    import time

    from registry.services import pullthrough
    from registry.storage import metadata

    monkeypatch.setenv("CACHE_EXPIRY_DAYS", "30")
    upstream.push("library/busybox", "old", [os.urandom(100)])
    upstream.push("library/busybox", "recent", [os.urandom(100)])
    anonymous.request("GET", "/v2/hub/library/busybox/manifests/old", headers=ACCEPT)
    anonymous.request("GET", "/v2/hub/library/busybox/manifests/recent", headers=ACCEPT)
    later = time.time() + 31 * 86400
    # "recent" was revalidated a day before: its check is newer than the cutoff.
    from registry.storage import cache_records

    cache_records.mark_checked("hub/library/busybox", "recent", metadata.get_tag("hub/library/busybox", "recent")["digest"], int(later - 86400))
    assert pullthrough.expire(time.monotonic() + 30, now=later) == 1
    assert metadata.get_tag("hub/library/busybox", "old") is None
    assert metadata.get_tag("hub/library/busybox", "recent") is not None


def test_a_repository_outside_any_cache_prefix_is_unaffected(upstream, client):
    client.push_image("team/app", "v1")
    assert client.request("GET", "/v2/team/app/manifests/v1", headers=ACCEPT).status == 200
    assert client.request("GET", "/v2/team/nothing/manifests/v1", headers=ACCEPT).error_codes == ["NAME_UNKNOWN"]
    assert len(upstream.requests) == 0


def test_registry_admin_sets_lists_and_deletes_an_upstream_without_printing_its_password(moto, monkeypatch, capsys):
    import io
    import sys

    from local_stack import resources
    from registry_admin import cli

    table = ["--table", resources.TABLE_NAME]
    monkeypatch.setattr(sys, "stdin", io.StringIO("upstream-pass\n"))
    assert cli.main([*table, "upstream", "set", "hub", "https://registry-1.docker.io", "--username", "me", "--password-stdin"]) == 0
    assert cli.main([*table, "upstream", "set", "ghcr", "https://ghcr.io"]) == 0
    assert cli.main([*table, "upstream", "list", "--json"]) == 0
    out = capsys.readouterr().out
    listed = json.loads(out[out.index("["):])
    assert [(u["prefix"], u["library"], u["credentials"]) for u in listed] == [("ghcr", False, False), ("hub", True, True)]
    assert "upstream-pass" not in out
    assert cli.main([*table, "upstream", "set", "bad/prefix", "https://x.io"]) == 1
    assert cli.main([*table, "upstream", "set", "x", "https://x.io", "--username", "me"]) == 1  # no password on stdin: refused
    assert cli.main([*table, "upstream", "delete", "hub"]) == 0
    assert cli.main([*table, "upstream", "delete", "hub"]) == 1


def test_the_fetch_functions_sample_event_for_a_session_that_is_gone_is_acknowledged(moto):
    from pathlib import Path

    from local_stack.gateway import LambdaContext, load_handler

    event = json.loads((Path(__file__).resolve().parents[2] / "events/queue/fetch.json").read_text())
    assert load_handler("functions/fetch/")(event, LambdaContext("FetchFunction", "req", timeout=900)) == {"batchItemFailures": []}


def test_content_the_upstream_sends_under_the_wrong_digest_is_never_stored(upstream, anonymous):
    manifest, digest = upstream.push("library/busybox", "latest", [os.urandom(100)])
    other, _ = upstream.push("library/busybox", "other", [os.urandom(100)])
    upstream.manifests[("library/busybox", digest)] = ("application/vnd.oci.image.manifest.v1+json", other)
    reply = anonymous.request("GET", f"/v2/hub/library/busybox/manifests/{digest}", headers=ACCEPT)
    assert (reply.status, reply.error_codes) == (503, ["UNAVAILABLE"])
    layer = os.urandom(100)
    _, fine = upstream.push("library/lying", "v1", [layer])
    anonymous.request("GET", "/v2/hub/library/lying/manifests/v1", headers=ACCEPT)
    upstream.blobs[digest_of(layer)] = os.urandom(100)  # same size, other bytes
    reply = anonymous.request("GET", f"/v2/hub/library/lying/blobs/{digest_of(layer)}")
    assert (reply.status, reply.error_codes) == (503, ["UNAVAILABLE"])
    from registry.references import Digest
    from registry.storage import metadata

    assert metadata.get_blob(Digest.parse(digest_of(layer))) is None


def test_a_tag_moving_back_to_a_cached_manifest_does_not_count_its_bytes_twice(upstream, anonymous, monkeypatch):
    from registry.services import usage

    monkeypatch.setenv("CACHE_TAG_SECONDS", "0")
    first_layer = os.urandom(100)
    _, first = upstream.push("library/busybox", "latest", [first_layer])
    assert anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).header("docker-content-digest") == first
    _, second = upstream.push("library/busybox", "latest", [os.urandom(100)])
    assert anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).header("docker-content-digest") == second
    both = usage.repository_view("hub/library/busybox")
    _, again = upstream.push("library/busybox", "latest", [first_layer])
    assert again == first
    assert anonymous.request("GET", "/v2/hub/library/busybox/manifests/latest", headers=ACCEPT).header("docker-content-digest") == first
    assert usage.repository_view("hub/library/busybox") == both
