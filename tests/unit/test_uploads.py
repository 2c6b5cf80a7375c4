"""Blob uploads: sessions, chunks, verification before visibility, mounts."""

from __future__ import annotations

import hashlib
import os

import boto3

from local_stack.resources import BUCKET_NAME

OCTETS = {"content-type": "application/octet-stream"}


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def start(client, name="team/app"):
    reply = client.request("POST", f"/v2/{name}/blobs/uploads/")
    assert reply.status == 202
    return reply.header("location")


def blob_objects() -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=BUCKET_NAME, Prefix="blobs/")
    return [item["Key"] for item in listing.get("Contents", [])]


def staging_objects() -> list[str]:
    s3 = boto3.client("s3")
    listing = s3.list_objects_v2(Bucket=BUCKET_NAME, Prefix="uploads/")
    multipart = s3.list_multipart_uploads(Bucket=BUCKET_NAME).get("Uploads", [])
    return [item["Key"] for item in listing.get("Contents", [])] + [u["Key"] for u in multipart]


def test_post_opens_a_session_with_location_and_chunk_limit(client):
    reply = client.request("POST", "/v2/team/app/blobs/uploads/")
    assert reply.status == 202
    assert reply.header("location").startswith("/v2/team/app/blobs/uploads/")
    assert reply.header("docker-upload-uuid") in reply.header("location")
    assert reply.header("range") == "0-0"
    assert int(reply.header("oci-chunk-max-length")) == 4 * 1024 * 1024


def test_patch_then_put_stores_the_blob_and_head_reports_it(client):
    data = os.urandom(300_000)
    location = start(client)
    reply = client.request("PATCH", location, data, OCTETS)
    assert (reply.status, reply.header("range")) == (202, f"0-{len(data) - 1}")
    reply = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert reply.status == 201
    assert reply.header("docker-content-digest") == sha256(data)
    assert reply.header("location") == f"/v2/team/app/blobs/{sha256(data)}"
    head = client.request("HEAD", f"/v2/team/app/blobs/{sha256(data)}")
    assert (head.status, head.header("content-length"), head.body) == (200, str(len(data)), b"")
    assert staging_objects() == []


def test_blob_get_redirects_to_presigned_s3_url_of_the_content(client):
    data = os.urandom(1000)
    digest = client.push_blob("team/app", data)
    reply = client.request("GET", f"/v2/team/app/blobs/{digest}")
    assert reply.status == 307
    location = reply.header("location")
    assert f"blobs/sha256/{digest.split(':')[1]}" in location and "X-Amz-Signature=" in location
    key = f"blobs/sha256/{digest.split(':')[1]}"
    assert boto3.client("s3").get_object(Bucket=BUCKET_NAME, Key=key)["Body"].read() == data


def test_chunks_over_five_mib_are_assembled_into_multipart_parts_and_verified(client):
    data = os.urandom(13 * 1024 * 1024)
    location = start(client)
    chunk = 3 * 1024 * 1024
    for offset in range(0, len(data), chunk):
        piece = data[offset : offset + chunk]
        reply = client.request(
            "PATCH", location, piece, {**OCTETS, "content-range": f"{offset}-{offset + len(piece) - 1}"}
        )
        assert reply.status == 202, reply.body
    reply = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert reply.status == 201, reply.body
    key = f"blobs/sha256/{sha256(data).split(':')[1]}"
    assert boto3.client("s3").get_object(Bucket=BUCKET_NAME, Key=key)["Body"].read() == data
    assert staging_objects() == []


def test_last_chunk_may_come_with_the_closing_put(client):
    data = os.urandom(6 * 1024 * 1024)
    location = start(client)
    first, last = data[:4_000_000], data[4_000_000:]
    assert client.request("PATCH", location, first, OCTETS).status == 202
    reply = client.request("PUT", f"{location}?digest={sha256(data)}", last, OCTETS)
    assert reply.status == 201, reply.body
    assert client.request("HEAD", f"/v2/team/app/blobs/{sha256(data)}").header("content-length") == str(len(data))


