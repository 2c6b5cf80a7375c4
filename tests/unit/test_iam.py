"""Least privilege: each function's IAM policy in template.yaml allows exactly the AWS actions
its code performs, on the resources it touches — observed, not assumed.

A walk through every feature (sign-in, pushes small and chunked, cancelled
uploads, pulls, mounts, deletes, referrers, listings, search, stars) runs
through the in-process gateway; a botocore hook records, per function, each
AWS operation and the S3 keys it touched. The test maps operations to IAM
actions and compares them with the template's statements.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import os
import re
from collections import defaultdict

import pytest

from local_stack import queues, template
from local_stack.gateway import load_handler
from registry import accounts, aws
from registry.auth import pseudonym, tokens
from registry.services import pullthrough
from registry.storage import upstream as upstream_http
from tests.clients import Client

CURRENT_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar("function", default=None)

# How AWS operations map to IAM actions (transactions need their items' actions).
_DIRECT = {
    ("dynamodb", "TransactWriteItems"): (),
    ("s3", "CopyObject"): ("s3:GetObject", "s3:PutObject"),
    ("s3", "CreateMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPart"): ("s3:PutObject",),
    ("s3", "CompleteMultipartUpload"): ("s3:PutObject",),
    ("s3", "UploadPartCopy"): ("s3:GetObject", "s3:PutObject"),
    ("s3", "ListParts"): ("s3:ListMultipartUploadParts",),
    ("s3", "HeadObject"): ("s3:GetObject",),
}
_TRANSACT = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem", "ConditionCheck": "dynamodb:ConditionCheckItem"}


class Recorder:
    def __init__(self):
        self.actions: dict[str, set[str]] = defaultdict(set)
        self.s3_keys: dict[str, set[str]] = defaultdict(set)

    def __call__(self, params, model, **kwargs):
        function = CURRENT_FUNCTION.get()
        if function is None:
            return  # the test's own setup (creating users), not a function
        service = model.service_model.endpoint_prefix
        for action in _DIRECT.get((service, model.name), (f"{service}:{model.name}",)):
            self.actions[function].add(action)
        for item in params.get("TransactItems", []):
            self.actions[function].update(_TRANSACT[kind] for kind in item)
        if service == "s3" and "Key" in params:
            self.s3_keys[function].add(params["Key"])
        if service == "s3" and isinstance(params.get("CopySource"), dict):
            self.s3_keys[function].add(params["CopySource"]["Key"])


def template_policies(parameters: dict | None = None) -> dict[str, tuple[set[str], list[str]]]:
    """function folder -> (allowed actions, S3 key patterns allowed), as deployed with the
    parameters' defaults overridden by ``parameters`` (the statements' Fn::If decided)."""
    found = {}
    for resource in template.load()["Resources"].values():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        actions, patterns = set(), []
        for policy in template.resolve_conditions(props.get("Policies", []), parameters=parameters):
            assert set(policy) == {"Statement"}, f"{props['CodeUri']}: only explicit statements, no broad SAM policy templates"
            for statement in policy["Statement"]:
                actions.update(statement["Action"])
                resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
                for res in resources:
                    if isinstance(res, dict) and "Fn::Sub" in res:
                        patterns.append(res["Fn::Sub"].split("}/", 1)[1])
        found[props["CodeUri"].strip("/").split("/")[-1]] = (actions, patterns)
    return found


@pytest.fixture
def recorded(moto, gateway, verifier, monkeypatch):
    recorder = Recorder()
    aws.reset()
    for client in (aws.s3(), aws.dynamodb(), aws.kms(), aws.sqs(), aws.secretsmanager()):
        client.meta.events.register("before-parameter-build", recorder)
    for route in template.routes():
        handler = gateway.handlers[route.function]
        if getattr(handler, "recorded", False):
            continue

        def wrapped(event, context, _handler=handler, _name=route.code_uri.strip("/").split("/")[-1]):
            CURRENT_FUNCTION.set(_name)
            tokens.reset()  # each function is its own container on AWS: each fetches the public key
            pseudonym.reset()  # ... and derives the sign-in hash key
            pullthrough.reset()  # ... reads the cache's upstreams
            upstream_http.reset()  # ... and their credentials
            return _handler(event, context)

        wrapped.recorded = True
        monkeypatch.setitem(gateway.handlers, route.function, wrapped)
    recorder.queue_handlers = {}
    for mapping in queues.mappings():

        def queued(event, context, _handler=load_handler(mapping["code_uri"]), _name=mapping["code_uri"].strip("/").split("/")[-1]):
            CURRENT_FUNCTION.set(_name)
            pullthrough.reset()  # a container of its own
            upstream_http.reset()
            return _handler(event, context)

        recorder.queue_handlers[mapping["function"]] = queued
    recorder.verifier = verifier
    return recorder


def direct_uploads(client, recorded, monkeypatch):
    """Direct-to-S3 uploads: one verified in its request, one by the verify function with a multipart copy."""
    import requests

    from registry.config import settings
    from registry.services import verification

    def push(data: bytes) -> str:
        location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
        client.request("GET", f"{location}/parts")  # lists nothing yet, but it is the listing a resuming client does
        urls = client.request("POST", f"{location}/parts?first=1&count=2").json()["parts"]
        for part, start in zip(urls, range(0, len(data), 5 * 1024 * 1024)):
            requests.put(part["url"], data=data[start : start + 5 * 1024 * 1024])
        return client.request("PUT", f"{location}?digest=sha256:{hashlib.sha256(data).hexdigest()}").status

    assert push(os.urandom(6 * 1024 * 1024)) == 201
    monkeypatch.setenv("VERIFY_INLINE_SECONDS", "0")
    monkeypatch.setattr(verification.blobstore, "COPY_OBJECT_MAX", 1024 * 1024)
    monkeypatch.setattr(verification, "COPY_PART", 5 * 1024 * 1024)
    settings.cache_clear()
    real_advance, calls = verification.advance, []

    def first_step_runs_out_of_time(upload_id, deadline):  # so the function queues its next step
        calls.append(upload_id)
        return real_advance(upload_id, 0 if len(calls) == 1 else deadline)

    monkeypatch.setattr(verification, "advance", first_step_runs_out_of_time)
    assert push(os.urandom(7 * 1024 * 1024)) == 202
    assert recorded.verifier.drain(recorded.queue_handlers) >= 1
    settings.cache_clear()


def walk_every_feature(client: Client, gateway, recorded=None, monkeypatch=None):
    """Everything a registry user does, once."""
    accounts.create_user("alice", "alice-password")
    alice = Client(gateway, ("alice", "alice-password"))
    alice.raw("GET", "/token?service=registry.test&offline_token=true", headers={"authorization": "Basic YWxpY2U6d3Jvbmc="})
    reply = alice.raw("GET", "/token?service=registry.test&offline_token=true", headers={"authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="})
    form = f"grant_type=refresh_token&service=registry.test&refresh_token={reply.json()['refresh_token']}"
    alice.raw("POST", "/token", form.encode(), {"content-type": "application/x-www-form-urlencoded"})
    # A refresh token issued to an access-token sign-in: redeeming it checks that the access token still lives.
    import base64

    pat = accounts.create_access_token("alice", "read")["token"]
    basic = base64.b64encode(f"alice:{pat}".encode()).decode()
    reply = alice.raw("GET", "/token?service=registry.test&offline_token=true", headers={"authorization": f"Basic {basic}"})
    form = f"grant_type=refresh_token&service=registry.test&refresh_token={reply.json()['refresh_token']}"
    alice.raw("POST", "/token", form.encode(), {"content-type": "application/x-www-form-urlencoded"})
    client.raw("GET", "/.well-known/jwks.json")
    client.request("GET", "/v2/")
    manifest, digest = client.push_image("team/app", "v1")
    big = os.urandom(11 * 1024 * 1024)
    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    for start in range(0, len(big), 4 * 1024 * 1024):
        piece = big[start : start + 4 * 1024 * 1024]
        client.request("PATCH", location, piece, {"content-type": "application/octet-stream", "content-range": f"{start}-{start + len(piece) - 1}"})
    client.request("PUT", f"{location}?digest=sha256:{hashlib.sha256(big).hexdigest()}")
    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    for start in (0, 3 * 1024 * 1024):  # two chunks: enough for a multipart part, which DELETE aborts
        piece = os.urandom(3 * 1024 * 1024)
        client.request("PATCH", location, piece, {"content-type": "application/octet-stream", "content-range": f"{start}-{start + len(piece) - 1}"})
    client.request("GET", location)
    client.request("DELETE", location)
    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    client.request("PATCH", location, b"abc", {"content-type": "application/octet-stream"})
    client.request("PUT", f"{location}?digest=sha256:{hashlib.sha256(b'abcdef').hexdigest()}", b"def")
    for method in ("GET", "HEAD"):
        client.request(method, "/v2/team/app/manifests/v1")
        client.request(method, f"/v2/team/app/blobs/{json.loads(manifest)['layers'][0]['digest']}")
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest)}]}).encode()
    client.request("PUT", "/v2/team/app/manifests/multi", index, {"content-type": "application/vnd.oci.image.index.v1+json"})
    referrer = json.loads(manifest)
    referrer["subject"] = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": len(manifest)}
    referrer = json.dumps(referrer).encode()
    client.request("PUT", "/v2/team/app/manifests/sig", referrer, {"content-type": "application/vnd.oci.image.manifest.v1+json"})
    client.request("GET", f"/v2/team/app/referrers/{digest}")
    large = json.loads(manifest)
    large["annotations"] = {"padding": "x" * 300_000}  # stored in S3, not inline
    large = json.dumps(large).encode()
    client.request("PUT", "/v2/team/app/manifests/large", large, {"content-type": "application/vnd.oci.image.manifest.v1+json"})
    client.request("GET", "/v2/team/app/manifests/large")
    client.request("GET", "/v2/team/app/tags/list")
    client.request("GET", "/v2/_catalog")
    token = client.token("repository:team/copy:pull,push", "repository:team/app:pull")
    layer = json.loads(manifest)["layers"][0]["digest"]
    client.raw("POST", f"/v2/team/copy/blobs/uploads/?mount={layer}&from=team/app", headers={"authorization": f"Bearer {token}"})
    token = client.token("repository:team/copy2:pull,push", "repository:team/app:pull")
    client.raw("POST", f"/v2/team/copy2/blobs/uploads/?mount={layer}", headers={"authorization": f"Bearer {token}"})  # no from
    client.raw("HEAD", "/v2/ratelimitpreview", headers={"authorization": f"Bearer {token}"})  # no endpoint: rate-limit headers
    client.request("DELETE", f"/v2/team/app/manifests/sha256:{hashlib.sha256(referrer).hexdigest()}")
    client.request("DELETE", "/v2/team/app/manifests/multi")
    client.request("DELETE", f"/v2/team/copy/blobs/{layer}")
    client.request("PUT", "/api/v1/repositories/team/app/description", b'{"description": "an app"}', {"content-type": "application/json"})
    client.request("PUT", "/api/v1/repositories/team/app/star")
    client.request("DELETE", "/api/v1/repositories/team/app/star")
    client.request("PUT", "/api/v1/repositories/team/app/official", b'{"official": true}', {"content-type": "application/json"})
    client.request("GET", "/api/v1/repositories/team/app")
    client.raw("GET", "/v1/_ping")
    alice.raw("GET", "/v1/search?q=app", headers={"authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="})
    client.raw("GET", "/v1/search?q=app", headers={"authorization": f"Bearer {client.token('registry:catalog:search')}"})
    if recorded is not None:
        direct_uploads(client, recorded, monkeypatch)
        pull_through_cache(client, recorded, monkeypatch)
        collect_garbage(client, monkeypatch)


def pull_through_cache(client, recorded, monkeypatch):
    """A pull through the cache from an upstream with credentials: a small blob fetched in the request,
    a large one by the fetch function; a push under the prefix refused."""
    import boto3

    from registry.config import settings
    from registry.services import fetching
    from registry_admin import upstreams
    from tests.fake_upstream import FakeUpstream, digest_of

    CURRENT_FUNCTION.set(None)  # the operator's registry-admin, not a function
    with FakeUpstream(auth="basic", credentials=("mirror", "mirror-password")) as upstream:
        upstreams.set_upstream("hub", upstream.url, "mirror", "mirror-password", library=True)
        monkeypatch.setenv("UPSTREAM_SECRET_PREFIX", "registry-upstream-")
        monkeypatch.setenv("FETCH_QUEUE_URL", boto3.client("sqs").get_queue_url(QueueName="registry-FetchQueue")["QueueUrl"])
        monkeypatch.setenv("CACHE_INLINE_BYTES", str(1024 * 1024))
        monkeypatch.setattr(fetching, "PART", 5 * 1024 * 1024)
        monkeypatch.setattr(fetching, "PART_SECONDS", 0.0)
        settings.cache_clear()
        real_step, steps = fetching.step, []

        def first_step_runs_out_of_time(fetch_id, deadline, download=None):  # so the function queues its next step
            steps.append(fetch_id)
            return real_step(fetch_id, 0 if len(steps) == 1 else deadline, download)

        monkeypatch.setattr(fetching, "step", first_step_runs_out_of_time)
        small, big = os.urandom(1000), os.urandom(6 * 1024 * 1024)
        upstream.push("library/busybox", "latest", [small, big])
        accept = {"accept": "application/vnd.oci.image.manifest.v1+json"}
        assert client.request("GET", "/v2/hub/busybox/manifests/latest", headers=accept).status == 200
        assert client.request("HEAD", f"/v2/hub/busybox/blobs/{digest_of(big)}").status == 200
        assert client.request("GET", f"/v2/hub/busybox/blobs/{digest_of(small)}").status == 307
        assert client.request("GET", f"/v2/hub/busybox/blobs/{digest_of(big)}").status == 503
        while recorded.verifier.drain(recorded.queue_handlers):  # fetch, fetch again, then verify
            pass
        assert client.request("GET", f"/v2/hub/busybox/blobs/{digest_of(big)}").status == 307
        assert client.request("POST", "/v2/hub/busybox/blobs/uploads/").status == 403
        assert client.request("GET", "/v2/hub/busybox/tags/list").status == 200
    settings.cache_clear()


def collect_garbage(client, monkeypatch):
    """The gc function's pass over what the walk left: an untagged manifest kept in S3, a deleted image's links and blobs."""
    from registry.config import settings
    from registry.services import gc

    _, digest = client.push_image("team/junk", "v1", [os.urandom(64)])
    client.request("DELETE", f"/v2/team/junk/manifests/{digest}")
    client.request("DELETE", "/v2/team/app/manifests/large")  # untags the manifest kept in S3
    monkeypatch.setenv("GC_UNTAGGED_DAYS", "0")
    monkeypatch.setenv("GC_LINK_GRACE_SECONDS", "0")
    monkeypatch.setattr(gc, "USES_FRESH_SECONDS", 0)
    settings.cache_clear()

    class Context:
        aws_request_id = "gc"

        @staticmethod
        def get_remaining_time_in_millis():
            return 900_000

    CURRENT_FUNCTION.set("gc")
    try:
        assert load_handler("functions/gc/")({}, Context())["objects_freed"] >= 1
    finally:
        CURRENT_FUNCTION.set(None)
    settings.cache_clear()


def test_each_function_is_allowed_exactly_the_actions_its_code_uses(recorded, client, gateway, monkeypatch):
    walk_every_feature(client, gateway, recorded, monkeypatch)
    policies = template_policies()
    assert set(recorded.actions) == set(policies), "the walk reaches every function"
    for function, (allowed, _) in policies.items():
        used = recorded.actions.get(function, set())
        assert used <= allowed, f"{function} uses actions its policy does not allow: {sorted(used - allowed)}"
        assert allowed <= used, f"{function} is allowed actions it never uses: {sorted(allowed - used)}"


def test_each_function_touches_only_the_s3_prefixes_its_policy_names(recorded, client, gateway, monkeypatch):
    walk_every_feature(client, gateway, recorded, monkeypatch)
    for function, (_, patterns) in template_policies().items():
        for key in recorded.s3_keys.get(function, ()):
            assert any(re.fullmatch(p.replace("*", ".*"), key) for p in patterns), f"{function} touched {key}, outside {patterns}"


# Secrets Manager decrypts a secret encrypted under a customer managed key with the caller's
# permission: GetSecretValue needs kms:Decrypt on that key as well, a call the SDK never makes
# itself (https://docs.aws.amazon.com/secretsmanager/latest/userguide/security-encryption.html).
_IMPLIED_BY = {"secretsmanager:GetSecretValue": {"kms:Decrypt"}}


def test_in_secret_signing_mode_the_token_function_is_allowed_exactly_what_it_uses(recorded, client, gateway, monkeypatch):
    """The walk above runs the default mode (TokenSigning=kms); this runs the token function's
    routes with TokenSigning=secret and compares with the template's statements for that mode."""
    from local_stack import resources
    from registry import config

    monkeypatch.setenv("TOKEN_SIGNING", "secret")
    monkeypatch.setenv("TOKEN_SECRET_ID", resources.create_signing_secret())
    monkeypatch.setenv("TOKEN_KEY_ID", "")
    config.settings.cache_clear()
    accounts.create_user("alice", "alice-password")
    alice = Client(gateway, ("alice", "alice-password"))
    reply = alice.raw("GET", "/token?service=registry.test&offline_token=true", headers={"authorization": "Basic YWxpY2U6YWxpY2UtcGFzc3dvcmQ="})
    assert reply.status == 200
    form = f"grant_type=refresh_token&service=registry.test&refresh_token={reply.json()['refresh_token']}"
    assert alice.raw("POST", "/token", form.encode(), {"content-type": "application/x-www-form-urlencoded"}).status == 200
    assert client.raw("GET", "/.well-known/jwks.json").status == 200
    assert client.request("GET", "/v2/").status == 200  # a verifier accepts the secret-signed token
    allowed, _ = template_policies({"TokenSigning": "secret"})["token"]
    default, _ = template_policies()["token"]  # the walk above checks the statements both modes share
    used = set(recorded.actions["token"])
    used |= set().union(*(_IMPLIED_BY.get(action, set()) for action in used))
    assert used <= allowed
    assert allowed - default == used - default == {"secretsmanager:GetSecretValue", "kms:Decrypt"}
    assert "kms:GetPublicKey" not in recorded.actions["base"]  # verifiers read published keys, never KMS or the secret
    assert not any(a.startswith("secretsmanager:") for a in recorded.actions["base"])


def test_the_secret_mode_key_decrypts_only_through_secrets_manager():
    statements = [s for s in template.resolve_conditions(
        template.load()["Resources"]["TokenFunction"]["Properties"]["Policies"], parameters={"TokenSigning": "secret"})[0]["Statement"]]
    decrypt = [s for s in statements if s["Action"] == ["kms:Decrypt"]]
    assert len(decrypt) == 1 and "kms:ViaService" in decrypt[0]["Condition"]["StringEquals"]
    assert not any("kms:Sign" in s["Action"] for s in statements)
