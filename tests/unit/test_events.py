"""The sample events in ``events/``: shaped as API Gateway sends them, one for every
route key of ``template.yaml``, and each answered by the function that route key
reaches the way a registry client expects.

Every event is fed, as stored, to the handler of the function whose route key it
carries (found through ``local_stack.template.routes()``, never a hand-written
table). The state an event needs (blobs, a manifest, an upload session with the
fixed id the events use) is first created through the handlers themselves, with
the very bytes the events carry: the layer of ``upload-monolithic-post.json``, the
config of ``upload-session-patch.json`` and the manifest of ``manifest-put.json``.
"""

from __future__ import annotations

import base64
import calendar
import hashlib
import json
import re
import time
import types
import uuid as uuid_module
from functools import cache
from urllib.parse import parse_qs, parse_qsl, quote, urlparse, urlsplit

import pytest

from local_stack import gateway, template
from registry.routes import MAX_NAME_COMPONENTS
from tests.clients import Reply

EVENTS = template.ROOT / "events"
EVENT_FILES = sorted(path.name for path in EVENTS.glob("*.json"))
TEMPLATE_ROUTES = template.routes()
ROUTES_BY_KEY = {route.key: route for route in TEMPLATE_ROUTES}
ROUTER = gateway.Router(TEMPLATE_ROUTES)

# The upload session id every upload-session-*.json event names; tests open a
# session with exactly this id (see ``open_session``).
UPLOAD_ID = "5f0c3b2a9d8e4f1a8b7c6d5e4f3a2b1c"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# The tags the seeded image is pushed under: manifest-put.json's, and the depth-5 event's.
TAGS = ("latest", "v1.0.0")


# These tests are about event shapes and handlers; authentication has its own tests.
pytestmark = pytest.mark.usefixtures("auth_off")


@cache
def load_event(filename: str) -> dict:
    return json.loads((EVENTS / filename).read_text())


def event(filename: str) -> dict:
    """A fresh copy of the stored event (handlers must not see another test's changes)."""
    return json.loads(json.dumps(load_event(filename)))


def events_of(kind: str) -> list[str]:
    """``<kind>.json`` and its other-depth siblings ``<kind>-depthN.json``."""
    found = [name for name in EVENT_FILES if re.fullmatch(rf"{re.escape(kind)}(-depth\d)?\.json", name)]
    assert found, f"no sample event for {kind}"
    return found


def body_of(filename: str) -> bytes:
    sample = load_event(filename)
    body = sample.get("body") or ""
    return base64.b64decode(body) if sample.get("isBase64Encoded") else body.encode()


LAYER = body_of("upload-monolithic-post.json")
CONFIG = body_of("upload-session-patch.json")
MANIFEST = body_of("manifest-put.json")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def repository(sample: dict) -> str:
    """The repository name the event addresses, as API Gateway's path parameters give it."""
    params = sample.get("pathParameters") or {}
    if "n1" in params:
        return "/".join(params[f"n{i}"] for i in range(1, MAX_NAME_COMPONENTS + 1) if f"n{i}" in params)
    proxy = params["proxy"]
    if sample["rawPath"].startswith("/api/v1/"):  # ANY /api/v1/repositories/{proxy+}: repositories/<name>[/<setting>]
        found = re.fullmatch(r"(.+?)(?:/(?:description|star|official|immutable|retention))?", proxy)
    else:
        found = re.fullmatch(r"(.+)/blobs/uploads/(?:[0-9a-f]{32}/parts)?", proxy)
    assert found, proxy
    return found.group(1)


# --- invoking handlers ----------------------------------------------------------------


@cache
def handler(code_uri: str):
    return gateway.load_handler(code_uri)


def invoke(sample: dict) -> Reply:
    """Call the function the event's route key belongs to in template.yaml."""
    route = ROUTES_BY_KEY[sample["routeKey"]]
    context = gateway.LambdaContext(route.function, sample["requestContext"]["requestId"])
    result = handler(route.code_uri)(sample, context)
    assert result["isBase64Encoded"] is True
    return Reply.from_result(result)


