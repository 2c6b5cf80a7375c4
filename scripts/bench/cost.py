"""Section 5: what a million pulls cost, from the measured counts and AWS list prices.

No AWS is called: the per-request figures of the calls section (AWS calls,
computed capacity units, handler time, log bytes) are multiplied by the
request mix of one pull and by the prices below, once per token signing mode
(TokenSigning=kms and secret), each with its token request as measured in that mode.
"""

from __future__ import annotations

import math

PRICES_AS_OF = "2025 (us-east-1 list prices, no free tier)"
# name: (USD, per how many units, what) — list prices, us-east-1.
PRICES = {
    "http_api_request": (1.00, 1e6, "API Gateway HTTP API, per million requests (first 300 M a month; 512 KB steps)"),
    "lambda_request": (0.20, 1e6, "Lambda, per million invocations"),
    "lambda_gb_second": (0.0000133334, 1, "Lambda arm64, per GB-second (1024 MB functions: 1 GB)"),
    "dynamodb_read_unit": (0.125, 1e6, "DynamoDB on-demand, per million read request units"),
    "dynamodb_write_unit": (0.625, 1e6, "DynamoDB on-demand, per million write request units"),
    "kms_asymmetric_request": (0.15, 1e4, "KMS, per 10,000 asymmetric requests other than RSA 2048 (Sign with ECC_NIST_P256)"),
    "s3_get": (0.0004, 1e3, "S3 Standard, per 1,000 GET requests"),
    "logs_ingested_gb": (0.50, 1, "CloudWatch Logs, per GB ingested"),
    "kms_key_month": (1.00, 1, "KMS, per customer managed key and month"),
    "secret_month": (0.40, 1, "Secrets Manager, per secret and month"),
    "secret_api_call": (0.05, 1e4, "Secrets Manager, per 10,000 API calls (GetSecretValue)"),
    "s3_gb_month": (0.023, 1, "S3 Standard storage, per GB-month (first 50 TB)"),
    "dynamodb_gb_month": (0.25, 1, "DynamoDB Standard storage, per GB-month (first 25 GB free)"),
    "logs_stored_gb_month": (0.03, 1, "CloudWatch Logs storage, per GB-month"),
    "transfer_out_gb": (0.09, 1, "Data transfer out to the internet, per GB (first 10 TB a month)"),
}
MEMORY_GB = 1.0  # template.yaml: MemorySize 1024
PLATFORM_LOG_BYTES = 350  # Lambda's own START / END / REPORT lines per invocation (assumed)
LAYERS = 5

# One `docker pull` of a 5-layer image, containerd-style (Docker 23+ with the containerd
# store, BuildKit, nerdctl): ping, token, HEAD by tag, GET by digest, config + layers.
PULL_MIXES = {
    "signed in, private repository": [
        ("GET /v2/ without a token (401 challenge)", 1),
        ("GET /token, Basic credentials (password)", 1),
        ("manifest HEAD by tag", 1),
        ("manifest GET by digest", 1),
        ("blob GET (307 to S3)", LAYERS + 1),
    ],
    "anonymous, public repository": [
        ("GET /v2/ without a token (401 challenge)", 1),
        ("GET /token, anonymous (public repository)", 1),
        ("manifest HEAD by tag", 1),
        ("manifest GET by digest", 1),
        ("blob GET (307 to S3)", LAYERS + 1),
    ],
}


def _dollars(usd: float) -> str:
    """$1.00, $0.0004, $0.0000133334: every significant digit, at least two decimals."""
    whole, _, decimals = f"{usd:.10f}".rstrip("0").partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"


def price(name: str) -> float:
    """USD per single unit."""
    usd, per, _ = PRICES[name]
    return usd / per


