"""Section 1: AWS calls per request, in-process under moto.

Every read is repeated ``reps`` times; the calls must be the same each time
(``stable``), the handler time is the median. A 3 × 4 MB push is repeated
``push_reps`` times with fresh layers, request by request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from urllib.parse import urlencode

from bench import median
from bench.inprocess import ADMIN, ensure_token, running

REPO, PUBLIC = "bench/app", "bench/public"
PULL_LAYERS = 5  # the "typical image" of the cost section
PUSH_LAYERS, PUSH_LAYER_BYTES = 3, 4_000_000
OCTETS = {"content-type": "application/octet-stream"}
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = {"accept": f"{MANIFEST_TYPE},application/vnd.docker.distribution.manifest.v2+json"}


def summarize(name: str, samples: list, note: str = "") -> dict:
    """One table row: the calls (checked identical across samples) and median figures."""
    first = samples[0]
    return {
        "name": name,
        "note": note,
        "status": first.status,
        "calls": first.calls,
        "stable": all(s.calls == first.calls for s in samples),
        "variants": sorted({json.dumps(s.calls, sort_keys=True) for s in samples}),
        "read_units": median(s.read_units for s in samples),
        "write_units": median(s.write_units for s in samples),
        "items_read": median(s.items_read for s in samples),
        "handler_ms": median(s.handler_ms for s in samples),
        "invocations": first.invocations,
        "log_bytes": median(s.log_bytes for s in samples),
        "samples": len(samples),
    }


def token_path(scope: str) -> str:
    return "/token?" + urlencode([("service", "registry.test"), ("scope", scope)])


def basic(credentials) -> dict:
    return {"authorization": "Basic " + base64.b64encode(":".join(credentials).encode()).decode()}


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _manifest(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _digest(l), "size": len(l)} for l in layers],
        }
    ).encode()


def seed_pull_image(reg) -> dict:
    """A 5-layer image in a private and in a public repository; returns its digests."""
    from registry import accounts

    admin = reg.client()
    layers = [os.urandom(2048) for _ in range(PULL_LAYERS)]
    manifest, digest = admin.push_image(REPO, "v1", layers)
    admin.push_image(PUBLIC, "v1", layers)
    accounts.set_visibility(PUBLIC, "public")
    return {"manifest": digest, "layer": _digest(layers[0]), "manifest_bytes": len(manifest)}


def measure_reads(reg, pushed: dict, reps: int) -> list[dict]:
    """Pull-side requests, as docker and containerd send them."""
    admin, anonymous = reg.client(), reg.client(credentials=None)
    m = lambda client, method, path, **kw: [reg.measure(client, method, path, **kw) for _ in range(reps)]  # noqa: E731
    manifest = f"/v2/{REPO}/manifests"
    blob = f"/v2/{REPO}/blobs/{pushed['layer']}"
    rows = [
        summarize("GET /v2/ without a token (401 challenge)", m(admin, "GET", "/v2/", raw=True, expect=(401,))),
        summarize("GET /v2/ with a token", m(admin, "GET", "/v2/")),
        summarize("GET /token, Basic credentials (password)", m(admin, "GET", token_path(f"repository:{REPO}:pull"), raw=True, headers=basic(ADMIN))),
        summarize("GET /token, anonymous (public repository)", m(anonymous, "GET", token_path(f"repository:{PUBLIC}:pull"), raw=True)),
        summarize("manifest GET by tag", m(admin, "GET", f"{manifest}/v1", headers=ACCEPT)),
        summarize("manifest GET by digest", m(admin, "GET", f"{manifest}/{pushed['manifest']}", headers=ACCEPT)),
        summarize("manifest HEAD by tag", m(admin, "HEAD", f"{manifest}/v1", headers=ACCEPT)),
        summarize("manifest HEAD by digest", m(admin, "HEAD", f"{manifest}/{pushed['manifest']}", headers=ACCEPT)),
        summarize("manifest GET by tag, anonymous (public)", m(anonymous, "GET", f"/v2/{PUBLIC}/manifests/v1", headers=ACCEPT)),
        summarize("blob GET (307 to S3)", m(admin, "GET", blob, expect=(307,))),
        summarize("blob HEAD", m(admin, "HEAD", blob)),
        summarize("tags list", m(admin, "GET", f"/v2/{REPO}/tags/list")),
        summarize("catalog page (admin)", m(admin, "GET", "/v2/_catalog")),
    ]
    rows.append(summarize("manifest GET by tag, first request of a container", [_fresh_container(reg, admin, f"{manifest}/v1")]))
    rows.append(summarize("GET /token, first token of a container" + KMS, [_first_token(reg, admin)]))
    return rows


# Row-name suffixes of the token requests measured in each signing mode (template parameter TokenSigning).
KMS, SECRET = ", signing: kms", ", signing: secret"


def _first_token(reg, client):
    """A token request after the per-container caches are dropped: the signer loads its key and publishes it."""
    from registry.auth import tokens

    tokens.reset()
    reg.attach_recorder()
    return reg.measure(client, "GET", token_path(f"repository:{REPO}:pull"), raw=True, headers=basic(ADMIN))


def measure_secret_signing(reg, reps: int) -> list[dict]:
    """The token requests again with TokenSigning=secret: a secret made as the template makes it,
    the key read from it once per container, every token signed in memory."""
    from local_stack import resources
    from registry import config

    saved = {name: os.environ.get(name, "") for name in ("TOKEN_SIGNING", "TOKEN_SECRET_ID")}
    os.environ.update(TOKEN_SIGNING="secret", TOKEN_SECRET_ID=resources.create_signing_secret())
    config.settings.cache_clear()
    try:
        admin, anonymous = reg.client(), reg.client(credentials=None)
        first = _first_token(reg, admin)
        m = lambda client, method, path, **kw: [reg.measure(client, method, path, **kw) for _ in range(reps)]  # noqa: E731
        return [
            summarize("GET /token, first token of a container" + SECRET, [first]),
            summarize("GET /token, Basic credentials (password)" + SECRET, m(admin, "GET", token_path(f"repository:{REPO}:pull"), raw=True, headers=basic(ADMIN))),
            summarize("GET /token, anonymous (public repository)" + SECRET, m(anonymous, "GET", token_path(f"repository:{PUBLIC}:pull"), raw=True)),
        ]
    finally:
        os.environ.update(saved)
        config.settings.cache_clear()


def _fresh_container(reg, client, path):
    """A request after the per-container caches (clients, public key) are dropped."""
    from registry.auth import tokens

    ensure_token(client, path)
    tokens.reset()
    reg.attach_recorder()
    return reg.measure(client, "GET", path, headers=ACCEPT)


def push_once(reg, client, tag: str, first: bool) -> dict[str, list]:
    """Push a fresh 3 × 4 MB image the way skopeo and docker do; samples per request kind.

    The first push creates the repository (its manifest PUT may do more, e.g. list it).
    """
    name = "bench/push"
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag}).encode()
    layers = [os.urandom(PUSH_LAYER_BYTES) for _ in range(PUSH_LAYERS)]
    steps: dict[str, list] = {}
    for kind, data in [("config", config)] + [("layer", layer) for layer in layers]:
        post = reg.measure(client, "POST", f"/v2/{name}/blobs/uploads/", expect=(202,))
        location = post.headers["location"]
        patch = reg.measure(client, "PATCH", location, data, OCTETS, expect=(202,))
        put = reg.measure(client, "PUT", f"{location}?digest={_digest(data)}", expect=(201,))
        for step, sample in (("POST", post), ("PATCH", patch), ("PUT ?digest", put)):
            steps.setdefault(f"{kind} {step}", []).append(sample)
    body = _manifest(config, layers)
    steps["manifest PUT, new repository" if first else "manifest PUT"] = [reg.measure(client, "PUT", f"/v2/{name}/manifests/{tag}", body, {"content-type": MANIFEST_TYPE}, expect=(201,))]
    return steps


def measure_push(reg, reps: int) -> list[dict]:
    """``reps`` ≥ 2 pushes to one repository: the first creates it, the others update it."""
    client = reg.client()
    merged: dict[str, list] = {}
    for rep in range(reps):
        for step, samples in push_once(reg, client, f"r{rep}", rep == 0).items():
            merged.setdefault(step, []).extend(samples)
    labels = {
        "layer POST": "push: POST (start upload)",
        "layer PATCH": f"push: PATCH, {PUSH_LAYER_BYTES:,}-byte layer",
        "layer PUT ?digest": "push: PUT ?digest (complete)",
        "config POST": "push: POST, config blob",
        "config PATCH": "push: PATCH, config blob",
        "config PUT ?digest": "push: PUT ?digest, config blob",
        "manifest PUT": "push: manifest PUT (3 layers)",
        "manifest PUT, new repository": "push: manifest PUT (3 layers), first push of the repository",
    }
    return [summarize(labels[step], samples) for step, samples in merged.items()]


def run(options: dict) -> dict:
    with running() as reg:
        pushed = seed_pull_image(reg)
        reads = measure_reads(reg, pushed, options.get("reps", 15))
        pushes = measure_push(reg, options.get("push_reps", 3))
        reads += measure_secret_signing(reg, options.get("reps", 15))
    return {"reads": reads, "push": pushes, "manifest_bytes": pushed["manifest_bytes"], "pull_layers": PULL_LAYERS,
            "push_layers": PUSH_LAYERS, "push_layer_bytes": PUSH_LAYER_BYTES}