def call(method: str, path: str, query: str = "", headers: dict | None = None, body: bytes = b"") -> Reply:
    """A request routed by the template's route keys, as the local gateway would send it."""
    pairs = list((headers or {}).items())
    if body:
        pairs.append(("content-length", str(len(body))))
    route = ROUTER.find(method, path)
    return invoke(gateway.build_event(method, path, query, pairs, body, route.key, "198.51.100.7", "registry.test"))


# --- seeding through the handlers ------------------------------------------------------


def push_blob(name: str, data: bytes):
    reply = call("POST", f"/v2/{name}/blobs/uploads/", f"digest={quote(sha256(data))}", {"content-type": "application/octet-stream"}, data)
    assert reply.status == 201, reply


def push_blobs(name: str):
    push_blob(name, CONFIG)
    push_blob(name, LAYER)


def push_image(name: str):
    push_blobs(name)
    for tag in TAGS:
        reply = call("PUT", f"/v2/{name}/manifests/{tag}", headers={"content-type": OCI_MANIFEST}, body=MANIFEST)
        assert reply.status == 201, reply


@pytest.fixture
def open_session(monkeypatch):
    """Start an upload through the upload handler, with the session id the events name."""
    from registry.services import uploads

    fixed = types.SimpleNamespace(uuid4=lambda: uuid_module.UUID(hex=UPLOAD_ID))
    monkeypatch.setattr(uploads, "uuid", fixed)

    def start(name: str, data: bytes = b"") -> None:
        reply = call("POST", f"/v2/{name}/blobs/uploads/")
        assert reply.status == 202, reply
        assert reply.header("Location") == f"/v2/{name}/blobs/uploads/{UPLOAD_ID}"
        if data:
            reply = call("PATCH", f"/v2/{name}/blobs/uploads/{UPLOAD_ID}", headers={"content-type": "application/octet-stream"}, body=data)
            assert reply.status == 202, reply

    return start


# --- coverage: every route has a sample event, every event a route ----------------------


def test_every_route_key_in_the_template_has_a_sample_event():
    covered = {load_event(name)["routeKey"] for name in EVENT_FILES}
    missing = sorted(set(ROUTES_BY_KEY) - covered)
    assert not missing, f"route keys without a sample event in events/: {missing}"


def test_every_sample_event_names_a_route_key_the_template_defines():
    unknown = {name: load_event(name)["routeKey"] for name in EVENT_FILES if load_event(name)["routeKey"] not in ROUTES_BY_KEY}
    assert not unknown, f"events whose routeKey template.yaml does not define: {unknown}"


def test_the_samples_include_names_at_the_deepest_routed_depth_and_one_deeper():
    depths = {repository(load_event(name)).count("/") + 1 for name in EVENT_FILES if load_event(name).get("pathParameters", {}).get("n1")}
    assert depths == set(range(1, MAX_NAME_COMPONENTS + 1))
    too_deep = load_event("too-deep-name.json")
    assert too_deep["pathParameters"]["proxy"].split("/manifests/")[0].count("/") + 1 == MAX_NAME_COMPONENTS + 1


# --- shape: what API Gateway really sends ----------------------------------------------


@pytest.mark.parametrize("filename", EVENT_FILES)
def test_sample_event_reaches_its_route_key_through_the_gateways_routing(filename):
    sample = load_event(filename)
    found = ROUTER.find(sample["requestContext"]["http"]["method"], sample["rawPath"])
    assert found is not None and found.key == sample["routeKey"]