def per_pull(rows: dict[str, dict], mix: list[tuple[str, int]]) -> dict:
    """Quantities for one pull: requests, billed milliseconds, units, KMS calls, S3 GETs, log bytes."""
    quantity = {"requests": 0, "billed_ms": 0.0, "read_units": 0.0, "write_units": 0.0, "kms": 0, "secret_calls": 0, "s3_get": 0,
                "log_bytes": 0.0}
    for name, times in mix:
        row = rows[name]
        quantity["requests"] += times
        quantity["billed_ms"] += times * math.ceil(row["handler_ms"])
        quantity["read_units"] += times * row["read_units"]
        quantity["write_units"] += times * row["write_units"]
        quantity["kms"] += times * sum(n for call, n in row["calls"].items() if call in ("kms.Sign",))
        quantity["secret_calls"] += times * row["calls"].get("secretsmanager.GetSecretValue", 0)
        quantity["log_bytes"] += times * (row["log_bytes"] + PLATFORM_LOG_BYTES)
        if row["status"] == 307:
            quantity["s3_get"] += times
    return quantity


def dollars_per_million(q: dict) -> dict[str, float]:
    million = 1e6
    return {
        "API Gateway HTTP API requests": q["requests"] * price("http_api_request") * million,
        "Lambda invocations": q["requests"] * price("lambda_request") * million,
        "Lambda duration": q["billed_ms"] / 1000 * MEMORY_GB * price("lambda_gb_second") * million,
        "DynamoDB reads": q["read_units"] * price("dynamodb_read_unit") * million,
        "DynamoDB writes (pull counter)": q["write_units"] * price("dynamodb_write_unit") * million,
        "KMS Sign (one token)": q["kms"] * price("kms_asymmetric_request") * million,
        "Secrets Manager GetSecretValue": q["secret_calls"] * price("secret_api_call") * million,
        "S3 GET (presigned, by the client)": q["s3_get"] * price("s3_get") * million,
        "CloudWatch Logs ingestion": q["log_bytes"] / 1e9 * price("logs_ingested_gb") * million,
    }


# How a token is signed (template parameter TokenSigning); each mode's token rows are measured
# by the calls section in that mode (scripts/bench/calls.py: the kms rows carry no suffix, the
# secret rows the suffix ", signing: secret"). Per-container work (the secret read and the key
# published by a container's first token, once per KEY_REFRESH_SECONDS after) is not per pull:
# the "first token of a container" rows show it.
SIGNING_MODES = {"kms": "", "secret": ", signing: secret"}
TOKEN_ROWS = ("GET /token, Basic credentials (password)", "GET /token, anonymous (public repository)")


def mode_mix(mix: list[tuple[str, int]], suffix: str) -> list[tuple[str, int]]:
    """The pull's request mix with its token request measured in the given signing mode."""
    return [(name + suffix if name in TOKEN_ROWS else name, times) for name, times in mix]


def cold_start_cost(import_ms: float) -> float:
    """Dollars per 1,000 cold starts whose INIT lasts ``import_ms`` (INIT is billed since August 2025)."""
    return import_ms / 1000 * MEMORY_GB * price("lambda_gb_second") * 1000


def run(calls: dict, coldstart: dict | None = None) -> dict:
    rows = {row["name"]: row for row in calls["reads"]}
    mixes = {}
    for label, mix in PULL_MIXES.items():
        for mode, suffix in SIGNING_MODES.items():
            if any(name not in rows for name, _ in mode_mix(mix, suffix)):
                continue  # a calls result from before the mode was measured
            quantity = per_pull(rows, mode_mix(mix, suffix))
            lines = dollars_per_million(quantity)
            mixes[f"{label}, signing: {mode}"] = {"mix": mix, "quantity": quantity, "lines": lines, "total": sum(lines.values())}
    slowest = max((r["median_ms"] for r in (coldstart or {}).get("rows", [])), default=None)
    return {
        "mixes": mixes,
        "prices": {k: {"usd": usd / per, "what": what, "shown": _dollars(usd)} for k, (usd, per, what) in PRICES.items()},
        "as_of": PRICES_AS_OF,
        "platform_log_bytes": PLATFORM_LOG_BYTES,
        "cold_start_per_1000": cold_start_cost(slowest) if slowest else None,
        "cold_start_ms": slowest,
        "transfer_per_gb": price("transfer_out_gb"),
    }
