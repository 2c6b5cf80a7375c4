"""Render the sections' results as docs/performance.md (Markdown tables)."""

from __future__ import annotations

import json
import math

from bench import cost as costs
from bench import median


def table(headers: list[str], rows: list[list], align: str | None = None) -> str:
    """A Markdown table; ``align`` is one letter per column (l or r)."""
    align = align or "l" + "r" * (len(headers) - 1)
    rule = ["---:" if a == "r" else "---" for a in align]
    lines = ["| " + " | ".join(headers) + " |", "| " + " | ".join(rule) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def calls_text(calls: dict) -> str:
    """``{"dynamodb.GetItem": 4, "kms.Sign": 1}`` -> ``GetItem ×4, KMS Sign``."""
    if not calls:
        return "none"
    parts = []
    for key, n in calls.items():
        service, op = key.split(".", 1)
        label = op if service == "dynamodb" else f"{service.upper()} {op}"
        parts.append(label + (f" ×{n}" if n > 1 else ""))
    return ", ".join(parts)


def num(value, digits: int = 1) -> str:
    """1,234 for whole numbers, 1,234.5 otherwise, – for nothing."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:,.4f}"


# --- section 1 -------------------------------------------------------------------------------------


def push_total(rows: list[dict], layers: int, manifest: str, label: str) -> dict:
    """The whole push: config upload, ``layers`` layer uploads, the manifest PUT named ``manifest``."""
    by = {row["name"]: row for row in rows}
    config = [r for r in rows if "config blob" in r["name"]]
    if manifest not in by:
        return None
    layer = [by["push: POST (start upload)"], next(r for r in rows if r["name"].startswith("push: PATCH,") and "config" not in r["name"]),
             by["push: PUT ?digest (complete)"]]
    parts = config + layer * layers + [by[manifest]]
    calls: dict[str, int] = {}
    for part in parts:
        for key, n in part["calls"].items():
            calls[key] = calls.get(key, 0) + n
    return {"name": f"whole push, {label} ({len(parts)} requests)", "calls": dict(sorted(calls.items())), "stable": all(p["stable"] for p in parts),
            "read_units": sum(p["read_units"] for p in parts), "write_units": sum(p["write_units"] for p in parts),
            "handler_ms": sum(p["handler_ms"] for p in parts), "log_bytes": sum(p["log_bytes"] for p in parts)}


def _calls_cell(row: dict) -> str:
    if row["stable"] or not row.get("variants"):
        return calls_text(row["calls"])
    return "⚠ varied: " + " / ".join(calls_text(json.loads(v)) for v in row["variants"])


def _call_rows(rows: list[dict]) -> list[list]:
    return [[r["name"], _calls_cell(r), num(r["read_units"]), num(r["write_units"]), num(r["handler_ms"]), num(r["log_bytes"], 0)]
            for r in rows]


def section_calls(calls: dict) -> str:
    headers = ["request", "AWS calls (exact)", "DynamoDB read units", "write units", "handler ms (median, moto)", "log bytes"]
    manifest = "push: manifest PUT (3 layers)"
    totals = [push_total(calls["push"], calls["push_layers"], manifest + suffix, label)
              for suffix, label in ((", first push of the repository", "new repository"), ("", "existing repository"))]
    pushes = calls["push"] + [t for t in totals if t]
    samples = calls["reads"][0]["samples"]
    return "\n\n".join([
        "## 1. AWS calls per request",
        f"In-process under moto (`mock_aws`), through `local_stack.gateway.Gateway.invoke` with `tests.clients.Client`; calls counted "
        f"with botocore `before-parameter-build`/`after-call` hooks on the registry's own clients (`registry.aws.s3()`, `dynamodb()`, "
        f"`kms()`, after `registry.aws.reset()`). Each read was made {samples} times (the token fetched beforehand, so it is not "
        f"counted); a request marked ⚠ made different calls across repetitions. Capacity units are computed from the item sizes with "
        f"DynamoDB's on-demand rules (moto reports fixed values): 4 KB per read unit, half for eventually consistent reads, "
        f"1 KB per write unit, transactions double. The pulled image has {calls['pull_layers']} layers "
        f"(manifest {calls['manifest_bytes']:,} bytes).",
        "### Pull side",
        table(headers, _call_rows(calls["reads"])),
        f"### Push of {calls['push_layers']} × {calls['push_layer_bytes']:,}-byte layers (POST, PATCH, PUT per blob, then the manifest)",
        "Medians over every layer of every repetition. skopeo and docker also send a blob HEAD (one GetItem, as above) before each upload.",
        table(headers, _call_rows(pushes)),
    ])


# --- section 2 -------------------------------------------------------------------------------------


def section_e2e(e2e: dict) -> str:
    reference = e2e["labels"][-1]
    ref_time = {(r["image"], r["direction"]): r["median_s"] for r in e2e["rows"] if r["target"] == reference}
    rows = []
    for r in e2e["rows"]:
        ratio = r["median_s"] / ref_time[(r["image"], r["direction"])]
        rows.append([r["image"], r["direction"], r["target"], f"{r['median_s']:.2f} ({', '.join(f'{s:.2f}' for s in r['all_s'])})",
                     f"{ratio:.2f}", num(r["http_requests"]), num(r["s3_registry"]), num(r["s3_presigned"]), num(r["dynamodb"]), num(r["kms"])])
    headers = ["image", "", "registry", "median s (each run)", "× reference", "HTTP requests", "S3 requests by the registry",
               "S3 GETs by skopeo (presigned)", "DynamoDB calls", "KMS calls"]
    detail = [[r["image"], r["direction"], r["target"], calls_text({("s3." + k): v for k, v in r["s3_by_method"].items()}) or "none",
               calls_text(r["dynamodb_ops"])] for r in e2e["rows"]]
    return "\n\n".join([
        "## 2. End to end: skopeo push and pull, side by side with the reference registry",
        f"`{e2e['skopeo']}` copies an OCI layout to each registry and back into an empty layout, {e2e['runs']} runs, fresh random "
        f"layers every run and registry (nothing to deduplicate or mount). Both registries store in **the same moto server**: ours is "
        f"the local stack (moto + the gateway running the real handlers, AWS request limits on); the reference is "
        f"`{e2e['reference_version']}` with its S3 storage driver pointed at that moto (own bucket, `regionendpoint`, v4auth, "
        f"redirects on, so both answer blob GETs with a 307 to a presigned moto URL). Ours runs twice: with token auth on (skopeo "
        f"signs in as the admin, as in production) and with `AUTH_ENABLED=false` (anonymous, like the reference). S3, DynamoDB and "
        f"KMS requests are counted by a WSGI middleware around moto's app; HTTP requests are what each registry served (ours "
        f"includes `/token`).",
        table(headers, rows, "lllrrrrrrr"),
        "S3 and DynamoDB requests by kind (medians are per run; these are from the first run):",
        table(["image", "", "registry", "S3 requests by the registry", "DynamoDB / KMS calls"], detail, "lllll"),
    ])


# --- section 3 -------------------------------------------------------------------------------------


GROUP_ORDER = ["boto3 + botocore", "awscrt (dev only)", "powertools", "pyjwt", "cryptography", "registry (our code)", "other (stdlib, …)"]
ENV_LABELS = {"lambda": "Lambda-like environment (the goal's measure)", "development": "development environment (for comparison only)"}


def _ratio_cell(ratio: float, goal: float) -> str:
    return f"{ratio:.2f}×" + ("" if ratio <= goal else " ⚠")


def _coldstart_table(env: dict, goal: float) -> str:
    uncompiled = env.get("uncompiled")
    rows = []
    for r in env["rows"]:
        cells = [r["function"], _ratio_cell(r["init_ratio"], goal), _ratio_cell(r["first_ratio"], goal)]
        if uncompiled:
            cells += [_ratio_cell(r["uncompiled"]["init_ratio"], goal), _ratio_cell(r["uncompiled"]["first_ratio"], goal)]
        cells += [num(r["cpu_ms"], 0), num(r["first_use_ms"], 0), num(r["median_ms"], 0), f"{r['min_ms']:.0f}–{r['max_ms']:.0f}",
                  *[num(r["breakdown"].get(g, 0.0), 0) for g in GROUP_ORDER]]
        rows.append(cells)
    headers = ["function", "INIT × boto3", "INIT + first request × boto3"]
    if uncompiled:
        headers += ["as built (no bytecode): INIT ×", "as built: INIT + first ×"]
    headers += ["INIT CPU ms", "first request's imports, CPU ms", "INIT wall ms", "wall min–max", *[f"{g} ms" for g in GROUP_ORDER]]
    return table(headers, rows)


def section_coldstart(cold: dict) -> str:
    goal = cold["goal_ratio"]
    parts = ["## 3. Cold start: import time per function",
             f"Each figure comes from fresh interpreters, {cold['runs']} per function (after one run each that warms the bytecode "
             "caches): `import boto3` first, timed (the reference: a function imports it anyway), then the rest of "
             "`functions/<fn>/app.py` with the layer on `sys.path` (**INIT**: what Lambda's INIT phase runs before the first request, "
             "minus the runtime's bootstrap), then the modules a pull's **first request** imports on top (functions that verify tokens: "
             "the token module `registry.auth.tokens`, PyJWT and the `cryptography` modules it loads, imported by the first request "
             "that carries a bearer token; `manifest` also its pull-counting thread pool, made by its first counted GET; `token`: the "
             "signing path, the secret mode's larger set; for `base` that is the worst case: the first request of a `docker pull` is "
             "`GET /v2/` without a token, answered 401 with nothing more imported). Two ratios per interpreter, medians over the runs "
             "(CPU time, steadier than "
             "wall time on a shared machine): INIT ÷ boto3 and (INIT + first request) ÷ boto3, so nothing is hidden by importing it "
             f"later. ⚠ marks a figure over the {goal}× goal. Measuring the reference and the function in the same interpreter lets the "
             "machine's load hit both alike (earlier reports timed them in separate interpreters and scattered by about ±0.2). The "
             "per-package columns are self import time from one extra `python -X importtime` run, first-request imports included "
             "(importtime's own overhead inflates them)."]
    for name, env in cold["environments"].items():
        pull = env["cold_pull"]
        parts.append(f"### {ENV_LABELS.get(name, name)}: Python {env['python']}, boto3 {env['boto3']}, botocore {env['botocore']}; "
                     f"`import boto3` {env['boto3_cpu_ms']:.0f} ms CPU ({env['boto3_ms']:.0f} ms wall)")
        if name == "lambda":
            parts.append(f"A virtual environment (`.bench/lambda-venv`, rebuilt when the layer's requirements change) holding only "
                         f"`layers/registry/requirements.txt` and boto3/botocore {cold['lambda_boto3']}, pinned so that figures stay comparable. "
                         "That version could not be confirmed from AWS's documentation: the Lambda Python page "
                         "(https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html, \"Runtime-included SDK versions\") says the "
                         "included SDK depends on the runtime version and the Region and tells you to print `boto3.__version__` from a "
                         "function to find it. No moto, SAM CLI or `awscrt`.")
            if env.get("uncompiled"):
                parts.append("**As built** columns: the same imports from `.bench/layer-as-built`, a copy of the layer as `sam build` "
                             "makes it, run with `python -B`. SAM's Python builder (aws-lambda-builders' `python_pip` workflow) "
                             "extracts the "
                             "requirements' wheels without compiling them and copies the layer's source excluding `*.pyc` and "
                             "`__pycache__`; Lambda mounts layers read-only under `/opt`, so Python compiles every layer module "
                             "(Powertools, PyJWT, `cryptography`'s Python part, the registry package) on every cold start and cannot "
                             "cache the result. boto3 keeps its bytecode there (assumed for the runtime's own copy). That is what a "
                             "deployed function pays today; the other columns are what it would pay with a layer that ships "
                             "compiled files.")
        else:
            parts.append("The interpreter running the benchmark, with every development package: botocore imports `awscrt` (from the "
                         "SAM CLI) when it is installed, which Lambda's runtime does not have.")
        parts.append(_coldstart_table(env, goal))
        if env.get("packages"):
            parts.append("What the libraries alone add to `import boto3`, timed the same way: " + "; ".join(
                f"{p['probe']}: {p['ratio']:.2f}×" for p in env["packages"]) + ". Every HTTP function imports Powertools at INIT "
                "(its Logger writes every request's line; the package's `__init__` imports Logger, Metrics and Tracer whichever "
                "submodule is asked for), so the first figure is the floor of INIT. Every function that verifies tokens imports PyJWT "
                "on its first bearer token, so the last figure is the floor of INIT + first request for a pull's authenticated requests.")
        parts.append(f"A pull after every function is cold starts {', '.join(pull['functions'])}: their INIT imports add up to "
                     f"{pull['import_cpu_ms']:.0f} ms CPU ({pull['import_cpu_ms'] / pull['boto3_cpu_ms']:.2f}× the "
                     f"{len(pull['functions'])} `import boto3` they cannot avoid, {pull['boto3_cpu_ms']:.0f} ms), plus "
                     f"{pull['first_use_cpu_ms']:.0f} ms of imports in their first requests "
                     f"({(pull['import_cpu_ms'] + pull['first_use_cpu_ms']) / pull['boto3_cpu_ms']:.2f}× in all). "
                     "The first request of each "
                     "container also makes AWS calls a warm one does not: a verifying function reads the published key its token's "
                     "`kid` names (one consistent DynamoDB `GetItem`); the token function fetches its key (KMS `GetPublicKey`, or "
                     "Secrets Manager `GetSecretValue` with TokenSigning=secret) and publishes it (one conditional `PutItem`); see "
                     "section 1's \"first request of a container\" and \"first token of a container\" rows.")
    parts.append(_coldstart_remedies(cold))
    return "\n\n".join(parts)


def _coldstart_remedies(cold: dict) -> str:
    """What keeps the figures over the goal, with the measured shares, and what would remove it."""
    env = cold["environments"]["lambda"]
    goal = cold["goal_ratio"]
    packages = {p["probe"]: p["ratio"] for p in env.get("packages", [])}
    powertools = packages.get("boto3 + Powertools (Logger, Metrics)")
    pyjwt = packages.get("boto3 + PyJWT")
    http = [r for r in env["rows"] if r["function"] not in ("gc", "verify")]
    # What INIT adds beyond boto3 + Powertools: the registry's own modules (and the stdlib ones only they import).
    ours = median(r["init_ratio"] for r in http) - powertools if powertools else None
    lines = ["### What keeps figures over the goal, and what would remove it",
             f"- **Powertools** ({powertools:.2f}× on its own, paid at INIT by every function): its package `__init__` imports Logger, "
             "Metrics (with the CloudWatch EMF provider) and Tracer whichever submodule is asked for, so importing "
             "`aws_lambda_powertools.logging` alone, or deferring `registry.metrics`' imports to the first metric, saves nothing "
             "(measured: "
             "the provider is already loaded by the package). The Logger writes every request's line, so deferring it would only move it "
             "into the first request." if powertools else "",
             f"- **PyJWT with `cryptography`** ({pyjwt:.2f}× on its own): `jwt/__init__` imports `jwt.algorithms`, which imports "
             "`cryptography`'s x509, serialization (SSH included) and every key type, whatever algorithm is used; no PyJWT submodule "
             "avoids it. It is now paid by the first request that carries a bearer token, not by INIT: a 401 challenge or `GET /v2/` "
             "before sign-in never pays it, a pull's first authenticated request of each function does (the INIT + first request column)."
             if pyjwt else "",
             f"- **The registry's own modules**: about {ours:.2f}× `import boto3` more (the HTTP functions' median INIT ratio minus "
             "Powertools' alone): module loading, compiled regular expressions and the `OciError` enum. Making a `@dataclass` costs "
             "about 1 ms of INIT (its methods are generated and compiled when the class is made; a `typing.NamedTuple` about 0.2 ms), "
             "so the layer has none: immutable records (`Settings`, `Digest`, `Route`, `Scope`, `Caller`, `Principal`, `Manifest`, "
             "the rate limiter's `Limit` and `Meter`, …) are `NamedTuple`s and the mutable ones (`Request`, `Response`, the gc and "
             "retention reports, an upstream's answer) plain classes with an `__init__`. Deferred where a request does not need them: the sign-in module (`registry.accounts`) outside the token and "
             "search functions and an anonymous pull, the rate limiter outside the manifest function; the token module with PyJWT "
             "(the first bearer token); the pull-through cache (a miss, a pending blob link, a write, a token scope the caller may not "
             "pull) in the manifest, blob, catalog and token functions; the search index (a repository's first push) and the "
             "pull-counting pool (the first counted GET) in the manifest function; the direct-to-S3 verification and its copy pool "
             "(a completion that verifies in AWS) in the upload function; retention policies and namespace usage (their own routes) "
             "in the search function. `tests/unit/test_cold_start.py` fails if an INIT loads one of them again. What is left at INIT "
             "serves every request of its function (settings, routes, logging and metrics, the guard, the storage adapters)."
             if ours is not None else "",
             "- **What is left over the goal, function by function** (`python -X importtime` in the Lambda-like environment, on top "
             "of what `base` imports, about 0.02 to 0.03× each): `manifest`, the rate limiter (every GET and HEAD is "
             "metered), the manifest media types (every GET checks Accept against them), "
             "and the metadata adapter with the storage counters it imports (`registry.storage.usage`, `catalog_index`); `upload`, "
             "the resumable hashes (`rehashes`, a compiled extension: the POST that opens a session, every PATCH and PUT), the same metadata adapter "
             "and the blob store; `search`, the sign-in module (`registry.accounts`, every `docker search` signs its caller in) and "
             "the token module, which it imports itself; `gc` (a schedule, no client waits on it), the pull-through cache, "
             "retention and usage, all used by every pass. None of these is needed by only some requests of its function, so "
             "deferring them would only move their cost into the first request; below that, the cost is module loading.",
             ]
    if env.get("uncompiled"):
        worst = max(env["rows"], key=lambda r: r["uncompiled"]["first_ratio"])
        lines.append(f"- **Bytecode** (the largest item, and free to remove): as `sam build` ships the layer, every layer module is "
                     f"compiled at every cold start: INIT up to {max(r['uncompiled']['init_ratio'] for r in env['rows']):.2f}× and INIT + "
                     f"first request up to {worst['uncompiled']['first_ratio']:.2f}× ({worst['function']}), against "
                     f"{max(r['init_ratio'] for r in env['rows']):.2f}× and {max(r['first_ratio'] for r in env['rows']):.2f}× with "
                     "compiled files. `make build` (`sam build`, then `make compile`: `python3.13 -m compileall --invalidation-mode "
                     "unchecked-hash` over the built layer and functions, so the files need no source timestamps to stay valid after "
                     "packaging) ships them, at no cost while idle; deploy with it (README, Deploy).")
    snap = cold.get("snapstart")
    if snap:
        lines.append(f"- **Lambda SnapStart** (python3.12 and later) would replace INIT and the imports done in it by restoring a "
                     "snapshot taken when a version is published (https://docs.aws.amazon.com/lambda/latest/dg/snapstart.html). "
                     f"It is not free at idle: a cached snapshot is billed per GB-second while the version is published, about "
                     f"${snap['per_function_month']:.2f} a month per 1 GB function (${snap['pull_functions_month']:.2f} for the "
                     f"{snap['pull_functions']} functions of a pull, ${snap['http_functions_month']:.2f} for all "
                     f"{snap['http_functions']} HTTP functions), plus about ${snap['restore_per_1000']:.2f} per 1,000 restores "
                     "(us-east-1 rates as quoted from https://aws.amazon.com/lambda/pricing/, not read from AWS here). This product "
                     "promises nothing at idle, so it is documented, not enabled. With it, imports belong at INIT (they are in the "
                     "snapshot), the opposite of the deferral above.")
    return "\n".join(line for line in lines if line)


# --- section 4 -------------------------------------------------------------------------------------


def _grows(rows: list[dict], sizes: list[int]) -> list[str]:
    """Requests whose calls or items read differ between the smallest and the largest size."""
    by_name: dict[str, dict[int, dict]] = {}
    for r in rows:
        key = r["name"].split(" (n=")[0] if "page after" in r["name"] else r["name"]
        by_name.setdefault(key, {})[r["size"]] = r
    grown = []
    for name, at in by_name.items():
        mid, big = at.get(sizes[1]), at.get(sizes[-1])
        if mid and big and (mid["calls"] != big["calls"] or mid["items_read"] != big["items_read"]):
            grown.append(name)
    return grown


def section_scale(scale: dict) -> str:
    rows = [[r["name"], f"{r['size']:,}", calls_text(r["calls"]), num(r["items_read"]), num(r["read_units"]), num(r["handler_ms"]),
             r.get("note", "")] for r in sorted(scale["rows"], key=lambda r: (r["name"].split(" after")[0], r["size"]))]
    grown = _grows(scale["rows"], scale["sizes"])
    verdict = ("Between 1,000 and 10,000 the calls and items read stay the same for every request except: "
               + "; ".join(f"**{g}**" for g in grown) + "." if grown else
               "Between 1,000 and 10,000 the calls and items read stay the same for every request.")
    return "\n\n".join([
        "## 4. Scale: 10, 1,000 and 10,000 tags or repositories",
        f"In-process under moto. One repository is pushed through the API; its tag item and catalog item are then cloned into "
        f"DynamoDB with `BatchWriteItem` until the repository has N tags and the catalog N repositories. Pages ask for "
        f"n={scale['page']}. The restricted user owns one repository (`alice/…`); all the others are private.",
        table(["request", "N", "AWS calls", "items read", "DynamoDB read units", "handler ms (median, moto)", "note"], rows, "lrlrrrl"),
        verdict,
        "Latency here is moto's, not DynamoDB's: moto's Query sorts the whole partition on every call, so its time grows with N "
        "even where the items read do not. DynamoDB's does not.",
    ])


# --- section 5 -------------------------------------------------------------------------------------


def section_cost(cost: dict) -> str:
    labels = list(cost["mixes"])
    line_names = list(next(iter(cost["mixes"].values()))["lines"])
    rows = [[name, *[usd(cost["mixes"][label]["lines"][name]) for label in labels]] for name in line_names]
    rows.append(["**total per million pulls**", *[f"**{usd(cost['mixes'][label]['total'])}**" for label in labels]])
    quantities = [[what, *[num(cost["mixes"][label]["quantity"][key], 1) for label in labels]] for key, what in [
        ("requests", "requests (HTTP API = Lambda invocations)"), ("billed_ms", "billed Lambda ms (1 ms steps)"),
        ("read_units", "DynamoDB read units"), ("write_units", "DynamoDB write units"), ("kms", "KMS Sign"),
        ("secret_calls", "Secrets Manager GetSecretValue"), ("s3_get", "S3 GETs"), ("log_bytes", "log bytes")]]
    mix = next(iter(cost["mixes"].values()))["mix"]
    prices = [[p["what"], p["shown"]] for p in cost["prices"].values()]
    cold = (f"A cold start's INIT phase is billed too (since August 2025): at the slowest function's import time "
            f"({cost['cold_start_ms']:.0f} ms measured here) that is {usd(cost['cold_start_per_1000'])} per 1,000 cold starts."
            if cost["cold_start_ms"] else "")
    return "\n\n".join([
        "## 5. Cost",
        f"Prices: {cost['as_of']}. Per pull of a {costs.LAYERS}-layer image, the requests a containerd-style client sends "
        f"(Docker 23+ with the containerd store, BuildKit, nerdctl): "
        + ", ".join(f"{n} × {name}" for name, n in mix) + ". Docker's classic puller sends one manifest GET by tag instead of "
        "HEAD + GET, so this is the upper end. Lambda time is the measured in-process handler time under moto (AWS round trips are "
        f"slower than moto's, scrypt and KMS are not emulated at AWS speed), rounded up to the ms, at 1024 MB. Logs: the bytes the "
        f"functions wrote at the template's INFO level plus an assumed {cost['platform_log_bytes']} bytes of Lambda's "
        f"START/END/REPORT lines per invocation.",
        table(["per million pulls", *labels], rows),
        table(["quantities per pull", *labels], quantities),
        "**Not included: the bytes.** Blob downloads come straight from S3; data transfer out to the internet costs "
        f"${cost['transfer_per_gb']:.2f}/GB (first 10 TB a month), so a million pulls of a 100 MB image add about "
        f"{usd(cost['transfer_per_gb'] * 100 / 1024 * 1e6)}, far more than everything above. Pulls from the same region (EC2, "
        "ECS, Lambda) transfer for free.",
        "**Idle cost.** No requests, no request charges: API Gateway, Lambda and on-demand DynamoDB cost nothing while nobody "
        "pushes or pulls. What remains: the KMS keys, **$1.00 a month** each (the sign-in hash key, and the signing key with "
        "TokenSigning=kms or the key encrypting the secret with TokenSigning=secret), plus **$0.40 a month** for the secret in that "
        "mode; S3 storage of the blobs ($0.023/GB-month); "
        "DynamoDB storage of the metadata ($0.25/GB-month after the free 25 GB; items are small); CloudWatch Logs storage "
        "($0.03/GB-month; template.yaml sets no log retention, so logs are kept, and paid for, forever).",
        cold,
        "**Signing modes** (template parameter `TokenSigning`), each column measured in that mode by section 1 (its token rows "
        "marked \", signing: secret\" for the second): **kms** (default) makes one `kms:Sign` per token, the private key never "
        "leaves KMS; **secret** reads an ES256 key's seed from Secrets Manager once per token-function container (and every 5 "
        "minutes after, for rotation) and signs in memory, so a warm token makes no signing call. Its per-container calls (one "
        f"`GetSecretValue` at {usd(cost['prices']['secret_api_call']['usd'])} and one DynamoDB write publishing the key) are in "
        "section 1's \"first token of a container\" rows, not per pull. The price is where the private key lives: README, "
        "\"Token signing\".",
        table(["price used", "list price"], prices, "lr"),
    ])


# --- at a glance ------------------------------------------------------------------------------------


def _glance_calls(calls: dict) -> list[str]:
    rows = {r["name"]: r for r in calls["reads"]}
    pick = ["manifest GET by tag", "manifest HEAD by tag", "blob GET (307 to S3)", "GET /token, Basic credentials (password)"]
    return ["AWS calls per request: " + "; ".join(f"{name}: {calls_text(rows[name]['calls'])}" for name in pick if name in rows) + "."]


def _glance_e2e(e2e: dict) -> list[str]:
    ours, reference = e2e["labels"][0], e2e["labels"][-1]
    by = {(r["image"], r["direction"], r["target"]): r for r in e2e["rows"]}
    parts = []
    for image in e2e["images"]:
        for direction in ("push", "pull"):
            mine, ref = by.get((image, direction, ours)), by.get((image, direction, reference))
            if mine and ref:
                parts.append(f"{direction} {image}: {mine['median_s'] / ref['median_s']:.2f}× the reference's time, "
                             f"{num(mine['s3_registry'])} S3 + {num(mine['dynamodb'])} DynamoDB requests against its "
                             f"{num(ref['s3_registry'])} S3 requests")
    return ["skopeo, ours (auth on) against docker-registry 2.8 on the same moto: " + "; ".join(parts) + "."]


def _glance_cost(cost: dict) -> list[str]:
    label, mix = next(iter(cost["mixes"].items()))
    top, amount = max(mix["lines"].items(), key=lambda kv: kv[1])
    cheaper = min(cost["mixes"].items(), key=lambda kv: kv[1]["total"])
    return [f"A million pulls of a {costs.LAYERS}-layer image ({label}) cost about {usd(mix['total'])} (bytes out excluded); the largest "
            f"line is {top} at {usd(amount)} ({amount / mix['total']:.0%}). Cheapest mode ({cheaper[0]}): {usd(cheaper[1]['total'])}. "
            "Idle: $2.00 a month for the two KMS keys ($0.40 more for the secret with TokenSigning=secret), plus storage."]


def section_glance(results: dict) -> str:
    lines = []
    if "calls" in results:
        lines += _glance_calls(results["calls"])
    if "e2e" in results:
        lines += _glance_e2e(results["e2e"])
    if "coldstart" in results:
        cold = results["coldstart"]
        goal = cold["goal_ratio"]
        slowest = max(cold["rows"], key=lambda r: r["init_ratio"])
        slowest_first = max(cold["rows"], key=lambda r: r["first_ratio"])
        over = [r["function"] for r in cold["rows"] if r["init_ratio"] > goal]
        over_first = [r["function"] for r in cold["rows"] if r["first_ratio"] > goal]
        within = f"over the {goal}× goal: {', '.join(over)}; " if over else f"every function within {goal}×; "
        text = (f"Cold start (Lambda-like environment, bytecode cached): INIT at most {slowest['init_ratio']:.2f}× `import boto3` "
                f"({slowest['function']}), " + within
                + f"INIT + first request at most {slowest_first['first_ratio']:.2f}× ({slowest_first['function']})"
                + (f", over {goal}×: {', '.join(over_first)}." if over_first else "."))
        if "uncompiled" in slowest:
            worst = max(cold["rows"], key=lambda r: r["uncompiled"]["first_ratio"])
            text += (f" As `sam build` ships the layer (no bytecode, compiled at every cold start): INIT up to "
                     f"{max(r['uncompiled']['init_ratio'] for r in cold['rows']):.2f}×, INIT + first request up to "
                     f"{worst['uncompiled']['first_ratio']:.2f}× ({worst['function']}).")
        lines.append(text)
    if "scale" in results:
        grown = _grows(results["scale"]["rows"], results["scale"]["sizes"])
        lines.append("From 1,000 to 10,000 tags or repositories, reads stay flat" + (f" except: {'; '.join(grown)}." if grown else "."))
    if "cost" in results:
        lines += _glance_cost(results["cost"])
    return "## At a glance\n\n" + "\n".join(f"- {line}" for line in lines) if lines else ""


# --- the document ------------------------------------------------------------------------------------


def caveats() -> str:
    return "\n".join([
        "**Read this first.**",
        "",
        "- Call counts and capacity units are exact for the code measured; they are what AWS would bill.",
        "- Latency and handler times are **moto's, not AWS's**: moto answers in-process or on localhost, DynamoDB and S3 over the "
        "network take milliseconds per call, and moto's Query slows with partition size where DynamoDB's does not.",
        "- The end-to-end times compare two registries on the same emulated S3 on one machine; ours runs its functions in the "
        "same Python process as moto (one GIL), the reference is a separate Go process. Ratios say more than seconds.",
        "- Cold-start imports ran here (x86-64, this Python), not on Lambda's arm64 python3.13 at 1024 MB (about 0.6 vCPU): "
        "expect Lambda's INIT to be slower than these figures.",
    ])


def _command(command: str) -> str:
    return f"`make bench` (`{command}`)" if command == "python scripts/bench.py" else f"`{command}`"


def section_proxy(result: dict) -> str:
    from bench.proxy import section  # its own module (it imports the test harness): only when it ran

    return section(result)


def section_verify(result: dict) -> str:
    from bench.verify import section

    return section(result)


def section_gc(result: dict) -> str:
    from bench.gc import section

    return section(result)


def section_cache(result: dict) -> str:
    from bench.cache import section

    return section(result)


def document(results: dict, meta: dict) -> str:
    parts = [
        "# Performance in figures",
        f"Generated by {_command(meta['command'])} on {meta['date']} in {meta['seconds']:.0f} s. Machine: {meta['machine']}; "
        f"load average {meta['load']} (start / end: timings are only comparable on a quiet machine). Code: {meta['code']}.",
        caveats(),
        section_glance(results),
    ]
    renderers = [("calls", section_calls), ("e2e", section_e2e), ("coldstart", section_coldstart), ("scale", section_scale),
                 ("cost", section_cost), ("proxy", section_proxy), ("verify", section_verify),
                 ("gc", section_gc), ("cache", section_cache)]
    for name, render in renderers:
        if name in results:
            parts.append(render(results[name]))
        elif name in meta.get("failed", {}):
            parts.append(f"## {name}: FAILED\n\n```\n{meta['failed'][name][-2000:]}\n```")
    return "\n\n".join(p for p in parts if p) + "\n"