@pytest.mark.parametrize("filename", EVENT_FILES)
def test_sample_event_is_shaped_like_an_api_gateway_payload_2_event(filename):
    sample = load_event(filename)
    context, http = sample["requestContext"], sample["requestContext"]["http"]
    assert sample["version"] == "2.0"
    assert context["routeKey"] == sample["routeKey"]
    assert context["stage"] == "$default"
    assert http["path"] == sample["rawPath"]
    assert http["protocol"] == "HTTP/1.1"
    assert http["userAgent"] == sample["headers"]["user-agent"]
    assert http["sourceIp"] and context["accountId"] and context["apiId"] and context["requestId"]
    assert context["domainName"] == sample["headers"]["host"]
    assert context["domainName"].startswith(context["apiId"] + ".execute-api.")
    assert all(name == name.lower() for name in sample["headers"])
    parsed_time = calendar.timegm(time.strptime(context["time"], "%d/%b/%Y:%H:%M:%S +0000"))
    assert parsed_time * 1000 == context["timeEpoch"]

    method, _, route_path = sample["routeKey"].partition(" ")
    if method not in ("$default", "ANY"):
        assert http["method"] == method

    if sample["rawQueryString"]:
        expected = {}
        for name, value in parse_qsl(sample["rawQueryString"], keep_blank_values=True):
            expected[name] = f"{expected[name]},{value}" if name in expected else value
        assert sample["queryStringParameters"] == expected
    else:
        assert "queryStringParameters" not in sample

    if "{" in route_path:  # a path with variables: pathParameters fill it back to rawPath
        params = sample["pathParameters"]
        filled = re.sub(r"\{(\w+)\+?\}", lambda m: params[m.group(1)], route_path)
        assert filled == sample["rawPath"]
        assert set(params) == set(re.findall(r"\{(\w+)\+?\}", route_path))
    else:
        assert "pathParameters" not in sample

    # Bodies are base64-encoded exactly when the gateway treats the content type as binary.
    rebuilt = gateway.build_event(
        http["method"],
        sample["rawPath"],
        sample["rawQueryString"],
        list(sample["headers"].items()),
        body_of(filename),
        sample["routeKey"],
        http["sourceIp"],
        context["domainName"],
    )
    assert sample["isBase64Encoded"] == rebuilt["isBase64Encoded"]
    assert sample.get("body") == rebuilt.get("body")
    if "content-length" in sample["headers"]:
        assert int(sample["headers"]["content-length"]) == len(body_of(filename))


@pytest.mark.parametrize("filename", EVENT_FILES)
def test_sample_event_files_are_prettified_json(filename):
    text = (EVENTS / filename).read_text()
    assert text == json.dumps(json.loads(text), indent=2) + "\n"


def test_sample_manifest_references_the_sample_config_and_layer():
    manifest = json.loads(MANIFEST)
    assert manifest["mediaType"] == OCI_MANIFEST == load_event("manifest-put.json")["headers"]["content-type"]
    assert manifest["config"] == {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(CONFIG), "size": len(CONFIG)}
    assert [(layer["digest"], layer["size"]) for layer in manifest["layers"]] == [(sha256(LAYER), len(LAYER))]
    assert json.loads(CONFIG)["rootfs"]["type"] == "layers"


def test_digests_in_the_samples_are_those_of_the_sample_content():
    for name in events_of("blob-get") + events_of("blob-head") + events_of("blob-delete"):
        assert load_event(name)["pathParameters"]["digest"] == sha256(LAYER), name
    for name in events_of("manifest-delete"):
        assert load_event(name)["pathParameters"]["reference"] == sha256(MANIFEST), name
    for name in events_of("upload-monolithic-post"):
        assert load_event(name)["queryStringParameters"] == {"digest": sha256(LAYER)}, name
    for name in events_of("upload-session-put"):
        assert load_event(name)["queryStringParameters"] == {"digest": sha256(CONFIG)}, name
    for kind in ("upload-session-get", "upload-session-patch", "upload-session-put", "upload-session-delete"):
        for name in events_of(kind):
            assert load_event(name)["pathParameters"]["uuid"] == UPLOAD_ID, name


# --- base and fallbacks -----------------------------------------------------------------


def test_version_check_answers_200_with_the_v2_api_header(moto):
    reply = invoke(event("base-get.json"))
    assert reply.status == 200
    assert reply.header("Docker-Distribution-API-Version") == "registry/2.0"
    assert reply.header("Content-Type") == "application/json"
    assert reply.json() == {}
    assert reply.header("Content-Length") == str(len(reply.body))


