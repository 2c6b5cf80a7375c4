"""Bounded work per request in search and the token service, and tokens that stay signable on AWS.

Calls are counted with a botocore before-call hook on the registry's own
clients (DynamoDB, S3 and KMS). KMS ``Sign`` is checked on the parameters sent
(AWS takes at most 4,096 bytes of RAW message; the emulator now enforces that
too, and signs a DIGEST as AWS does: local_stack/kms.py) and on the result,
verified with pyjwt and the key from ``GetPublicKey``.
"""

from __future__ import annotations

import hashlib
from urllib.parse import urlencode

import boto3
import jwt
import pytest
from cryptography.hazmat.primitives.serialization import load_der_public_key

from registry import accounts, aws, config
from registry.auth import scopes, tokens
from registry.services import search as search_service
from tests.clients import Client, CallCounter

SERVICE = "registry.test"


@pytest.fixture
def counted(moto):
    """Every AWS call the registry's own clients make (KMS included), with its parameters."""
    counter = CallCounter()
    sent: list[tuple[str, dict]] = []

    def remember(params, model, **kwargs):
        sent.append((model.name, dict(params)))

    aws.reset()
    for client in (aws.s3(), aws.dynamodb(), aws.kms()):
        client.meta.events.register("before-call", counter)
        client.meta.events.register("before-parameter-build", remember)  # the API parameters as given
    tokens.reset()
    tokens.key_id()  # GetPublicKey once per container: not part of any request below
    from registry.services import pullthrough

    pullthrough.upstreams()  # the pull-through cache's upstream list, once per container a minute: likewise
    counter.calls.clear()
    counter.sent = sent
    sent.clear()
    return counter


