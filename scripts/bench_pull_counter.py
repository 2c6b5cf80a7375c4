"""Manifest GET latency with the pull counter (written while the manifest is read) vs an unlimited caller.

    python scripts/bench_pull_counter.py

Under moto in-process, so it shows CPU cost, not AWS network latency (see README, Pull rate limits).
"""
import os, statistics, sys, time
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "layers", "registry"), ROOT]
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
for k, v in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}.items():
    os.environ[k] = v
os.environ.pop("AWS_ENDPOINT_URL", None)
from moto import mock_aws
from local_stack import resources
from local_stack.gateway import Gateway, Limits

with mock_aws():
    resources.create_bucket(); resources.create_table(); key = resources.create_signing_key()
    os.environ.update(resources.function_environment(signing_key=key, hash_key=resources.create_sign_in_hash_key()))
    from registry import accounts, aws, config
    aws.reset(); config.settings.cache_clear()
    accounts.create_user("admin", "admin-password", admin=True)
    from tests.clients import Client
    gateway = Gateway(Limits())
    client = Client(gateway, ("admin", "admin-password"))
    client.push_image("team/app", "v1")
    def median_ms(n=60):
        client.authorize("/v2/team/app/manifests/v1")
        samples = []
        for _ in range(n):
            start = time.perf_counter(); r = client.request("GET", "/v2/team/app/manifests/v1"); samples.append((time.perf_counter() - start) * 1000)
            assert r.status == 200
        return statistics.median(samples)
    accounts.set_pull_limit("admin", "1000000;w=21600"); client.tokens.clear()
    limited = median_ms()
    accounts.set_pull_limit("admin", "unlimited"); client.tokens.clear()
    unlimited = median_ms()
    accounts.set_pull_limit("admin", "1000000;w=21600"); client.tokens.clear()
    limited2 = median_ms()
    print(f"manifest GET median over 60 (moto in-process): counted {limited:.1f} ms / {limited2:.1f} ms, unlimited (no counter) {unlimited:.1f} ms")
