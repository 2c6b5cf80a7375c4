"""Start the whole local stack in one process: moto (S3, DynamoDB, KMS) and the gateway.

``LocalStack`` is what ``make run`` runs and what the integration tests start.
State lives in moto's memory: stopping the stack loses every image and user.

Settings it reads (each maps to a template parameter on AWS):

    REGISTRY_ADMIN_USER / REGISTRY_ADMIN_PASSWORD   the first admin (default: admin and a
                                                    generated password, printed at start)
    REGISTRY_DEFAULT_VISIBILITY=public|private      DefaultVisibility (default private)
    REGISTRY_AUTH=off                               AuthEnabled=false: for experiments only
    REGISTRY_RATE_LIMIT_ANONYMOUS='100;w=21600'     RateLimitAnonymous
    REGISTRY_RATE_LIMIT_AUTHENTICATED='200;w=21600' RateLimitAuthenticated
    POWERTOOLS_METRICS_DISABLED=false               print the EMF metric lines (off by default here)
    REGISTRY_UPSTREAMS='PREFIX=URL[;PREFIX=URL…]'   Upstreams: pull-through cache prefixes
    REGISTRY_CACHE_TAG_SECONDS=300                  CacheTagSeconds
    REGISTRY_CACHE_EXPIRY_DAYS=30                   CacheExpiryDays
    REGISTRY_CACHE_PULL=public|signed-in            CachePull
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import sys
import threading

from local_stack import emulator, gateway, queues, resources, template

STATE_FILE = template.ROOT / ".local-stack.json"

_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


class LocalStack:
    def __init__(self, host: str = "127.0.0.1", port: int = 5000, limits: gateway.Limits | None = None, env: dict | None = None):
        self.host, self.port = host, port
        self.limits = limits
        self.extra_env = env or {}
        self.moto = None
        self.server = None
        self._thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> "LocalStack":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto = emulator.Emulator(self.host).start()
        self.aws_endpoint = self.moto.endpoint
        os.environ.update(_AWS_ENV)
        os.environ["AWS_ENDPOINT_URL"] = self.aws_endpoint
        settings = {**os.environ, **self.extra_env}
        # The template's TokenSigning parameter: kms (default) or secret (REGISTRY_TOKEN_SIGNING=secret).
        signing = settings.get("REGISTRY_TOKEN_SIGNING", "kms")
        bucket, table = resources.create_bucket(), resources.create_table()
        key = resources.create_signing_key() if signing == "kms" else ""
        secret = resources.create_signing_secret() if signing == "secret" else ""
        self.queues = resources.create_queues()
        os.environ.update(resources.function_environment(bucket, table, key, self.queues, resources.create_sign_in_hash_key(),
                                                         secret, {"TokenSigning": signing}))
        if settings.get("REGISTRY_AUTH", "on").lower() == "off":
            os.environ["AUTH_ENABLED"] = "false"
        os.environ["DEFAULT_VISIBILITY"] = settings.get("REGISTRY_DEFAULT_VISIBILITY", "private")
        for local, variable in (("REGISTRY_RATE_LIMIT_ANONYMOUS", "RATE_LIMIT_ANONYMOUS"), ("REGISTRY_RATE_LIMIT_AUTHENTICATED", "RATE_LIMIT_AUTHENTICATED"),
                                ("REGISTRY_UPSTREAMS", "UPSTREAMS"), ("REGISTRY_CACHE_TAG_SECONDS", "CACHE_TAG_SECONDS"),
                                ("REGISTRY_CACHE_EXPIRY_DAYS", "CACHE_EXPIRY_DAYS"), ("REGISTRY_CACHE_PULL", "CACHE_PULL")):
            if settings.get(local):
                os.environ[variable] = settings[local]
        os.environ.update(self.extra_env)
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        # No EMF metric lines on the terminal (POWERTOOLS_METRICS_DISABLED=false shows them).
        os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
        for layer in template.layer_paths():
            if str(layer) not in sys.path:
                sys.path.insert(0, str(layer))
        self.admin = self._bootstrap_admin(settings)
        self.gateway = gateway.Gateway(self.limits)
        self.server = gateway.serve(self.gateway, self.host, self.port)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        self.poller = queues.Poller(self.queues).start()
        self.state = {"aws_endpoint": self.aws_endpoint, "table": table, "bucket": bucket, "region": _AWS_ENV["AWS_REGION"], "registry": self.url}
        return self

    @staticmethod
    def _bootstrap_admin(settings: dict) -> tuple[str, str, bool]:
        """Create the first admin: (user, password, whether the password was generated)."""
        from registry import accounts, aws, config

        aws.reset()
        config.settings.cache_clear()
        user = settings.get("REGISTRY_ADMIN_USER") or "admin"
        password = settings.get("REGISTRY_ADMIN_PASSWORD")
        generated = not password
        password = password or secrets.token_urlsafe(18)
        accounts.create_user(user, password, admin=True)
        return user, password, generated

    def write_state(self, path=STATE_FILE):
        """Tell ``registry-admin --local`` where this stack's AWS emulator and table are."""
        path.write_text(json.dumps(self.state, indent=2) + "\n")
        self._state_file = path

    def stop(self):
        state_file = getattr(self, "_state_file", None)
        if state_file is not None and state_file.exists():
            state_file.unlink()
        if getattr(self, "poller", None) is not None:
            self.poller.stop()
            self.poller = None
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        if self.moto is not None:
            self.moto.stop()
            self.moto = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
