"""A 500 is a bug: generated bad input at every route answers 4xx with the OCI error JSON.

Hypothesis builds requests for every route of ``registry/routes.py`` (every
method it takes, and others), with odd names, references, digests and upload
ids, the query parameters the registry reads, the headers it reads (ranges,
lengths, media types, Basic and Bearer credentials, garbage included) and
bodies (bytes, nested or huge JSON, manifests with wrong types). Each request
goes through the local gateway in-process, as in the other unit tests, with
authentication on or off. Every answer must be below 500; every 4xx with a
body must be ``{"errors": [{"code", "message", …}]}``, except API Gateway's own
413 ``{"message": …}``. Every DynamoDB call is also checked against AWS's limits
(``tests/dynamodb_limits.py``), so an item or key that a request could make too
large shows up here as a 500 and as a failed check.

The examples are derandomized (the same ones every run) and their number fixed,
so CI is repeatable; the test takes about half a minute.
"""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from registry import config, routes

EXAMPLES = 400

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_TYPES = [
    OCI_MANIFEST,
    OCI_INDEX,
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/octet-stream",
    "application/json",
    "application/x-www-form-urlencoded",
    "text/plain; charset=utf-8",
    "*/*",
]
SHA = "sha256:" + "0" * 64
HEX_UPLOAD = "0" * 32


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# Characters that survive in a request line (no space, '?' or '#'), odd ones included.
_PATH_CHARS = st.characters(min_codepoint=33, max_codepoint=0x2FF, blacklist_characters="?#")
_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=0x2FF), max_size=40)
_HEADER_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60)

names = st.one_of(
    st.sampled_from(["fuzz/app", "fuzz/multi", "admin/app", "a", "a/b/c/d/e", "a/b/c/d/e/f", "Upper/x", "a//b", "-a", "a" * 300, "_catalog", "a%2Fb"]),
    st.text(_PATH_CHARS, min_size=1, max_size=30),
)
digests = st.one_of(
    st.sampled_from([SHA, "sha512:" + "0" * 128, "sha256:abc", "md5:" + "0" * 32, ":", "sha256:" + "G" * 64, "sha256:" + "0" * 5000]),
    st.text(_PATH_CHARS, min_size=1, max_size=80),
)
references = st.one_of(st.sampled_from(["v1", "latest", "multi", "x" * 129, ".hidden"]), digests)
upload_ids = st.one_of(st.sampled_from([HEX_UPLOAD, "0" * 31, "../x"]), st.text(_PATH_CHARS, min_size=1, max_size=40))

numbers = st.one_of(
    st.sampled_from(["0", "1", "25", "1000", "1001", "-1", "+1", "²", "٣", "1_0", " 1", "0x10", "9" * 20, "9" * 5000, "1e3", ""]),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    _TEXT,
)
odd_values = st.one_of(numbers, digests, names, _TEXT, st.sampled_from(["true", "false", "registry:catalog:*", "repository:fuzz/app:pull,push", "repository:" + "a" * 3000 + ":pull"]))
QUERY_KEYS = ["n", "last", "digest", "mount", "from", "scope", "q", "page", "service", "offline_token", "client_id", "account", "artifactType", "grant_type"]
queries = st.lists(st.tuples(st.sampled_from(QUERY_KEYS), odd_values), max_size=5)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _nested_jwt(depth: int) -> str:
    segment = base64.urlsafe_b64encode(("[" * depth).encode()).decode().rstrip("=")
    return f"Bearer {segment}.e30.c2ln"