def test_version_check_head_has_no_body_but_the_get_length(moto):
    get = invoke(event("base-get.json"))
    reply = invoke(event("base-head.json"))
    assert reply.status == 200
    assert reply.header("Docker-Distribution-API-Version") == "registry/2.0"
    assert reply.body == b""
    assert reply.header("Content-Length") == str(len(get.body))


def test_a_path_that_is_no_endpoint_is_not_found(moto):
    reply = invoke(event("default-unknown-path.json"))
    assert reply.status == 404
    assert reply.header("Content-Type") == "application/json"
    assert reply.error_codes == ["NOT_FOUND"]


def test_a_name_deeper_than_the_routed_depth_is_name_invalid(moto):
    reply = invoke(event("too-deep-name.json"))
    assert reply.status == 400
    assert reply.error_codes == ["NAME_INVALID"]


# --- catalog and tags ---------------------------------------------------------------------


def test_catalog_lists_every_pushed_repository_in_order(moto):
    names = sorted({repository(load_event(name)) for name in events_of("manifest-put")})
    for name in names:
        push_image(name)
    reply = invoke(event("catalog-get.json"))
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    assert reply.json() == {"repositories": names}
    assert reply.header("Link") is None  # n=100 holds them all


def test_catalog_of_an_empty_registry_is_an_empty_list(moto):
    reply = invoke(event("catalog-get.json"))
    assert reply.status == 200
    assert reply.json() == {"repositories": []}


@pytest.mark.parametrize("filename", events_of("tags-get"))
def test_tag_list_shows_the_pushed_tags(moto, filename):
    sample = event(filename)
    push_image(repository(sample))
    reply = invoke(sample)
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/json"
    assert reply.json() == {"name": repository(sample), "tags": sorted(TAGS)}


@pytest.mark.parametrize("filename", events_of("tags-get"))
def test_tag_list_of_an_unknown_repository_is_name_unknown(moto, filename):
    reply = invoke(event(filename))
    assert reply.status == 404
    assert reply.error_codes == ["NAME_UNKNOWN"]


@pytest.mark.parametrize("filename", events_of("referrers-get"))
def test_referrers_of_a_manifest_without_referrers_is_an_empty_index(moto, filename):
    reply = invoke(event(filename))
    assert reply.status == 200
    assert reply.header("Content-Type") == "application/vnd.oci.image.index.v1+json"
    assert reply.json() == {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": []}


@pytest.mark.parametrize("filename", events_of("referrers-get"))
def test_referrers_lists_a_manifest_whose_subject_is_the_digest(moto, filename):
    sample = event(filename)
    name = repository(sample)
    push_image(name)
    manifest = json.loads(MANIFEST)
    signature = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "artifactType": "application/vnd.example.signature",
            "config": manifest["config"],
            "layers": manifest["layers"],
            "subject": {"mediaType": OCI_MANIFEST, "digest": sha256(MANIFEST), "size": len(MANIFEST)},
        }
    ).encode()
    put = call("PUT", f"/v2/{name}/manifests/{sha256(signature)}", headers={"content-type": OCI_MANIFEST}, body=signature)
    assert put.status == 201 and put.header("OCI-Subject") == sha256(MANIFEST)
    reply = invoke(sample)
    assert reply.status == 200
    assert reply.json()["manifests"] == [
        {"mediaType": OCI_MANIFEST, "digest": sha256(signature), "size": len(signature), "artifactType": "application/vnd.example.signature"}
    ]


# --- manifests ----------------------------------------------------------------------------


@pytest.mark.parametrize("filename", events_of("manifest-get"))
def test_manifest_pull_returns_the_pushed_manifest_bytes(moto, filename):
    sample = event(filename)
    push_image(repository(sample))
    reply = invoke(sample)
    assert reply.status == 200, reply
    assert reply.body == MANIFEST
    assert reply.header("Content-Type") == OCI_MANIFEST
    assert reply.header("Docker-Content-Digest") == sha256(MANIFEST)
    assert reply.header("Content-Length") == str(len(MANIFEST))


