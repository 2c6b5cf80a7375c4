"""Start daemons so they cannot outlive the test run, and clean up after them."""

from __future__ import annotations

import atexit
import ctypes
import os
import shutil
import signal
import subprocess
import tempfile
import weakref
from pathlib import Path

_libc = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1
_live: "weakref.WeakSet" = weakref.WeakSet()


def _child_setup() -> None:  # runs in the child between fork and exec
    os.setsid()  # own process group: a terminal ^C does not hit it half-way
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # die if the test process dies


def spawn(argv: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """Start a daemon with stdout+stderr to *log*; it gets SIGKILL if the
    spawning thread dies (PR_SET_PDEATHSIG), so spawn from the main thread."""
    with open(log, "ab") as f:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                env=env, preexec_fn=_child_setup, close_fds=True)


def terminate(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    """SIGTERM *proc*, SIGKILL it after *timeout* seconds, and reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def kill_under(scratch: Path) -> list[int]:
    """SIGKILL every process whose command line or cwd is inside *scratch*
    (e.g. a shim left by a daemon); returns their pids."""
    killed, prefix = [], str(scratch)
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit() or int(pid_dir.name) == os.getpid():
            continue
        try:
            cmdline = (pid_dir / "cmdline").read_bytes().decode(errors="replace")
            cwd = os.readlink(pid_dir / "cwd")
        except OSError:
            continue
        if prefix in cmdline or cwd.startswith(prefix):
            try:
                os.kill(int(pid_dir.name), signal.SIGKILL)
                killed.append(int(pid_dir.name))
            except ProcessLookupError:
                pass
    return killed


def unmount_under(scratch: Path) -> list[str]:
    """Lazily unmount every mount point inside *scratch*, deepest first
    (dockerd bind-mounts its data-root onto itself and leaves it behind if
    it is SIGKILLed); returns the mount points."""
    prefix = str(scratch).rstrip("/") + "/"
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point.startswith(prefix) or point + "/" == prefix:
                points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)
    return points


def track(obj) -> None:
    """Call ``obj.stop()`` at interpreter exit if the test forgot to."""
    _live.add(obj)


@atexit.register
def _stop_all() -> None:
    for obj in list(_live):
        try:
            obj.stop()
        except Exception:
            pass


_OWNER = "owner.pid"


def make_scratch(prefix: str, parent: str | None = None) -> Path:
    """A new scratch folder marked with our pid; first removes folders with
    the same *prefix* whose owner died without cleaning up (SIGKILLed test
    run: the daemons died with it via PDEATHSIG, their mounts and files not)."""
    base = Path(parent or tempfile.gettempdir())
    for old in base.glob(prefix + "*"):
        try:
            owner = int((old / _OWNER).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if not Path(f"/proc/{owner}").exists():
            kill_under(old)
            unmount_under(old)
            shutil.rmtree(old, ignore_errors=True)
    scratch = Path(tempfile.mkdtemp(prefix=prefix, dir=base))
    (scratch / _OWNER).write_text(str(os.getpid()))
    return scratch


def discard_scratch(scratch) -> None:
    """Kill what still runs under *scratch*, unmount it and delete it
    (SUPPORT_KEEP_SCRATCH=1 keeps it for a post-mortem)."""
    kill_under(scratch)
    unmount_under(scratch)
    if not os.environ.get("SUPPORT_KEEP_SCRATCH"):
        shutil.rmtree(scratch, ignore_errors=True)
