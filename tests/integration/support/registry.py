"""Debian's reference registry (``docker-registry``, distribution 2.8) on
127.0.0.1, with filesystem storage in a scratch folder: the yardstick the
harness (and differential tests) are checked against."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from . import free_port, require, wait_until
from ._process import make_scratch, spawn, terminate, track

__all__ = ["ReferenceRegistry"]


class ReferenceRegistry:
    """``with ReferenceRegistry() as reg: ... reg.host`` -> ``127.0.0.1:PORT``.

    Anonymous, plain HTTP, deletes enabled. Everything lives in one scratch
    folder that :meth:`stop` removes.
    """

    def __init__(self, port: int | None = None, start_timeout: float = 30):
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.scratch: Path | None = None
        self.proc = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def log(self) -> str:
        """The registry's log so far."""
        return (self.scratch / "registry.log").read_text(errors="replace") if self.scratch else ""

    def start(self) -> "ReferenceRegistry":
        (binary,) = require("docker-registry")
        self.scratch = make_scratch("refreg-")
        config = {  # JSON is YAML
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.scratch / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host},
        }
        (self.scratch / "config.yml").write_text(json.dumps(config))
        track(self)
        self.proc = spawn([binary, "serve", str(self.scratch / "config.yml")],
                          self.scratch / "registry.log")
        try:
            wait_until(self._ready, self.start_timeout, f"docker-registry on {self.host}")
        except Exception:
            log = self.log()
            self.stop()
            raise RuntimeError(f"docker-registry did not start:\n{log[-4000:]}")
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited {self.proc.returncode}")
        try:
            with urllib.request.urlopen(self.url + "/v2/", timeout=2) as resp:
                return resp.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def stop(self) -> None:
        """Kill the registry and delete its storage (idempotent)."""
        terminate(self.proc, timeout=5)
        self.proc = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def __enter__(self) -> "ReferenceRegistry":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
