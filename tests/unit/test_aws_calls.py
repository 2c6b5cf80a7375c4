"""AWS calls per request: budgets that keep pulls cheap (counts are exact, so they are tests).

Counted with a botocore before-call hook on the registry's own clients.
"""

from __future__ import annotations

import hashlib
import os

import pytest

OCTETS = {"content-type": "application/octet-stream"}


def measure(aws_calls, client, method, path, body=b"", headers=None):
    client.authorize(path)
    aws_calls.calls.clear()
    reply = client.request(method, path, body, headers)
    return reply, sorted(aws_calls.calls)


@pytest.fixture(autouse=True)
def warm_containers(moto):
    """Budgets are for warm containers: the token function has published its key and the
    verifiers have read it (what a container's first request adds is tested below)."""
    from registry.auth import tokens

    tokens.verify(tokens.issue("admin", "registry.test", [])[0], "registry.test")


@pytest.fixture
def pushed(client, aws_calls):
    manifest, digest = client.push_image("team/app", "v1", [b"layer"])
    return manifest, digest


@pytest.mark.parametrize("reference", ["v1", "digest"])
def test_manifest_get_is_one_read_and_the_pull_counter_write(client, aws_calls, pushed, reference):
    _, digest = pushed
    reply, calls = measure(aws_calls, client, "GET", f"/v2/team/app/manifests/{digest if reference == 'digest' else reference}")
    assert reply.status == 200
    assert calls == [("dynamodb", "GetItem"), ("dynamodb", "UpdateItem")]


@pytest.mark.parametrize("reference", ["v1", "digest"])
def test_manifest_head_reads_manifest_and_counter_in_one_call(client, aws_calls, pushed, reference):
    _, digest = pushed
    reply, calls = measure(aws_calls, client, "HEAD", f"/v2/team/app/manifests/{digest if reference == 'digest' else reference}")
    assert reply.status == 200
    assert calls == [("dynamodb", "BatchGetItem")]


def test_an_unlimited_caller_pays_only_the_manifest_read(client, aws_calls, pushed):
    from registry import accounts

    accounts.set_pull_limit("admin", "unlimited")
    client.tokens.clear()
    for method in ("GET", "HEAD"):
        reply, calls = measure(aws_calls, client, method, "/v2/team/app/manifests/v1")
        assert reply.status == 200 and reply.header("ratelimit-limit") is None
        assert calls == [("dynamodb", "GetItem")]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_blob_pull_reads_one_link_and_presigns_without_calling_s3(client, aws_calls, pushed, method):
    digest = "sha256:" + hashlib.sha256(b"layer").hexdigest()
    reply, calls = measure(aws_calls, client, method, f"/v2/team/app/blobs/{digest}")
    assert reply.status in (200, 307)
    assert calls == [("dynamodb", "GetItem")]


def test_tags_list_is_one_query(client, aws_calls, pushed):
    reply, calls = measure(aws_calls, client, "GET", "/v2/team/app/tags/list")
    assert reply.status == 200
    assert calls == [("dynamodb", "Query")]


def test_catalog_page_is_one_query_plus_the_callers_admin_flag(client, aws_calls, pushed):
    reply, calls = measure(aws_calls, client, "GET", "/v2/_catalog?n=10")
    assert reply.status == 200
    assert calls == [("dynamodb", "GetItem"), ("dynamodb", "Query")]


def test_a_docker_style_blob_push_costs_a_fixed_number_of_calls(client, aws_calls):
    """POST, one PATCH with the whole blob, PUT ?digest: what docker and skopeo send."""
    data = os.urandom(100_000)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    reply, post = measure(aws_calls, client, "POST", "/v2/team/app/blobs/uploads/")
    location = reply.header("location")
    _, patch = measure(aws_calls, client, "PATCH", location, data, OCTETS)
    reply, put = measure(aws_calls, client, "PUT", f"{location}?digest={digest}")
    assert reply.status == 201
    assert post == [("dynamodb", "PutItem")]
    assert patch == [("dynamodb", "GetItem"), ("dynamodb", "PutItem"), ("s3", "PutObject")]
    assert put == [
        ("dynamodb", "BatchGetItem"),  # is the blob stored already? and the storage counters the link updates
        ("dynamodb", "GetItem"),  # the session
        ("dynamodb", "TransactWriteItems"),  # blob record, link, storage counters, session closed
        ("dynamodb", "UpdateItem"),  # the claim that keeps garbage collection off it (registry.services.storing)
        ("s3", "CopyObject"),
        ("s3", "DeleteObject"),
    ]