def get_token(gateway, scope_values, credentials=None, host="registry.test"):
    client = Client(gateway, credentials)
    headers = {"host": host}
    if credentials:
        import base64

        headers["authorization"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
    query = urlencode([("service", SERVICE)] + [("scope", s) for s in scope_values])
    return client.raw("GET", f"/token?{query}", headers=headers)


# --- /token -------------------------------------------------------------------------------


def test_an_anonymous_token_request_with_250_scopes_gets_400_and_reads_nothing(gateway, counted):
    reply = get_token(gateway, [f"repository:team/app{i}:pull" for i in range(250)])

    assert (reply.status, reply.error_codes) == (400, ["REQUEST_INVALID"])
    assert reply.json()["errors"][0]["detail"] == {"maxScopes": scopes.MAX_SCOPES}
    assert counted.calls == []


def test_the_scopes_of_a_token_request_are_read_in_one_batch(gateway, counted):
    reply = get_token(gateway, [f"repository:team/app{i}:pull" for i in range(scopes.MAX_SCOPES)])

    assert reply.status == 200, reply.body
    assert sorted(counted.calls) == [("dynamodb", "BatchGetItem"), ("kms", "Sign")]


def test_repeated_scopes_count_once_and_merge_their_actions(client, gateway, counted):
    client.push_image("team/app", "v1")
    values = ["repository:team/app:pull"] * 200 + ["repository:team/app:push", "repository:team/app:pull,delete"]

    reply = get_token(gateway, values, credentials=("admin", "admin-password-for-tests"))

    assert reply.status == 200, reply.body
    assert reply.json()["scope"] == "repository:team/app:pull,push,delete"


def test_docker_and_containerd_style_requests_still_work(client, gateway):
    client.push_image("team/app", "v1")
    docker = get_token(gateway, ["repository:team/app:push,pull", "repository:library/base:pull"], ("admin", "admin-password-for-tests"))
    containerd = get_token(gateway, ["repository:team/app:pull repository:team/other:pull,push registry:catalog:*"], ("admin", "admin-password-for-tests"))

    assert docker.status == containerd.status == 200


def test_tokens_are_signed_by_digest_and_verify_with_the_published_key(client, gateway, counted):
    reply = get_token(gateway, ["repository:team/app:pull,push"], credentials=("admin", "admin-password-for-tests"))
    token = reply.json()["token"]

    (params,) = [params for name, params in counted.sent if name == "Sign"]
    signing_input = token.rsplit(".", 1)[0].encode()
    assert params["MessageType"] == "DIGEST"
    assert params["SigningAlgorithm"] == "ECDSA_SHA_256"
    assert params["Message"] == hashlib.sha256(signing_input).digest()
    der = boto3.client("kms").get_public_key(KeyId=config.settings().token_key_id)["PublicKey"]
    claims = jwt.decode(token, load_der_public_key(der), algorithms=["ES256"], audience=SERVICE)
    assert claims["access"] == [{"type": "repository", "name": "team/app", "actions": ["pull", "push"]}]


def test_a_token_with_the_most_and_longest_scopes_is_signed_and_fits_a_request(client, gateway, counted):
    """Its signing input is over KMS's 4,096-byte RAW limit: only digest signing can sign it on AWS."""
    names = [("n" * 50 + "/") * 4 + f"{i:02d}" + "x" * 49 for i in range(scopes.MAX_SCOPES)]
    assert all(len(name) == 255 for name in names)

    reply = get_token(gateway, [f"repository:{name}:pull,push,delete" for name in names], ("admin", "admin-password-for-tests"))

    assert reply.status == 200, reply.body
    token = reply.json()["token"]
    assert len(token.rsplit(".", 1)[0]) > 4096
    assert len(token) <= tokens.MAX_TOKEN_BYTES
    # The token is usable: a pull of one of those repositories gets through to a 404 (nothing pushed).
    pulled = client.raw("GET", f"/v2/{names[0]}/manifests/latest", headers={"authorization": f"Bearer {token}"})
    assert (pulled.status, pulled.error_codes) == (404, ["NAME_UNKNOWN"])


def test_a_token_that_would_exceed_the_size_bound_gets_400_before_kms_is_asked(client, gateway, counted):
    # The audience is the host the client named: a long Host header makes a long token.
    reply = get_token(gateway, ["repository:team/app:pull"], ("admin", "admin-password-for-tests"), host="h" * 6000)

    assert (reply.status, reply.error_codes) == (400, ["REQUEST_INVALID"])
    assert ("kms", "Sign") not in counted.calls


def test_the_emulator_refuses_a_raw_message_over_4096_bytes_as_kms_does(counted):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as refused:
        aws.kms().sign(KeyId=config.settings().token_key_id, Message=b"x" * 4097, MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256")
    assert refused.value.response["Error"]["Code"] == "ValidationException"


# --- /v1/search ---------------------------------------------------------------------------


def test_a_search_for_100_distinct_words_gets_400_and_reads_nothing(anonymous, counted):
    query = urlencode({"q": " ".join(f"word{i}" for i in range(100))})

    reply = anonymous.raw("GET", f"/v1/search?{query}")

    assert (reply.status, reply.error_codes) == (400, ["REQUEST_INVALID"])
    assert counted.calls == []


def test_a_term_longer_than_any_name_gets_400(anonymous, counted):
    reply = anonymous.raw("GET", "/v1/search?q=" + "a" * (search_service.TERM_MAX + 1))

    assert (reply.status, reply.error_codes) == (400, ["REQUEST_INVALID"])
    assert counted.calls == []


def test_a_long_term_reads_a_bounded_number_of_partitions_and_still_matches_exactly(client, counted):
    long_name = "library/" + "abcdefghijklmnopqrstuvwxyz0123456789"
    client.push_image(long_name, "latest")
    client.push_image("library/abc", "latest")  # shares some grams, not the term
    accounts.set_visibility(long_name, "public")
    accounts.set_visibility("library/abc", "public")
    counted.calls.clear()

    reply = Client(client.gateway, None).raw("GET", "/v1/search?q=" + long_name[8:])

    assert [r["name"] for r in reply.json()["results"]] == [long_name]
    # At most GRAMS_MAX gram partitions + 1 word partition + the BatchGetItem of the matches.
    assert counted.calls.count(("dynamodb", "Query")) == search_service.GRAMS_MAX + 1
    assert counted.calls.count(("dynamodb", "BatchGetItem")) == 1


def test_a_search_with_the_most_words_reads_at_most_one_partition_per_word(client, counted):
    client.push_image("team/app", "latest")
    accounts.set_visibility("team/app", "public")
    words = [f"w{i}" for i in range(search_service.WORDS_MAX)]
    from registry.storage import search_index

    search_index.set_description("team/app", " ".join(words), "")
    counted.calls.clear()

    reply = Client(client.gateway, None).raw("GET", "/v1/search?" + urlencode({"q": " ".join(words)}))

    assert [r["name"] for r in reply.json()["results"]] == ["team/app"]
    assert counted.calls.count(("dynamodb", "Query")) <= search_service.GRAMS_MAX + search_service.WORDS_MAX


def test_a_one_letter_search_reads_a_bounded_number_of_candidates_whatever_the_registry_holds(client, counted, monkeypatch):
    """Stand-in bound (MATCHES_MAX 5, same code path as 1,000): more matching repositories
    than the bound cost no more calls than exactly the bound."""
    from registry.storage import search_index

    monkeypatch.setattr(search_service, "MATCHES_MAX", 5)

    def calls_for(count: int) -> list:
        for i in range(count):
            search_index.add_repository(f"team/a{i:03d}")
        counted.calls.clear()
        reply = Client(client.gateway, None).raw("GET", "/v1/search?q=a")
        assert reply.status == 200
        return sorted(counted.calls)

    few = calls_for(5)
    many = calls_for(40)
    assert many == few
    assert many.count(("dynamodb", "BatchGetItem")) == 1 and many.count(("dynamodb", "Query")) <= 2


def _image_manifest(config: str, layers: list[str]) -> bytes:
    import json

    def descriptor(digest, media_type):
        return {"mediaType": media_type, "digest": digest, "size": 1}

    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": descriptor(config, "application/vnd.oci.image.config.v1+json"),
            "layers": [descriptor(d, "application/vnd.oci.image.layer.v1.tar") for d in layers],
        }
    ).encode()


