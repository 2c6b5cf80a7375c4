"""The template as SAM transforms it stays within the AWS quotas a deploy would meet.

``sam validate`` does not check these, and no local stack enforces them:

* API Gateway HTTP API: 300 routes per API (and 300 integrations, not adjustable)
  https://docs.aws.amazon.com/apigateway/latest/developerguide/http-api-quotas.html
* CloudFormation: 500 resources per stack
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/cloudformation-limits.html
* Lambda: a function's resource-based policy at most 20 KB; SAM adds one
  ``AWS::Lambda::Permission`` (one policy statement) per ``HttpApi`` event
  https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def transformed() -> dict:
    samtranslator = pytest.importorskip("samtranslator")  # installed with aws-sam-cli (requirements-dev.txt)
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    del samtranslator

    class NoManagedPolicies:  # the template names no AWS managed policy; nothing to look up
        def load(self):
            return {}

    template = yaml_parse((ROOT / "template.yaml").read_text())
    for resource in template["Resources"].values():  # sam build would upload these; any S3 URI will do
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties:
                properties[key] = "s3://bucket/key"
    import os

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(template, {}, NoManagedPolicies())


def test_route_keys_stay_far_under_the_http_api_quota(transformed):
    from registry.routes import gateway_routes

    api = next(r for r in transformed["Resources"].values() if r["Type"] == "AWS::ApiGatewayV2::Api")
    route_keys = sum(len(methods) for methods in api["Properties"]["Body"]["paths"].values())
    expected = sum(len(entries) for entries in gateway_routes().values())  # $default included
    assert route_keys == expected
    assert route_keys <= 150, f"{route_keys} route keys: half the 300-route quota is the budget"


def test_resources_stay_under_cloudformations_limit(transformed):
    assert len(transformed["Resources"]) <= 400, Counter(r["Type"] for r in transformed["Resources"].values()).most_common(5)


def test_each_functions_resource_based_policy_stays_under_20_kb(transformed):
    # A statement as Lambda stores it, with the longest names a deploy can produce: a 64-character
    # function name, a 64-character statement id, and a SourceArn for the deepest route
    # (``…/*/GET/v2/*/*/*/*/*/*/*/*/blobs/*``, under 60 characters after the API id).
    def statement() -> int:
        arn = f"arn:aws:execute-api:ap-southeast-2:123456789012:abcdefghij/*/{'x' * 60}"
        rendered = {
            "Sid": "s" * 64,
            "Effect": "Allow",
            "Principal": {"Service": "apigateway.amazonaws.com"},
            "Action": "lambda:InvokeFunction",
            "Resource": f"arn:aws:lambda:ap-southeast-2:123456789012:function:{'f' * 64}",
            "Condition": {"ArnLike": {"AWS:SourceArn": arn}},
        }
        return len(json.dumps(rendered, separators=(",", ":")))

    sizes: Counter = Counter()
    for resource in transformed["Resources"].values():
        if resource["Type"] == "AWS::Lambda::Permission":
            sizes[json.dumps(resource["Properties"]["FunctionName"])] += statement()
    assert sizes, "SAM wrote no permissions: the template's events changed shape"
    largest, size = sizes.most_common(1)[0]
    assert size <= 20 * 1024 * 3 // 4, f"{largest}: about {size} bytes of policy; Lambda allows 20 KB"
