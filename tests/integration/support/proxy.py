"""``registry-proxy`` run as its own process (``python -m registry_proxy``) in front of a registry.

    with RegistryProxy("http://127.0.0.1:5000") as proxy:
        skopeo.copy(src, f"{proxy.address}/team/app:1", creds=...)
        proxy.peak_rss()   # bytes, the kernel's high-water mark of its resident memory

It runs with this interpreter from this checkout, so the tests exercise the working tree's proxy,
the same way the ``registry-proxy`` console script does. ``kill()`` is a SIGKILL, for fault tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

from . import free_port, wait_until
from ._process import make_scratch, spawn, terminate, track

__all__ = ["RegistryProxy"]

_ROOT = Path(__file__).resolve().parents[3]


class RegistryProxy:
    """Start with :meth:`start` or ``with``; :meth:`stop` ends it (SIGTERM) and removes its scratch folder.

    Attributes: ``address`` (``127.0.0.1:PORT``, as clients name it), ``upstream``, ``proc``.
    """

    def __init__(self, upstream: str, *, port: int | None = None, args: tuple[str, ...] = (),
                 start_timeout: float = 30):
        self.upstream, self.args, self.start_timeout = upstream, tuple(args), start_timeout
        self.port = port or free_port()
        self.proc = None
        self.scratch: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def start(self) -> "RegistryProxy":
        if self.scratch is None:
            self.scratch = make_scratch("proxy-")
            track(self)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(_ROOT), os.environ.get("PYTHONPATH", "")]))
        self.proc = spawn([sys.executable, "-m", "registry_proxy", "--upstream", self.upstream,
                           "--listen", self.address, "--verbose", *self.args], self.scratch / "proxy.log", env)
        try:
            wait_until(self._ready, self.start_timeout, f"registry-proxy on {self.address}")
        except Exception:
            log = self.log()
            self.stop()
            raise RuntimeError(f"registry-proxy did not start:\n{log[-4000:]}")
        return self

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"registry-proxy exited {self.proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log(self) -> str:
        """The proxy's output so far (with --verbose: one line per request)."""
        path = self.scratch / "proxy.log" if self.scratch else None
        return path.read_text(errors="replace") if path and path.exists() else ""

    def peak_rss(self) -> int:
        """Peak resident memory of the running proxy in bytes (``VmHWM`` of /proc/PID/status)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmHWM in /proc status")

    def kill(self) -> None:
        """SIGKILL: the proxy stops at once, mid-request, cleaning nothing up."""
        if self.alive():
            self.proc.kill()
            self.proc.wait(10)

    def restart(self) -> "RegistryProxy":
        """Start again on the same port (after :meth:`kill` or :meth:`stop`)."""
        terminate(self.proc, timeout=10)
        return self.start()

    def stop(self) -> None:
        """End the proxy (SIGTERM) and delete its scratch folder (idempotent)."""
        terminate(self.proc, timeout=10)
        self.proc = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def __enter__(self) -> "RegistryProxy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