def test_a_manifest_listing_more_descriptors_than_the_bound_gets_400_and_reads_nothing(client, counted):
    from registry.manifests import MAX_REFERENCES

    config = client.push_blob("team/many", b"{}")
    layers = ["sha256:" + hashlib.sha256(str(i).encode()).hexdigest() for i in range(MAX_REFERENCES)]  # + config: one over
    client.authorize("/v2/team/many/manifests/v1")
    counted.calls.clear()
    reply = client.request("PUT", "/v2/team/many/manifests/v1", _image_manifest(config, layers), {"content-type": "application/vnd.oci.image.manifest.v1+json"})
    assert (reply.status, reply.error_codes) == (400, ["MANIFEST_INVALID"])
    assert counted.count("dynamodb") <= 2  # the rate-limit and repository reads a manifest PUT makes first, at most


def test_a_manifest_of_many_descriptors_is_stored_in_a_bounded_number_of_calls(client, counted):
    # Calls for n references: ceil(n/100) BatchGetItem to check them, ceil(n/25) BatchWriteItem for
    # the USES# records, ceil(n/100) transactions touching the links, 1 for the manifest, and the
    # reads before: at MAX_REFERENCES (256), at most 3 + 11 + 3 + 1 + 2 = 20. Measured at 130 (two
    # touch batches), as moto copies the whole table for every transaction item (slow, not AWS's cost).
    layers = [client.push_blob("team/many", b"layer %d" % i) for i in range(129)]
    config = client.push_blob("team/many", b"{}")
    client.authorize("/v2/team/many/manifests/v1")
    client.gateway.limits.timeout = 300  # moto's transactions, see above
    counted.calls.clear()
    reply = client.request("PUT", "/v2/team/many/manifests/v1", _image_manifest(config, layers), {"content-type": "application/vnd.oci.image.manifest.v1+json"})
    assert reply.status == 201, reply.body
    assert counted.count() <= 20, counted.calls
