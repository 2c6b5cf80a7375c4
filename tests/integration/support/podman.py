"""A private, rootful ``podman`` (Debian ``podman`` 4.3) for push/pull tests.

Every podman command runs with ``--storage-driver=vfs`` and ``--root`` /
``--runroot`` / ``--tmpdir`` inside one scratch folder, and with environment
variables pointing all of podman's configuration there too
(``CONTAINERS_CONF``, ``CONTAINERS_REGISTRIES_CONF``,
``CONTAINERS_STORAGE_CONF``, ``REGISTRY_AUTH_FILE``, ``HOME`` for the
signature policy and docker-config fallback): nothing is read from or
written to the machine's ``/etc/containers`` or ``/var/lib/containers``
storage, and logins stay private. The signature policy accepts anything.
No container is ever run, so there are no mounts and no daemons; :meth:`stop`
still kills and unmounts anything left under the scratch folder.

(One thing stays shared, as with root ``skopeo``: containers/image's blob-info
cache in ``/var/lib/containers/cache``, which podman 4.3 has no option to move.
It only holds digest/location hints; wrong hints cost an extra request.)

    with Podman() as p:
        p.pull("oci:/path/to/layout:v1")
        p.tag("oci:/path/to/layout:v1", "127.0.0.1:5000/team/app:v1")  # or by name
        digest = p.push("127.0.0.1:5000/team/app:v1", format="v2s2")
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Sequence

from . import run, require
from ._process import discard_scratch, make_scratch, track

__all__ = ["Podman", "MEDIA_TYPES"]

#: ``podman push --format`` value -> manifest media type it writes.
MEDIA_TYPES = {
    "oci": "application/vnd.oci.image.manifest.v1+json",
    "v2s2": "application/vnd.docker.distribution.manifest.v2+json",
}

_ACCEPT_ANYTHING = {"default": [{"type": "insecureAcceptAnything"}]}


def _creds(creds) -> str:
    return creds if isinstance(creds, str) else f"{creds[0]}:{creds[1]}"


class Podman:
    """Start with :meth:`start` or ``with``; always :meth:`stop` (also runs at
    interpreter exit). Attributes: ``scratch``, ``policy`` (policy.json path),
    ``authfile`` (private auth.json)."""

    def __init__(self, *, parent: str | None = None):
        self.parent = parent
        self.scratch: Path | None = None
        self._bin: str | None = None

    # ----------------------------------------------------------------- life
    def start(self) -> "Podman":
        (self._bin,) = require("podman")
        if os.geteuid() != 0:
            raise RuntimeError("Podman wrapper runs podman rootful: run the tests as root")
        s = self.scratch = make_scratch("podman-", self.parent)
        track(self)
        for sub in ("root", "runroot", "tmp", "networks", "home/.config/containers"):
            (s / sub).mkdir(parents=True)
        self.policy = s / "policy.json"
        self.policy.write_text(json.dumps(_ACCEPT_ANYTHING))
        # c/image also looks for $HOME/.config/containers/policy.json (podman load has no flag).
        shutil.copy(self.policy, s / "home/.config/containers/policy.json")
        self.authfile = s / "auth.json"
        self.authfile.write_text(json.dumps({"auths": {}}))  # must exist when named by env
        (s / "registries.conf").write_text("unqualified-search-registries = []\n")
        (s / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{s}/root"\nrunroot = "{s}/runroot"\n')
        (s / "containers.conf").write_text(
            "[engine]\n"
            'events_logger = "none"\n'
            'lock_type = "file"\n'  # not the machine-wide /dev/shm/libpod_lock
            f'tmp_dir = "{s}/tmp"\n'
            'cgroup_manager = "cgroupfs"\n'
            "[network]\n"
            f'network_config_dir = "{s}/networks"\n')
        return self

    def stop(self) -> None:
        """Kill stragglers, unmount, delete the scratch folder (idempotent;
        SUPPORT_KEEP_SCRATCH=1 keeps it)."""
        if self.scratch is None:
            return
        discard_scratch(self.scratch)
        self.scratch = None

    close = stop

    def __enter__(self) -> "Podman":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------- command
    @property
    def env(self) -> dict:
        """Environment that confines podman's configuration to the scratch folder."""
        s = self.scratch
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("CONTAINERS_", "CONTAINER_", "REGISTRY_AUTH_FILE",
                                    "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "DOCKER_CONFIG"))}
        env.update(
            HOME=str(s / "home"),
            CONTAINERS_CONF=str(s / "containers.conf"),
            CONTAINERS_REGISTRIES_CONF=str(s / "registries.conf"),
            CONTAINERS_STORAGE_CONF=str(s / "storage.conf"),
            REGISTRY_AUTH_FILE=str(self.authfile),
            DOCKER_CONFIG=str(s / "home" / ".docker"),
        )
        return env

    def podman(self, *args: str, input: bytes | None = None, check: bool = True,
               timeout: float = 300):
        """Run ``podman GLOBAL-FLAGS ARGS``; a CompletedProcess with str
        output. Raises CommandError (with stderr) on failure unless *check* is false."""
        if self.scratch is None:
            raise RuntimeError("Podman is not started")
        s = self.scratch
        argv = [self._bin, "--storage-driver=vfs", "--root", str(s / "root"),
                "--runroot", str(s / "runroot"), "--tmpdir", str(s / "tmp"),
                "--events-backend=none", "--cgroup-manager=cgroupfs", *args]
        return run(argv, env=self.env, input=input, check=check, timeout=timeout)

    def _auth_args(self, creds) -> list[str]:
        return ["--creds", _creds(creds)] if creds is not None else []

    # ------------------------------------------------------------- images
    def pull(self, ref: str, *, creds=None, args: Sequence[str] = ()) -> str:
        """``podman pull REF`` (registry references without TLS; also
        ``oci:DIR:TAG``, ``docker-archive:PATH``...). Returns the manifest
        digest of the pulled image as podman records it."""
        out = self.podman("pull", "--quiet", "--tls-verify=false",
                          "--signature-policy", str(self.policy),
                          *self._auth_args(creds), *args, ref).stdout
        image_id = out.strip().splitlines()[-1]
        return self.digest(image_id)

    def push(self, src: str, dst: str | None = None, *, format: str | None = None,
             creds=None, args: Sequence[str] = ()) -> str:
        """``podman push SRC [DST]`` over plain HTTP; *format* ``"oci"`` or
        ``"v2s2"`` (default: the stored image's own format). Returns the
        digest of the manifest written (``--digestfile``)."""
        with tempfile.TemporaryDirectory(prefix="podman-digest-") as tmp:
            digestfile = os.path.join(tmp, "digest")
            argv = ["push", "--quiet", "--tls-verify=false", "--digestfile", digestfile,
                    "--signature-policy", str(self.policy), *self._auth_args(creds)]
            if format is not None:
                argv += ["--format", format]
            argv += [*args, src, *([dst] if dst is not None else [])]
            self.podman(*argv)
            with open(digestfile) as f:
                return f.read().strip()

    def load(self, archive: str | os.PathLike) -> list[str]:
        """``podman load -i ARCHIVE``; returns the loaded image names."""
        out = self.podman("load", "-i", str(archive)).stdout
        return re.findall(r"^Loaded image(?:\(s\))?: (.+)$", out, re.M)

    def tag(self, src: str, *dst: str) -> None:
        """``podman tag SRC DST...``."""
        self.podman("tag", src, *dst)

    def rmi(self, *refs: str, force: bool = False) -> None:
        """``podman rmi REF...``."""
        self.podman("rmi", *(["--force"] if force else []), *refs)

    def exists(self, ref: str) -> bool:
        """Whether image *ref* is in local storage."""
        return self.podman("image", "exists", ref, check=False).returncode == 0

    def inspect(self, ref: str) -> dict:
        """``podman image inspect REF`` (Id, Digest, RepoTags, RepoDigests...)."""
        return json.loads(self.podman("image", "inspect", ref).stdout)[0]

    def digest(self, ref: str) -> str:
        """Manifest digest podman records for local image *ref*."""
        return self.inspect(ref)["Digest"]

    def image_id(self, ref: str) -> str:
        """Config blob digest (``sha256:`` + podman's image ID) of local image *ref*."""
        return "sha256:" + self.inspect(ref)["Id"]

    def images(self) -> list[dict]:
        """``podman images --format json``."""
        return json.loads(self.podman("images", "--format", "json").stdout or "[]")

    def login(self, registry: str, username: str, password: str):
        """``podman login`` with the password on stdin (stored in ``authfile``)."""
        return self.podman("login", "--tls-verify=false", "-u", username,
                           "--password-stdin", registry, input=password.encode())
