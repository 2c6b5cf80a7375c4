"""Malformed or oversized client input gets the right 4xx, never a 500 (issue 11, item 4).

Numbers are ASCII digits with a length cap (``registry.inputs.natural``), JSON is
depth-checked before it is parsed (``registry.inputs.json_document``), batch writes
name each key once, and what a client can make grow in DynamoDB is bounded. The
DynamoDB limits moto does not enforce are enforced for every test by
``tests/dynamodb_limits.py``.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from registry import inputs, ratelimit
from registry.manifests import MAX_REFERRER_EXTRA
from registry.services import referrers, uploads

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCTETS = {"content-type": "application/octet-stream"}
SUPERSCRIPT_TWO = "%C2%B2"  # "²": str.isdigit() says yes, int() says no
FIVE_THOUSAND_DIGITS = "9" * 5000  # int() refuses more than 4,300 digits


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- numbers ---------------------------------------------------------------------------


PAGED = ["/v1/search?q=a&n={n}", "/v1/search?q=a&page={n}", "/v2/_catalog?n={n}", "/v2/team/app/tags/list?n={n}", f"/v2/team/app/referrers/{sha256(b'x')}?n={{n}}"]


@pytest.mark.parametrize("n", [SUPERSCRIPT_TWO, FIVE_THOUSAND_DIGITS, "-1", "+1", "1_0", "%201", "0x10", "%D9%A3"])
def test_a_page_size_that_is_not_ascii_digits_is_pagination_number_invalid(client, n):
    for path in PAGED:
        reply = client.request("GET", path.format(n=n))
        assert (reply.status, reply.error_codes) == (400, ["PAGINATION_NUMBER_INVALID"]), path


@pytest.mark.parametrize("content_range", ["0-²", "²-0", f"0-{FIVE_THOUSAND_DIGITS}", f"{FIVE_THOUSAND_DIGITS}-0", "0 - 4", "-1-4"])
def test_a_content_range_that_is_not_ascii_digits_is_range_invalid(client, content_range):
    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    reply = client.request("PATCH", location, b"hello", {**OCTETS, "content-range": content_range})
    assert (reply.status, reply.error_codes) == (416, ["RANGE_INVALID"])
    reply = client.request("PUT", f"{location}?digest={sha256(b'hello')}", b"hello", {**OCTETS, "content-range": content_range})
    assert (reply.status, reply.error_codes) == (416, ["RANGE_INVALID"])


@pytest.mark.parametrize("length", ["abc", "²", "-5", FIVE_THOUSAND_DIGITS, "4"])
def test_a_content_length_that_is_not_the_bodys_length_in_ascii_digits_is_size_invalid(client, length):
    # API Gateway refuses such a header itself; the function must not trust that it did.
    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    reply = client.request("PATCH", location, b"hello", {**OCTETS, "content-length": length})
    assert (reply.status, reply.error_codes) == (400, ["SIZE_INVALID"])
    reply = client.request("POST", f"/v2/team/app/blobs/uploads/?digest={sha256(b'hello')}", b"hello", {**OCTETS, "content-length": length})
    assert (reply.status, reply.error_codes) == (400, ["SIZE_INVALID"])


def test_an_upload_past_the_largest_blob_is_size_invalid_and_keeps_its_offset(client, monkeypatch):
    monkeypatch.setattr(uploads, "MAX_BLOB_BYTES", 8)
    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    assert client.request("PATCH", location, b"12345", OCTETS).status == 202
    reply = client.request("PATCH", location, b"6789", OCTETS)
    assert (reply.status, reply.error_codes) == (400, ["SIZE_INVALID"])
    assert client.request("GET", location).header("range") == "0-4"


@pytest.mark.parametrize("text", ["²", "٣", " 1", "+1", "1_0", "-1", "", "1" * 20, "0x1"])
def test_natural_takes_only_ascii_digits(text):
    with pytest.raises(inputs.NumberInvalid):
        inputs.natural(text)


def test_natural_takes_up_to_nineteen_digits():
    assert inputs.natural("0") == 0
    assert inputs.natural("9" * 19) == 10**19 - 1


@pytest.mark.parametrize("text", ["²;w=60", "10;w=٣", f"{FIVE_THOUSAND_DIGITS};w=60", "1;w=" + "9" * 10])
def test_a_rate_limit_with_odd_or_huge_numbers_is_refused(text):
    with pytest.raises(ValueError):
        ratelimit.parse(text)


# --- JSON ----------------------------------------------------------------------------


def test_a_manifest_nested_2000_levels_deep_is_manifest_invalid(client):
    body = ('{"schemaVersion":2,"mediaType":"%s","annotations":%s}' % (OCI_MANIFEST, nested(2000))).encode()
    reply = client.request("PUT", "/v2/team/app/manifests/deep", body, {"content-type": OCI_MANIFEST})
    assert (reply.status, reply.error_codes) == (400, ["MANIFEST_INVALID"])


def test_a_manifest_of_only_opening_brackets_is_manifest_invalid(client):
    reply = client.request("PUT", "/v2/team/app/manifests/deep", b"[" * 4_000_000, {"content-type": OCI_MANIFEST})
    assert (reply.status, reply.error_codes) == (400, ["MANIFEST_INVALID"])


def test_brackets_inside_json_strings_do_not_count_as_nesting(client):
    client.push_image("team/app", "v1")
    manifest = json.loads(client.request("GET", "/v2/team/app/manifests/v1", headers={"accept": OCI_MANIFEST}).body)
    manifest["annotations"] = {"note": "[" * 5000 + '\\"{' * 100}
    body = json.dumps(manifest).encode()
    assert client.request("PUT", "/v2/team/app/manifests/v2", body, {"content-type": OCI_MANIFEST}).status == 201


@pytest.mark.parametrize(
    "body",
    [b'{"description":' + nested(2000).encode() + b"}", nested(2000).encode(), b'{"description":"' + b"x" * 20_000 + b'"}'],
    ids=["nested-value", "nested-body", "over-16-KiB"],
)
def test_a_description_body_nested_deep_or_too_large_is_request_invalid(client, body):
    client.push_image("team/app", "v1")
    reply = client.request("PUT", "/api/v1/repositories/team/app/description", body, {"content-type": "application/json"})
    assert (reply.status, reply.error_codes) == (400, ["REQUEST_INVALID"])


@pytest.mark.parametrize("depth, within", [(32, True), (33, False)])
def test_json_nesting_is_measured_outside_strings(depth, within):
    document = nested(depth) if depth else "1"
    assert inputs.nesting_within(document.encode(), 32) is within
    assert inputs.nesting_within(b'{"a":"[[[[\\"]]"}', 1)


# --- duplicate keys in batch writes ------------------------------------------------------


def test_an_index_listing_the_same_child_twice_is_accepted_and_deleted(client):
    child, child_digest = client.push_image("team/multi", "amd64")
    entry = {"mediaType": OCI_MANIFEST, "digest": child_digest, "size": len(child)}
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry, entry]}).encode()
    reply = client.request("PUT", "/v2/team/multi/manifests/multi", index, {"content-type": OCI_INDEX})
    assert reply.status == 201, reply.body
    assert client.request("GET", "/v2/team/multi/manifests/multi", headers={"accept": OCI_INDEX}).body == index
    assert client.request("DELETE", f"/v2/team/multi/manifests/{sha256(index)}").status == 202
    assert client.request("DELETE", f"/v2/team/multi/manifests/{child_digest}").status == 202


# --- what a client can make grow in DynamoDB ----------------------------------------------


def _artifact(client, subject: bytes, annotations: dict, artifact_type: str = "application/vnd.example.sig") -> tuple[int, bytes]:
    empty = client.push_blob("team/app", b"{}")
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [],
        "subject": {"mediaType": OCI_MANIFEST, "digest": sha256(subject), "size": len(subject)},
        "annotations": annotations,
    }
    body = json.dumps(document).encode()
    reply = client.request("PUT", f"/v2/team/app/manifests/{sha256(body)}", body, {"content-type": OCI_MANIFEST})
    return reply, body


def test_a_referrer_whose_annotations_would_not_fit_its_item_is_manifest_invalid(client):
    # A 4 MB manifest could copy 4 MB of annotations into its referrer item (400 KB at most).
    image, _ = client.push_image("team/app", "v1")
    reply, _ = _artifact(client, image, {"big": "x" * 500_000})
    assert (reply.status, reply.error_codes) == (400, ["MANIFEST_INVALID"])
    reply, _ = _artifact(client, image, {"big": "x" * (MAX_REFERRER_EXTRA + 1)})
    assert (reply.status, reply.error_codes) == (400, ["MANIFEST_INVALID"])
    reply, _ = _artifact(client, image, {"big": "x" * (MAX_REFERRER_EXTRA - 200)})
    assert reply.status == 201


def test_an_artifact_type_longer_than_a_media_type_is_manifest_invalid(client):
    image, _ = client.push_image("team/app", "v1")
    reply, _ = _artifact(client, image, {}, "application/" + "x" * 300)
    assert (reply.status, reply.error_codes) == (400, ["MANIFEST_INVALID"])


def test_a_referrers_page_stops_at_its_byte_budget_and_links_to_the_rest(client, monkeypatch):
    image, digest = client.push_image("team/app", "v1")
    pushed = {sha256(_artifact(client, image, {"n": str(i) * 2000})[1]) for i in range(3)}
    monkeypatch.setattr(referrers, "PAGE_BYTES", 5000)
    seen, path = [], f"/v2/team/app/referrers/{digest}"
    while path:
        reply = client.request("GET", path)
        assert reply.status == 200
        page = [d["digest"] for d in reply.json()["manifests"]]
        assert 1 <= len(page) <= 2
        seen += page
        link = reply.header("link")
        path = link[1 : link.index(">")] if link else None
    assert sorted(seen) == sorted(pushed)
