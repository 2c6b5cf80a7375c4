"""Direct-to-S3 uploads: presigned part URLs, parts listed, completion verified before visibility.

The parts are sent the way a client does: an HTTP PUT of the bytes to the
presigned URL (moto serves it), no Authorization header.
"""

from __future__ import annotations

import hashlib
import os

import boto3
import pytest
import requests

from local_stack.resources import BUCKET_NAME
from registry.config import settings
from registry.services import verification
from tests.clients import Client

MIB = 1024 * 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def start(client, name="team/app") -> str:
    reply = client.request("POST", f"/v2/{name}/blobs/uploads/")
    assert reply.status == 202
    return reply.header("location")


def part_urls(client, location, first=1, count=1):
    reply = client.request("POST", f"{location}/parts?first={first}&count={count}")
    assert reply.status == 200, reply
    return {p["partNumber"]: p["url"] for p in reply.json()["parts"]}


def send_parts(client, location, data: bytes, part_size: int) -> int:
    pieces = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    urls = part_urls(client, location, 1, len(pieces))
    for number, piece in enumerate(pieces, start=1):
        answer = requests.put(urls[number], data=piece)
        assert answer.status_code == 200, answer.text
    return len(pieces)


def staging() -> list[str]:
    s3 = boto3.client("s3")
    listing = s3.list_objects_v2(Bucket=BUCKET_NAME, Prefix="uploads/")
    return [o["Key"] for o in listing.get("Contents", [])] + [u["Key"] for u in s3.list_multipart_uploads(Bucket=BUCKET_NAME).get("Uploads", [])]


def pulled(client, name, digest) -> bytes:
    reply = client.request("GET", f"/v2/{name}/blobs/{digest}")
    assert reply.status == 307
    return requests.get(reply.header("location")).content


def test_parts_sent_to_s3_complete_into_a_verified_blob(client):
    data = os.urandom(11 * MIB + 123)
    location = start(client)
    assert send_parts(client, location, data, 5 * MIB) == 3
    listed = client.request("GET", f"{location}/parts")
    assert listed.status == 200
    assert [(p["partNumber"], p["size"]) for p in listed.json()["parts"]] == [(1, 5 * MIB), (2, 5 * MIB), (3, MIB + 123)]
    done = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert done.status == 201
    assert done.header("docker-content-digest") == sha256(data)
    assert pulled(client, "team/app", sha256(data)) == data
    assert staging() == []


def test_part_urls_answer_the_limits_and_refuse_numbers_past_s3s(client):
    location = start(client)
    reply = client.request("POST", f"{location}/parts?first=9990&count=11")
    assert reply.status == 200
    document = reply.json()
    assert [p["partNumber"] for p in document["parts"]] == list(range(9990, 10001))
    assert (document["minPartSize"], document["maxPartSize"], document["maxParts"]) == (5 * MIB, 5 * 1024**3, 10_000)
    for query in ("first=9991&count=11", "first=0", "count=101", "count=²", "first=-1", "first=" + "9" * 5000):
        bad = client.request("POST", f"{location}/parts?{query}")
        assert bad.status == 400, query
        assert bad.error_codes == ["PAGINATION_NUMBER_INVALID"], query


def test_a_part_uploaded_again_replaces_the_first(client):
    data = os.urandom(6 * MIB)
    location = start(client)
    urls = part_urls(client, location, 1, 2)
    requests.put(urls[1], data=os.urandom(5 * MIB))  # a failed or wrong attempt
    requests.put(urls[1], data=data[: 5 * MIB])
    requests.put(urls[2], data=data[5 * MIB :])
    assert client.request("PUT", f"{location}?digest={sha256(data)}").status == 201
    assert pulled(client, "team/app", sha256(data)) == data


def test_bytes_that_do_not_match_the_digest_end_in_digest_invalid_with_nothing_visible(client):
    data = os.urandom(MIB)
    location = start(client)
    send_parts(client, location, data, 5 * MIB)
    claimed = sha256(b"something else")
    reply = client.request("PUT", f"{location}?digest={claimed}")
    assert reply.status == 400
    assert reply.error_codes == ["DIGEST_INVALID"]
    assert client.request("HEAD", f"/v2/team/app/blobs/{claimed}").status == 404
    assert client.request("GET", location).status == 404  # the session is over
    assert staging() == []