@pytest.mark.parametrize("filename", events_of("manifest-head"))
def test_manifest_head_has_the_pull_headers_and_no_body(moto, filename):
    sample = event(filename)
    push_image(repository(sample))
    reply = invoke(sample)
    assert reply.status == 200, reply
    assert reply.body == b""
    assert reply.header("Content-Type") == OCI_MANIFEST
    assert reply.header("Docker-Content-Digest") == sha256(MANIFEST)
    assert reply.header("Content-Length") == str(len(MANIFEST))


@pytest.mark.parametrize("filename", events_of("manifest-get"))
def test_manifest_pull_from_an_unknown_repository_is_name_unknown(moto, filename):
    reply = invoke(event(filename))
    assert reply.status == 404
    assert reply.error_codes == ["NAME_UNKNOWN"]


@pytest.mark.parametrize("filename", events_of("manifest-head"))
def test_manifest_head_of_an_unknown_manifest_is_404_without_body(moto, filename):
    reply = invoke(event(filename))
    assert reply.status == 404
    assert reply.body == b""


def test_manifest_pull_of_an_unknown_tag_is_manifest_unknown(moto):
    sample = event("manifest-get-unknown-tag.json")
    push_image(repository(sample))
    reply = invoke(sample)
    assert reply.status == 404
    assert reply.error_codes == ["MANIFEST_UNKNOWN"]


@pytest.mark.parametrize("filename", events_of("manifest-put"))
def test_manifest_push_answers_201_with_its_digest_and_location(moto, filename):
    sample = event(filename)
    name = repository(sample)
    push_blobs(name)
    reply = invoke(sample)
    assert reply.status == 201, reply
    assert reply.header("Docker-Content-Digest") == sha256(MANIFEST)
    assert reply.header("Location") == f"/v2/{name}/manifests/{sha256(MANIFEST)}"
    pulled = call("GET", f"/v2/{name}/manifests/{sample['pathParameters']['reference']}", headers={"accept": OCI_MANIFEST})
    assert pulled.status == 200 and pulled.body == MANIFEST


@pytest.mark.parametrize("filename", events_of("manifest-put"))
def test_manifest_push_before_its_blobs_is_manifest_blob_unknown(moto, filename):
    reply = invoke(event(filename))
    assert reply.status == 400
    assert reply.error_codes == ["MANIFEST_BLOB_UNKNOWN"]


@pytest.mark.parametrize("filename", events_of("manifest-delete"))
def test_manifest_delete_by_digest_removes_the_manifest_and_its_tags(moto, filename):
    sample = event(filename)
    name = repository(sample)
    push_image(name)
    reply = invoke(sample)
    assert reply.status == 202, reply
    by_digest = call("GET", f"/v2/{name}/manifests/{sha256(MANIFEST)}")
    assert by_digest.status == 404 and by_digest.error_codes == ["MANIFEST_UNKNOWN"]
    for tag in TAGS:
        by_tag = call("GET", f"/v2/{name}/manifests/{tag}")
        assert by_tag.status == 404 and by_tag.error_codes == ["MANIFEST_UNKNOWN"]


@pytest.mark.parametrize("filename", events_of("manifest-delete"))
def test_manifest_delete_of_an_unknown_manifest_is_404(moto, filename):
    reply = invoke(event(filename))
    assert reply.status == 404
    assert set(reply.error_codes) <= {"MANIFEST_UNKNOWN", "NAME_UNKNOWN"} and reply.error_codes


# --- blobs ----------------------------------------------------------------------------------


@pytest.mark.parametrize("filename", events_of("blob-get"))
def test_blob_pull_redirects_to_a_presigned_url_for_the_blob_object(moto, filename):
    sample = event(filename)
    push_blobs(repository(sample))
    reply = invoke(sample)
    assert reply.status == 307, reply
    assert reply.header("Docker-Content-Digest") == sha256(LAYER)
    location = urlparse(reply.header("Location"))
    assert location.scheme == "https"
    assert location.path.endswith(f"/blobs/sha256/{hashlib.sha256(LAYER).hexdigest()}")
    query = parse_qs(location.query)
    assert query["X-Amz-Expires"] == [str(template.parameter_default("PresignSeconds"))]
    assert "X-Amz-Signature" in query


