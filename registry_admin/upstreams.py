"""``registry-admin upstream set|list|delete``: the pull-through cache's upstreams.

An upstream set here is an ``UPSTREAM/<prefix>`` item in the registry's table
(url, library option, and the *id* of its credentials); its credentials, when
given (``--username`` with the password on standard input), go to a Secrets
Manager secret ``<UPSTREAM_SECRET_PREFIX><prefix>`` (``--stack NAME``:
``NAME-upstream-<prefix>``, the only secrets the functions may read). Nothing
secret is printed or stored in the table. Upstreams of the template Parameter
``Upstreams`` (``UPSTREAMS``) are listed too; one set here with the same prefix
wins. The functions read the list at most once a minute per container, so a
change applies within about a minute.
"""

from __future__ import annotations

import argparse
import sys


class UpstreamError(Exception):
    """A refusal with a message for the operator."""


def set_upstream(prefix: str, url: str, username: str | None = None, password: str | None = None, library: bool | None = None) -> dict:
    """Create or replace an upstream; with ``username`` and ``password``, its credentials secret. Returns its view."""
    from registry.services import pullthrough
    from registry.storage import cache_records
    from registry.storage import upstream as http

    option = "" if library is None else (",library" if library else ",nolibrary")
    try:
        upstream = pullthrough.parse_upstream(prefix, url + option)
    except ValueError as exc:
        raise UpstreamError(str(exc)) from None
    if (username is None) != (password is None):
        raise UpstreamError("credentials need both --username and a password on standard input")
    existing = {item["sk"]: item for item in cache_records.list_upstreams()}
    if upstream.prefix not in existing and len(existing) >= cache_records.UPSTREAMS_MAX:
        raise UpstreamError(f"at most {cache_records.UPSTREAMS_MAX} upstreams")
    credentials = (existing.get(upstream.prefix) or {}).get("credentials")  # kept when none are given
    if username is not None:
        if not username or not password:
            raise UpstreamError("the username and the password must not be empty")
        credentials = pullthrough.secret_id(upstream.prefix)
        http.store_credentials(credentials, username, password)
    item = {"url": upstream.url, "library": upstream.library}
    if credentials:
        item["credentials"] = credentials
    cache_records.put_upstream(upstream.prefix, item)
    pullthrough.reset()
    return _view(upstream.prefix, item, "registry-admin")


def delete_upstream(prefix: str):
    from registry.services import pullthrough
    from registry.storage import cache_records
    from registry.storage import upstream as http

    items = {item["sk"]: item for item in cache_records.list_upstreams()}
    if prefix not in items:
        raise UpstreamError(f"no upstream {prefix} set by registry-admin (one from the Upstreams parameter is changed there)")
    if items[prefix].get("credentials"):
        http.delete_credentials(items[prefix]["credentials"])
    cache_records.delete_upstream(prefix)
    pullthrough.reset()


def list_upstreams() -> list[dict]:
    import os

    from registry.services import pullthrough
    from registry.storage import cache_records

    views = {}
    try:
        for upstream in pullthrough.parse_upstreams(os.environ.get("UPSTREAMS", "")).values():
            views[upstream.prefix] = {"prefix": upstream.prefix, "url": upstream.url, "library": upstream.library, "credentials": False,
                                      "source": "Upstreams parameter"}
    except ValueError as exc:
        raise UpstreamError(f"UPSTREAMS is malformed: {exc}") from None
    for item in cache_records.list_upstreams():
        views[item["sk"]] = _view(item["sk"], item, "registry-admin")
    return [views[prefix] for prefix in sorted(views)]


def _view(prefix: str, item: dict, source: str) -> dict:
    return {"prefix": prefix, "url": item["url"], "library": bool(item.get("library")), "credentials": bool(item.get("credentials")),
            "source": source}


# --- the CLI's handlers ---------------------------------------------------------------------


def _password(args) -> str | None:
    if args.username is None:
        return None
    if not args.password_stdin:
        raise UpstreamError("give the upstream's password on standard input with --password-stdin (never on the command line)")
    password = sys.stdin.read().rstrip("\r\n")
    if not password:
        raise UpstreamError("no password on standard input")
    return password


def cmd_set(args) -> int:
    library = None if args.library is None else args.library == "on"
    view = set_upstream(args.prefix, args.url, args.username, _password(args), library)
    print(f"upstream {view['prefix']} -> {view['url']} (library/ {'on' if view['library'] else 'off'}, "
          f"credentials {'stored in Secrets Manager' if view['credentials'] else 'none'})")
    return 0


def cmd_list(args) -> int:
    views = list_upstreams()
    if getattr(args, "json", False):
        import json

        print(json.dumps(views, indent=2))
        return 0
    for view in views:
        print(f"{view['prefix']:<20} {view['url']:<40} library={'on' if view['library'] else 'off'} "
              f"credentials={'yes' if view['credentials'] else 'no'} ({view['source']})")
    return 0


def cmd_delete(args) -> int:
    delete_upstream(args.prefix)
    print(f"upstream {args.prefix} deleted")
    return 0


def _handled(handler):
    def run(args) -> int:
        try:
            return handler(args)
        except UpstreamError as exc:
            from registry_admin.cli import CliError

            raise CliError(str(exc)) from None

    return run


def add_parser(groups, common: argparse.ArgumentParser):
    """The ``upstream`` command group (registered by registry_admin.cli.build_parser)."""
    upstream = groups.add_parser("upstream", help="pull-through cache upstreams").add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = upstream.add_parser("set", parents=[common], help="map a prefix to an upstream registry (with optional credentials)")
    sub.add_argument("prefix", help="the first name component cached repositories live under, e.g. dockerhub")
    sub.add_argument("url", help="the upstream registry, http(s)://host[:port], e.g. https://registry-1.docker.io")
    sub.add_argument("--username", help="sign in to the upstream as this user (the password comes from standard input)")
    sub.add_argument("--password-stdin", action="store_true", help="read the upstream password from standard input")
    sub.add_argument("--library", choices=["on", "off"], default=None, help="Docker Hub's library/ for one-component names (default: on for docker.io)")
    sub.set_defaults(handler=_handled(cmd_set))
    sub = upstream.add_parser("list", parents=[common], help="the upstreams, from the Upstreams parameter and registry-admin")
    sub.set_defaults(handler=_handled(cmd_list))
    sub = upstream.add_parser("delete", parents=[common], help="stop caching a prefix set by registry-admin (and delete its credentials)")
    sub.add_argument("prefix")
    sub.set_defaults(handler=_handled(cmd_delete))