def test_wrong_digest_is_refused_and_nothing_becomes_visible(client):
    data = os.urandom(5000)
    wrong = sha256(b"something else")
    location = start(client)
    client.request("PATCH", location, data, OCTETS)
    reply = client.request("PUT", f"{location}?digest={wrong}")
    assert (reply.status, reply.error_codes) == (400, ["DIGEST_INVALID"])
    for digest in (wrong, sha256(data)):
        assert client.request("HEAD", f"/v2/team/app/blobs/{digest}").status == 404
    assert blob_objects() == [] and staging_objects() == []


def test_monolithic_post_with_wrong_digest_stores_nothing(client):
    reply = client.request("POST", f"/v2/team/app/blobs/uploads/?digest={sha256(b'other')}", b"payload", OCTETS)
    assert (reply.status, reply.error_codes) == (400, ["DIGEST_INVALID"])
    assert blob_objects() == []


def test_out_of_order_chunk_gets_416_with_the_current_range_and_session_stays_usable(client):
    location = start(client)
    assert client.request("PATCH", location, b"abc", {**OCTETS, "content-range": "0-2"}).status == 202
    reply = client.request("PATCH", location, b"xyz", {**OCTETS, "content-range": "5-7"})
    assert (reply.status, reply.error_codes, reply.header("range")) == (416, ["RANGE_INVALID"], "0-2")
    assert reply.header("location") == location
    assert client.request("PATCH", location, b"def", {**OCTETS, "content-range": "3-5"}).status == 202
    assert client.request("PUT", f"{location}?digest={sha256(b'abcdef')}").status == 201


def test_status_reports_the_offset(client):
    location = start(client)
    client.request("PATCH", location, b"12345", OCTETS)
    reply = client.request("GET", location)
    assert (reply.status, reply.header("range")) == (204, "0-4")


def test_cancelled_session_is_gone_and_its_staging_removed(client):
    location = start(client)
    client.request("PATCH", location, b"partial", OCTETS)
    assert client.request("DELETE", location).status == 204
    reply = client.request("GET", location)
    assert (reply.status, reply.error_codes) == (404, ["BLOB_UPLOAD_UNKNOWN"])
    assert staging_objects() == []


def test_a_session_is_not_reachable_through_another_repository(client):
    location = start(client, "team/one")
    other = location.replace("/team/one/", "/team/two/")
    reply = client.request("PATCH", other, b"data", OCTETS)
    assert (reply.status, reply.error_codes) == (404, ["BLOB_UPLOAD_UNKNOWN"])


def test_put_without_digest_is_digest_invalid(client):
    location = start(client)
    reply = client.request("PUT", location)
    assert (reply.status, reply.error_codes) == (400, ["DIGEST_INVALID"])


def test_empty_blob_uploads(client):
    location = start(client)
    reply = client.request("PUT", f"{location}?digest={sha256(b'')}")
    assert reply.status == 201
    assert client.request("HEAD", f"/v2/team/app/blobs/{sha256(b'')}").header("content-length") == "0"


def test_sha512_digests_are_verified(client):
    data = os.urandom(2048)
    digest = "sha512:" + hashlib.sha512(data).hexdigest()
    location = start(client)
    client.request("PATCH", location, data, OCTETS)
    reply = client.request("PUT", f"{location}?digest={digest}")
    assert (reply.status, reply.header("docker-content-digest")) == (201, digest)


def mount(client, path, *readable):
    """A mount request with one token for the target and the repositories it may read, as docker asks."""
    token = client.token("repository:team/target:pull,push", *(f"repository:{name}:pull" for name in readable))
    return client.raw("POST", path, headers={"authorization": f"Bearer {token}"})


def test_mount_from_a_repository_holding_the_blob_links_it(client):
    digest = client.push_blob("team/source", b"shared layer")
    reply = mount(client, f"/v2/team/target/blobs/uploads/?mount={digest}&from=team/source", "team/source")
    assert (reply.status, reply.header("location")) == (201, f"/v2/team/target/blobs/{digest}")
    assert client.request("HEAD", f"/v2/team/target/blobs/{digest}").status == 200


def test_mount_of_a_blob_the_source_lacks_opens_an_upload_instead(client):
    reply = client.request("POST", f"/v2/team/target/blobs/uploads/?mount={sha256(b'nope')}&from=team/source")
    assert reply.status == 202 and "/blobs/uploads/" in reply.header("location")
    assert client.request("HEAD", f"/v2/team/target/blobs/{sha256(b'nope')}").status == 404


