"""The registry in-process under moto's ``mock_aws``, measured request by request.

Requests go through ``local_stack.gateway.Gateway.invoke`` (template routing,
real payload-2.0 events, the functions' real handlers) with
``tests.clients.Client`` (token challenge and retry, like docker). For each
request it records the AWS calls of the registry's own clients, the
computed DynamoDB capacity units, the handler's wall time (the Lambda's
billed duration, as far as moto stands in for AWS) and the bytes the
function logged.
"""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from bench import registry_env, use_repo_paths
from bench.counting import AwsRecorder

use_repo_paths()

ADMIN = ("admin", "admin-password-for-bench")


@dataclass
class Sample:
    """One request as measured."""

    status: int
    calls: dict
    read_units: float
    write_units: float
    items_read: int
    handler_ms: float
    invocations: int
    log_bytes: int
    headers: dict = field(default_factory=dict, repr=False)


class _ByteCounter:
    """A stream that only counts what is written to it (the functions' log lines)."""

    def __init__(self):
        self.bytes = 0
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.bytes += len(text.encode())
        return len(text)

    def flush(self) -> None:
        pass


class InProcessRegistry:
    """The template's resources in moto, an admin user, the gateway and the meters."""

    def __init__(self, gateway):
        self.gateway = gateway
        self.recorder = AwsRecorder()
        self.log = _ByteCounter()
        self._durations: list[float] = []
        self._time_handlers()
        self._count_log_bytes()

    def client(self, credentials=ADMIN):
        from tests.clients import Client

        return Client(self.gateway, credentials)

    def attach_recorder(self) -> None:
        """Fresh registry clients (as in a new container) with the recorder's hooks on them."""
        from registry import aws

        aws.reset()
        self.recorder.attach(aws.s3(), aws.dynamodb(), aws.kms(), aws.secretsmanager())

    def _time_handlers(self) -> None:
        def timed(handler):
            def run(event, context):
                started = time.perf_counter()
                try:
                    return handler(event, context)
                finally:
                    self._durations.append((time.perf_counter() - started) * 1000)

            return run

        self.gateway.handlers = {name: timed(h) for name, h in self.gateway.handlers.items()}

    def _count_log_bytes(self) -> None:
        from registry.log import logger

        logger.registered_handler.setStream(self.log)

    def measure(self, client, method: str, path: str, body: bytes = b"", headers: dict | None = None, expect=(200,), raw=False) -> Sample:
        """One request, its token fetched beforehand (unless ``raw``), everything it cost recorded."""
        if not raw:
            ensure_token(client, path)
        self.recorder.reset()
        self._durations.clear()
        log_before = self.log.bytes
        send = client.raw if raw else client.request
        reply = send(method, path, body, headers)
        if reply.status not in expect:
            raise RuntimeError(f"{method} {path}: {reply.status} {reply.body[:300]!r}")
        used = self.recorder.snapshot()
        return Sample(
            status=reply.status,
            calls=dict(sorted(used.calls.items())),
            read_units=used.read_units,
            write_units=used.write_units,
            items_read=used.items_read,
            handler_ms=sum(self._durations),
            invocations=len(self._durations),
            log_bytes=self.log.bytes - log_before,
            headers=reply.headers,
        )


def ensure_token(client, path: str) -> None:
    """Fetch the token ``path`` needs unless the client holds one (``Client.authorize`` always asks anew)."""
    scope = client._scope_for(path)
    if scope not in client.tokens:
        client.tokens[scope] = client.token(scope)


@contextmanager
def running():
    """Yield an ``InProcessRegistry`` on a fresh moto; everything is gone afterwards."""
    os.environ.pop("AWS_ENDPOINT_URL", None)
    os.environ.update(registry_env())
    from moto import mock_aws

    from local_stack import resources

    os.environ.update(resources.function_environment())
    with mock_aws():
        from local_stack.gateway import Gateway
        from registry import accounts, aws, config
        from registry.auth import tokens

        aws.reset()
        resources.create_bucket()
        resources.create_table()
        os.environ["TOKEN_KEY_ID"] = resources.create_signing_key()
        os.environ["SIGNIN_HASH_KEY_ID"] = resources.create_sign_in_hash_key()
        config.settings.cache_clear()
        tokens.reset()
        accounts.create_user(*ADMIN, admin=True)
        registry = InProcessRegistry(Gateway())
        registry.attach_recorder()
        yield registry
        aws.reset()
        tokens.reset()
