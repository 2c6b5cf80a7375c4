"""What a cold container imports before answering (docs/performance.md, section 3).

Each case runs in a fresh interpreter, as a new Lambda container would: the
function's ``app.py`` is imported, then the handler answers one request that
needs no AWS call. PyJWT and ``cryptography`` (about 0.2 × ``import boto3``)
must wait for the first request that carries a bearer token, so that the 401
challenge a client starts with, and the INIT of every function, never pay them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / "layers" / "registry"
PROBE = """
import importlib.util, json, sys
sys.path[:0] = [{layer!r}]
import boto3  # what boto3 loads by itself is not the function's (pyOpenSSL's cryptography, here)
sdk = set(sys.modules)
spec = importlib.util.spec_from_file_location("app", {app!r})
app = importlib.util.module_from_spec(spec)
spec.loader.exec_module(app)
at_init = sorted(set(sys.modules) - sdk)
event = {{"rawPath": {path!r}, "rawQueryString": "", "headers": {{"host": "registry.example"}},
          "requestContext": {{"http": {{"method": "GET", "sourceIp": "192.0.2.1"}}, "requestId": "r1"}}}}
status = app.lambda_handler(event, None)["statusCode"] if {path!r} else None
print(json.dumps({{"init": at_init, "after": sorted(set(sys.modules) - sdk), "status": status}}))
"""
HEAVY = ("jwt", "cryptography")


def cold(function: str, path: str = "") -> dict:
    """Modules a fresh interpreter loads beyond ``import boto3``: after INIT, and after one GET of ``path`` (none if empty)."""
    env = {"AWS_DEFAULT_REGION": "us-east-1", "AUTH_ENABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true", "PATH": "/usr/bin:/bin"}
    code = PROBE.format(layer=str(LAYER), app=str(ROOT / "functions" / function / "app.py"), path=path)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT, check=True, timeout=120)
    return json.loads(done.stdout.strip().splitlines()[-1])


def heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in HEAVY]


@pytest.mark.parametrize("function", ["base", "blob", "catalog", "manifest", "search", "token", "upload"])
def test_no_function_imports_pyjwt_or_cryptography_at_init(function):
    assert heavy(cold(function)["init"]) == []


def test_the_401_challenge_of_a_cold_base_function_loads_no_pyjwt():
    found = cold("base", "/v2/")
    assert found["status"] == 401
    assert heavy(found["after"]) == []


# Our modules that only some requests need, imported on first use (docs/performance.md, section 3;
# issue 15: cold starts): the token module (with PyJWT) by the first bearer token; the pull-through
# cache by a miss, a pending blob link, an unknown name's tag list, a write (registry.auth.guard) or
# a token scope the caller may not pull; the search index by a repository's first push; the manifest
# function's pull-counting pool by its first counted GET; the direct-to-S3 verification by a
# completion that verifies in AWS; retention policies and namespace usage by their own routes.
DEFERRED = {
    "base": ["registry.auth.tokens"],
    "blob": ["registry.auth.tokens", "registry.services.pullthrough"],
    "catalog": ["registry.auth.tokens", "registry.services.pullthrough"],
    "manifest": ["registry.auth.tokens", "registry.services.pullthrough", "registry.storage.search_index", "concurrent.futures.thread"],
    "search": ["registry.services.retention", "registry.services.usage"],
    "token": ["registry.services.pullthrough"],
    "upload": ["registry.auth.tokens", "registry.services.verification"],
}


@pytest.mark.parametrize("function", sorted(DEFERRED))
def test_a_function_imports_what_only_some_requests_need_on_first_use(function):
    at_init = set(cold(function)["init"])
    assert [m for m in DEFERRED[function] if m in at_init] == []


def test_the_401_challenge_of_a_cold_base_function_loads_no_token_module():
    assert "registry.auth.tokens" not in cold("base", "/v2/")["after"]


def test_the_layer_makes_no_dataclass_at_import():
    """Making a ``@dataclass`` compiles its generated methods: about 1 ms of INIT each, against about 0.2 ms
    for a ``typing.NamedTuple`` (records) or nothing for a plain class (mutable objects)."""
    import dataclasses
    import importlib
    import inspect
    import pkgutil

    import registry

    made = []
    for module in pkgutil.walk_packages(registry.__path__, "registry."):
        loaded = importlib.import_module(module.name)
        made += [f"{module.name}.{name}" for name, value in vars(loaded).items()
                 if inspect.isclass(value) and value.__module__ == module.name and dataclasses.is_dataclass(value)]
    assert made == []