def test_blob_pull_redirect_serves_the_blob_bytes(moto):
    import requests

    sample = event("blob-get.json")
    push_blobs(repository(sample))
    reply = invoke(sample)
    fetched = requests.get(reply.header("Location"), timeout=10)
    assert fetched.status_code == 200
    assert fetched.content == LAYER


@pytest.mark.parametrize("filename", events_of("blob-head"))
def test_blob_head_reports_digest_and_size_without_body(moto, filename):
    sample = event(filename)
    push_blobs(repository(sample))
    reply = invoke(sample)
    assert reply.status == 200, reply
    assert reply.body == b""
    assert reply.header("Docker-Content-Digest") == sha256(LAYER)
    assert reply.header("Content-Length") == str(len(LAYER))
    assert reply.header("Content-Type") == "application/octet-stream"


@pytest.mark.parametrize("filename", events_of("blob-get"))
def test_blob_pull_of_a_blob_not_in_the_repository_is_blob_unknown(moto, filename):
    sample = event(filename)
    push_blobs("someone/else")  # stored in the registry, but not linked into this repository
    reply = invoke(sample)
    assert reply.status == 404
    assert reply.error_codes == ["BLOB_UNKNOWN"]


@pytest.mark.parametrize("filename", events_of("blob-head"))
def test_blob_head_of_an_unknown_blob_is_404_without_body(moto, filename):
    reply = invoke(event(filename))
    assert reply.status == 404
    assert reply.body == b""


@pytest.mark.parametrize("filename", events_of("blob-delete"))
def test_blob_delete_unlinks_the_blob_from_the_repository(moto, filename):
    sample = event(filename)
    name = repository(sample)
    push_blobs(name)
    reply = invoke(sample)
    assert reply.status == 202, reply
    after = call("HEAD", f"/v2/{name}/blobs/{sha256(LAYER)}")
    assert after.status == 404


@pytest.mark.parametrize("filename", events_of("blob-delete"))
def test_blob_delete_of_an_unknown_blob_is_blob_unknown(moto, filename):
    reply = invoke(event(filename))
    assert reply.status == 404
    assert reply.error_codes == ["BLOB_UNKNOWN"]


# --- uploads ----------------------------------------------------------------------------------


@pytest.mark.parametrize("filename", events_of("upload-start-post"))
def test_upload_start_opens_a_session_the_location_reaches(moto, filename):
    sample = event(filename)
    name = repository(sample)
    reply = invoke(sample)
    assert reply.status == 202, reply
    location = reply.header("Location")
    found = re.fullmatch(rf"/v2/{re.escape(name)}/blobs/uploads/([0-9a-f]{{32}})", location)
    assert found, location
    assert reply.header("Docker-Upload-UUID") == found.group(1)
    assert reply.header("Range") == "0-0"
    assert int(reply.header("OCI-Chunk-Max-Length")) > 0
    status = call("GET", location)
    assert status.status == 204


@pytest.mark.parametrize("filename", events_of("upload-monolithic-post"))
def test_monolithic_upload_stores_the_blob_in_one_request(moto, filename):
    sample = event(filename)
    name = repository(sample)
    reply = invoke(sample)
    assert reply.status == 201, reply
    assert reply.header("Docker-Content-Digest") == sha256(LAYER)
    assert reply.header("Location") == f"/v2/{name}/blobs/{sha256(LAYER)}"
    head = call("HEAD", f"/v2/{name}/blobs/{sha256(LAYER)}")
    assert head.status == 200 and head.header("Content-Length") == str(len(LAYER))


@pytest.mark.parametrize("filename", events_of("upload-monolithic-post"))
def test_monolithic_upload_with_a_digest_that_does_not_match_is_digest_invalid(moto, filename):
    sample = event(filename)
    tampered = bytes([LAYER[0] ^ 0xFF]) + LAYER[1:]  # same length, other content
    sample["body"] = base64.b64encode(tampered).decode()
    reply = invoke(sample)
    assert reply.status == 400
    assert reply.error_codes == ["DIGEST_INVALID"]
    head = call("HEAD", f"/v2/{repository(sample)}/blobs/{sha256(LAYER)}")
    assert head.status == 404


