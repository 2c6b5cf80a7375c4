"""A small upstream registry for the pull-through cache's unit tests, on 127.0.0.1 in a thread.

It speaks what the cache uses of the distribution API, as Docker Hub does:
``401`` with a Bearer challenge, a token endpoint, manifests (GET, HEAD),
blobs (GET, optionally ``307`` to a second path without credentials, like a
CDN; ``Range``). Every request is recorded (method, path, whether it carried a
token) so tests count what went upstream. ``mode`` makes it fail: ``down``
(connection closed), ``429``, ``500``.
"""

from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
TOKEN = "upstream-token-7f3a"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class FakeUpstream:
    def __init__(self, auth: str = "bearer", redirect_blobs: bool = False, credentials: tuple[str, str] | None = None):
        self.auth = auth  # bearer | basic | none
        self.redirect_blobs = redirect_blobs
        self.credentials = credentials  # required on the token endpoint (bearer) or every request (basic)
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[str, bytes]] = {}  # (repo, tag or digest) -> (media type, body)
        self.requests: list[tuple[str, str, bool]] = []
        self.mode = "ok"
        self.token_requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    # --- content ---

    def push(self, repo: str, tag: str, layers: list[bytes], config: bytes = b'{"architecture":"amd64","os":"linux"}') -> tuple[bytes, str]:
        """Store an image: (manifest body, its digest)."""
        for blob in (config, *layers):
            self.blobs[digest_of(blob)] = blob
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_of(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_of(b), "size": len(b)} for b in layers],
        }).encode()
        digest = digest_of(manifest)
        self.manifests[(repo, tag)] = (OCI_MANIFEST, manifest)
        self.manifests[(repo, digest)] = (OCI_MANIFEST, manifest)
        return manifest, digest

    def push_index(self, repo: str, tag: str, children: list[tuple[bytes, str]]) -> str:
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": d, "size": len(m), "platform": {"os": "linux", "architecture": "amd64"}} for m, d in children]}).encode()
        digest = digest_of(index)
        self.manifests[(repo, tag)] = (OCI_INDEX, index)
        self.manifests[(repo, digest)] = (OCI_INDEX, index)
        return digest

    def count(self, method: str | None = None, kind: str | None = None) -> int:
        return sum(1 for m, p, _ in self.requests if (method is None or m == method) and (kind is None or f"/{kind}/" in p))

    # --- the server ---

    def _handler(self):
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status, headers=None, body=b""):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status, code):
                self._send(status, {"Content-Type": "application/json"}, json.dumps({"errors": [{"code": code, "message": code.lower()}]}).encode())

            def _authorized(self) -> bool:
                header = self.headers.get("Authorization", "")
                if upstream.auth == "none":
                    return True
                if upstream.auth == "basic":
                    import base64

                    expected = "Basic " + base64.b64encode(":".join(upstream.credentials).encode()).decode()
                    return header == expected
                return header == f"Bearer {TOKEN}"

            def _challenge(self, scope: str):
                if upstream.auth == "basic":
                    value = 'Basic realm="fake"'
                else:
                    value = f'Bearer realm="{upstream.url}/token",service="fake-upstream",scope="{scope}"'
                self._send(401, {"WWW-Authenticate": value, "Content-Type": "application/json"},
                           json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]}).encode())

            def do_HEAD(self):
                self.do_GET()

            def do_GET(self):
                path = self.path
                upstream.requests.append((self.command, path, bool(self.headers.get("Authorization"))))
                if upstream.mode == "down":
                    self.close_connection = True
                    self.connection.close()
                    return
                if path.startswith("/token"):
                    upstream.token_requests.append(path)
                    if upstream.credentials is not None:
                        import base64

                        expected = "Basic " + base64.b64encode(":".join(upstream.credentials).encode()).decode()
                        if self.headers.get("Authorization") != expected:
                            return self._error(401, "UNAUTHORIZED")
                    return self._send(200, {"Content-Type": "application/json"}, json.dumps({"token": TOKEN, "expires_in": 300}).encode())
                if path.startswith("/cdn/"):
                    if self.headers.get("Authorization"):
                        return self._error(400, "CREDENTIALS_SENT_TO_CDN")
                    return self._blob(path.rsplit("/", 1)[-1])
                if upstream.mode == "429":
                    return self._send(429, {"Retry-After": "120", "Content-Type": "application/json"},
                                      json.dumps({"errors": [{"code": "TOOMANYREQUESTS", "message": "pull rate limit"}]}).encode())
                if upstream.mode == "500":
                    return self._error(500, "UNKNOWN")
                if not path.startswith("/v2/"):
                    return self._error(404, "NOT_FOUND")
                rest = path[4:]
                for kind in ("manifests", "blobs"):
                    marker = f"/{kind}/"
                    if marker in rest:
                        repo, reference = rest.rsplit(marker, 1)
                        break
                else:
                    return self._send(200) if self._authorized() else self._challenge("")
                if not self._authorized():
                    return self._challenge(f"repository:{repo}:pull")
                if kind == "manifests":
                    found = upstream.manifests.get((repo, reference))
                    if found is None:
                        return self._error(404, "MANIFEST_UNKNOWN" if any(r == repo for r, _ in upstream.manifests) else "NAME_UNKNOWN")
                    media_type, body = found
                    return self._send(200, {"Content-Type": media_type, "Docker-Content-Digest": digest_of(body)}, body)
                if reference not in upstream.blobs:
                    return self._error(404, "BLOB_UNKNOWN")
                if upstream.redirect_blobs:
                    return self._send(307, {"Location": f"/cdn/{reference}"})
                return self._blob(reference)

            def _blob(self, digest):
                data = upstream.blobs.get(digest)
                if data is None:
                    return self._error(404, "BLOB_UNKNOWN")
                wanted = self.headers.get("Range", "")
                if wanted.startswith("bytes="):
                    first, last = (int(x) for x in wanted[6:].split("-"))
                    part = data[first : last + 1]
                    return self._send(206, {"Content-Range": f"bytes {first}-{first + len(part) - 1}/{len(data)}"}, part)
                return self._send(200, {"Content-Type": "application/octet-stream", "Docker-Content-Digest": digest}, data)

        return Handler
