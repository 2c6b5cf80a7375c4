"""Section 3: cold start, as the import time of each function's ``app.py``.

Each figure is the median over fresh interpreters of the time (wall and CPU:
CPU time is steadier on a busy machine) to import
``functions/<fn>/app.py`` with the layer on ``sys.path`` (what Lambda's INIT
phase does before the first request, minus the runtime's own bootstrap). One
more run per function with ``-X importtime`` attributes the import time to
top-level packages (self time summed per package).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

from bench import AWS_ENV, LAYER, ROOT, median

BUDGET_MS = 600
PROBE = """
import importlib.util, sys, time
sys.path[:0] = [{layer!r}]
started, cpu = time.perf_counter(), time.process_time()
spec = importlib.util.spec_from_file_location("app", {app!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
assert callable(module.lambda_handler)
print((time.perf_counter() - started) * 1000, (time.process_time() - cpu) * 1000)
"""
GROUPS = {
    "boto3": "boto3 + botocore",
    "botocore": "boto3 + botocore",
    "s3transfer": "boto3 + botocore",
    "jmespath": "boto3 + botocore",
    "urllib3": "boto3 + botocore",
    "dateutil": "boto3 + botocore",
    "aws_lambda_powertools": "powertools",
    "jwt": "pyjwt + cryptography",
    "cryptography": "pyjwt + cryptography",
    "_cffi_backend": "pyjwt + cryptography",
    "registry": "registry (our code)",
}


def functions() -> list[str]:
    return sorted(p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").exists())


def _env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "AWS_"))}
    return {**env, **AWS_ENV, "POWERTOOLS_SERVICE_NAME": "registry", "POWERTOOLS_LOG_LEVEL": "INFO"}


def _probe(function: str, *flags: str) -> subprocess.CompletedProcess:
    code = PROBE.format(layer=str(LAYER), app=str(ROOT / "functions" / function / "app.py"))
    return subprocess.run([sys.executable, *flags, "-c", code], capture_output=True, text=True, env=_env(), cwd=ROOT / "functions" / function, check=True)


def import_ms(function: str) -> tuple[float, float]:
    """(wall ms, CPU ms) of one import in a fresh interpreter."""
    wall, cpu = _probe(function).stdout.split()
    return float(wall), float(cpu)


def interpreter_ms(runs: int) -> float:
    """A bare interpreter's start and exit, for scale (Lambda's runtime has its own)."""
    import time

    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True, env=_env())
        times.append((time.perf_counter() - started) * 1000)
    return median(times)


def breakdown(function: str) -> dict[str, float]:
    """Self import time (ms) per package group, from ``-X importtime``."""
    stderr = _probe(function, "-X", "importtime").stderr
    groups: Counter = Counter()
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        self_us, _, name = (part.strip() for part in line[len("import time:") :].split("|"))
        top = name.split(".")[0]
        groups[GROUPS.get(top, "other (stdlib, …)")] += int(self_us) / 1000
    return dict(groups)


def run(options: dict) -> dict:
    runs = options.get("runs", 5)
    rows = []
    for function in functions():
        samples = [import_ms(function) for _ in range(runs)]
        times = [wall for wall, _ in samples]
        rows.append({"function": function, "median_ms": median(times), "min_ms": min(times), "max_ms": max(times),
                     "cpu_ms": median(cpu for _, cpu in samples), "over_budget": median(times) > BUDGET_MS,
                     "breakdown": breakdown(function)})
    return {"rows": rows, "runs": runs, "budget_ms": BUDGET_MS, "interpreter_ms": interpreter_ms(runs),
            "python": sys.version.split()[0]}
