"""A private Docker daemon (Debian ``docker.io`` 20.10) for push/pull tests.

Runs as root with no networking side effects: ``iptables``/``ip6tables``
off, ``bridge: none``, ``ip-forward`` off, ``vfs`` storage, and data-root,
exec-root, pidfile, socket, CLI config and a private containerd all inside
one scratch folder. No container is ever run. The daemon treats all of
127.0.0.0/8 as an insecure registry, so ``127.0.0.1:PORT/repo`` is plain
HTTP (after a TLS attempt on the same port that the server must survive).

    with Dockerd() as d:
        d.load(archive)
        d.docker("tag", "img:v1", "127.0.0.1:5000/test/img:v1")
        digest = d.push("127.0.0.1:5000/test/img:v1")
"""

from __future__ import annotations

import http.client
import json
import os
import re
import socket
import time
from pathlib import Path

from . import run, require, wait_until
from ._process import discard_scratch, make_scratch, spawn, terminate, track

__all__ = ["Dockerd"]


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 2):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self._path)


class Dockerd:
    """Start with :meth:`start` or ``with``; always :meth:`stop` (also runs
    at interpreter exit, and the daemons get SIGKILL if the test process dies).

    Attributes: ``scratch`` (the folder), ``socket``, ``host``
    (``unix://...``), ``config_dir`` (private ``DOCKER_CONFIG``),
    ``startup_seconds``.
    """

    def __init__(self, *, start_timeout: float = 60, parent: str | None = None):
        self.start_timeout = start_timeout
        self.parent = parent  # where to make the scratch folder (default $TMPDIR)
        self.scratch: Path | None = None
        self.startup_seconds: float | None = None
        self._containerd = self._dockerd = None

    # ----------------------------------------------------------------- life
    def start(self) -> "Dockerd":
        dockerd, containerd, self._cli = require("dockerd", "containerd", "docker")
        require("runc")
        if os.geteuid() != 0:
            raise RuntimeError("Dockerd needs root (it mounts its data-root)")
        t0 = time.monotonic()
        s = self.scratch = make_scratch("dockerd-", self.parent)
        if len(str(s)) > 60:  # unix socket paths are limited to 107 bytes
            raise RuntimeError(f"scratch path too long for unix sockets: {s}")
        track(self)
        self.socket = str(s / "docker.sock")
        self.host = "unix://" + self.socket
        self.config_dir = s / "cli"
        self.config_dir.mkdir()
        # A non-empty "auths" stops the CLI from picking a desktop credential
        # helper (secretservice/pass) if one is installed: logins stay here.
        (self.config_dir / "config.json").write_text(
            json.dumps({"auths": {"placeholder.invalid": {}}}))
        env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
        try:
            # dockerd would use the system containerd if /run/containerd/containerd.sock
            # exists (and start its own otherwise); give it a private one always.
            ctrd_sock = s / "containerd" / "containerd.sock"
            (s / "containerd.toml").write_text(_CONTAINERD_TOML.format(s=s))
            self._containerd = spawn([containerd, "--config", str(s / "containerd.toml")],
                                     s / "containerd.log", env)
            wait_until(lambda: self._alive(self._containerd, "containerd")
                       and ctrd_sock.exists(), self.start_timeout, "containerd socket")
            (s / "daemon.json").write_text(json.dumps({
                "containerd": str(ctrd_sock),
                "data-root": str(s / "data"),
                "exec-root": str(s / "exec"),
                "pidfile": str(s / "docker.pid"),
                "hosts": [self.host],
                "iptables": False, "ip6tables": False, "ip-forward": False,
                "ip-masq": False, "bridge": "none",
                "storage-driver": "vfs",
            }, indent=1))
            self._dockerd = spawn([dockerd, "--config-file", str(s / "daemon.json")],
                                  s / "dockerd.log", env)
            wait_until(self._ping, self.start_timeout, "dockerd /_ping")
        except Exception as e:
            logs = self.logs()
            self.stop()
            raise RuntimeError(f"dockerd did not start: {e}\n{logs[-6000:]}") from e
        self.startup_seconds = time.monotonic() - t0
        return self

    def _alive(self, proc, name: str) -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with status {proc.returncode}")
        return True

    def _ping(self) -> bool:
        self._alive(self._dockerd, "dockerd")
        try:
            conn = _UnixHTTPConnection(self.socket)
            conn.request("GET", "/_ping")
            ok = conn.getresponse().status == 200
            conn.close()
            return ok
        except OSError:
            return False

    def stop(self) -> None:
        """Stop dockerd and containerd, kill stragglers, unmount, delete the
        scratch folder (idempotent; set SUPPORT_KEEP_SCRATCH=1 to keep it)."""
        terminate(self._dockerd, timeout=20)
        terminate(self._containerd, timeout=10)
        self._dockerd = self._containerd = None
        if self.scratch is None:
            return
        discard_scratch(self.scratch)
        self.scratch = None

    def __enter__(self) -> "Dockerd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def logs(self) -> str:
        """containerd and dockerd logs so far (for failure messages)."""
        out = []
        for name in ("containerd.log", "dockerd.log"):
            p = self.scratch / name if self.scratch else None
            if p and p.exists():
                out.append(f"--- {name}\n{p.read_text(errors='replace')}")
        return "\n".join(out)

    # ------------------------------------------------------------- clients
    @property
    def env(self) -> dict:
        """Environment for running the docker CLI against this daemon."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")}
        env.update(DOCKER_HOST=self.host, DOCKER_CONFIG=str(self.config_dir))
        return env

    def docker(self, *args: str, input: bytes | None = None, check: bool = True,
               timeout: float = 300):
        """Run ``docker ARGS`` against this daemon; a CompletedProcess with
        str stdout/stderr. Raises CommandError (with stderr) on failure
        unless *check* is false."""
        return run([self._cli, *args], env=self.env, input=input, check=check,
                   timeout=timeout)

    def load(self, archive: str | os.PathLike) -> list[str]:
        """``docker load -i ARCHIVE``; returns the loaded image names/IDs."""
        out = self.docker("load", "-i", str(archive)).stdout
        return re.findall(r"^Loaded image(?: ID)?: (\S+)$", out, re.M)

    def push(self, ref: str) -> str:
        """``docker push REF``; returns the manifest digest docker reports."""
        return self._digest(self.docker("push", ref).stdout, r"digest: (sha256:[0-9a-f]{64})")

    def pull(self, ref: str) -> str:
        """``docker pull REF``; returns the digest docker reports."""
        return self._digest(self.docker("pull", ref).stdout, r"Digest: (sha256:[0-9a-f]{64})")

    def login(self, registry: str, username: str, password: str):
        """``docker login`` with the password on stdin (stored in ``config_dir``)."""
        return self.docker("login", "-u", username, "--password-stdin", registry,
                           input=password.encode())

    def image_id(self, ref: str) -> str:
        """Docker image ID (= config blob digest) of local image *ref*."""
        return self.docker("image", "inspect", "--format", "{{.Id}}", ref).stdout.strip()

    @staticmethod
    def _digest(output: str, pattern: str) -> str:
        m = re.search(pattern, output)
        if not m:
            raise AssertionError(f"no digest in docker output:\n{output}")
        return m.group(1)


_CONTAINERD_TOML = """\
version = 2
root = "{s}/containerd/root"
state = "{s}/containerd/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{s}/containerd/containerd.sock"

[ttrpc]
  address = "{s}/containerd/containerd.sock.ttrpc"

[debug]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{s}/containerd/opt"
"""