def test_a_part_smaller_than_5_mib_before_the_last_is_refused_and_can_be_sent_again(client):
    data = os.urandom(7 * MIB)
    location = start(client)
    urls = part_urls(client, location, 1, 2)
    requests.put(urls[1], data=data[: 2 * MIB])
    requests.put(urls[2], data=data[2 * MIB :])
    refused = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert refused.status == 400
    assert refused.error_codes == ["BLOB_UPLOAD_INVALID"]
    urls = part_urls(client, location, 1, 2)  # the session is still open: send it right
    requests.put(urls[1], data=data[: 5 * MIB])
    requests.put(urls[2], data=data[5 * MIB :])
    assert client.request("PUT", f"{location}?digest={sha256(data)}").status == 201


def test_completing_without_parts_is_refused(client):
    location = start(client)
    part_urls(client, location)
    reply = client.request("PUT", f"{location}?digest={sha256(b'')}")
    assert reply.status == 400
    assert reply.error_codes == ["BLOB_UPLOAD_INVALID"]


def test_a_session_that_took_patch_chunks_gets_no_part_urls_and_a_direct_one_takes_no_patch(client):
    chunked = start(client)
    client.request("PATCH", chunked, b"abc", {"content-type": "application/octet-stream"})
    reply = client.request("POST", f"{chunked}/parts")
    assert (reply.status, reply.error_codes) == (400, ["BLOB_UPLOAD_INVALID"])
    direct = start(client)
    part_urls(client, direct)
    reply = client.request("PATCH", direct, b"abc", {"content-type": "application/octet-stream"})
    assert (reply.status, reply.error_codes) == (400, ["BLOB_UPLOAD_INVALID"])
    reply = client.request("PUT", f"{direct}?digest={sha256(b'abc')}", b"abc", {"content-type": "application/octet-stream"})
    assert (reply.status, reply.error_codes) == (400, ["BLOB_UPLOAD_INVALID"])


def test_another_users_session_and_part_urls_are_refused(client, gateway):
    from registry import accounts

    accounts.create_user("mallory", "mallory-password")
    location = start(client)
    part_urls(client, location)
    mallory = Client(gateway, ("mallory", "mallory-password"))
    # mallory may push to her own namespace, not to team/app: the token refuses her.
    assert mallory.request("POST", f"{location}/parts").status in (401, 403)
    # an admin's session opened under mallory's name is still not hers.
    own = start(client, "mallory/app")
    for method in ("POST", "GET"):
        reply = mallory.request(method, f"{own}/parts")
        assert (reply.status, reply.error_codes) == (404, ["BLOB_UPLOAD_UNKNOWN"])


def test_cancel_discards_the_parts(client):
    location = start(client)
    send_parts(client, location, os.urandom(MIB), 5 * MIB)
    assert client.request("DELETE", location).status == 204
    assert staging() == []
    assert client.request("GET", f"{location}/parts").status == 404


def test_verification_that_outlives_the_request_answers_202_until_the_verify_function_is_done(client, verifier, monkeypatch):
    monkeypatch.setenv("VERIFY_INLINE_SECONDS", "0")
    settings.cache_clear()
    data = os.urandom(6 * MIB)
    location = start(client)
    send_parts(client, location, data, 5 * MIB)
    first = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert first.status == 202
    assert first.header("location") == location
    assert int(first.header("retry-after")) >= 1
    assert client.request("HEAD", f"/v2/team/app/blobs/{sha256(data)}").status == 404  # unverified: never served
    assert client.request("PUT", f"{location}?digest={sha256(data)}").status == 202  # asking again changes nothing
    assert verifier.drain() == 1
    done = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert done.status == 201
    assert done.header("docker-content-digest") == sha256(data)
    assert pulled(client, "team/app", sha256(data)) == data


