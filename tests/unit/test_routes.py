"""One route table drives the template, the local gateway and the functions: they must agree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from local_stack import template
from local_stack.gateway import Router, load_handler
from registry import routes

ROOT = Path(__file__).resolve().parents[2]


def test_template_routes_and_doc_table_are_generated_from_the_route_table():
    result = subprocess.run([sys.executable, "scripts/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_template_route_reaches_the_function_the_route_table_names():
    by_function = {f"{function.title()}Function": set(entries) for function, entries in routes.gateway_routes().items()}
    found: dict[str, set] = {}
    for route in template.routes():
        found.setdefault(route.function, set()).add((route.method, route.path))
    assert found == by_function


def test_cfn_lint_is_clean():
    cfn_lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(cfn_lint), "template.yaml"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("function", routes.FUNCTIONS)
def test_every_function_folder_has_a_handler(function):
    assert callable(load_handler(f"functions/{function}/"))


@pytest.fixture(scope="module")
def router():
    return Router(template.routes())


@pytest.mark.parametrize(
    ("method", "path", "function"),
    [
        ("GET", "/v2/", "BaseFunction"),
        ("GET", "/v2/_catalog", "CatalogFunction"),
        ("GET", "/v2/a/tags/list", "CatalogFunction"),
        ("GET", "/v2/a/b/c/d/e/tags/list", "CatalogFunction"),
        ("GET", "/v2/library/hello/manifests/latest", "ManifestFunction"),
        ("HEAD", "/v2/a/b/c/d/e/manifests/sha256:abc", "ManifestFunction"),
        ("PUT", "/v2/a/manifests/1.0", "ManifestFunction"),
        ("GET", "/v2/a/b/blobs/sha256:abc", "BlobFunction"),
        ("DELETE", "/v2/a/b/c/blobs/sha256:abc", "BlobFunction"),
        ("POST", "/v2/a/blobs/uploads/", "UploadFunction"),
        ("POST", "/v2/a/b/c/d/e/f/g/blobs/uploads/", "UploadFunction"),
        ("PATCH", "/v2/a/b/blobs/uploads/0123", "UploadFunction"),
        ("PUT", "/v2/a/b/c/d/e/blobs/uploads/0123", "UploadFunction"),
        ("GET", "/v2/a/b/c/d/e/f/g/h/manifests/latest", "ManifestFunction"),
        ("GET", "/v2/a/b/c/d/e/f/g/h/blobs/uploads/0123/parts", "UploadFunction"),
        ("PUT", "/api/v1/repositories/a/b/c/d/e/f/g/h/star", "SearchFunction"),
        ("GET", "/api/v1/repositories/a", "SearchFunction"),
        # A path's every method reaches its function (ANY), which answers 405 for the others.
        ("POST", "/v2/a/manifests/latest", "ManifestFunction"),
        ("PATCH", "/v2/a/manifests/latest", "ManifestFunction"),
        # Deeper than routed and unknown paths reach the base function.
        ("GET", "/v2/a/b/c/d/e/f/g/h/i/manifests/latest", "BaseFunction"),
        ("POST", "/v2/a/b/c/d/e/f/g/h/i/blobs/uploads/", "UploadFunction"),
        ("GET", "/nothing/here", "BaseFunction"),
    ],
)
def test_gateway_routes_like_api_gateway(router, method, path, function):
    assert router.find(method, path).function == function


def test_names_deeper_than_routed_are_refused_with_name_invalid(client):
    reply = client.request("GET", "/v2/a/b/c/d/e/f/g/h/i/manifests/latest")
    assert (reply.status, reply.error_codes) == (400, ["NAME_INVALID"])
    reply = client.request("POST", "/v2/a/b/c/d/e/f/g/h/i/blobs/uploads/")
    assert (reply.status, reply.error_codes) == (400, ["NAME_INVALID"])
    reply = client.request("PUT", "/api/v1/repositories/a/b/c/d/e/f/g/h/i/star")
    assert (reply.status, reply.error_codes) == (400, ["NAME_INVALID"])


def test_a_name_of_eight_components_pushes_pulls_and_lists(client):
    name = "mirror/of/ghcr/org/team/sub/group/app"
    manifest, digest = client.push_image(name, "v1")
    pulled = client.request("GET", f"/v2/{name}/manifests/v1", headers={"accept": "application/vnd.oci.image.manifest.v1+json"})
    assert (pulled.status, pulled.body) == (200, manifest)
    assert client.request("GET", f"/v2/{name}/tags/list").json()["tags"] == ["v1"]
    assert client.request("GET", f"/api/v1/repositories/{name}").status == 200


def test_unknown_path_is_an_oci_404(client):
    reply = client.request("GET", "/v3/whatever")
    assert (reply.status, reply.error_codes) == (404, ["NOT_FOUND"])


def test_wrong_method_on_a_known_endpoint_is_unsupported(client):
    reply = client.request("POST", "/v2/team/app/manifests/latest")
    assert (reply.status, reply.error_codes) == (405, ["UNSUPPORTED"])
    reply = client.request("PATCH", "/v2/team/app/manifests/latest")
    assert (reply.status, reply.error_codes) == (405, ["UNSUPPORTED"])


def test_invalid_repository_name_is_name_invalid(client):
    for method, path in [("GET", "/v2/Team/App/manifests/latest"), ("POST", "/v2/-bad/blobs/uploads/"), ("GET", "/v2/a//b/tags/list")]:
        reply = client.request(method, path)
        assert (reply.status, reply.error_codes) == (400, ["NAME_INVALID"]), path


def test_upload_start_and_version_check_work_without_the_trailing_slash(client):
    assert client.request("POST", "/v2/team/app/blobs/uploads").status == 202
    assert client.request("GET", "/v2").status == 200


def test_the_endpoint_table_describes_every_route_and_method_with_real_error_codes():
    from registry.errors import OciError

    declared = {(route.name, method) for route in routes.ROUTES for method in route.methods}
    assert set(routes.RESPONSES) == declared
    for success, errors in routes.RESPONSES.values():
        assert all(status.strip().isdigit() for status in success.split(","))
        assert all(error in OciError.__members__ for error in errors)


def test_the_layer_ships_every_third_party_package_the_registry_imports():
    """What works here because the dev venv has it would fail on AWS if the layer lacked it."""
    import ast
    import sys

    shipped = {"boto3", "botocore", "urllib3"}  # in the Lambda runtime (urllib3: botocore's own HTTP client)
    for line in (ROOT / "layers/registry/requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            shipped.add(line.split("==")[0].split("[")[0].lower().replace("-", "_"))
    aliases = {"jwt": "pyjwt", "aws_lambda_powertools": "aws_lambda_powertools"}
    imported = set()
    for path in (ROOT / "layers/registry/registry").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "registry"}
    assert {aliases.get(name, name) for name in third_party} <= shipped


def test_a_repository_named_like_a_setting_is_still_readable(client):
    # /api/v1/repositories/team/star is both "star team" (PUT, DELETE) and "the repository team/star" (GET).
    client.push_image("team/star", "v1")
    client.push_image("team", "v1")
    view = client.request("GET", "/api/v1/repositories/team/star")
    assert (view.status, view.json()["name"]) == (200, "team/star")
    assert client.request("PUT", "/api/v1/repositories/team/star").status == 200
    assert client.request("GET", "/api/v1/repositories/team").json()["star_count"] == 1
