"""Observability: the metrics each request emits as embedded metric format (EMF) lines, and
structured logs that carry the request id, function and repository but never a secret.

Requests go through the in-process gateway (template routing, real events, the
real handlers) or through ``registry.http.make_handler`` directly; the EMF lines
are read from stdout, where Powertools prints them and CloudWatch Logs picks them up.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading

import pytest
from registry import accounts, config, http, metrics, ratelimit
from registry.log import REDACTED, logger, scrub

from local_stack import gateway as local_gateway
from tests.clients import ADMIN, Client


def emf_documents(text: str) -> list[dict]:
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and '"_aws"' in line:
            found.append(json.loads(line))
    return found


def totals(documents: list[dict]) -> dict[str, float]:
    summed: dict[str, float] = {}
    for document in documents:
        for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            values = document[definition["Name"]]
            summed[definition["Name"]] = summed.get(definition["Name"], 0) + sum(values if isinstance(values, list) else [values])
    return summed


@pytest.fixture
def emf(capsys, monkeypatch):
    """Metrics switched on (as on AWS); call it to get the EMF documents printed since the last call."""
    monkeypatch.delenv("POWERTOOLS_METRICS_DISABLED", raising=False)
    monkeypatch.delenv("POWERTOOLS_DEV", raising=False)
    capsys.readouterr()

    def read() -> list[dict]:
        return emf_documents(capsys.readouterr().out)

    return read


def direct_event(method: str, path: str, headers: dict | None = None, body: bytes = b"") -> dict:
    return local_gateway.build_event(method, path, "", list((headers or {}).items()), body, f"{method} {path}", "198.51.100.7", "registry.test")


def test_the_template_names_the_namespace_and_service_the_metrics_use():
    from local_stack import resources

    env = resources.function_environment()
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == metrics.NAMESPACE == "ServerlessRegistry"
    assert env["POWERTOOLS_SERVICE_NAME"] == metrics.SERVICE


def test_a_push_counts_the_pushed_manifest_and_the_uploaded_bytes_and_a_pull_counts_one_pull(client, emf):
    layer = b"x" * 1000
    config_blob = b'{"architecture":"amd64","os":"linux"}'
    client.push_image("team/app", "v1", layers=[layer], config=config_blob)
    pushed = emf()
    assert totals(pushed)[metrics.PUSHES] == 1
    assert totals(pushed)[metrics.BYTES_UPLOADED] == len(layer) + len(config_blob)
    assert metrics.PULLS not in totals(pushed)

    assert client.request("HEAD", "/v2/team/app/manifests/v1").status == 200
    assert emf() == []  # a HEAD is no pull, and a 200 adds nothing else
    assert client.request("GET", "/v2/team/app/manifests/v1").status == 200
    assert totals(emf()) == {metrics.PULLS: 1}


def test_each_document_is_one_invocation_in_the_registry_namespace_with_the_service_dimension(client, emf):
    client.push_image("team/app", "v1")
    documents = emf()
    assert documents
    request_ids = [document["request_id"] for document in documents]
    assert len(set(request_ids)) == len(request_ids)  # at most one document per invocation
    for document in documents:
        [directive] = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "ServerlessRegistry"
        assert directive["Dimensions"] == [["service"]]
        assert document["service"] == "registry"
        assert document["function"] in {"upload", "manifest", "token"}
        units = {definition["Name"]: definition["Unit"] for definition in directive["Metrics"]}
        assert units.get(metrics.BYTES_UPLOADED, "Bytes") == "Bytes"
        assert all(unit == "Count" for name, unit in units.items() if name != metrics.BYTES_UPLOADED)


def test_a_chunked_upload_counts_the_whole_blob_once(client, emf):
    data = b"chunk-" * 2000
    location = client.request("POST", "/v2/team/app/blobs/uploads/").header("location")
    half = len(data) // 2
    for start, piece in ((0, data[:half]), (half, data[half:])):
        reply = client.request("PATCH", location, piece, {"content-type": "application/octet-stream", "content-range": f"{start}-{start + len(piece) - 1}"})
        assert reply.status == 202
    import hashlib

    assert client.request("PUT", f"{location}?digest=sha256:{hashlib.sha256(data).hexdigest()}").status == 201
    assert totals(emf()).get(metrics.BYTES_UPLOADED) == len(data)


def test_client_errors_are_counted_and_a_401_challenge_is_one_of_them(client, anonymous, emf):
    client.push_image("team/app", "v1")
    emf()
    assert client.request("GET", "/v2/team/app/manifests/nope").status == 404
    assert totals(emf()) == {metrics.CLIENT_ERRORS: 1}
    assert anonymous.raw("GET", "/v2/team/app/manifests/v1").status == 401
    assert totals(emf()) == {metrics.CLIENT_ERRORS: 1}


def test_a_rate_limited_pull_counts_as_rate_limited_and_as_a_client_error(moto, gateway, emf, monkeypatch):
    monkeypatch.setenv("RATE_LIMIT_ANONYMOUS", "1;w=3600")
    monkeypatch.setattr(ratelimit, "clock", lambda: 1_800_000_000.0)  # inside one window
    config.settings.cache_clear()
    Client(gateway).push_image("library/hello", "latest")
    accounts.set_visibility("library/hello", "public")
    anonymous = Client(gateway, credentials=None)
    assert anonymous.request("GET", "/v2/library/hello/manifests/latest").status == 200
    emf()
    refused = anonymous.request("GET", "/v2/library/hello/manifests/latest")
    assert refused.status == 429
    assert totals(emf()) == {metrics.CLIENT_ERRORS: 1, metrics.RATE_LIMITED: 1}
    config.settings.cache_clear()


def test_an_unhandled_error_is_a_server_error(auth_off, emf):
    def broken(request):
        raise RuntimeError("boom")

    handler = http.make_handler("base", {"base": {"GET": broken}})
    result = handler(direct_event("GET", "/v2/"), None)
    assert result["statusCode"] == 500
    [document] = emf()
    assert totals([document]) == {metrics.SERVER_ERRORS: 1}
    assert document["function"] == "base"


def test_an_invocation_without_a_metric_prints_nothing(auth_off, emf):
    handler = http.make_handler("base", {"base": {"GET": lambda request: http.Response(200)}})
    assert handler(direct_event("GET", "/v2/"), None)["statusCode"] == 200
    assert emf() == []


def test_disabled_metrics_print_nothing(auth_off, emf, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")

    def pulled(request):
        metrics.add(metrics.PULLS)
        return http.Response(500)

    handler = http.make_handler("base", {"base": {"GET": pulled}})
    for _ in range(150):  # past Powertools' 100-value auto-flush, which a shared metric set would hit
        handler(direct_event("GET", "/v2/"), None)
    assert emf() == []


def test_metrics_outside_a_handler_are_ignored(emf):
    metrics.add(metrics.PULLS)
    metrics.add_bytes(metrics.BYTES_UPLOADED, 10)
    assert emf() == []


def test_concurrent_invocations_keep_their_metrics_apart(auth_off, emf):
    """The local stack serves requests in threads: each invocation flushes only its own metrics."""
    both_inside = threading.Barrier(2, timeout=10)

    def adding(name):
        def handle(request):
            metrics.add(name)
            both_inside.wait()  # both invocations have added before either flushes
            return http.Response(200)

        return handle

    pulls = http.make_handler("base", {"base": {"GET": adding(metrics.PULLS)}})
    pushes = http.make_handler("base", {"base": {"GET": adding(metrics.PUSHES)}})
    events = {metrics.PULLS: direct_event("GET", "/v2/"), metrics.PUSHES: direct_event("GET", "/v2/")}
    threads = [threading.Thread(target=pulls, args=(events[metrics.PULLS], None)), threading.Thread(target=pushes, args=(events[metrics.PUSHES], None))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    by_request = {document["request_id"]: totals([document]) for document in emf()}
    assert by_request == {events[name]["requestContext"]["requestId"]: {name: 1} for name in events}


# --- logs -------------------------------------------------------------------------------------


@pytest.fixture
def log_lines():
    """Everything the registry's logger writes, at DEBUG, formatted as on AWS."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logger.registered_formatter)
    logger.addHandler(handler)
    level = logger.log_level
    logger.setLevel("DEBUG")
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    finally:
        logger.setLevel(level)
        logger._logger.removeHandler(handler)


