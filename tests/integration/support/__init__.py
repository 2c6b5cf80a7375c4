"""Real-client test harness: OCI test images, skopeo, a private dockerd and
Debian's reference registry, all local (127.0.0.1) and self-cleaning.

Missing clients are an error, not a skip: call :func:`require` so a CI run
without e.g. skopeo fails loudly instead of silently testing nothing.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Callable, Sequence

__all__ = [
    "APT_PACKAGES", "CommandError", "MissingClientError",
    "available", "find", "require", "run", "free_port", "wait_until",
]

#: binary -> Debian package providing it (``apt-get install`` these).
APT_PACKAGES = {
    "skopeo": "skopeo",
    "docker": "docker.io",
    "dockerd": "docker.io",
    "containerd": "containerd",
    "ctr": "containerd",
    "runc": "runc",
    "docker-registry": "docker-registry",
    "podman": "podman",
}

# Prefer the distribution's binaries over look-alikes earlier on PATH (e.g. a
# newer static /usr/local/bin/docker CLI that does not match the daemon).
_PREFERRED = {
    "docker": ["/usr/bin/docker"],
    "dockerd": ["/usr/sbin/dockerd", "/usr/bin/dockerd"],
    "containerd": ["/usr/bin/containerd"],
    "skopeo": ["/usr/bin/skopeo"],
    "docker-registry": ["/usr/bin/docker-registry"],
}
_SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])


class MissingClientError(RuntimeError):
    """A client binary needed by an integration test is not installed."""


class CommandError(RuntimeError):
    """A client command exited non-zero; carries its argv, status and output."""

    def __init__(self, argv: Sequence[str], returncode: int, stdout: str, stderr: str):
        self.argv, self.returncode = list(argv), returncode
        self.stdout, self.stderr = stdout, stderr
        super().__init__(f"{' '.join(self.argv)!s} exited {returncode}:\n"
                         f"{stderr.strip() or stdout.strip()}")


def find(binary: str) -> str | None:
    """Absolute path of *binary*, or None. ``SUPPORT_BIN_<NAME>`` overrides
    (e.g. ``SUPPORT_BIN_DOCKER=/opt/docker``)."""
    override = os.environ.get("SUPPORT_BIN_" + binary.upper().replace("-", "_"))
    if override:
        return override
    for path in _PREFERRED.get(binary, []):
        if os.access(path, os.X_OK):
            return path
    return shutil.which(binary, path=_SEARCH_PATH)


def available(binary: str) -> bool:
    """Whether *binary* is installed."""
    return find(binary) is not None


def require(*binaries: str) -> list[str]:
    """Paths of all *binaries*; raise :class:`MissingClientError` naming the
    apt packages to install if any is missing. Use instead of pytest.skip."""
    missing = [b for b in binaries if not available(b)]
    if missing:
        pkgs = sorted({APT_PACKAGES.get(b, b) for b in missing})
        raise MissingClientError(
            f"required client(s) not installed: {', '.join(missing)} "
            f"(apt-get install -y {' '.join(pkgs)})")
    return [find(b) for b in binaries]  # type: ignore[misc]


def run(argv: Sequence[str], *, env: dict | None = None, input: bytes | None = None,
        timeout: float = 300, check: bool = True, text: bool = True
        ) -> subprocess.CompletedProcess:
    """Run *argv* capturing output (str, or bytes stdout if not *text*);
    raise :class:`CommandError` with its stderr on a non-zero exit."""
    proc = subprocess.run(list(argv), env=env, input=input, capture_output=True,
                          timeout=timeout)
    out = proc.stdout.decode(errors="replace") if text else proc.stdout
    err = proc.stderr.decode(errors="replace")
    if check and proc.returncode != 0:
        raise CommandError(argv, proc.returncode, proc.stdout.decode(errors="replace"), err)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def free_port() -> int:
    """A currently free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               interval: float = 0.05) -> None:
    """Poll *predicate* until true; TimeoutError mentioning *what* otherwise."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)
