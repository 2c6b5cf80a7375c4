"""Thin wrappers around the ``skopeo`` CLI.

References are containers-image transports (``oci:DIR:TAG``,
``docker://HOST:PORT/repo:tag``, ``docker-archive:PATH``). For registry
references TLS verification is off (plain HTTP on 127.0.0.1), and unless
*creds*/*authfile* are given the registry is accessed anonymously, so the
machine's own logins never leak into a test. Failures raise
:class:`~tests.integration.support.CommandError` carrying skopeo's stderr.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Sequence

from . import run, require

__all__ = ["copy", "inspect", "inspect_raw", "digest", "docker_ref"]

_TRANSPORTS = {"docker", "oci", "oci-archive", "docker-archive", "docker-daemon", "dir",
               "containers-storage", "tarball", "sif", "ostree"}


def docker_ref(ref: str) -> str:
    """``HOST:PORT/repo:tag`` -> ``docker://HOST:PORT/repo:tag``; references
    that already name a transport (``oci:``, ``docker://``...) are unchanged."""
    return ref if ref.split(":", 1)[0] in _TRANSPORTS else "docker://" + ref


def _creds(creds) -> str:
    return creds if isinstance(creds, str) else f"{creds[0]}:{creds[1]}"


def _auth_args(prefix: str, ref: str, creds, authfile) -> list[str]:
    """TLS/auth flags for one side (*prefix* '' / 'src-' / 'dest-') of a command."""
    if not ref.startswith("docker://"):
        return []
    args = [f"--{prefix}tls-verify=false"]
    if creds is not None:
        args.append(f"--{prefix}creds={_creds(creds)}")
    elif authfile is not None:
        args.append(f"--{prefix}authfile={authfile}")
    else:
        args.append(f"--{prefix}no-creds")
    return args


def copy(src: str, dst: str, *, all: bool = False, creds=None, src_creds=None,
         dest_creds=None, src_authfile=None, dest_authfile=None,
         args: Sequence[str] = (), timeout: float = 600) -> str | None:
    """``skopeo copy SRC DST``; returns the digest skopeo reports for the
    written manifest (``--digestfile``), or None if it wrote none.

    *all* copies every image of an index (``--all``). *creds* ("user:pass" or
    a (user, password) tuple) applies to both sides unless *src_creds* /
    *dest_creds* is given. *args* are extra skopeo flags (e.g.
    ``["--format", "v2s2"]``, ``["--preserve-digests"]``).
    """
    (skopeo,) = require("skopeo")
    src, dst = docker_ref(src), docker_ref(dst)
    with tempfile.TemporaryDirectory(prefix="skopeo-") as tmp:
        digestfile = os.path.join(tmp, "digest")
        argv = [skopeo, "copy", "--quiet", "--digestfile", digestfile]
        argv += _auth_args("src-", src, src_creds if src_creds is not None else creds,
                           src_authfile)
        argv += _auth_args("dest-", dst, dest_creds if dest_creds is not None else creds,
                           dest_authfile)
        if all:
            argv.append("--all")
        argv += [*args, src, dst]
        run(argv, timeout=timeout)
        try:
            with open(digestfile) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None


def inspect_raw(ref: str, *, creds=None, authfile=None, config: bool = False,
                args: Sequence[str] = ()) -> bytes:
    """Exact bytes of the manifest (or, with *config*, the config blob) that
    ``skopeo inspect --raw`` fetches for *ref*."""
    (skopeo,) = require("skopeo")
    ref = docker_ref(ref)
    argv = [skopeo, "inspect", "--raw", *(["--config"] if config else []),
            *_auth_args("", ref, creds, authfile), *args, ref]
    return run(argv, text=False).stdout


def inspect(ref: str, *, creds=None, authfile=None, args: Sequence[str] = ()) -> dict:
    """Parsed ``skopeo inspect`` output (Digest, Layers, Architecture, ...).
    For an index skopeo describes the host platform's image but ``Digest`` is
    the digest of the top-level manifest it fetched."""
    (skopeo,) = require("skopeo")
    ref = docker_ref(ref)
    proc = run([skopeo, "inspect", *_auth_args("", ref, creds, authfile), *args, ref])
    return json.loads(proc.stdout)


def digest(ref: str, *, creds=None, authfile=None) -> str:
    """The manifest digest of *ref* as reported by ``skopeo inspect``."""
    return inspect(ref, creds=creds, authfile=authfile)["Digest"]
