"""registry-proxy's own logic against the local stack: how it cuts bodies into parts, where its
``Location`` headers point, and when a blob is small enough for one ordinary request.

Raw HTTP through the proxy (8 MiB parts, its default), with the registry's own part listing
(``GET <session>/parts``) as the witness of what reached S3.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import urllib.error
import urllib.request

import pytest

from support import bearer

MiB = 1024 * 1024


def _token(proxy, creds, repo: str) -> str:
    """A push token, fetched through the proxy's /token as a client would."""
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{proxy.url}/v2/", timeout=30)
    _, params = bearer.parse_challenge(refused.value.headers["WWW-Authenticate"])
    return bearer.fetch_token(params["realm"], params["service"], [f"repository:{repo}:push,pull"], creds)["token"]


def _send(address: str, method: str, path: str, token: str, body=b"", headers=None, chunked=False):
    """(status, headers, body) of one request; *chunked* sends *body* (an iterable of bytes) chunked."""
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    try:
        conn.request(method, path, body=body, headers={"Authorization": f"Bearer {token}", **(headers or {})},
                     encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, response.headers, response.read()
    finally:
        conn.close()


def _open(proxy, token: str, repo: str) -> str:
    status, headers, _ = _send(proxy.address, "POST", f"/v2/{repo}/blobs/uploads/", token)
    assert status == 202
    return headers["Location"]


def _listed_parts(registry: str, session: str, token: str) -> list[int]:
    status, _, body = _send(registry, "GET", f"{session}/parts", token)
    assert status == 200, body
    return [part["size"] for part in json.loads(body)["parts"]]


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _served(registry: str, repo: str, digest: str, creds) -> bytes:
    with bearer.urlopen(f"http://{registry}/v2/{repo}/blobs/{digest}", creds=creds) as response:
        return response.read()


def test_chunks_of_any_size_become_full_parts_and_the_rest_waits_for_the_next_request(proxy, registry, admin_creds):
    repo = "proxied/parts"
    token = _token(proxy, admin_creds, repo)
    chunks = [os.urandom(3 * MiB + 1), os.urandom(7 * MiB), os.urandom(9 * MiB - 5)]
    data = b"".join(chunks)
    session = _open(proxy, token, repo)
    assert session.startswith(f"/v2/{repo}/blobs/uploads/")  # the proxy's own path, not the registry's URL

    received = 0
    for chunk in chunks:
        status, headers, _ = _send(proxy.address, "PATCH", session, token, chunk,
                                   {"Content-Range": f"{received}-{received + len(chunk) - 1}"})
        received += len(chunk)
        assert (status, headers["Range"], headers["Location"]) == (202, f"0-{received - 1}", session)

    assert _listed_parts(registry, session, token) == [8 * MiB, 8 * MiB]
    status, headers, _ = _send(proxy.address, "PUT", f"{session}?digest={_digest(data)}", token)
    assert (status, headers["Location"], headers["Docker-Content-Digest"]) == (201, f"/v2/{repo}/blobs/{_digest(data)}", _digest(data))
    assert _served(registry, repo, _digest(data), admin_creds) == data


def test_a_chunked_body_in_the_final_put_is_split_like_any_other(proxy, registry, admin_creds):
    repo = "proxied/chunked-put"
    token = _token(proxy, admin_creds, repo)
    pieces = [os.urandom(1 * MiB + 17) for _ in range(12)]
    data = b"".join(pieces)
    session = _open(proxy, token, repo)

    status, headers, body = _send(proxy.address, "PUT", f"{session}?digest={_digest(data)}", token, iter(pieces), chunked=True)

    assert (status, headers["Docker-Content-Digest"]) == (201, _digest(data)), body
    assert _served(registry, repo, _digest(data), admin_creds) == data


def test_a_blob_below_four_mib_goes_in_one_ordinary_request_without_parts(proxy, registry, requests, admin_creds):
    repo = "proxied/small-blob"
    token = _token(proxy, admin_creds, repo)
    data = os.urandom(3 * MiB)
    session = _open(proxy, token, repo)

    assert _send(proxy.address, "PATCH", session, token, data)[0] == 202
    status, _, _ = _send(proxy.address, "PUT", f"{session}?digest={_digest(data)}", token)

    assert status == 201
    assert not [c for c in requests if c.path.endswith("/parts")]
    assert [c.method for c in requests if c.path == session] == ["PUT"]
    assert _served(registry, repo, _digest(data), admin_creds) == data


def test_monolithic_post_of_a_large_blob_is_uploaded_in_parts(proxy, registry, admin_creds):
    repo = "proxied/monolithic"
    token = _token(proxy, admin_creds, repo)
    data = os.urandom(10 * MiB)

    status, headers, body = _send(proxy.address, "POST", f"/v2/{repo}/blobs/uploads/?digest={_digest(data)}", token, data,
                                  {"Content-Type": "application/octet-stream"})

    assert (status, headers["Location"]) == (201, f"/v2/{repo}/blobs/{_digest(data)}"), body
    assert _served(registry, repo, _digest(data), admin_creds) == data


def test_wrong_digest_is_the_registrys_digest_invalid_and_nothing_is_served(proxy, registry, admin_creds):
    repo = "proxied/wrong-digest"
    token = _token(proxy, admin_creds, repo)
    data = os.urandom(9 * MiB)
    claimed = _digest(b"something else")
    session = _open(proxy, token, repo)

    assert _send(proxy.address, "PATCH", session, token, data)[0] == 202
    status, _, body = _send(proxy.address, "PUT", f"{session}?digest={claimed}", token)

    assert (status, json.loads(body)["errors"][0]["code"]) == (400, "DIGEST_INVALID")
    with pytest.raises(urllib.error.HTTPError) as missing:
        bearer.urlopen(f"http://{registry}/v2/{repo}/blobs/{claimed}", method="HEAD", creds=admin_creds)
    assert missing.value.code == 404
    assert _send(proxy.address, "PUT", f"{session}?digest={claimed}", token)[0] == 404  # the proxy forgot it
