"""A private containerd (Debian ``containerd`` 1.6) and its ``ctr`` client.

The daemon's root, state, opt dir and sockets live in one scratch folder, and
its CRI plugin is off (version-2 config, the one :mod:`.dockerd` also uses),
so it starts in a fraction of a second and touches nothing of the machine's
own containerd. Images go in namespace ``test``. Registry access is plain
HTTP (``--plain-http``), anonymous unless *user* is given.

    with Containerd() as c:
        c.import_archive(archive)                       # docker- or oci-archive
        c.ctr("images", "tag", "local/app:v1", "127.0.0.1:5000/team/app:v1")
        c.push("127.0.0.1:5000/team/app:v1")
        c.remove("127.0.0.1:5000/team/app:v1")
        c.pull("127.0.0.1:5000/team/app:v1")
        c.digest("127.0.0.1:5000/team/app:v1")          # target manifest digest
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Sequence

from . import run, require, wait_until
from ._process import discard_scratch, make_scratch, spawn, terminate, track
from .dockerd import _CONTAINERD_TOML

__all__ = ["Containerd", "start_containerd"]


def start_containerd(scratch: Path, *, timeout: float = 60, env: dict | None = None
                     ) -> tuple[subprocess.Popen, Path]:
    """Start a containerd whose root, state and sockets are under
    ``SCRATCH/containerd`` (config ``SCRATCH/containerd.toml``, log
    ``SCRATCH/containerd.log``); returns (process, grpc socket path) once the
    socket exists. The caller stops it (``_process.terminate``)."""
    (binary,) = require("containerd")
    if len(str(scratch)) > 60:  # unix socket paths are limited to 107 bytes
        raise RuntimeError(f"scratch path too long for unix sockets: {scratch}")
    sock = scratch / "containerd" / "containerd.sock"
    (scratch / "containerd.toml").write_text(_CONTAINERD_TOML.format(s=scratch))
    if env is None:
        env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    proc = spawn([binary, "--config", str(scratch / "containerd.toml")],
                 scratch / "containerd.log", env)

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"containerd exited with status {proc.returncode}")
        return sock.exists()

    try:
        wait_until(ready, timeout, "containerd socket")
    except Exception:
        terminate(proc)
        raise
    return proc, sock


def _user(user) -> str:
    return user if isinstance(user, str) else f"{user[0]}:{user[1]}"


class Containerd:
    """Start with :meth:`start` or ``with``; always :meth:`stop` (also runs at
    interpreter exit, and containerd gets SIGKILL if the test process dies).

    Attributes: ``scratch``, ``socket``, ``namespace``, ``startup_seconds``.
    """

    def __init__(self, *, namespace: str = "test", start_timeout: float = 60,
                 parent: str | None = None):
        self.namespace = namespace
        self.start_timeout = start_timeout
        self.parent = parent
        self.scratch: Path | None = None
        self.socket: Path | None = None
        self.startup_seconds: float | None = None
        self._proc = None

    # ----------------------------------------------------------------- life
    def start(self) -> "Containerd":
        (self._ctr,) = require("ctr")
        require("containerd")
        if os.geteuid() != 0:
            raise RuntimeError("containerd needs root")
        t0 = time.monotonic()
        self.scratch = make_scratch("ctrd-", self.parent)
        track(self)
        try:
            self._proc, self.socket = start_containerd(self.scratch, timeout=self.start_timeout)
        except Exception as e:
            logs = self.logs()
            self.stop()
            raise RuntimeError(f"containerd did not start: {e}\n{logs[-4000:]}") from e
        self.startup_seconds = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Stop containerd, kill stragglers, unmount, delete the scratch
        folder (idempotent; SUPPORT_KEEP_SCRATCH=1 keeps it)."""
        terminate(self._proc, timeout=10)
        self._proc = None
        if self.scratch is None:
            return
        discard_scratch(self.scratch)
        self.scratch = None

    close = stop

    def __enter__(self) -> "Containerd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def logs(self) -> str:
        """containerd's log so far."""
        p = self.scratch / "containerd.log" if self.scratch else None
        return p.read_text(errors="replace") if p and p.exists() else ""

    # ------------------------------------------------------------- clients
    def ctr(self, *args: str, check: bool = True, timeout: float = 300):
        """Run ``ctr -a SOCKET -n NAMESPACE ARGS``; a CompletedProcess with
        str output; CommandError (with stderr) on failure unless *check* is false."""
        if self.socket is None:
            raise RuntimeError("Containerd is not started")
        env = {k: v for k, v in os.environ.items()
               if k not in ("CONTAINERD_ADDRESS", "CONTAINERD_NAMESPACE",
                            "CONTAINERD_SNAPSHOTTER")}
        return run([self._ctr, "-a", str(self.socket), "-n", self.namespace, *args],
                   env=env, check=check, timeout=timeout)

    @staticmethod
    def _platform_args(platform: str | None, all_platforms: bool) -> list[str]:
        args = ["--platform", platform] if platform else []
        return args + (["--all-platforms"] if all_platforms else [])

    def import_archive(self, archive: str | os.PathLike, *, all_platforms: bool = False,
                       platform: str | None = None, base_name: str | None = None,
                       index_name: str | None = None, args: Sequence[str] = ()) -> list[str]:
        """``ctr images import ARCHIVE`` (docker-archive or OCI archive);
        returns the names of the images now in the namespace that it added."""
        before = set(self.names())
        argv = ["images", "import", *self._platform_args(platform, all_platforms)]
        if base_name:
            argv += ["--base-name", base_name]
        if index_name:
            argv += ["--index-name", index_name]
        self.ctr(*argv, *args, str(archive))
        return sorted(set(self.names()) - before)

    def push(self, ref: str, *, user=None, platform: str | None = None,
             args: Sequence[str] = ()) -> None:
        """``ctr images push --plain-http [--user u:p] REF`` (the image's
        whole target: an index with all its children unless *platform*)."""
        argv = ["images", "push", "--plain-http"]
        if user is not None:
            argv += ["--user", _user(user)]
        argv += self._platform_args(platform, False)
        self.ctr(*argv, *args, ref)

    def pull(self, ref: str, *, user=None, platform: str | None = None,
             all_platforms: bool = False, args: Sequence[str] = ()) -> str:
        """``ctr images pull --plain-http [--user u:p] REF``; returns the
        target digest of the image record it created."""
        argv = ["images", "pull", "--plain-http"]
        if user is not None:
            argv += ["--user", _user(user)]
        argv += self._platform_args(platform, all_platforms)
        self.ctr(*argv, *args, ref)
        return self.digest(ref)

    def remove(self, *refs: str) -> None:
        """``ctr images rm --sync REF...`` (content is garbage-collected)."""
        self.ctr("images", "rm", "--sync", *refs)

    def tag(self, src: str, dst: str) -> None:
        """``ctr images tag --force SRC DST``."""
        self.ctr("images", "tag", "--force", src, dst)

    def images(self) -> list[dict]:
        """Rows of ``ctr images ls``: name, type (media type), digest, size, platforms."""
        out = self.ctr("images", "ls").stdout.splitlines()
        rows = []
        for line in out[1:]:
            cols = line.split()
            if len(cols) < 4:
                continue
            # REF TYPE DIGEST SIZE(2 cols: "1.2 MiB") PLATFORMS LABELS
            rows.append({"name": cols[0], "type": cols[1], "digest": cols[2],
                         "platforms": cols[5] if len(cols) > 5 else ""})
        return rows

    def names(self) -> list[str]:
        """Image names in the namespace (``ctr images ls -q``)."""
        return self.ctr("images", "ls", "-q").stdout.split()

    def image(self, ref: str) -> dict:
        """The ``ctr images ls`` row of *ref*."""
        for row in self.images():
            if row["name"] == ref:
                return row
        raise KeyError(f"no image {ref!r} in containerd namespace {self.namespace!r}")

    def digest(self, ref: str) -> str:
        """Target digest (manifest or index) of image *ref*."""
        return self.image(ref)["digest"]

    def media_type(self, ref: str) -> str:
        """Target media type of image *ref*."""
        return self.image(ref)["type"]

    def content(self, digest: str) -> bytes:
        """Exact bytes of blob *digest* from the content store (``ctr content get``)."""
        proc = run([self._ctr, "-a", str(self.socket), "-n", self.namespace,
                    "content", "get", digest], text=False)
        return proc.stdout

    def has_content(self, digest: str) -> bool:
        """Whether the content store holds blob *digest*."""
        out = self.ctr("content", "ls", "-q").stdout.split()
        return digest in out