@pytest.mark.parametrize("filename", events_of("upload-session-get"))
def test_upload_status_reports_the_bytes_received(moto, open_session, filename):
    sample = event(filename)
    name = repository(sample)
    open_session(name, CONFIG)
    reply = invoke(sample)
    assert reply.status == 204, reply
    assert reply.header("Range") == f"0-{len(CONFIG) - 1}"
    assert reply.header("Docker-Upload-UUID") == UPLOAD_ID
    assert reply.header("Location") == f"/v2/{name}/blobs/uploads/{UPLOAD_ID}"


@pytest.mark.parametrize("filename", events_of("upload-session-patch"))
def test_upload_chunk_is_accepted_and_the_range_advances(moto, open_session, filename):
    sample = event(filename)
    name = repository(sample)
    open_session(name)
    reply = invoke(sample)
    assert reply.status == 202, reply
    assert reply.header("Range") == f"0-{len(CONFIG) - 1}"
    assert reply.header("Location") == f"/v2/{name}/blobs/uploads/{UPLOAD_ID}"
    assert reply.header("Docker-Upload-UUID") == UPLOAD_ID


@pytest.mark.parametrize("filename", events_of("upload-session-patch"))
def test_upload_chunk_out_of_order_is_range_invalid(moto, open_session, filename):
    sample = event(filename)
    open_session(repository(sample), b"x")  # the session is at offset 1; the chunk claims 0-
    reply = invoke(sample)
    assert reply.status == 416
    assert reply.error_codes == ["RANGE_INVALID"]
    assert reply.header("Range") == "0-0"


@pytest.mark.parametrize("filename", events_of("upload-session-put"))
def test_upload_completion_links_the_blob_and_closes_the_session(moto, open_session, filename):
    sample = event(filename)
    name = repository(sample)
    open_session(name, CONFIG)
    reply = invoke(sample)
    assert reply.status == 201, reply
    assert reply.header("Docker-Content-Digest") == sha256(CONFIG)
    assert reply.header("Location") == f"/v2/{name}/blobs/{sha256(CONFIG)}"
    head = call("HEAD", f"/v2/{name}/blobs/{sha256(CONFIG)}")
    assert head.status == 200 and head.header("Content-Length") == str(len(CONFIG))
    closed = call("GET", f"/v2/{name}/blobs/uploads/{UPLOAD_ID}")
    assert closed.status == 404 and closed.error_codes == ["BLOB_UPLOAD_UNKNOWN"]


@pytest.mark.parametrize("filename", events_of("upload-session-put"))
def test_upload_completion_with_other_content_is_digest_invalid(moto, open_session, filename):
    sample = event(filename)
    name = repository(sample)
    open_session(name, CONFIG + b"\n")
    reply = invoke(sample)
    assert reply.status == 400
    assert reply.error_codes == ["DIGEST_INVALID"]
    assert call("HEAD", f"/v2/{name}/blobs/{sha256(CONFIG)}").status == 404


@pytest.mark.parametrize("filename", events_of("upload-session-delete"))
def test_upload_cancel_ends_the_session(moto, open_session, filename):
    sample = event(filename)
    name = repository(sample)
    open_session(name, CONFIG)
    reply = invoke(sample)
    assert reply.status == 204, reply
    after = call("GET", f"/v2/{name}/blobs/uploads/{UPLOAD_ID}")
    assert after.status == 404 and after.error_codes == ["BLOB_UPLOAD_UNKNOWN"]


@pytest.mark.parametrize(
    "filename", ["upload-session-get.json", "upload-session-patch.json", "upload-session-put.json", "upload-session-delete.json"]
)
def test_upload_session_requests_for_an_unknown_session_are_blob_upload_unknown(moto, filename):
    reply = invoke(event(filename))
    assert reply.status == 404
    assert reply.error_codes == ["BLOB_UPLOAD_UNKNOWN"]


