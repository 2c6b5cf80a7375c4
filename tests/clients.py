"""What the unit tests use to talk to the registry in-process: a client that behaves
like docker (token challenge and retry), its replies, and an AWS call counter."""

from __future__ import annotations

ADMIN = ("admin", "admin-password-for-tests")


class Reply:
    """What a client sees: status, headers (case-insensitive lookup), body."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes):
        self.status = status
        self.headers = {name.lower(): value for name, value in headers}
        self.body = body

    @classmethod
    def from_result(cls, result: dict) -> "Reply":
        """What a client sees of a function's payload-2.0 result (a handler called directly)."""
        import base64

        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        return cls(result["statusCode"], list((result.get("headers") or {}).items()), body)

    def __repr__(self):
        return f"Reply({self.status}, {self.headers}, {self.body[:300]!r})"

    def header(self, name: str):
        return self.headers.get(name.lower())

    def json(self):
        import json

        return json.loads(self.body)

    @property
    def error_codes(self) -> list[str]:
        return [error["code"] for error in self.json()["errors"]]


class Client:
    """Requests through the local gateway in-process: template routing, real events, real handlers.

    Like docker, it answers a 401 challenge by asking the token service (with
    its credentials, the admin's by default; None for anonymous) and retrying
    once. It asks for every action on the repository, so one token serves all
    of a test's requests to it and counted calls stay those of the request.
    """

    def __init__(self, gateway, credentials=ADMIN):
        self.gateway = gateway
        self.credentials = credentials
        self.tokens: dict[str, str] = {}

    def raw(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> Reply:
        raw_path, _, query = path.partition("?")
        pairs = list((headers or {}).items())
        if body and not any(name.lower() == "content-length" for name, _ in pairs):
            pairs.append(("content-length", str(len(body))))
        if not any(name.lower() == "host" for name, _ in pairs):
            pairs.append(("host", "registry.test"))
        return Reply(*self.gateway.invoke(method, raw_path, query, pairs, body, host="registry.test"))

    def request(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> Reply:
        scope = self._scope_for(path, method)
        token = self.tokens.get(scope)
        sent = {**(headers or {}), **({"authorization": f"Bearer {token}"} if token else {})}
        reply = self.raw(method, path, body, sent)
        if reply.status == 401 and "bearer" in (reply.header("www-authenticate") or "").lower():
            self.tokens[scope] = self.token(scope)
            reply = self.raw(method, path, body, {**(headers or {}), "authorization": f"Bearer {self.tokens[scope]}"})
        return reply

    def authorize(self, path: str):
        """Fetch the token for ``path`` now, so the next request to it makes no token request."""
        scope = self._scope_for(path)
        self.tokens.setdefault(scope, self.token(scope))

    def token(self, *scopes: str) -> str:
        import base64
        from urllib.parse import urlencode

        headers = {}
        if self.credentials:
            headers["authorization"] = "Basic " + base64.b64encode(":".join(self.credentials).encode()).decode()
        query = urlencode([("service", "registry.test")] + [("scope", s) for s in scopes if s])
        reply = self.raw("GET", f"/token?{query}", headers=headers)
        assert reply.status == 200, reply.body
        return reply.json()["token"]

    @staticmethod
    def _scope_for(path: str, method: str | None = None) -> str:
        from registry import routes

        route, params = routes.match(path.partition("?")[0], method=method)
        if route is not None and route.name == "catalog":
            return "registry:catalog:*"
        if params.get("name"):
            return f"repository:{params['name']}:pull,push,delete"
        return ""

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


class CallCounter:
    """Counts AWS API calls per (service, operation) with a botocore before-call hook."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def __call__(self, model, **kwargs):
        self.calls.append((model.service_model.service_name, model.name))

    def count(self, service: str | None = None) -> int:
        return sum(1 for s, _ in self.calls if service is None or s == service)