user_names = st.one_of(st.sampled_from(["admin", "nobody", "Admin", "a" * 200, "a" * 3000, "rpat_" + "0" * 12 + "_x", ""]), _TEXT)
authorizations = st.one_of(
    st.just(None),
    st.just("ADMIN"),  # replaced by a valid admin token for the request's repository
    st.builds(_basic, user_names, st.one_of(st.sampled_from(["admin-password-for-tests", "wrong"]), _TEXT)),
    st.sampled_from(["Basic", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode(), "Bearer", "Bearer a.b.c", "Bearer " + "x" * 5000, _nested_jwt(3000), "Digest x"]),
    _HEADER_TEXT,
)
content_ranges = st.one_of(st.sampled_from(["0-0", "0-4", "5-9", "0-²", "0-" + "9" * 5000, "bytes=0-4", "4-0", "-1-4"]), _HEADER_TEXT)
headers = st.fixed_dictionaries(
    {},
    optional={
        "content-range": content_ranges,
        "content-length": numbers,
        "content-type": st.one_of(st.sampled_from(MEDIA_TYPES), _HEADER_TEXT),
        "accept": st.one_of(st.sampled_from(MEDIA_TYPES + [",".join(MEDIA_TYPES)]), _HEADER_TEXT),
        "x-forwarded-proto": _HEADER_TEXT,
    },
)

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), _TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=12,
)
descriptor_fields = st.fixed_dictionaries(
    {},
    optional={
        "mediaType": st.one_of(st.sampled_from(MEDIA_TYPES), json_values),
        "digest": st.one_of(digests, json_values),
        "size": st.one_of(st.integers(min_value=-1, max_value=10**30), json_values),
        "urls": json_values,
        "annotations": json_values,
    },
)
manifests = st.fixed_dictionaries(
    {"schemaVersion": st.one_of(st.just(2), json_values)},
    optional={
        "mediaType": st.one_of(st.sampled_from(MEDIA_TYPES), json_values),
        "config": st.one_of(descriptor_fields, json_values),
        "layers": st.one_of(st.lists(descriptor_fields, max_size=3), json_values),
        "manifests": st.one_of(st.lists(descriptor_fields, max_size=3), json_values),
        "subject": st.one_of(descriptor_fields, json_values),
        "artifactType": st.one_of(st.text(max_size=300), json_values),
        "annotations": st.one_of(st.dictionaries(_TEXT, _TEXT, max_size=3), st.just({"big": "x" * 300_000}), json_values),
        "description": json_values,
        "official": json_values,
    },
)
bodies = st.one_of(
    st.just(b""),
    st.binary(max_size=300),
    manifests.map(lambda d: json.dumps(d).encode()),
    json_values.map(lambda d: json.dumps(d).encode()),
    st.sampled_from(
        [
            b"[" * 2000 + b"]" * 2000,
            b'{"description":' + b"[" * 2000 + b"]" * 2000 + b"}",
            b"{" * 100_000,
            b'{"description":"' + b"x" * 20_000 + b'"}',
            b'"\\' * 50_000,
            b"grant_type=password&username=" + b"a" * 3000 + b"&password=x",
            b"grant_type=refresh_token&refresh_token=rrt_x.admin",
            b"\xff\xfe\x00",
        ]
    ),
)

METHODS = ["GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"]


def mostly(usual, odd):
    """``usual`` four times in five, so most requests get past the first check and reach deeper code."""
    return st.integers(0, 4).flatmap(lambda i: odd if i == 0 else usual)


@st.composite
def requests(draw):
    route = draw(st.sampled_from(routes.ROUTES))
    method = draw(mostly(st.sampled_from(route.methods), st.sampled_from(METHODS)))
    values = {
        "name": mostly(st.sampled_from(["fuzz/app", "fuzz/app", "fuzz/new", "admin/app", "a/b/c/d/e"]), names),
        "reference": mostly(st.sampled_from(["v1", "multi", "new", "IMAGE", "INDEX", SHA]), references),
        "digest": mostly(st.sampled_from(["IMAGE", "INDEX", SHA]), digests),
        "uuid": mostly(st.just("UPLOAD"), upload_ids),
    }
    path = route.path
    for key, strategy in values.items():
        if f"<{key}>" in path:
            path = path.replace(f"<{key}>", draw(strategy))
    if draw(st.booleans()):
        query = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in draw(queries))
    else:  # sent as typed, unencoded
        query = "&".join(f"{k}={v}" for k, v in draw(queries) if "#" not in v and " " not in v)
    return method, path, query, draw(headers), draw(authorizations), draw(bodies), draw(st.booleans())


def _check(method: str, status: int, body: bytes, request) -> None:
    assert status < 500, (status, body[:300], request)
    if status < 400 or method == "HEAD" or not body:
        return
    document = json.loads(body)
    if status == 413 and set(document) == {"message"}:
        return  # API Gateway's own answer: the request never reached a function
    errors = document["errors"]
    assert errors and all(isinstance(e["code"], str) and isinstance(e["message"], str) for e in errors), (status, body[:300], request)


