"""Performance in figures, side by side with the reference registry (``make bench``).

Measures, and writes to docs/performance.md (and prints):

1. AWS calls per request, exact, with DynamoDB capacity units (in-process, moto);
2. skopeo push and pull of a 3 × 4 MB and a 30 × 1 MB image against the local
   stack and Debian's docker-registry (S3 driver on the same moto server);
3. cold start: import time of each function;
4. scale: reads with 10, 1,000 and 10,000 tags or repositories;
5. cost per million pulls, and when idle, from the measured counts;
6. pushes of 1 × 1 GiB and 3 × 200 MB through registry-proxy, with its peak memory (bench/proxy.py);
7. the Lambda cost of verifying a direct-to-S3 upload, per GiB (bench/verify.py);
8. a garbage-collection pass over 1,000 and 10,000 blobs: idle, with 1 % garbage, and applying a retention policy (bench/gc.py);
9. first and second pull of a 3-layer image through the pull-through cache against the upstream directly (bench/cache.py).

    python scripts/bench.py                    everything (about 10 minutes on 2 cores, 6 of them the proxy's 1 GiB)
    python scripts/bench.py --only calls,cost  some sections (cost needs calls)
    python scripts/bench.py --runs 5           more end-to-end runs

Each measuring section runs in its own interpreter (``--section``), so the
emulators' state and the registry's cached clients never leak between them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench import ROOT, report  # noqa: E402

MEASURED = ("calls", "e2e", "coldstart", "scale", "proxy", "verify", "gc", "cache")
SECTIONS = (*MEASURED, "cost")
OUT = ROOT / "docs" / "performance.md"


def run_section(name: str, options: dict) -> dict:
    """Run one measuring section in this interpreter (the child side of ``--section``)."""
    import importlib

    from bench import quiet_env

    quiet_env()
    module = importlib.import_module(f"bench.{name}")
    return module.run(options)


def spawn_section(name: str, options: dict) -> dict:
    """Run a section in a fresh interpreter; its JSON result, or RuntimeError with its stderr."""
    with tempfile.NamedTemporaryFile(suffix=".json") as result:
        argv = [sys.executable, "-W", "ignore::DeprecationWarning", __file__, "--section", name,
                "--options", json.dumps(options), "--result", result.name]
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr or proc.stdout)
        return json.loads(Path(result.name).read_text())


def machine() -> str:
    model = ""
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{os.cpu_count()} CPUs ({model or platform.machine()}), {platform.system()} {platform.release()}, Python {platform.python_version()}, " \
           f"moto {_version('moto')}, boto3 {_version('boto3')}"


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "?"


def code_version() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return f"commit {commit}" + (" plus uncommitted changes" if git("status", "--porcelain", "--untracked-files=no") else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections: " + ", ".join(SECTIONS))
    parser.add_argument("--runs", type=int, default=3, help="end-to-end runs per registry and image (default 3)")
    parser.add_argument("--reps", type=int, default=15, help="repetitions of each in-process request (default 15)")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the Markdown (default docs/performance.md)")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument("--section", help=argparse.SUPPRESS)
    parser.add_argument("--options", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.section:
        args.result.write_text(json.dumps(run_section(args.section, json.loads(args.options))))
        return 0

    wanted = [s for s in args.only.split(",") if s]
    options = {"calls": {"reps": args.reps, "push_reps": 3}, "e2e": {"runs": args.runs},
               "coldstart": {"runs": 7}, "scale": {"reps": max(3, args.reps // 3)}, "proxy": {}, "verify": {"mib": 512}, "gc": {"images": [100, 1000]},
               "cache": {"runs": 3}}
    started, load_before = time.perf_counter(), os.getloadavg()[0]
    results, failed = {}, {}
    for name in (s for s in MEASURED if s in wanted):
        began = time.perf_counter()
        print(f"[bench] {name} …", file=sys.stderr, flush=True)
        try:
            results[name] = spawn_section(name, options[name])
        except RuntimeError as exc:
            failed[name] = str(exc)
            print(f"[bench] {name} FAILED:\n{str(exc)[-3000:]}", file=sys.stderr)
        print(f"[bench] {name} took {time.perf_counter() - began:.0f} s", file=sys.stderr, flush=True)
    if "cost" in wanted and "calls" in results:
        from bench import cost

        results["cost"] = cost.run(results["calls"], results.get("coldstart"))

    meta = {
        "command": " ".join(["python scripts/bench.py", *(sys.argv[1:] if argv is None else argv)]),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": time.perf_counter() - started,
        "machine": machine(),
        "code": code_version(),
        "failed": failed,
        "load": f"{load_before:.1f} / {os.getloadavg()[0]:.1f}",
    }
    text = report.document(results, meta)
    args.out.write_text(text)
    if args.json:
        args.json.write_text(json.dumps({"results": results, "meta": meta}, indent=1))
    print(text)
    print(f"[bench] wrote {args.out} in {meta['seconds']:.0f} s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
