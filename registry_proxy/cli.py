"""``registry-proxy``: serve a registry endpoint on this machine that pushes layers of any size.

    registry-proxy --upstream https://registry.example.com --listen 127.0.0.1:5500
    docker login 127.0.0.1:5500 && docker push 127.0.0.1:5500/team/app:1

Exit status: 0 after a clean stop (Ctrl-C, SIGTERM), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import logging
import sys
from urllib.parse import urlsplit

from aiohttp import web

from registry_proxy.app import make_app
from registry_proxy.settings import MiB, Settings

PROG = "registry-proxy"


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) -> (host, port)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_upstream(value: str) -> str:
    """An ``http(s)://host[:port]`` origin (registries live at the root: ``/v2/``)."""
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/") or parts.query:
        raise argparse.ArgumentTypeError(f"expected http(s)://HOST[:PORT], got {value!r}")
    return f"{parts.scheme}://{parts.netloc}"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Serve a registry endpoint on this machine "
                                "that pushes layers of any size to --upstream.")
    p.add_argument("--upstream", required=True, type=parse_upstream, help="the registry, e.g. https://registry.example.com")
    p.add_argument("--listen", default="127.0.0.1:5500", type=parse_listen,
                   help="HOST:PORT to serve on (default 127.0.0.1:5500; "
                   "docker treats 127.0.0.0/8 as insecure: plain HTTP works)")
    p.add_argument("--part-size", type=int, default=8, metavar="MiB", help="S3 part size in MiB, at least 5 (default 8)")
    p.add_argument("--parallel", type=int, default=4, help="parts uploaded at once, over all pushes (default 4)")
    p.add_argument("--verbose", "-v", action="store_true", help="log every request (method, path, status)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        settings = Settings(upstream=args.upstream, part_size=args.part_size * MiB, parallel=args.parallel)
    except ValueError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    host, port = args.listen
    print(f"{PROG}: serving {host}:{port} for {settings.upstream}", flush=True)
    web.run_app(make_app(settings), host=host, port=port, print=None,
                access_log=logging.getLogger("registry_proxy.access") if args.verbose else None)
    return 0