def test_a_monolithic_push_of_a_known_blob_writes_no_bytes(client, aws_calls):
    client.push_blob("team/one", b"shared")
    digest = "sha256:" + hashlib.sha256(b"shared").hexdigest()
    reply, calls = measure(aws_calls, client, "POST", f"/v2/team/two/blobs/uploads/?digest={digest}", b"shared", OCTETS)
    assert reply.status == 201
    assert calls == [("dynamodb", "BatchGetItem"), ("dynamodb", "TransactWriteItems")]  # the blob and the counters; the link with them


def test_manifest_push_checks_all_blobs_in_one_batch_and_writes_in_one_transaction(client, aws_calls):
    client.push_image("team/app", "seed", [b"a", b"b", b"c"])
    manifest = client.request("GET", "/v2/team/app/manifests/seed").body
    reply, calls = measure(aws_calls, client, "PUT", "/v2/team/app/manifests/v2", manifest, {"content-type": "application/vnd.oci.image.manifest.v1+json"})
    assert reply.status == 201
    # The USES# records garbage collection reads are written before the transaction (one batch per 25 blobs).
    assert calls == [("dynamodb", "BatchGetItem"), ("dynamodb", "BatchWriteItem"), ("dynamodb", "TransactWriteItems")]


def test_direct_upload_part_urls_list_and_completion_have_fixed_budgets(client, aws_calls, monkeypatch):
    """Part URLs: the session read (+ the multipart start, once); a listing: + one ListParts;
    completion of a small blob: the assembly claim, ListParts, Complete, the session's two saves, one ranged read,
    the blob check, the copy, the link transaction and the staging delete."""
    import requests

    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    reply, calls = measure(aws_calls, client, "POST", f"{location}/parts?first=1&count=100")
    assert reply.status == 200 and len(reply.json()["parts"]) == 100
    assert calls == sorted([("dynamodb", "GetItem"), ("s3", "CreateMultipartUpload"), ("dynamodb", "UpdateItem")])
    reply, calls = measure(aws_calls, client, "POST", f"{location}/parts?first=1&count=1")
    assert calls == [("dynamodb", "GetItem")]
    data = os.urandom(1024)
    assert requests.put(reply.json()["parts"][0]["url"], data=data).status_code == 200
    reply, calls = measure(aws_calls, client, "GET", f"{location}/parts")
    assert calls == sorted([("dynamodb", "GetItem"), ("s3", "ListParts")])
    reply, calls = measure(aws_calls, client, "PUT", f"{location}?digest=sha256:{hashlib.sha256(data).hexdigest()}")
    assert reply.status == 201
    assert calls == sorted(
        [
            ("dynamodb", "GetItem"),  # the session
            ("dynamodb", "UpdateItem"),  # this request claims the assembly
            ("s3", "ListParts"),
            ("s3", "CompleteMultipartUpload"),
            ("dynamodb", "PutItem"),  # verification begins
            ("dynamodb", "GetItem"),  # advance reads the session
            ("s3", "GetObject"),  # one 64 MiB range
            ("dynamodb", "PutItem"),  # progress saved
            ("dynamodb", "BatchGetItem"),  # is the blob stored already? and the storage counters
            ("dynamodb", "UpdateItem"),  # the claim that keeps garbage collection off it
            ("s3", "CopyObject"),
            ("dynamodb", "TransactWriteItems"),  # blob record, link, storage counters, session verified
            ("s3", "DeleteObject"),  # the staging object
        ]
    )


def test_a_signed_in_token_request_reads_in_two_batches_and_signs_once(client, aws_calls, pushed):
    """Sign-in reads the user and both throttle counters in one BatchGetItem, the scopes'
    repositories in another; the signing key's public half is cached per container."""
    import base64

    from registry import aws as registry_aws

    client.token("repository:team/app:pull")  # the container's first token: GetPublicKey, once
    registry_aws.kms().meta.events.register("before-call", aws_calls)
    basic = base64.b64encode(":".join(client.credentials).encode()).decode()
    aws_calls.calls.clear()
    reply = client.raw("GET", "/token?service=registry.test&scope=repository:team/app:pull", headers={"authorization": f"Basic {basic}"})
    assert reply.status == 200
    assert sorted(aws_calls.calls) == [("dynamodb", "BatchGetItem"), ("dynamodb", "BatchGetItem"), ("kms", "Sign")]


