"""Start the whole local stack in one process: moto (S3, DynamoDB) and the gateway.

``LocalStack`` is what ``make run`` runs and what the integration tests start.
State lives in moto's memory: stopping the stack loses every image.
"""

from __future__ import annotations

import logging
import os
import threading

from local_stack import gateway, resources

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
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.moto = ThreadedMotoServer(ip_address=self.host, port=0, verbose=False)
        self.moto.start()
        moto_host, moto_port = self.moto.get_host_and_port()
        self.aws_endpoint = f"http://{moto_host}:{moto_port}"
        os.environ.update(_AWS_ENV)
        os.environ["AWS_ENDPOINT_URL"] = self.aws_endpoint
        os.environ.update(resources.function_environment())
        os.environ.update(self.extra_env)
        # POWERTOOLS_DEV pretty-prints; keep JSON lines but quieter locally.
        os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
        resources.create_bucket()
        resources.create_table()
        self.gateway = gateway.Gateway(self.limits)
        self.server = gateway.serve(self.gateway, self.host, self.port)
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self):
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