def test_verification_resumes_across_invocations_and_copies_part_by_part_past_copy_objects_limit(client, verifier, monkeypatch):
    # Small stand-ins for 64 MiB ranges, 512 MiB copy parts and the 5 GB CopyObject limit.
    monkeypatch.setattr(verification, "HASH_RANGE", 1 * MIB)
    monkeypatch.setattr(verification, "COPY_PART", 5 * MIB)
    monkeypatch.setattr(verification.blobstore, "COPY_OBJECT_MAX", 4 * MIB)
    monkeypatch.setenv("VERIFY_INLINE_SECONDS", "0")
    settings.cache_clear()
    steps = []
    real_advance = verification.advance

    def one_range_per_invocation(upload_id, deadline):
        steps.append(upload_id)
        import time

        return real_advance(upload_id, time.monotonic() + 0.001 if len(steps) < 4 else deadline)

    monkeypatch.setattr(verification, "advance", one_range_per_invocation)
    data = os.urandom(12 * MIB + 5)
    location = start(client)
    send_parts(client, location, data, 5 * MIB)
    assert client.request("PUT", f"{location}?digest={sha256(data)}").status == 202
    assert verifier.drain() >= 4  # each invocation queued the next
    assert client.request("PUT", f"{location}?digest={sha256(data)}").status == 201
    assert pulled(client, "team/app", sha256(data)) == data
    assert boto3.client("s3").list_multipart_uploads(Bucket=BUCKET_NAME).get("Uploads", []) == []


def test_a_wrong_digest_found_in_the_background_ends_in_digest_invalid(client, verifier, monkeypatch):
    monkeypatch.setenv("VERIFY_INLINE_SECONDS", "0")
    settings.cache_clear()
    location = start(client)
    send_parts(client, location, os.urandom(MIB), 5 * MIB)
    claimed = sha256(b"not these bytes")
    assert client.request("PUT", f"{location}?digest={claimed}").status == 202
    verifier.drain()
    reply = client.request("PUT", f"{location}?digest={claimed}")
    assert (reply.status, reply.error_codes) == (400, ["DIGEST_INVALID"])
    assert client.request("HEAD", f"/v2/team/app/blobs/{claimed}").status == 404
    assert staging() == []


def test_a_blob_already_stored_is_still_verified_before_it_is_linked(client):
    """Knowing a digest is not enough to link a blob: the bytes must be sent and match."""
    secret = os.urandom(MIB)
    client.push_blob("private/repo", secret)
    location = start(client, "team/app")
    send_parts(client, location, os.urandom(MIB), 5 * MIB)  # not the secret's bytes
    reply = client.request("PUT", f"{location}?digest={sha256(secret)}")
    assert (reply.status, reply.error_codes) == (400, ["DIGEST_INVALID"])
    assert client.request("HEAD", f"/v2/team/app/blobs/{sha256(secret)}").status == 404


@pytest.mark.parametrize("operation", ["POST", "GET"])
def test_parts_of_an_unknown_session_are_blob_upload_unknown(client, operation):
    reply = client.request(operation, "/v2/team/app/blobs/uploads/0123456789abcdef0123456789abcdef/parts")
    assert (reply.status, reply.error_codes) == (404, ["BLOB_UPLOAD_UNKNOWN"])


def test_a_chunked_upload_past_copy_objects_limit_is_copied_part_by_part(client, monkeypatch):
    """Chunks sent through PATCH: no 5 GB cap from CopyObject (stand-in limits, same code path)."""
    monkeypatch.setattr(verification.blobstore, "COPY_OBJECT_MAX", 4 * MIB)
    monkeypatch.setattr(verification, "COPY_PART", 5 * MIB)
    calls = []
    from registry import aws

    aws.reset()
    aws.s3().meta.events.register("before-call", lambda model, **kw: calls.append(model.name))
    data = os.urandom(11 * MIB)
    location = start(client)
    for first in range(0, len(data), 4 * MIB):
        piece = data[first : first + 4 * MIB]
        reply = client.request("PATCH", location, piece, {"content-type": "application/octet-stream", "content-range": f"{first}-{first + len(piece) - 1}"})
        assert reply.status == 202
    done = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert done.status == 201
    assert "UploadPartCopy" in calls and "CopyObject" not in calls
    assert pulled(client, "team/app", sha256(data)) == data
    assert staging() == []
    again = client.request("PATCH", location, b"more", {"content-type": "application/octet-stream"})
    assert (again.status, again.error_codes) == (400, ["BLOB_UPLOAD_INVALID"])  # complete: it takes nothing more


