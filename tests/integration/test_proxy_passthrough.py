"""registry-proxy forwards what is not a large upload as it is: sign-in, small pushes, pulls, listings.

The proxy runs in its own process in front of the local stack (AWS limits on). Pushes go through the
proxy; what they stored is read back from the registry directly, not through the proxy.
"""

from __future__ import annotations

import json
import socket
import ssl
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from support import bearer, images, require, skopeo


@pytest.fixture(scope="module", autouse=True)
def _skopeo():
    require("skopeo")


def _challenge(url: str) -> tuple[str, dict]:
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=30)
    assert refused.value.code == 401
    return bearer.parse_challenge(refused.value.headers["WWW-Authenticate"])


def test_challenge_realm_names_the_proxy_and_service_stays_the_registrys(proxy, registry):
    scheme, direct = _challenge(f"http://{registry}/v2/")
    _, through = _challenge(f"{proxy.url}/v2/")

    assert scheme == "bearer"
    assert through["realm"] == f"{proxy.url}/token"
    assert through["service"] == direct["service"]


def test_token_from_the_proxy_is_accepted_by_the_registry_itself(proxy, registry, admin_creds):
    _, params = _challenge(f"{proxy.url}/v2/")

    answer = bearer.fetch_token(params["realm"], params["service"], ["registry:catalog:*"], admin_creds)

    with bearer.urlopen(f"http://{registry}/v2/_catalog", token=answer["token"]) as response:
        assert response.status == 200


def test_wrong_password_through_the_proxy_is_refused_as_by_the_registry(proxy, admin_creds):
    _, params = _challenge(f"{proxy.url}/v2/")

    with pytest.raises(urllib.error.HTTPError) as refused:
        bearer.fetch_token(params["realm"], params["service"], [], (admin_creds.name, "not-the-password"))

    assert refused.value.code == 401


def test_small_image_pushed_through_the_proxy_is_served_by_the_registry_byte_for_byte(proxy, registry, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "src", [1_000_000, 3_000_000, 200], tag="v1")

    pushed = skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), f"{proxy.address}/proxied/small:v1", creds=admin_creds)

    assert pushed == image.digest
    skopeo.copy(f"{registry}/proxied/small@{image.digest}", images.oci_ref(tmp_path / "back", "v1"), creds=admin_creds)
    for digest in (image.digest, image.config.digest, *image.layer_digests):
        assert images.read_blob(tmp_path / "back", digest) == images.read_blob(tmp_path / "src", digest), digest


def test_pull_through_the_proxy_gets_the_pushed_bytes(proxy, registry, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "src", [500_000], tag="v1")
    skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), f"{registry}/proxied/pull:v1", creds=admin_creds)

    skopeo.copy(f"{proxy.address}/proxied/pull:v1", images.oci_ref(tmp_path / "back", "v1"), creds=admin_creds)

    for digest in (image.digest, image.config.digest, *image.layer_digests):
        assert images.read_blob(tmp_path / "back", digest) == images.read_blob(tmp_path / "src", digest), digest


def test_blob_redirect_to_s3_is_passed_to_the_client_not_followed(proxy, registry, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "src", [10_000], tag="v1")
    skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), f"{registry}/proxied/redirect:v1", creds=admin_creds)
    _, params = _challenge(f"{proxy.url}/v2/")
    token = bearer.fetch_token(params["realm"], params["service"], ["repository:proxied/redirect:pull"], admin_creds)["token"]

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(f"{proxy.url}/v2/proxied/redirect/blobs/{image.layer_digests[0]}",
                                     headers={"Authorization": f"Bearer {token}"})
    with pytest.raises(urllib.error.HTTPError) as redirected:
        opener.open(request, timeout=30)

    assert redirected.value.code == 307
    assert urlsplit(redirected.value.headers["Location"]).netloc not in (proxy.address, registry)


def test_catalog_and_tags_through_the_proxy_match_the_registry(proxy, registry, admin_creds, tmp_path):
    images.write_image(tmp_path / "src", [5_000], tag="t")
    for tag in ("b", "a"):
        skopeo.copy(images.oci_ref(tmp_path / "src", "t"), f"{proxy.address}/proxied/listing:{tag}", creds=admin_creds)

    for path in ("/v2/proxied/listing/tags/list", "/v2/_catalog"):
        with bearer.urlopen(f"{proxy.url}{path}", creds=admin_creds) as through, \
                bearer.urlopen(f"http://{registry}{path}", creds=admin_creds) as direct:
            assert json.load(through) == json.load(direct)


def test_blob_head_through_the_proxy_keeps_the_size(proxy, registry, admin_creds, tmp_path):
    image = images.write_image(tmp_path / "src", [123_456], tag="v1")
    skopeo.copy(images.oci_ref(tmp_path / "src", "v1"), f"{registry}/proxied/head:v1", creds=admin_creds)

    with bearer.urlopen(f"{proxy.url}/v2/proxied/head/blobs/{image.layer_digests[0]}", method="HEAD", creds=admin_creds) as response:
        assert int(response.headers["Content-Length"]) == image.layers[0].size
        assert response.headers["Docker-Content-Digest"] == image.layer_digests[0]


def test_tls_client_hello_gets_an_answer_or_a_close_and_the_proxy_keeps_serving(proxy):
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            context.wrap_socket(raw, server_hostname="127.0.0.1").close()

    assert proxy.alive()
    _challenge(f"{proxy.url}/v2/")


def _oci_error(error: urllib.error.HTTPError) -> str:
    return json.loads(error.read())["errors"][0]["code"]


def test_patch_to_a_session_the_proxy_did_not_open_is_blob_upload_unknown(proxy):
    request = urllib.request.Request(f"{proxy.url}/v2/proxied/x/blobs/uploads/not-a-session", data=b"abc", method="PATCH")

    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)

    assert (refused.value.code, _oci_error(refused.value)) == (404, "BLOB_UPLOAD_UNKNOWN")


def test_chunk_that_does_not_start_at_the_offset_is_range_invalid(proxy, admin_creds):
    with bearer.urlopen(f"{proxy.url}/v2/proxied/range/blobs/uploads/", method="POST", data=b"", creds=admin_creds) as opened:
        location = opened.headers["Location"]
    assert location.startswith("/v2/proxied/range/blobs/uploads/")
    _, params = _challenge(f"{proxy.url}/v2/")
    token = bearer.fetch_token(params["realm"], params["service"], ["repository:proxied/range:push,pull"], admin_creds)["token"]

    with pytest.raises(urllib.error.HTTPError) as refused:
        bearer.urlopen(f"{proxy.url}{location}", method="PATCH", data=b"abc", token=token, headers={"Content-Range": "5-7"})

    assert (refused.value.code, _oci_error(refused.value)) == (416, "RANGE_INVALID")
    assert refused.value.headers["Range"] == "0-0"