def test_each_request_logs_one_json_line_with_request_id_function_and_repository(client, log_lines):
    client.push_image("team/app", "v1")
    reply = client.request("GET", "/v2/team/app/manifests/v1")
    [line] = [line for line in log_lines() if line.get("request_id") == reply.header("apigw-requestid")]
    assert line["message"] == "response"
    assert (line["function"], line["repository"], line["method"], line["path"], line["status"]) == (
        "manifest", "team/app", "GET", "/v2/team/app/manifests/v1", 200)
    assert line["service"] == "registry" and line["level"] == "INFO"


def test_no_password_or_token_reaches_the_logs(moto, gateway, log_lines, monkeypatch):
    """A whole sign-in: Basic credentials, the password grant, a refresh token, bearer tokens,
    an access token, and a failing handler whose exception quotes the Authorization header."""
    alice = Client(gateway, ("alice", "correct-horse-battery"))
    accounts.create_user("alice", "correct-horse-battery")
    basic = base64.b64encode(b"alice:correct-horse-battery").decode()
    reply = alice.raw("GET", "/token?service=registry.test&offline_token=true", headers={"authorization": f"Basic {basic}"})
    refresh, bearer = reply.json()["refresh_token"], reply.json()["token"]
    form = "grant_type=password&service=registry.test&username=alice&password=correct-horse-battery"
    alice.raw("POST", "/token", form.encode(), {"content-type": "application/x-www-form-urlencoded"})
    form = f"grant_type=refresh_token&service=registry.test&refresh_token={refresh}"
    alice.raw("POST", "/token", form.encode(), {"content-type": "application/x-www-form-urlencoded"})
    access_token = accounts.create_access_token("alice")["token"]
    alice.raw("GET", "/token?service=registry.test", headers={"authorization": "Basic " + base64.b64encode(f"alice:{access_token}".encode()).decode()})
    alice.raw("GET", "/v2/alice/app/tags/list", headers={"authorization": f"Bearer {bearer}"})
    alice.raw("GET", "/v2/", headers={"authorization": "Bearer not-a-valid-token-at-all"})

    def leaky(request):
        raise ValueError(f"could not parse {request.header('authorization')} / password=correct-horse-battery")

    handler = http.make_handler("base", {"base": {"GET": leaky}})
    monkeypatch.setenv("AUTH_ENABLED", "false")
    config.settings.cache_clear()
    assert handler(direct_event("GET", "/v2/", {"authorization": f"Bearer {bearer}"}), None)["statusCode"] == 500
    config.settings.cache_clear()

    lines = log_lines()
    text = json.dumps(lines)
    assert any(line.get("message") == "unhandled error" for line in lines)
    assert any(line.get("message") == "response" and line.get("function") == "token" for line in lines)
    for secret in ("correct-horse-battery", basic, bearer, refresh, access_token, "not-a-valid-token-at-all"):
        assert secret not in text, secret
    assert REDACTED in text


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        ("Authorization: Basic YWxpY2U6c2VjcmV0LXBhc3M=", "Authorization: Basic "),
        ("bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl", "bearer "),
        ("token eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl in a message", "token "),
        ("grant_type=password&username=alice&password=hunter2&service=x", "grant_type=password&username=alice&password="),
        ("refresh_token=rrt_abc_def", "refresh_token="),
        ("{'password': 'hunter2'}", "{'password': '"),
        ("used rpat_0123abcd_SECRETSECRET", "used rpat_"),
    ],
)
def test_scrub_redacts_credentials_in_text(raw, kept):
    cleaned = scrub(raw)
    assert cleaned.startswith(kept) and REDACTED in cleaned
    assert not any(secret in cleaned for secret in ("YWxpY2U6c2VjcmV0LXBhc3M=", "c2lnbmF0dXJl", "hunter2", "rrt_abc_def", "SECRETSECRET"))


def test_scrub_redacts_values_under_credential_keys_and_keeps_the_rest():
    record = {"headers": {"Authorization": "anything", "Cookie": "a=b", "host": "registry.test"}, "request_id": "r1", "status": 401, "path": "/v2/"}
    assert scrub(record) == {"headers": {"Authorization": REDACTED, "Cookie": REDACTED, "host": "registry.test"}, "request_id": "r1", "status": 401, "path": "/v2/"}
    assert scrub("invalid or expired token") == "invalid or expired token"
    assert scrub(f"{ADMIN[0]} signed in") == f"{ADMIN[0]} signed in"


def test_a_digest_in_a_log_record_is_written_as_its_text():
    from registry.references import Digest

    digest = Digest.of(b"layer")
    assert scrub({"digest": digest, "digests": [digest]}) == {"digest": str(digest), "digests": [str(digest)]}
