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