def test_the_verify_function_takes_the_sample_queue_event(client, monkeypatch):
    """events/queue/verify.json, as Lambda's SQS event source delivers it, finishes a pending verification."""
    import json
    from pathlib import Path

    from local_stack.gateway import LambdaContext, load_handler

    monkeypatch.setenv("VERIFY_INLINE_SECONDS", "0")
    settings.cache_clear()
    data = os.urandom(MIB)
    location = start(client)
    send_parts(client, location, data, 5 * MIB)
    assert client.request("PUT", f"{location}?digest={sha256(data)}").status == 202
    sample = json.loads((Path(__file__).parents[2] / "events" / "queue" / "verify.json").read_text())
    sample["Records"][0]["body"] = json.dumps({"upload": location.rsplit("/", 1)[1]})
    result = load_handler("functions/verify/")(sample, LambdaContext("VerifyFunction", "sample", timeout=900))
    assert result == {"batchItemFailures": []}
    assert client.request("PUT", f"{location}?digest={sha256(data)}").status == 201


def test_an_abandoned_direct_upload_expires_with_its_parts(client):
    """Nobody completes it: the session has a TTL, and the bucket's lifecycle rules abort its multipart
    upload and expire its staging prefix after the same number of days (moto applies neither: checked as set)."""
    import time

    from local_stack import template
    from registry import keys
    from registry.storage import metadata

    location = start(client)
    send_parts(client, location, os.urandom(MIB), 5 * MIB)
    upload_id = location.rsplit("/", 1)[1]
    session = metadata.get_upload(upload_id)
    days = int(template.parameter_default("UploadExpiryDays"))
    assert abs(int(session["expires_at"]) - (time.time() + days * 86400)) < 120
    [pending] = boto3.client("s3").list_multipart_uploads(Bucket=BUCKET_NAME)["Uploads"]
    assert pending["Key"] == keys.upload_parts(upload_id)
    rules = boto3.client("s3").get_bucket_lifecycle_configuration(Bucket=BUCKET_NAME)["Rules"]
    aborts = [r for r in rules if r.get("AbortIncompleteMultipartUpload")]
    assert aborts and all(r["Filter"].get("Prefix", "") == "" for r in aborts)  # every prefix: the parts and any copy
    assert aborts[0]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == days
    assert any(r["Filter"].get("Prefix") == "uploads/" and r["Expiration"]["Days"] == days for r in rules)


def test_a_put_repeated_while_another_assembles_the_parts_waits_and_a_stale_claim_is_taken_over(client):
    """A client retrying a slow completion must not complete the multipart upload twice."""
    import time

    from registry.storage import metadata

    data = os.urandom(MIB)
    location = start(client)
    send_parts(client, location, data, 5 * MIB)
    upload_id = location.rsplit("/", 1)[1]
    metadata.claim_assembly(upload_id, int(time.time()) - 60)  # another request is assembling
    waiting = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert waiting.status == 202 and int(waiting.header("retry-after")) >= 1
    assert client.request("POST", f"{location}/parts").error_codes == ["BLOB_UPLOAD_INVALID"]  # no new parts meanwhile
    session = metadata.get_upload(upload_id)
    metadata.save_upload(upload_id, {**session, "touched": int(time.time()) - 120}, int(session["offset"]))  # ... it timed out long ago
    done = client.request("PUT", f"{location}?digest={sha256(data)}")
    assert done.status == 201
    assert pulled(client, "team/app", sha256(data)) == data
