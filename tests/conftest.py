"""Shared fixtures: an in-process emulated AWS (moto's mock_aws) with the template's own
bucket and table, and a way to call any function's handler with an event."""

from __future__ import annotations


import pytest
from moto import mock_aws

from local_stack import resources
from registry import aws, config


@pytest.fixture
def aws_env(monkeypatch):
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key, value in resources.function_environment().items():
        monkeypatch.setenv(key, value)
    aws.reset()
    config.settings.cache_clear()
    yield
    aws.reset()
    config.settings.cache_clear()


@pytest.fixture
def moto(aws_env):
    """moto's in-process AWS with the bucket and table created from template.yaml."""
    with mock_aws():
        resources.create_bucket()
        resources.create_table()
        yield


class Reply:
    """What a client sees: status, headers (case-insensitive lookup), body."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes):
        self.status = status
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body

    def header(self, name: str):
        return self.headers.get(name.lower())

    def json(self):
        import json

        return json.loads(self.body)

    @property
    def error_codes(self) -> list[str]:
        return [error["code"] for error in self.json()["errors"]]


class Client:
    """Requests through the local gateway in-process: template routing, real events, real handlers."""

    def __init__(self, gateway):
        self.gateway = gateway

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> Reply:
        raw_path, _, query = path.partition("?")
        pairs = list((headers or {}).items())
        if body and not any(name.lower() == "content-length" for name, _ in pairs):
            pairs.append(("content-length", str(len(body))))
        return Reply(*self.gateway.invoke(method, raw_path, query, pairs, body))

    def push_blob(self, name: str, data: bytes) -> str:
        """Monolithic upload; returns the digest."""
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        reply = self.request("POST", f"/v2/{name}/blobs/uploads/?digest={digest}", data, {"content-type": "application/octet-stream"})
        assert reply.status == 201, reply.body
        return digest

    def push_image(self, name: str, tag: str, layers: list[bytes] | None = None, config: bytes = b'{"architecture":"amd64","os":"linux"}'):
        """Push blobs and an OCI image manifest; returns (manifest bytes, digest)."""
        import hashlib
        import json

        layers = layers if layers is not None else [b"layer-" + tag.encode()]
        config_digest = self.push_blob(name, config)
        descriptors = [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": self.push_blob(name, layer), "size": len(layer)}
            for layer in layers
        ]
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": len(config)},
                "layers": descriptors,
            }
        ).encode()
        reply = self.request("PUT", f"/v2/{name}/manifests/{tag}", manifest, {"content-type": "application/vnd.oci.image.manifest.v1+json"})
        assert reply.status == 201, reply.body
        return manifest, "sha256:" + hashlib.sha256(manifest).hexdigest()


@pytest.fixture(scope="session")
def gateway():
    from local_stack.gateway import Gateway

    return Gateway()


@pytest.fixture
def client(moto, gateway) -> Client:
    return Client(gateway)


class CallCounter:
    """Counts AWS API calls per (service, operation) with a botocore before-call hook."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def __call__(self, model, **kwargs):
        self.calls.append((model.service_model.service_name, model.name))

    def count(self, service: str | None = None) -> int:
        return sum(1 for s, _ in self.calls if service is None or s == service)


@pytest.fixture
def aws_calls(moto):
    """Hook the registry's own clients (created after this) to count their calls."""
    from registry import aws as registry_aws

    counter = CallCounter()
    registry_aws.reset()
    for client in (registry_aws.s3(), registry_aws.dynamodb()):
        client.meta.events.register("before-call", counter)
    return counter
