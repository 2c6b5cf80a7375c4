"""``registry-admin usage``: bytes stored per namespace and repository, namespace quotas, recounts.

    usage                         every namespace: repositories, logical and deduplicated bytes, quota
    usage NAMESPACE               one namespace and its repositories
    usage quota NAMESPACE SIZE    set a quota (10GiB, 500MB, bytes) or remove it (none)
    usage --recount NAME          count a repository stored before accounting existed, and repair its counts

The counters are kept by the registry itself (registry.storage.usage); this
module only reads them, except for quotas and recounts.
"""

from __future__ import annotations

import argparse

from registry import inputs
from registry.errors import RegistryError
from registry.references import parse_name

# Namespaces listed per Query when listing them all (the listing pages through the USAGE partition).
PAGE = 100


class UsageError(Exception):
    """A refusal for the operator (the CLI prints it and exits 1)."""


def _service():
    """registry.services.usage, imported when a usage command runs (``--help`` needs none of it)."""
    from registry.services import usage

    return usage


def _size(value: int | None) -> str:
    return "-" if value is None else f"{inputs.format_bytes(value)} ({value})"


def _namespace_name(namespace: str) -> str:
    try:
        parse_name(namespace)
    except RegistryError as exc:
        raise UsageError(exc.message) from None
    if "/" in namespace:
        raise UsageError(f"a namespace is a repository name's first component, without '/': {namespace.split('/', 1)[0]}")
    return namespace


def _row(view: dict) -> list[str]:
    return [
        view["namespace"],
        str(view["repositories"]),
        inputs.format_bytes(view["logical_bytes"]),
        inputs.format_bytes(view["deduplicated_bytes"]),
        "-" if view["quota_bytes"] is None else inputs.format_bytes(view["quota_bytes"]),
    ]


HEADER = ["NAMESPACE", "REPOSITORIES", "LOGICAL", "DEDUPLICATED", "QUOTA"]


def run(args, print_table, print_json) -> int:
    """The ``usage`` command (``args.words``: [], [NAMESPACE] or [quota, NAMESPACE, SIZE])."""
    if getattr(args, "recount", None):
        return _recount(args, print_json)
    words = list(args.words)
    if len(words) == 3 and words[0] == "quota":
        return _quota(words[1], words[2], args, print_json)
    if len(words) == 1:
        return _one(_namespace_name(words[0]), args, print_table, print_json)
    if not words:
        return _all(args, print_table, print_json)
    raise UsageError("usage [NAMESPACE] | usage quota NAMESPACE SIZE|none | usage --recount NAME")


def _all(args, print_table, print_json) -> int:
    views, after = [], None
    while True:
        page, more = _service().namespaces(PAGE, after)
        views += page
        if not more or not page:
            break
        after = page[-1]["namespace"]
    total = _service().registry_total()
    if getattr(args, "json", False):
        print_json({"namespaces": views, "registry": {"deduplicated_bytes": total["dedup"], "blob_objects": total["objects"]}})
        return 0
    print_table(HEADER, [_row(view) for view in views])
    print(f"registry: {inputs.format_bytes(total['dedup'])} in {total['objects']} blob object(s), each counted once (what S3 stores under blobs/)")
    return 0


def _one(namespace: str, args, print_table, print_json) -> int:
    view = _service().namespace(namespace)
    repositories, after = [], None
    while True:
        page, more = _service().repositories(namespace, PAGE, after)
        repositories += page
        if not more or not page:
            break
        after = page[-1]["name"]
    if getattr(args, "json", False):
        print_json({**view, "repository_usage": repositories})
        return 0
    print_table(HEADER, [_row(view)])
    if repositories:
        print()
        print_table(["REPOSITORY", "LOGICAL"], [[item["name"], inputs.format_bytes(item["logical_bytes"])] for item in repositories])
    return 0


def _quota(namespace: str, size: str, args, print_json) -> int:
    namespace = _namespace_name(namespace)
    if size.lower() == "none":
        quota = None
    else:
        try:
            quota = inputs.byte_size(size)
        except inputs.NumberInvalid as exc:
            raise UsageError(f"{size[:40]!r}: {exc}") from None
    _service().set_quota(namespace, quota)
    view = _service().namespace(namespace)
    if getattr(args, "json", False):
        print_json(view)
        return 0
    if quota is None:
        print(f"{namespace}: no quota")
    else:
        over = " (already over it: pushes of new blobs are refused until usage drops)" if view["deduplicated_bytes"] > quota else ""
        print(f"{namespace}: quota {_size(quota)}, using {_size(view['deduplicated_bytes'])}{over}")
    return 0


def _recount(args, print_json) -> int:
    try:
        name = parse_name(args.recount)
    except RegistryError as exc:
        raise UsageError(exc.message) from None
    if args.words:
        raise UsageError("--recount takes a repository name only")
    report = _service().recount(name)
    if getattr(args, "json", False):
        print_json({"repository": name, **report})
        return 0
    print(
        f"{name}: {report['links_adopted']} link(s) and {report['manifests_adopted']} manifest(s) counted for the first time, "
        f"{report['references_fixed']} namespace reference count(s) corrected; logical bytes "
        f"{_size(report['logical_before'])} -> {_size(report['logical_after'])}"
    )
    return 0


def add_parser(groups, common: argparse.ArgumentParser, handler):
    """The ``usage`` sub-command on the CLI's parser (``handler(args)`` runs it)."""
    sub = groups.add_parser(
        "usage",
        parents=[common],
        help="bytes stored per namespace and repository; namespace quotas",
        description="Bytes stored per namespace (logical: every repository's blobs and manifests; deduplicated: each blob once), "
        "and quotas: usage [NAMESPACE] | usage quota NAMESPACE SIZE|none | usage --recount NAME.",
    )
    sub.set_defaults(handler=handler)
    sub.add_argument("words", nargs="*", metavar="NAMESPACE | quota NAMESPACE SIZE", help="SIZE: 10GiB, 500MB, bytes, or none")
    sub.add_argument(
        "--recount", metavar="NAME", help="count a repository's links and manifests stored before accounting existed, and repair its counts"
    )
    return sub