def test_blob_is_only_served_from_a_repository_that_holds_it(client):
    digest = client.push_blob("team/owner", b"private bytes")
    reply = client.request("GET", f"/v2/team/other/blobs/{digest}")
    assert (reply.status, reply.error_codes) == (404, ["BLOB_UNKNOWN"])


def test_invalid_digest_is_digest_invalid(client):
    reply = client.request("GET", "/v2/team/app/blobs/sha256:xyz")
    assert (reply.status, reply.error_codes) == (400, ["DIGEST_INVALID"])
    reply = client.request("GET", "/v2/team/app/blobs/md5:" + "0" * 32)
    assert (reply.status, reply.error_codes) == (400, ["DIGEST_INVALID"])


def test_deleted_blob_link_is_unknown_afterwards(client):
    digest = client.push_blob("team/app", b"to delete")
    assert client.request("DELETE", f"/v2/team/app/blobs/{digest}").status == 202
    assert client.request("HEAD", f"/v2/team/app/blobs/{digest}").status == 404


def test_content_range_must_follow_the_spec_grammar(client):
    location = start(client)
    for header in ("bytes=0-2", "0-2/3", "0 - 2", "a-b"):
        reply = client.request("PATCH", location, b"abc", {**OCTETS, "content-range": header})
        assert (reply.status, reply.error_codes) == (416, ["RANGE_INVALID"]), header
    assert client.request("GET", location).header("range") == "0-0"


def test_overlapping_and_repeated_chunks_get_416(client):
    location = start(client)
    assert client.request("PATCH", location, b"abcd", {**OCTETS, "content-range": "0-3"}).status == 202
    for header, body in (("0-3", b"abcd"), ("2-5", b"cdef")):
        reply = client.request("PATCH", location, body, {**OCTETS, "content-range": header})
        assert (reply.status, reply.header("range")) == (416, "0-3"), header


def test_content_range_that_disagrees_with_the_body_gets_416(client):
    location = start(client)
    reply = client.request("PATCH", location, b"abc", {**OCTETS, "content-range": "0-9"})
    assert (reply.status, reply.error_codes) == (416, ["RANGE_INVALID"])


def test_content_length_that_disagrees_with_the_body_is_size_invalid(client):
    location = start(client)
    reply = client.request("PATCH", location, b"abc", {**OCTETS, "content-length": "10"})
    assert (reply.status, reply.error_codes) == (400, ["SIZE_INVALID"])
    assert client.request("GET", location).header("range") == "0-0"


def test_mount_without_from_links_a_blob_from_a_repository_the_token_may_read(client):
    digest = client.push_blob("team/source", b"anywhere")
    reply = mount(client, f"/v2/team/target/blobs/uploads/?mount={digest}", "team/source")
    assert (reply.status, reply.header("location")) == (201, f"/v2/team/target/blobs/{digest}")


def test_an_expired_session_is_unknown_even_before_ttl_deletes_it(client):
    import boto3

    from local_stack.resources import TABLE_NAME

    location = start(client)
    upload_id = location.rsplit("/", 1)[1]
    boto3.client("dynamodb").update_item(
        TableName=TABLE_NAME,
        Key={"pk": {"S": f"UPLOAD#{upload_id}"}, "sk": {"S": "UPLOAD"}},
        UpdateExpression="SET expires_at = :past",
        ExpressionAttributeValues={":past": {"N": "1"}},
    )
    reply = client.request("PATCH", location, b"late", OCTETS)
    assert (reply.status, reply.error_codes) == (404, ["BLOB_UPLOAD_UNKNOWN"])


def test_sessions_carry_a_ttl_attribute_the_table_expires_on(client):
    import time

    import boto3

    from local_stack.resources import TABLE_NAME

    location = start(client)
    upload_id = location.rsplit("/", 1)[1]
    ttl = boto3.client("dynamodb").describe_time_to_live(TableName=TABLE_NAME)["TimeToLiveDescription"]
    item = boto3.client("dynamodb").get_item(TableName=TABLE_NAME, Key={"pk": {"S": f"UPLOAD#{upload_id}"}, "sk": {"S": "UPLOAD"}})["Item"]
    assert ttl["AttributeName"] == "expires_at" and ttl["TimeToLiveStatus"] == "ENABLED"
    assert time.time() < int(item["expires_at"]["N"]) <= time.time() + 24 * 3600 + 5