def test_a_containers_first_verified_request_reads_the_published_key_once(client, aws_calls, pushed):
    """The first token a verifying container sees costs one consistent GetItem of the key its kid
    names (never KMS or the secret); the next request with a token signed by that key, none."""
    from registry import aws as registry_aws
    from registry.auth import tokens

    registry_aws.kms().meta.events.register("before-call", aws_calls)
    client.authorize("/v2/team/app/manifests/v1")
    tokens.reset()  # a new container
    aws_calls.calls.clear()
    assert client.request("HEAD", "/v2/team/app/manifests/v1").status == 200
    first = sorted(aws_calls.calls)
    aws_calls.calls.clear()
    assert client.request("HEAD", "/v2/team/app/manifests/v1").status == 200
    warm = sorted(aws_calls.calls)
    assert first == sorted(warm + [("dynamodb", "GetItem")])  # the key, once; no KMS, no secret
    assert ("dynamodb", "GetItem") not in warm


def test_in_secret_mode_a_token_costs_no_signing_call(client, aws_calls, monkeypatch):
    """TokenSigning=secret: the container's first token reads the secret and publishes its key;
    every later token is signed in memory (two BatchGetItems of sign-in, nothing else)."""
    import base64

    from local_stack import resources
    from registry import aws as registry_aws
    from registry import config
    from registry.auth import tokens

    monkeypatch.setenv("TOKEN_SIGNING", "secret")
    monkeypatch.setenv("TOKEN_SECRET_ID", resources.create_signing_secret())
    config.settings.cache_clear()
    tokens.reset()
    for hooked in (registry_aws.kms(), registry_aws.secretsmanager()):
        hooked.meta.events.register("before-call", aws_calls)
    basic = base64.b64encode(":".join(client.credentials).encode()).decode()
    path = "/token?service=registry.test&scope=repository:team/app:pull"
    aws_calls.calls.clear()
    assert client.raw("GET", path, headers={"authorization": f"Basic {basic}"}).status == 200
    first = sorted(aws_calls.calls)
    aws_calls.calls.clear()
    assert client.raw("GET", path, headers={"authorization": f"Basic {basic}"}).status == 200
    assert first == [
        ("dynamodb", "BatchGetItem"),
        ("dynamodb", "BatchGetItem"),
        ("dynamodb", "PutItem"),  # the key published, before it signs
        ("kms", "GenerateMac"),  # the sign-in hash key, once per container (registry.auth.pseudonym)
        ("secretsmanager", "GetSecretValue"),
    ]
    assert sorted(aws_calls.calls) == [("dynamodb", "BatchGetItem"), ("dynamodb", "BatchGetItem")]


def test_a_catalog_page_of_a_user_who_sees_one_of_many_repositories_reads_about_n_items(client, aws_calls):
    """300 private repositories and one the user owns: 1 GetItem and 3 Queries of at most n+1 items, not a walk of the catalog."""
    from registry import accounts, aws
    from registry.references import Digest
    from registry.storage import metadata
    from scripts.bench.counting import AwsRecorder
    from tests.clients import Client

    body = b'{"schemaVersion":2}'
    record = {"media_type": "application/vnd.oci.image.manifest.v1+json", "size": len(body), "body": body}
    for n in range(300):
        metadata.put_manifest(f"private/r{n:03d}", Digest.of(body), record, "v1")
    accounts.create_user("alice", "alice-password")
    metadata.put_manifest("alice/app", Digest.of(body), record, "v1")
    alice = Client(client.gateway, ("alice", "alice-password"))
    alice.authorize("/v2/_catalog")
    recorder = AwsRecorder().attach(aws.dynamodb())
    reply, calls = measure(aws_calls, alice, "GET", "/v2/_catalog?n=10")
    assert reply.json() == {"repositories": ["alice/app"]} and reply.header("link") is None
    assert calls == [("dynamodb", "GetItem"), ("dynamodb", "Query"), ("dynamodb", "Query"), ("dynamodb", "Query")]
    assert recorder.snapshot().items_read <= 1 + 3 * 11
