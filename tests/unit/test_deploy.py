"""Deploy-readiness: what can be proven about ``sam build && sam deploy`` without an AWS account.

Fast checks read ``template.yaml`` and ``samconfig.toml``: log groups with the
retention parameter, tracing, the custom domain under its conditions, the
alarms, the outputs, and the two samconfig environments.

The ``test_sam_*`` tests run the AWS SAM CLI (``aws-sam-cli`` from
requirements-dev.txt, installed by every ``make`` target) and take about a
minute in all: ``sam validate --lint`` on the real template, then ONE
``sam build`` per test session (module fixture) whose artifacts are imported
and fed every sample event in ``events/`` under moto. ``REGISTRY_SKIP_SAM=1``
skips them for a quick local loop; CI (``make test``) always runs them.

Building here: the template deploys python3.13 on arm64, but ``sam build``
without a container needs that very Python on PATH, and artifacts built for
arm64 would not import on this machine. The build therefore uses a temporary
copy of the template rewritten for the Python running the tests and this
machine's architecture: the runtime through the ``PythonRuntime`` parameter
override (the copy's AllowedValues admit it), the layer's ``BuildMethod`` and
the architectures edited in the copy. Everything else is the real template,
built from the real sources (``--base-dir``).

The replay runs in a fresh interpreter (``python tests/unit/test_deploy.py
replay ...``) whose ``sys.path`` starts with the built layer, so ``registry``,
Powertools, PyJWT and cryptography come from the build, as on Lambda (boto3
comes from the environment, as the Lambda runtime provides it).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
LOCAL_PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
LOCAL_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine().lower()]
SAM = Path(sys.executable).parent / "sam"
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
# The session id every upload-session-*.json event names (as in test_events.py).
UPLOAD_ID = "5f0c3b2a9d8e4f1a8b7c6d5e4f3a2b1c"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
TAGS = ("latest", "v1.0.0")

# What each sample event must get, the state described in ``seed``: (status, OCI error codes).
EXPECTED = {
    "base-get": (200, []),
    "base-head": (200, []),
    "blob-delete": (202, []),
    "blob-get": (307, []),
    "blob-head": (200, []),
    "catalog-get": (200, []),
    "default-unknown-path": (404, ["NOT_FOUND"]),
    "jwks-get": (200, []),
    "manifest-delete": (202, []),
    "manifest-get": (200, []),
    "manifest-get-unknown-tag": (404, ["MANIFEST_UNKNOWN"]),
    "manifest-head": (200, []),
    "manifest-put": (201, []),
    "referrers-get": (200, []),
    "repo-description-put": (200, []),
    "repo-get": (200, []),
    "repo-official-put": (200, []),
    "repo-immutable-put": (200, []),
    "repo-retention-get": (200, []),
    "repo-retention-put": (200, []),
    "namespace-usage-get": (200, []),
    "namespace-quota-put": (200, []),
    "repo-star-delete": (401, ["UNAUTHORIZED"]),  # starring needs a signed-in user; the events have none
    "repo-star-put": (401, ["UNAUTHORIZED"]),
    "search-get": (200, []),
    "search-ping-get": (200, []),
    "tags-get": (200, []),
    "token-get": (200, []),
    "token-get-anonymous": (200, []),
    "token-post": (200, []),
    "too-deep-name": (400, ["NAME_INVALID"]),
    "upload-monolithic-post": (201, []),
    "upload-session-delete": (204, []),
    "upload-session-get": (204, []),
    "upload-session-patch": (202, []),
    "upload-session-put": (201, []),
    "upload-start-post": (202, []),
    "upload-parts-get": (200, []),
    "upload-parts-post": (200, []),
}

skip_sam = pytest.mark.skipif(os.environ.get("REGISTRY_SKIP_SAM") == "1", reason="REGISTRY_SKIP_SAM=1")


def kind_of(filename: str) -> str:
    return re.sub(r"(-depth\d)?\.json$", "", filename)


def load_template() -> dict:
    from local_stack import template

    return template.load()


def functions_of(template: dict) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::Serverless::Function"}


# --- the template ----------------------------------------------------------------------------


def test_every_function_logs_to_its_own_group_kept_for_the_retention_parameter():
    template = load_template()
    for name, function in functions_of(template).items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        resource = template["Resources"][group]
        assert resource["Type"] == "AWS::Logs::LogGroup", name
        assert resource["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
        assert resource["Properties"]["LogGroupName"]["Fn::Sub"].startswith("/aws/lambda/${AWS::StackName}/")
    assert 30 in template["Parameters"]["LogRetentionDays"]["AllowedValues"]


def test_tracing_is_on_and_metrics_have_their_namespace():
    function = load_template()["Globals"]["Function"]
    assert function["Tracing"] == "Active"
    assert function["Environment"]["Variables"]["POWERTOOLS_METRICS_NAMESPACE"] == "ServerlessRegistry"
    assert "POWERTOOLS_METRICS_DISABLED" not in function["Environment"]["Variables"]


def test_the_custom_domain_exists_only_with_a_domain_name_and_dns_only_with_a_hosted_zone():
    template = load_template()
    conditions = template["Conditions"]
    assert conditions["HasDomain"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "DomainName"}, ""]}]}
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "HostedZoneId"}, ""]}]} in conditions["HasHostedZone"]["Fn::And"]
    resources = template["Resources"]
    assert (resources["RegistryDomain"]["Type"], resources["RegistryDomain"]["Condition"]) == ("AWS::ApiGatewayV2::DomainName", "HasDomain")
    assert resources["RegistryDomain"]["Properties"]["DomainNameConfigurations"][0]["CertificateArn"] == {"Ref": "CertificateArn"}
    assert (resources["RegistryApiMapping"]["Type"], resources["RegistryApiMapping"]["Condition"]) == ("AWS::ApiGatewayV2::ApiMapping", "HasDomain")
    assert (resources["RegistryDnsRecord"]["Type"], resources["RegistryDnsRecord"]["Condition"]) == ("AWS::Route53::RecordSet", "HasHostedZone")
    for parameter in ("DomainName", "CertificateArn", "HostedZoneId", "TokenService", "AlarmTopicArn"):
        assert template["Parameters"][parameter]["Default"] == "", parameter
    assert template["Rules"]["CustomDomainNeedsCertificate"]["Assertions"]


def test_the_domain_mapping_targets_the_stage_sam_generates_for_the_http_api():
    """Translate the template as CloudFormation will (samtranslator) and follow the mapping's stage."""
    translated = _translated({"DomainName": "registry.example.com", "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/abc"})
    stage = translated["Resources"]["RegistryApiMapping"]["Properties"]["Stage"]["Ref"]
    assert translated["Resources"][stage]["Type"] == "AWS::ApiGatewayV2::Stage"
    assert translated["Resources"][stage]["Properties"]["StageName"] == "$default"
    for name in functions_of(load_template()):
        role = translated["Resources"][f"{name}Role"]["Properties"]
        assert any("AWSXrayWriteOnlyAccess" in str(arn) for arn in role["ManagedPolicyArns"]), name


