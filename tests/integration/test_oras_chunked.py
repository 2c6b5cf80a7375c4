"""Chunked uploads from a chunking client we did not write: the ORAS Python SDK (``oras``).

It sends the blob as PATCH requests with ``Content-Range``, each through API
Gateway and Lambda as on AWS (the local stack's limits are on), sized by the
``OCI-Chunk-Max-Length`` the registry advertises.
"""

from __future__ import annotations

import hashlib
import os

import oras.container
import oras.oci
import oras.provider
import requests

MIB = 1024 * 1024


def test_oras_pushes_a_50_mb_blob_in_chunks_and_it_pulls_back_byte_for_byte(registry, alice, tmp_path):
    data = os.urandom(50 * MIB)
    blob = tmp_path / "layer.bin"
    blob.write_bytes(data)
    client = oras.provider.Registry(hostname=registry, insecure=True)
    container = client.get_container(f"{registry}/alice/chunked:1")
    token = requests.get(
        f"http://{registry}/token", params={"service": registry, "scope": "repository:alice/chunked:pull,push"}, auth=(alice.name, alice.password)
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    # oras-py caches the first token it gets and reuses it for every scope (a pull token from its
    # existence check would be refused for the push), so it is given the push token up front.
    client.auth.set_token_auth(token)
    advertised = requests.post(f"http://{registry}/v2/alice/chunked/blobs/uploads/", headers=bearer)
    chunk = int(advertised.headers["OCI-Chunk-Max-Length"])
    requests.delete(f"http://{registry}{advertised.headers['Location']}", headers=bearer)
    layer = oras.oci.NewLayer(str(blob), media_type="application/octet-stream", is_dir=False)
    sent = []
    original = client.do_request

    def recording(url, method="GET", data=None, headers=None, **kwargs):
        if method == "PATCH":
            sent.append(headers.get("Content-Range"))
        return original(url, method, data, headers, **kwargs)

    client.do_request = recording
    reply = client.upload_blob(str(blob), container, layer, do_chunked=True, chunk_size=chunk)
    assert reply.status_code == 201, reply.text
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert layer["digest"] == digest
    assert len(sent) == -(-len(data) // chunk) and sent[0] == f"0-{chunk - 1}"
    pulled = requests.get(f"http://{registry}/v2/alice/chunked/blobs/{digest}", headers=bearer)
    assert pulled.status_code == 200 and pulled.history and pulled.history[0].status_code == 307
    assert hashlib.sha256(pulled.content).hexdigest() == digest.split(":")[1]
