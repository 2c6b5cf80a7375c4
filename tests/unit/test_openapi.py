"""docs/openapi.yaml describes the search function's routes as registry.routes and registry.errors define them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from registry.errors import OciError
from registry.routes import RESPONSES, ROUTES

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
# The search function's routes and the direct-upload extension (the OCI endpoints are in docs/endpoints.md).
SEARCH_ROUTES = [route for route in ROUTES if route.function == "search" or route.name == "upload.parts"]
CODES = {error.code for error in OciError}
STATUS_CODES = {(str(error.status), error.code) for error in OciError}


@pytest.fixture(scope="module")
def document() -> dict:
    return yaml.safe_load(DOCUMENT.read_text())


def openapi_path(route_path: str) -> str:
    """``/api/v1/repositories/<name>/star`` -> ``/api/v1/repositories/{name}/star``."""
    return re.sub(r"<(\w+)>", r"{\1}", route_path)


def resolve(document: dict, node):
    while isinstance(node, dict) and "$ref" in node:
        target = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def documented_errors(document: dict, operation: dict) -> set[tuple[str, str]]:
    """(status, code) of every error example of an operation."""
    found = set()
    for status, response in operation["responses"].items():
        for media in (resolve(document, response).get("content") or {}).values():
            for example in (media.get("examples") or {}).values():
                for error in resolve(document, example)["value"].get("errors", []):
                    found.add((status, error["code"]))
    return found


def test_it_is_a_valid_openapi_3_document(document):
    from openapi_spec_validator import validate

    assert str(document["openapi"]).startswith("3.")
    validate(document)


@pytest.mark.parametrize("route", SEARCH_ROUTES, ids=lambda route: route.name)
def test_every_search_route_and_method_is_documented(document, route):
    path = document["paths"].get(openapi_path(route.path))
    assert path is not None, f"{route.path} is not in {DOCUMENT.name}"
    for method in route.methods:
        assert method.lower() in path, f"{method} {route.path} is not in {DOCUMENT.name}"


def test_nothing_else_is_documented(document):
    routes = {(openapi_path(route.path), method.lower()) for route in SEARCH_ROUTES for method in route.methods}
    operations = {(path, method) for path, item in document["paths"].items() for method in item if method != "parameters"}
    assert operations == routes


@pytest.mark.parametrize(
    "route, method", [(route, method) for route in SEARCH_ROUTES for method in route.methods], ids=lambda value: getattr(value, "name", value)
)
def test_each_operation_documents_its_success_and_the_errors_it_may_raise(document, route, method):
    operation = document["paths"][openapi_path(route.path)][method.lower()]
    success, errors = RESPONSES[(route.name, method)]
    for status in success.split(", "):
        assert status in operation["responses"], (route.name, method, status)
    documented = documented_errors(document, operation)
    for member in errors:
        error = OciError[member]
        assert (str(error.status), error.code) in documented, f"{method} {route.path}: {error.status} {error.code} undocumented"
    assert ("500", "UNKNOWN") in documented


def test_every_documented_error_code_exists_with_its_status(document):
    documented = set()
    for item in document["paths"].values():
        for method, operation in item.items():
            if method != "parameters":
                documented |= documented_errors(document, operation)
    assert documented, "no error examples found"
    assert documented <= STATUS_CODES, documented - STATUS_CODES
    enum = set(document["components"]["schemas"]["Error"]["properties"]["code"]["enum"])
    assert enum <= CODES, enum - CODES
    assert {code for _, code in documented} <= enum


def test_the_name_parameter_takes_up_to_eight_components_with_their_slashes(document):
    from registry.routes import MAX_NAME_COMPONENTS

    parameter = document["components"]["parameters"]["Name"]
    assert parameter["x-name-components"] == MAX_NAME_COMPONENTS
    pattern = re.compile(parameter["schema"]["pattern"])
    assert pattern.match("busybox") and pattern.match("library/busybox") and pattern.match("a/b/c/d/e/f/g/h")
    assert not pattern.match("a/b/c/d/e/f/g/h/i") and not pattern.match("Library/Busybox")