def _seed(client) -> dict:
    """A repository with an image, an index and an open upload, so generated requests find things."""
    image, image_digest = client.push_image("fuzz/app", "v1")
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": image_digest, "size": len(image)}]}).encode()
    assert client.request("PUT", "/v2/fuzz/app/manifests/multi", index, {"content-type": OCI_INDEX}).status == 201
    return {"image": image_digest, "index": sha256(index)}


# The examples issue 11 reported, always tried first (method, path, query, headers, authorization, body, auth on).
_INDEX_TWICE = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{"mediaType": OCI_MANIFEST, "digest": "IMAGE", "size": 1}] * 2})
REPORTED = [
    ("GET", "/v1/search", "q=a&n=%C2%B2", {}, None, b"", True),
    ("GET", "/v2/_catalog", "n=" + "9" * 5000, {}, "ADMIN", b"", True),
    ("GET", "/v2/fuzz/app/tags/list", "n=%C2%B2", {}, "ADMIN", b"", True),
    ("GET", f"/v2/fuzz/app/referrers/{SHA}", "n=%C2%B2", {}, "ADMIN", b"", True),
    ("PATCH", f"/v2/fuzz/app/blobs/uploads/{HEX_UPLOAD}", "", {"content-range": "0-" + "9" * 5000}, "ADMIN", b"x", False),
    ("PUT", "/v2/fuzz/app/manifests/deep", "", {"content-type": OCI_MANIFEST}, "ADMIN", b'{"schemaVersion":2,"a":' + b"[" * 2000 + b"]" * 2000 + b"}", True),
    ("PUT", "/api/v1/repositories/fuzz/app/description", "", {}, "ADMIN", b'{"description":' + b"[" * 2000 + b"]" * 2000 + b"}", True),
    ("PUT", "/v2/fuzz/app/manifests/twice", "", {"content-type": OCI_INDEX}, "ADMIN", _INDEX_TWICE.encode(), True),
]


@settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
@given(request=requests())
@example(request=REPORTED[0])
@example(request=REPORTED[1])
@example(request=REPORTED[2])
@example(request=REPORTED[3])
@example(request=REPORTED[4])
@example(request=REPORTED[5])
@example(request=REPORTED[6])
@example(request=REPORTED[7])
def test_no_route_answers_5xx_to_generated_bad_input(client, monkeypatch, request):
    if not getattr(client, "seeded", None):
        client.seeded = _seed(client)
    _send(client, monkeypatch, request)


def _send(client, monkeypatch, request):
    method, path, query, sent, authorization, body, auth_on = request
    body = body.replace(b'"IMAGE"', json.dumps(client.seeded["image"]).encode())
    for placeholder in ("IMAGE", "INDEX"):
        path = path.replace(placeholder, client.seeded[placeholder.lower()])
    if "UPLOAD" in path:  # an open upload session of fuzz/app (anyone's, with authentication off)
        location = client.request("POST", "/v2/fuzz/app/blobs/uploads/").header("location")
        path = path.replace("UPLOAD", location.rsplit("/", 1)[-1])
    monkeypatch.setenv("AUTH_ENABLED", "true" if auth_on else "false")
    config.settings.cache_clear()
    sent = dict(sent)
    if authorization == "ADMIN":
        route, params = routes.match(path)
        scope = "registry:catalog:*" if route is not None and route.name == "catalog" else f"repository:{params.get('name') or 'fuzz/app'}:pull,push,delete"
        authorization = "Bearer " + client.token(scope) if len(scope) < 400 else None
    if authorization is not None:
        sent["authorization"] = authorization
    reply = client.raw(method, f"{path}?{query}" if query else path, body, sent)
    _check(method, reply.status, reply.body, request)


@pytest.mark.parametrize(
    "request_",
    [
        ("GET", "/token", "service=registry.test", {}, _basic("a" * 3000, "x"), b"", True),
        ("GET", "/v1/search", "q=a", {}, _basic("a" * 3000, "x"), b"", True),
        ("POST", "/token", "", {"content-type": "application/x-www-form-urlencoded"}, None, b"grant_type=password&username=" + b"a" * 3000 + b"&password=x", True),
    ],
    ids=["token-get", "search-basic", "token-post"],
)
def test_sign_in_with_a_3000_character_user_name_answers_4xx(client, monkeypatch, request_):
    client.seeded = {"image": SHA, "index": SHA}
    _send(client, monkeypatch, request_)