@pytest.mark.parametrize("filename", events_of("upload-session-get"))
def test_upload_session_of_another_repository_is_blob_upload_unknown(moto, open_session, filename):
    open_session("someone/else", CONFIG)
    reply = invoke(event(filename))
    assert reply.status == 404
    assert reply.error_codes == ["BLOB_UPLOAD_UNKNOWN"]


# --- token service --------------------------------------------------------------------------


def test_token_get_with_basic_credentials_issues_a_token_and_a_refresh_token(moto):
    reply = invoke(event("token-get.json"))
    assert reply.status == 200
    document = reply.json()
    assert document["token"] == document["access_token"] and document["expires_in"] >= 60
    assert document["refresh_token"].startswith("rrt_")


def test_token_get_without_credentials_issues_an_anonymous_token(moto):
    reply = invoke(event("token-get-anonymous.json"))
    assert reply.status == 200 and "refresh_token" not in reply.json()


def test_token_post_with_the_password_grant_issues_an_access_token(moto):
    reply = invoke(event("token-post.json"))
    assert reply.status == 200
    assert {"access_token", "expires_in", "issued_at", "refresh_token"} <= set(reply.json())


def test_jwks_publishes_the_signing_key(moto):
    reply = invoke(event("jwks-get.json"))
    assert reply.status == 200
    [key] = reply.json()["keys"]
    assert (key["kty"], key["crv"], key["alg"]) == ("EC", "P-256", "ES256")


# --- search and the management API --------------------------------------------------------


def test_search_ping_and_search_answer_from_their_events(moto):
    assert invoke(event("search-ping-get.json")).json() == {"standalone": True}
    push_image("library/hello")
    document = invoke(event("search-get.json")).json()
    assert [r["name"] for r in document["results"]] == ["library/hello"]


@pytest.mark.parametrize("filename", events_of("repo-get"))
def test_repository_view_of_an_unknown_repository_is_name_unknown(moto, filename):
    assert invoke(event(filename)).error_codes == ["NAME_UNKNOWN"]


@pytest.mark.parametrize("kind", ["repo-description-put", "repo-official-put", "repo-get"])
def test_repository_management_events_answer_200_once_the_repository_exists(moto, kind):
    for filename in events_of(kind):
        sample = event(filename)
        push_image(repository(sample))
        reply = invoke(sample)
        assert reply.status == 200, (filename, reply.body)
        assert reply.json()["name"] == repository(sample)


@pytest.mark.parametrize("kind", ["repo-star-put", "repo-star-delete"])
def test_starring_needs_a_signed_in_user_which_these_events_lack(moto, kind):
    for filename in events_of(kind):
        sample = event(filename)
        push_image(repository(sample))
        assert invoke(sample).error_codes == ["UNAUTHORIZED"], filename


# --- direct-to-S3 uploads -----------------------------------------------------------------


def test_part_urls_are_presigned_upload_part_urls_of_the_session(moto, open_session):
    sample = event("upload-parts-post.json")
    name = repository(sample)
    open_session(name)
    reply = invoke(sample)
    assert reply.status == 200, reply
    parts = reply.json()["parts"]
    assert [p["partNumber"] for p in parts] == [1, 2]
    for part in parts:
        query = dict(parse_qsl(urlsplit(part["url"]).query))
        assert query["partNumber"] == str(part["partNumber"]) and query["uploadId"] and "X-Amz-Signature" in query
        assert urlsplit(part["url"]).path.endswith(f"/uploads/{UPLOAD_ID}/parts")


@pytest.mark.parametrize("filename", events_of("upload-parts-get"))
def test_parts_listing_shows_what_has_arrived(moto, open_session, filename):
    sample = event(filename)
    name = repository(sample)
    open_session(name)
    assert call("POST", f"/v2/{name}/blobs/uploads/{UPLOAD_ID}/parts").status == 200
    reply = invoke(sample)
    assert reply.status == 200, reply
    assert reply.json() == {"parts": []}
