"""Read ``template.yaml``: its routes, its resources' properties, its defaults.

The local gateway and the tests take everything from here, so what runs
locally is what ``sam deploy`` creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (!Ref, !Sub, …) read as {"Ref": …} / {"Fn::Sub": …}."""


def _tag(loader, suffix, node):
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


@cache
def load(path: Path = TEMPLATE) -> dict:
    return yaml.load(path.read_text(), Loader=_CfnLoader)


@dataclass(frozen=True)
class GatewayRoute:
    method: str  # GET, ANY, ... or "$default"
    path: str  # "" for $default
    function: str  # the logical id, e.g. ManifestFunction
    code_uri: str  # functions/manifest/

    @property
    def key(self) -> str:
        return "$default" if self.method == "$default" else f"{self.method} {self.path}"


def routes(template: dict | None = None) -> list[GatewayRoute]:
    """Every HttpApi event of every function, as API Gateway route keys."""
    template = template or load()
    found = []
    for logical_id, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        props = resource["Properties"]
        for event in (props.get("Events") or {}).values():
            if event.get("Type") != "HttpApi":
                continue
            ep = event.get("Properties") or {}
            method = ep.get("Method")
            path = ep.get("Path")
            if method is None and path is None:
                found.append(GatewayRoute("$default", "", logical_id, props["CodeUri"]))
            else:
                found.append(GatewayRoute(method.upper(), path, logical_id, props["CodeUri"]))
    return found


def resource_properties(logical_id: str, template: dict | None = None) -> dict:
    template = template or load()
    return template["Resources"][logical_id]["Properties"]


def parameter_default(name: str, template: dict | None = None):
    template = template or load()
    return template["Parameters"][name]["Default"]


def layer_paths(template: dict | None = None) -> list[Path]:
    """Folders of the template's Python layers (their ContentUri)."""
    template = template or load()
    return [
        ROOT / resource["Properties"]["ContentUri"]
        for resource in template["Resources"].values()
        if resource.get("Type") == "AWS::Serverless::LayerVersion"
    ]


_NO_VALUE = object()


def condition(name: str, template: dict | None = None, parameters: dict | None = None) -> bool:
    """Evaluate a Conditions entry (Fn::Equals/Not/And/Or/Condition over !Ref parameters)
    with the parameters' defaults, overridden by ``parameters``."""
    template = template or load()
    return _truth(template["Conditions"][name], template, parameters or {})


def _value(node, template: dict, parameters: dict):
    if isinstance(node, dict) and "Ref" in node and node["Ref"] in template["Parameters"]:
        return str(parameters.get(node["Ref"], template["Parameters"][node["Ref"]].get("Default", "")))
    return node


def _truth(node, template: dict, parameters: dict) -> bool:
    (kind, args), = node.items()
    if kind == "Fn::Equals":
        return _value(args[0], template, parameters) == _value(args[1], template, parameters)
    if kind == "Fn::Not":
        return not _truth(args[0], template, parameters)
    if kind == "Fn::And":
        return all(_truth(arg, template, parameters) for arg in args)
    if kind == "Fn::Or":
        return any(_truth(arg, template, parameters) for arg in args)
    if kind == "Condition":
        return _truth(template["Conditions"][args], template, parameters)
    raise ValueError(f"unsupported condition function {kind}")


def resolve_conditions(node, template: dict | None = None, parameters: dict | None = None):
    """``node`` with every ``Fn::If`` replaced by the branch its condition picks (with
    the parameters' defaults, overridden by ``parameters``) and ``AWS::NoValue`` dropped:
    what CloudFormation deploys for those parameters. Other intrinsics are left as they are."""
    template = template or load()
    parameters = parameters or {}

    def walk(value):
        if isinstance(value, dict):
            if set(value) == {"Fn::If"}:
                name, yes, no = value["Fn::If"]
                return walk(yes if condition(name, template, parameters) else no)
            if value == {"Ref": "AWS::NoValue"}:
                return _NO_VALUE
            out = {key: walk(item) for key, item in value.items()}
            return {key: item for key, item in out.items() if item is not _NO_VALUE}
        if isinstance(value, list):
            return [item for item in (walk(entry) for entry in value) if item is not _NO_VALUE]
        return value

    return walk(node)


def deployed_resources(template: dict | None = None, parameters: dict | None = None) -> dict:
    """Logical id -> resource, for the resources whose Condition (if any) holds."""
    template = template or load()
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if "Condition" not in resource or condition(resource["Condition"], template, parameters)
    }