def test_outputs_follow_the_custom_domain():
    outputs = load_template()["Outputs"]
    for name in ("RegistryUrl", "RegistryHost", "TokenRealm"):
        condition, with_domain, without = outputs[name]["Value"]["Fn::If"]
        assert condition == "HasDomain"
        assert "DomainName" in json.dumps(with_domain) and "execute-api" in json.dumps(without), name
    assert outputs["CustomDomainTarget"]["Condition"] == "HasDomain"
    assert {"ApiEndpoint", "BlobBucketName", "MetadataTableName", "TokenSigningKeyId"} <= set(outputs)


def test_alarms_watch_api_5xx_every_functions_errors_and_throttles_and_dynamodb_throttles():
    template = load_template()
    alarms = {name: r for name, r in template["Resources"].items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    watched = {}
    for name, alarm in alarms.items():
        props = alarm["Properties"]
        assert alarm["Condition"] == "HasAlarms"
        assert props["AlarmActions"]["Fn::If"][0] == "HasAlarmTopic"
        assert props["TreatMissingData"] == "notBreaching"
        stats = [m["MetricStat"]["Metric"] for m in props["Metrics"] if "MetricStat" in m]
        assert len(props["Metrics"]) <= 10  # CloudWatch's limit for an alarm
        [returned] = [m for m in props["Metrics"] if m.get("ReturnData", True)]
        ids = {m["Id"] for m in props["Metrics"] if "MetricStat" in m}
        assert set(re.findall(r"[a-z][a-z0-9]*", returned["Expression"])) - {"if", "sum"} == ids, name
        watched[name] = {(s["Namespace"], s["MetricName"], json.dumps(s["Dimensions"][0]["Value"])) for s in stats}
    functions = sorted(functions_of(template))
    by_metric = {}
    for entries in watched.values():
        for namespace, metric, dimension in entries:
            by_metric.setdefault((namespace, metric), set()).add(dimension)
    assert by_metric[("AWS/ApiGateway", "5xx")] == by_metric[("AWS/ApiGateway", "Count")] == {json.dumps({"Ref": "RegistryApi"})}
    for metric in ("Errors", "Throttles"):
        assert by_metric[("AWS/Lambda", metric)] == {json.dumps({"Ref": name}) for name in functions}
    for metric in ("ReadThrottleEvents", "WriteThrottleEvents"):
        assert by_metric[("AWS/DynamoDB", metric)] == {json.dumps({"Ref": "MetadataTable"})}


def test_samconfig_has_a_default_and_a_prod_environment():
    config = tomllib.loads((ROOT / "samconfig.toml").read_text())
    assert {"default", "prod"} <= set(config)
    for environment in ("default", "prod"):
        deploy = config[environment]["deploy"]["parameters"]
        assert deploy["capabilities"] == "CAPABILITY_IAM"
        assert "parameter_overrides" in deploy
        assert config[environment]["global"]["parameters"]["stack_name"]
    assert config["prod"]["global"]["parameters"]["stack_name"] != config["default"]["global"]["parameters"]["stack_name"]
    parameters = load_template()["Parameters"]
    for environment in ("default", "prod"):
        overrides = dict(re.findall(r'(\w+)="([^"]*)"', config[environment]["deploy"]["parameters"]["parameter_overrides"]))
        assert set(overrides) <= set(parameters), environment


def _translated(parameters: dict) -> dict:
    import copy

    from samtranslator.translator.transform import transform

    template = copy.deepcopy(load_template())
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://bucket/function.zip"
        elif resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = "s3://bucket/layer.zip"

    class Policies:
        def load(self):
            return {
                "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
            }

    saved = {key: os.environ.get(key) for key in FAKE_AWS}
    os.environ.update(FAKE_AWS)
    try:
        return transform(template, parameters, Policies())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


# --- the SAM CLI -----------------------------------------------------------------------------


def sam_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # The venv first: sam's Python builder runs the python<version> it finds on PATH (with pip).
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return {**env, **FAKE_AWS, "SAM_CLI_TELEMETRY": "0"}


def run_sam(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    assert SAM.exists(), f"{SAM} is missing: aws-sam-cli is in requirements-dev.txt (make installs it)"
    return subprocess.run([str(SAM), *args], cwd=cwd, env=sam_env(), capture_output=True, text=True, timeout=900, check=False)


def local_template(text: str) -> str:
    """template.yaml rewritten to build for this machine's Python and architecture (see the module doc)."""
    replacements = [
        (r"(\n    AllowedValues: \[)(python3\.12, python3\.13, python3\.14\])", rf"\g<1>{LOCAL_PYTHON}, \g<2>"),
        (r"(\n      BuildMethod: )python3\.\d+", rf"\g<1>{LOCAL_PYTHON}"),
        (r"(\n    Architectures: \[)arm64\]", rf"\g<1>{LOCAL_ARCH}]"),
        (r"(\n      CompatibleArchitectures: \[)arm64\]", rf"\g<1>{LOCAL_ARCH}]"),
        (r"(\n      BuildArchitecture: )arm64", rf"\g<1>{LOCAL_ARCH}"),
    ]
    for pattern, replacement in replacements:
        text, count = re.subn(pattern, replacement, text)
        assert count == 1, f"template.yaml changed: {pattern} matched {count} times"
    return text


@pytest.fixture(scope="module")
def sam_build(tmp_path_factory) -> Path:
    """ONE ``sam build`` per session (about 20 to 40 s): the build folder (.aws-sam/build equivalent)."""
    work = tmp_path_factory.mktemp("sam")
    (work / "template.yaml").write_text(local_template((ROOT / "template.yaml").read_text()))
    build = work / "build"
    result = run_sam(
        "build",
        "--template-file", str(work / "template.yaml"),
        "--base-dir", str(ROOT),
        "--build-dir", str(build),
        "--parameter-overrides", f"PythonRuntime={LOCAL_PYTHON}",
        cwd=work,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "Build Succeeded" in result.stdout
    # The deploy's second step (make build = sam build + make compile), for the Python running here.
    compiled = subprocess.run(
        ["make", "-s", "compile", f"BUILD_DIR={build}", f"RUNTIME_PYTHON={sys.executable}"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
    )
    assert compiled.returncode == 0, compiled.stdout[-4000:] + compiled.stderr[-4000:]
    return build


@skip_sam
def test_sam_validate_lint_passes_on_the_real_template():
    result = run_sam("validate", "--lint", "--template-file", str(ROOT / "template.yaml"), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout + result.stderr


@skip_sam
def test_sam_build_makes_the_layer_and_every_function(sam_build):
    functions = sorted(functions_of(load_template()))
    for name in functions:
        assert (sam_build / name / "app.py").is_file(), name
    layer = sam_build / "RegistryLayer" / "python"
    for package in ("registry", "aws_lambda_powertools", "jwt", "cryptography", "rehashes"):
        assert (layer / package).is_dir(), package
    assert not (layer / "boto3").exists()  # the Lambda runtime provides boto3
    built = load_yaml(sam_build / "template.yaml")
    for name in functions:
        assert built["Resources"][name]["Properties"]["CodeUri"] == name
        assert built["Resources"][name]["Properties"]["LoggingConfig"] == {"LogGroup": {"Ref": f"{name}LogGroup"}}


@skip_sam
def test_the_build_ships_bytecode_lambda_reads_without_checking_or_rewriting_it(sam_build):
    import importlib.util

    layer = sam_build / "RegistryLayer" / "python"
    modules = [layer / "registry" / "http.py", layer / "jwt" / "api_jwt.py", layer / "aws_lambda_powertools" / "__init__.py"]
    modules += [sam_build / name / "app.py" for name in functions_of(load_template())]
    sources = list(layer.rglob("*.py"))
    compiled = [path for path in sources if Path(importlib.util.cache_from_source(str(path))).is_file()]
    assert len(compiled) == len(sources), sorted(set(map(str, sources)) - set(map(str, compiled)))[:5]
    for module in modules:
        header = Path(importlib.util.cache_from_source(str(module))).read_bytes()[:8]
        assert header[:4] == importlib.util.MAGIC_NUMBER, module  # this Python's bytecode
        assert int.from_bytes(header[4:8], "little") == 0b01, module  # hash-based, source never checked (PEP 552)


@skip_sam
def test_sam_built_handlers_import_from_the_build_and_answer_every_sample_event(sam_build, tmp_path):
    built = {name: sam_build / name for name in functions_of(load_template())}
    outcome = replay_in_subprocess(sam_build / "RegistryLayer" / "python", built, tmp_path)
    layer = str(sam_build / "RegistryLayer" / "python")
    for module, origin in outcome["origins"].items():
        assert origin.startswith(layer), f"{module} came from {origin}, not the build"
    check_replay(outcome)


def test_the_replay_harness_passes_on_the_sources(tmp_path):
    """The same replay on the source tree: a failure above that this passes is the build's."""
    sources = {name: ROOT / function["Properties"]["CodeUri"] for name, function in functions_of(load_template()).items()}
    outcome = replay_in_subprocess(ROOT / "layers" / "registry", sources, tmp_path)
    check_replay(outcome)


def check_replay(outcome: dict):
    results = outcome["results"]
    assert set(results) == {path.name for path in EVENTS.glob("*.json")}
    wrong = {}
    for filename, (status, codes, function) in results.items():
        if (status, codes) != tuple(EXPECTED[kind_of(filename)]):
            wrong[filename] = (function, status, codes, "expected", EXPECTED[kind_of(filename)])
    assert not wrong, json.dumps(wrong, indent=1)
    # Metrics and logs from the very artifacts: EMF lines for the pushes, pulls and uploaded bytes, no secrets.
    assert outcome["metrics"].get("Pushes", 0) > 0 and outcome["metrics"].get("Pulls", 0) > 0
    assert outcome["metrics"].get("BytesUploaded", 0) > 0
    assert outcome["responses_logged"] >= len(results)
    assert not outcome["secrets_in_output"], outcome["secrets_in_output"]


def load_yaml(path: Path) -> dict:
    from local_stack import template

    return template.load.__wrapped__(path)


def replay_in_subprocess(layer: Path, functions: dict[str, Path], tmp_path: Path) -> dict:
    out = tmp_path / "replay.json"
    spec = {"layer": str(layer), "functions": {name: str(path) for name, path in functions.items()}, "out": str(out)}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    result = subprocess.run([sys.executable, __file__, "replay", json.dumps(spec)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    outcome = json.loads(out.read_text())
    outcome.update(scan_output(result.stdout + result.stderr))
    return outcome


def scan_output(text: str) -> dict:
    """What the functions printed: EMF metric totals, response log lines, and any secret."""
    metrics: dict[str, float] = {}
    responses = 0
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" in document:
            for definition in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                metrics[definition["Name"]] = metrics.get(definition["Name"], 0) + sum(document[definition["Name"]])
        elif document.get("message") == "response":
            responses += 1
    from tests.clients import ADMIN

    basic = base64.b64encode(":".join(ADMIN).encode()).decode()
    secrets = [secret for secret in (ADMIN[1], basic) if secret in text]
    secrets += re.findall(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}|rrt_[A-Za-z0-9]{4,}|rpat_[A-Za-z0-9]{4,}", text)
    return {"metrics": metrics, "responses_logged": responses, "secrets_in_output": secrets}


# --- the replay (run as a script in a fresh interpreter) ---------------------------------------


def replay(spec: dict) -> None:
    """Feed every sample event to the given handlers under moto, after seeding the state it needs."""
    layer = spec["layer"]
    sys.path[:0] = [layer, str(ROOT)]
    os.environ.update(FAKE_AWS)
    os.environ.pop("AWS_ENDPOINT_URL", None)

    import importlib.util
    import types
    import uuid as uuid_module

    from local_stack import gateway, resources, template

    os.environ.update(resources.function_environment())
    os.environ["AUTH_ENABLED"] = "false"  # as test_events.py: the events carry no tokens
    os.environ["POWERTOOLS_LOG_LEVEL"] = "INFO"

    import aws_lambda_powertools
    import cryptography
    import jwt
    import registry
    from moto import mock_aws
    from registry import aws, config
    from registry.auth import pseudonym, tokens
    from registry.services import uploads
    from registry.storage import principals

    from tests.clients import ADMIN

    origins = {module.__name__: module.__file__ for module in (registry, aws_lambda_powertools, jwt, cryptography)}
    handlers = {}
    for name, folder in spec["functions"].items():
        module_spec = importlib.util.spec_from_file_location(f"fn_{name}", Path(folder) / "app.py")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        handlers[name] = module.lambda_handler
    routes = template.routes()
    by_key = {route.key: route for route in routes}
    router = gateway.Router(routes)
    uploads.uuid = types.SimpleNamespace(uuid4=lambda: uuid_module.UUID(hex=UPLOAD_ID))

    def load(filename: str) -> dict:
        return json.loads((EVENTS / filename).read_text())

    def body_of(filename: str) -> bytes:
        sample = load(filename)
        body = sample.get("body") or ""
        return base64.b64decode(body) if sample.get("isBase64Encoded") else body.encode()

    layer_blob, config_blob, manifest = body_of("upload-monolithic-post.json"), body_of("upload-session-patch.json"), body_of("manifest-put.json")

    def invoke(sample: dict) -> tuple[int, list[str]]:
        route = by_key[sample["routeKey"]]
        result = handlers[route.function](sample, gateway.LambdaContext(route.function, sample["requestContext"]["requestId"]))
        body = base64.b64decode(result.get("body") or "") if result.get("isBase64Encoded") else (result.get("body") or "").encode()
        codes = [e["code"] for e in json.loads(body)["errors"]] if result["statusCode"] >= 400 and body else []
        return result["statusCode"], codes

    def call(method: str, path: str, query: str = "", headers: dict | None = None, body: bytes = b"") -> int:
        pairs = list((headers or {}).items()) + ([("content-length", str(len(body)))] if body else [])
        route = router.find(method, path)
        return invoke(gateway.build_event(method, path, query, pairs, body, route.key, "198.51.100.7", "registry.test"))[0]

    def push_blob(name: str, data: bytes):
        digest = "sha256%3A" + hashlib.sha256(data).hexdigest()
        assert call("POST", f"/v2/{name}/blobs/uploads/", f"digest={digest}", {"content-type": "application/octet-stream"}, data) == 201

    def push_image(name: str):
        push_blob(name, config_blob)
        push_blob(name, layer_blob)
        for tag in TAGS:
            assert call("PUT", f"/v2/{name}/manifests/{tag}", headers={"content-type": OCI_MANIFEST}, body=manifest) == 201

    def repository(sample: dict) -> str | None:
        params = sample.get("pathParameters") or {}
        if "n1" in params:
            return "/".join(params[f"n{i}"] for i in range(1, 9) if f"n{i}" in params)
        proxy = params.get("proxy") or ""
        if sample["rawPath"].startswith("/api/v1/repositories/"):
            found = re.fullmatch(r"(.+?)(?:/(?:description|star|official|immutable|retention))?", proxy)
            return found.group(1) if found else None
        return proxy[: -len("/blobs/uploads/")] if proxy.endswith("/blobs/uploads/") else None

    def seed(kind: str, sample: dict):
        """The state each kind of event is answered against (see EXPECTED)."""
        name = repository(sample) or "library/hello"
        if kind in {"manifest-put", "blob-delete", "blob-get", "blob-head"}:
            push_blob(name, config_blob)
            push_blob(name, layer_blob)
        elif kind not in {"upload-monolithic-post", "upload-start-post", "too-deep-name", "default-unknown-path"}:
            push_image(name)
        if kind.startswith("upload-parts-"):
            assert call("POST", f"/v2/{name}/blobs/uploads/") == 202
            if kind == "upload-parts-get":  # a session in direct mode
                assert call("POST", f"/v2/{name}/blobs/uploads/{UPLOAD_ID}/parts") == 200
        if kind.startswith("upload-session-"):
            assert call("POST", f"/v2/{name}/blobs/uploads/") == 202
            if kind != "upload-session-patch":  # the PATCH event sends the first chunk itself
                assert call("PATCH", f"/v2/{name}/blobs/uploads/{UPLOAD_ID}", headers={"content-type": "application/octet-stream"}, body=config_blob) == 202

    # One client per service for the whole run (moto intercepts inside each mock_aws block):
    # creating clients per event would cost more than the events themselves.
    import boto3

    clients, make_client = {}, boto3.client

    def client(service: str, **kwargs):
        key = (service, repr(sorted(kwargs.items())))
        if key not in clients:
            clients[key] = make_client(service, **kwargs)
        return clients[key]

    boto3.client = client
    aws.reset()
    admin_hash = None
    results = {}
    for path in sorted(EVENTS.glob("*.json")):
        sample = load(path.name)
        with mock_aws():
            resources.create_bucket()
            resources.create_table()
            os.environ["TOKEN_KEY_ID"] = resources.create_signing_key()
            os.environ["SIGNIN_HASH_KEY_ID"] = resources.create_sign_in_hash_key()
            config.settings.cache_clear()
            tokens.reset()
            pseudonym.reset()
            if admin_hash is None:
                from registry import accounts

                admin_hash = accounts.hash_password(ADMIN[1])
            principals.create_user(ADMIN[0], {"password": admin_hash, "admin": True, "disabled": False})
            seed(kind_of(path.name), sample)
            status, codes = invoke(sample)
            results[path.name] = [status, codes, by_key[sample["routeKey"]].function]
    Path(spec["out"]).write_text(json.dumps({"origins": origins, "results": results}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["replay"]:
        replay(json.loads(sys.argv[2]))
    else:
        sys.exit(f"usage: {sys.argv[0]} replay SPEC-JSON")
