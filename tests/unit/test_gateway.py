"""The local gateway behaves like API Gateway in front of Lambda: events, limits, bad clients."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import threading
import time

import pytest

from local_stack import gateway as gw


# These tests are about the gateway's HTTP mechanics; authentication has its own tests.
pytestmark = pytest.mark.usefixtures("auth_off")


def test_event_has_lower_case_headers_joined_by_commas_and_a_base64_binary_body():
    event = gw.build_event(
        "PATCH",
        "/v2/a/blobs/uploads/x",
        "a=1&a=2",
        [("Accept", "application/vnd.oci.image.manifest.v1+json"), ("accept", "application/json"), ("Content-Type", "application/octet-stream")],
        b"\x00\x01binary",
        "PATCH /v2/{n1}/blobs/uploads/{uuid}",
        "127.0.0.1",
        "localhost",
    )
    assert event["headers"]["accept"] == "application/vnd.oci.image.manifest.v1+json,application/json"
    assert event["queryStringParameters"] == {"a": "1,2"}
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == b"\x00\x01binary"
    assert event["requestContext"]["http"]["method"] == "PATCH"
    assert event["routeKey"] == "PATCH /v2/{n1}/blobs/uploads/{uuid}"


def test_body_over_api_gateway_limit_is_refused_with_413(client):
    reply = client.request("PATCH", "/v2/a/blobs/uploads/x", b"x" * (gw.API_GATEWAY_BODY_LIMIT + 1))
    assert reply.status == 413
    assert reply.json() == {"message": "Request Entity Too Large"}


def test_event_over_lambda_payload_limit_is_refused_with_413(client):
    # 4.8 MB of binary body becomes 6.4 MB of base64: over Lambda's 6,291,556 bytes.
    reply = client.request("PATCH", "/v2/a/blobs/uploads/x", b"x" * 4_800_000, {"content-type": "application/octet-stream"})
    assert reply.status == 413


def test_limits_off_lets_large_requests_through(moto):
    gateway = gw.Gateway(gw.Limits.off())
    status, _, _ = gateway.invoke("POST", "/v2/big/blobs/uploads/", "", [("content-type", "application/octet-stream")], b"x" * 4_800_000)
    assert status == 202


def test_a_function_over_the_timeout_gets_503(moto):
    gateway = gw.Gateway(gw.Limits(timeout=0.2))
    gateway.handlers["BaseFunction"] = lambda event, context: time.sleep(1)
    status, _, body = gateway.invoke("GET", "/v2/", "", [], b"")
    assert status == 503 and json.loads(body) == {"message": "Service Unavailable"}


def test_a_crashing_function_gets_api_gateways_500(moto):
    gateway = gw.Gateway()

    def crash(event, context):
        raise RuntimeError("boom")

    gateway.handlers["BaseFunction"] = crash
    status, _, body = gateway.invoke("GET", "/v2/", "", [], b"")
    assert status == 500 and json.loads(body) == {"message": "Internal Server Error"}


@pytest.fixture
def server(moto, gateway):
    srv = gw.serve(gateway, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address
    srv.shutdown()
    srv.server_close()


def test_tls_client_hello_on_the_plain_port_is_refused_and_the_server_keeps_serving(server):
    with socket.create_connection(server) as raw:
        # The first bytes of a TLS 1.2 ClientHello, as dockerd sends before falling back to HTTP.
        raw.sendall(bytes.fromhex("16030100c4010000c00303") + b"\x00" * 64)
        raw.settimeout(5)
        answer = raw.recv(100)
    assert answer == b"" or answer.startswith(b"HTTP/1.") and b" 400 " in answer[:20]
    conn = http.client.HTTPConnection(*server)
    conn.request("GET", "/v2/")
    assert conn.getresponse().status == 200


def test_chunked_request_body_is_decoded(server):
    conn = http.client.HTTPConnection(*server)
    conn.request("POST", "/v2/chunky/blobs/uploads/")
    location = conn.getresponse().getheader("Location")
    conn.close()
    conn = http.client.HTTPConnection(*server)
    conn.request("PATCH", location, body=iter([b"hello ", b"world"]), headers={"Content-Type": "application/octet-stream"}, encode_chunked=True)
    response = conn.getresponse()
    response.read()
    assert response.status == 202
    assert response.getheader("Range") == "0-10"


def test_head_keeps_the_functions_content_length(server, client):
    manifest, digest = client.push_image("heads/up", "v1")
    conn = http.client.HTTPConnection(*server)
    conn.request("HEAD", "/v2/heads/up/manifests/v1")
    response = conn.getresponse()
    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(manifest))
    assert response.getheader("Docker-Content-Digest") == digest
    assert response.read() == b""


def test_an_interrupted_patch_changes_nothing_and_the_upload_resumes(server):
    conn = http.client.HTTPConnection(*server)
    conn.request("POST", "/v2/resume/blobs/uploads/")
    location = conn.getresponse().getheader("Location")
    conn.close()
    with socket.create_connection(server) as raw:
        raw.sendall(f"PATCH {location} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 1000\r\n\r\n".encode() + b"x" * 10)
    # The client hung up after 10 of 1000 bytes: no event reached the function.
    conn = http.client.HTTPConnection(*server)
    conn.request("GET", location)
    response = conn.getresponse()
    response.read()
    assert (response.status, response.getheader("Range")) == (204, "0-0")
    conn.request("PATCH", location, body=b"complete", headers={"Content-Type": "application/octet-stream", "Content-Range": "0-7"})
    response = conn.getresponse()
    response.read()
    assert (response.status, response.getheader("Range")) == (202, "0-7")


def _raw_exchange(address, request: bytes) -> bytes:
    """Send ``request`` and read until the server closes; a hang fails the test after 5 s."""
    with socket.create_connection(address) as raw:
        raw.settimeout(5)
        raw.sendall(request)
        received = b""
        while True:
            data = raw.recv(65536)  # socket.timeout here means the gateway neither answered nor closed
            if not data:
                return received
            received += data


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: -1\r\n\r\nhello",
        b"Content-Length: abc\r\n\r\nhello",
        b"Content-Length: \xc2\xb2\r\n\r\nhe",
        b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        b"Content-Length: " + b"9" * 5000 + b"\r\n\r\nhello",
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello!!\r\n0\r\n\r\n",
        b"Transfer-Encoding: chunked\r\n\r\n" + b"f" * 5000 + b"\r\nhello\r\n0\r\n\r\n",
    ],
    ids=["negative", "letters", "superscript", "two-lengths", "5000-digits", "chunk-zz", "chunk-negative", "chunk-overrun", "chunk-5000-digits"],
)
def test_a_body_with_bad_framing_gets_400_and_the_connection_closes(server, framing):
    answer = _raw_exchange(server, b"PATCH /v2/a/blobs/uploads/x HTTP/1.1\r\nHost: x\r\n" + framing)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(body) == {"message": "Bad Request"}
    conn = http.client.HTTPConnection(*server)
    conn.request("GET", "/v2/")
    assert conn.getresponse().status == 200  # and the gateway keeps serving
