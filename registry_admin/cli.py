"""``registry-admin``: users, personal access tokens, repository access and search metadata, from the command line.

It writes the registry's DynamoDB table directly through ``registry.accounts``;
the registry's functions read the same items on every request, so a change
applies at once (a bearer token already issued lives on until it expires).

Which table (one of):

* ``--local``: the stack ``make run`` serves, described by ``.local-stack.json``
  in the repository root (or the file ``$REGISTRY_LOCAL_STACK_FILE`` names);
* ``--stack NAME [--region R]``: a deployed CloudFormation stack, through its
  ``MetadataTableName`` output, with the caller's own AWS credentials;
* ``--table NAME [--region R]``: a table named directly;
* none of them: ``$METADATA_TABLE``.

Secrets never appear on the command line: passwords are prompted for (twice)
or read from standard input with ``--password-stdin``; a new access token is
printed once and only its hash is stored.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError, NoRegionError

from registry import accounts, aws, config, inputs, keys
from registry.accounts import AccountError
from registry.errors import RegistryError
from registry.references import parse_name
from registry.services.repositories import DESCRIPTION_MAX
from registry.storage import catalog_index, dynamo, metadata, principals, search_index, signing_keys
from registry_admin import retention as admin_retention

PROG = "registry-admin"
LOCAL_STACK_FILE_ENV = "REGISTRY_LOCAL_STACK_FILE"
LOCAL_STACK_FILE = ".local-stack.json"
STACK_OUTPUT = "MetadataTableName"

# moto accepts any credentials; these keep the caller's real ones away from it.
_LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Environment variables that would steer boto3 somewhere other than the local endpoint.
_LOCAL_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


class CliError(Exception):
    """A refusal with a message for the operator (exit status 1)."""


@dataclass
class Target:
    table: str
    where: str  # for messages: "in us-east-1", "on the local stack (http://…)"
    env: dict[str, str | None] = field(default_factory=dict)  # None: unset
    endpoint: str | None = None  # the local stack's AWS endpoint


# --- choosing the table ---------------------------------------------------------------------


def repo_root() -> Path:
    here = Path(__file__).resolve().parent.parent
    return here if (here / "template.yaml").exists() else Path.cwd()


def local_stack_file() -> Path:
    override = os.environ.get(LOCAL_STACK_FILE_ENV)
    return Path(override) if override else repo_root() / LOCAL_STACK_FILE


def _local_target() -> Target:
    path = local_stack_file()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(f"{path} not found: is `make run` running? (the local stack writes that file when it starts)") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read {path} ({exc}); restart `make run` to rewrite it") from None
    if not isinstance(data, dict) or not data.get("aws_endpoint") or not data.get("table"):
        raise CliError(f"{path} lacks aws_endpoint or table; restart `make run` to rewrite it")
    region = data.get("region") or "us-east-1"
    env: dict[str, str | None] = {
        **_LOCAL_CREDENTIALS,
        **{name: None for name in _LOCAL_UNSET},
        "AWS_ENDPOINT_URL": data["aws_endpoint"],
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "METADATA_TABLE": data["table"],
        # A stale file points at a closed port: fail after one retry, not five.
        "AWS_RETRY_MODE": "standard",
        "AWS_MAX_ATTEMPTS": "2",
    }
    if data.get("bucket"):
        env["BLOB_BUCKET"] = data["bucket"]
    return Target(data["table"], f"on the local stack ({data['aws_endpoint']})", env, endpoint=data["aws_endpoint"])


def _stack_target(stack: str, region: str | None) -> Target:
    client = boto3.client("cloudformation", region_name=region)
    region = client.meta.region_name
    try:
        stacks = client.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as exc:
        error = exc.response.get("Error", {})
        if error.get("Code") == "ValidationError" and "does not exist" in error.get("Message", ""):
            raise CliError(f"no CloudFormation stack {stack} in {region} (pass --region if it is elsewhere)") from None
        raise
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs") or []}
    if STACK_OUTPUT not in outputs:
        status = stacks[0].get("StackStatus", "unknown")
        raise CliError(f"stack {stack} in {region} has no output {STACK_OUTPUT} (status {status}): is it a registry stack, fully deployed?")
    table = outputs[STACK_OUTPUT]
    env = {"METADATA_TABLE": table, "AWS_DEFAULT_REGION": region, "AWS_REGION": region, "UPSTREAM_SECRET_PREFIX": f"{stack}-upstream-"}
    if outputs.get("BlobBucketName"):
        env["BLOB_BUCKET"] = outputs["BlobBucketName"]  # gc deletes blob objects
    return Target(table, f"in {region} (stack {stack})", env)


def _region_env(region: str | None) -> dict[str, str | None]:
    return {"AWS_DEFAULT_REGION": region, "AWS_REGION": region} if region else {}


def resolve_target(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Target:
    local, stack, table = getattr(args, "local", False), getattr(args, "stack", None), getattr(args, "table", None)
    region = getattr(args, "region", None)
    chosen = [option for option, value in (("--local", local), ("--stack", stack), ("--table", table)) if value]
    if len(chosen) > 1:
        parser.error(f"choose one target, not {' and '.join(chosen)}")
    if local:
        if region:
            parser.error("--region does not apply to --local (the local stack's file names its region)")
        return _local_target()
    if stack:
        return _stack_target(stack, region)
    if table:
        return Target(table, f"in {region}" if region else "", {"METADATA_TABLE": table, **_region_env(region)})
    if os.environ.get("METADATA_TABLE"):
        return Target(os.environ["METADATA_TABLE"], f"in {region}" if region else "", _region_env(region))
    parser.error("choose the registry: --local, --stack NAME or --table NAME (or set METADATA_TABLE)")
    raise AssertionError("unreachable")


@contextmanager
def environment(changes: dict[str, str | None]):
    """Apply ``changes`` to os.environ (and drop cached settings and clients) for the block."""
    saved = {name: os.environ.get(name) for name in changes}

    def apply(values):
        for name, value in values.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        config.settings.cache_clear()
        aws.reset()

    apply(changes)
    try:
        yield
    finally:
        apply(saved)


# --- input and output ----------------------------------------------------------------------------


def _read_password(args: argparse.Namespace, user: str) -> str:
    if args.password_stdin:
        password = sys.stdin.read().rstrip("\r\n")
        if not password:
            raise CliError("no password on standard input")
        return password
    try:
        password = getpass.getpass(f"New password for {user}: ")
        if len(password) < accounts.PASSWORD_MIN:
            raise CliError(f"passwords need at least {accounts.PASSWORD_MIN} characters")
        again = getpass.getpass("Repeat the password: ")
    except EOFError:
        raise CliError("no password given (pipe one in with --password-stdin)") from None
    if password != again:
        raise CliError("the passwords do not match")
    return password


def _days(text: str) -> int:
    """An argparse type: a day count in ASCII digits (``int`` would take ``٣`` or 5,000 digits)."""
    try:
        return inputs.natural(text, max_digits=5)
    except inputs.NumberInvalid:
        raise argparse.ArgumentTypeError(f"not a number of days (at most 5 digits): {text[:30]!r}") from None


def _confirm(question: str) -> bool:
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    answer = sys.stdin.readline()
    if not answer:  # end of input: nobody answered
        sys.stderr.write("\n")
    return answer.strip().lower() in ("y", "yes")


def _when(timestamp: int | None, none: str = "never") -> str:
    if not timestamp:
        return none
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _print_table(header: list[str], rows: list[list[str]]):
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())


def _print_json(value):
    print(json.dumps(value, indent=2, sort_keys=True))


def _repository_name(name: str) -> str:
    try:
        return parse_name(name)
    except RegistryError as exc:
        raise CliError(exc.message) from None


def _require_user(user: str) -> dict:
    record = principals.get_user(user)
    if record is None:
        raise AccountError(f"no user {user}")
    return record


# --- commands --------------------------------------------------------------------------------------


def user_create(args) -> int:
    accounts.validate_user_name(args.name)
    if principals.get_user(args.name) is not None:
        raise AccountError(f"user {args.name} exists already")
    password = _read_password(args, args.name)
    accounts.create_user(args.name, password, admin=args.admin)
    print(f"created {'admin ' if args.admin else ''}user {args.name}")
    return 0


def user_passwd(args) -> int:
    _require_user(args.name)
    accounts.set_password(args.name, _read_password(args, args.name))
    print(f"changed the password of {args.name} (their access tokens still work: `{PROG} token list {args.name}`)")
    return 0


def user_disable(args) -> int:
    accounts.set_disabled(args.name, True)
    print(f"disabled {args.name}: sign-ins with their password or access tokens are refused")
    return 0


def user_enable(args) -> int:
    accounts.set_disabled(args.name, False)
    print(f"enabled {args.name}")
    return 0


def user_delete(args) -> int:
    _require_user(args.name)
    pushed = accounts.namespace_repositories(args.name)
    if pushed and not args.force:
        # accounts.delete_user refuses too; asking first would be pointless.
        accounts.delete_user(args.name)
    question = f"Delete user {args.name}, their grants and access tokens"
    if pushed:
        question += f", and the {len(pushed)} repositories of {args.name}/ ({', '.join(pushed[:5])}{', …' if len(pushed) > 5 else ''})"
    question += "?"
    if not args.yes and not _confirm(question):
        raise CliError(f"{args.name} not deleted (answer y, or pass --yes)")
    deleted = accounts.delete_user(args.name, force=args.force)
    print(f"deleted user {args.name}, their access tokens and {len(deleted['grants'])} grant(s)")
    if deleted["repositories"]:
        names = ", ".join(deleted["repositories"])
        print(f"deleted {len(deleted['repositories'])} repositories of {args.name}/: {names} (blob bytes are left for garbage collection)")
    return 0


def user_list(args) -> int:
    users = accounts.list_users()
    if getattr(args, "json", False):
        _print_json(users)
    elif not users:
        print("no users")
    else:
        _print_table(
            ["USER", "ADMIN", "DISABLED"], [[u["user"], "yes" if u["admin"] else "no", "yes" if u["disabled"] else "no"] for u in users]
        )
    return 0


def user_admin(args) -> int:
    accounts.set_admin(args.name, args.admin)
    print(f"{args.name} is {'now' if args.admin else 'no longer'} an admin")
    return 0


def user_ratelimit(args) -> int:
    limit = None if args.limit == "default" else args.limit
    accounts.set_pull_limit(args.name, limit)
    print(f"{args.name}: pull rate limit {limit or 'the default for signed-in users'} (from their next token)")
    return 0


def token_create(args) -> int:
    if args.expires_days is not None and args.expires_days < 1:
        raise CliError("--expires-days must be 1 or more (leave it out for a token that does not expire)")
    created = accounts.create_access_token(args.user, args.scope, args.description, args.expires_days)
    if getattr(args, "json", False):
        _print_json(created)
        return 0
    # The token alone on stdout (TOKEN=$(registry-admin … token create …) works); the rest on stderr.
    expires = f"expires {_when(created['expires_at'])}" if created["expires_at"] else "does not expire"
    print(f"access token {created['id']} for {args.user}, scope {created['scope']}, {expires}:", file=sys.stderr)
    print(created["token"], flush=True)
    print("Copy it now: it cannot be shown again (only its hash is stored).", file=sys.stderr)
    return 0


def token_revoke(args) -> int:
    accounts.revoke_access_token(args.user, args.id)
    print(f"revoked access token {args.id} of {args.user}")
    return 0


def _token_status(token: dict, now: float) -> str:
    if token["revoked"]:
        return "revoked"
    if token["expires_at"] and token["expires_at"] < now:
        return "expired"
    return "active"


def token_list(args) -> int:
    tokens = accounts.list_access_tokens(args.user)
    if not tokens:
        _require_user(args.user)
    now = time.time()
    listed = [{**token, "status": _token_status(token, now)} for token in tokens]
    if getattr(args, "json", False):
        _print_json(listed)
    elif not listed:
        print(f"{args.user} has no access tokens")
    else:
        rows = [[t["id"], t["scope"], t["status"], _when(t["created"], "-"), _when(t["expires_at"]), t["description"]] for t in listed]
        _print_table(["ID", "SCOPE", "STATUS", "CREATED", "EXPIRES", "DESCRIPTION"], rows)
    return 0


def signing_key_list(args) -> int:
    listed = signing_keys.published()
    if getattr(args, "json", False):
        _print_json([{key: value for key, value in entry.items() if key != "public_key"} for entry in listed])
    elif not listed:
        print("no signing key published yet (the token function publishes its key before its first token)")
    else:
        _print_table(["KID", "PUBLISHED", "STOPS VERIFYING"], [[e["kid"], _when(e["published"], "-"), _when(e["expires_at"])] for e in listed])
    return 0


def signing_key_retire(args) -> int:
    from registry.auth import tokens

    try:
        at = tokens.retire(args.kid, args.token_seconds)
    except dynamo.Conflict:
        raise CliError(f"no signing key {args.kid} was published (see signing-key list)") from None
    print(f"{args.kid} stops verifying at {_when(at)}: every token it may still sign has expired by then")
    return 0


def _note_if_new(name: str):
    if principals.repository(name) is None:
        print(f"note: {name} has no images yet; this applies to it once pushed", file=sys.stderr)


def repo_visibility(args) -> int:
    name = _repository_name(args.name)
    if args.visibility not in accounts.VISIBILITIES:
        raise AccountError("visibility is public or private")
    _note_if_new(name)
    accounts.set_visibility(name, args.visibility)
    print(f"{name} is now {args.visibility}")
    return 0


def repo_grant(args) -> int:
    name = _repository_name(args.name)
    if args.action not in accounts.GRANTS:
        raise AccountError(f"a grant is one of {', '.join(accounts.GRANTS)}")
    _require_user(args.user)
    _note_if_new(name)
    accounts.grant(name, args.user, args.action)
    print(f"granted {args.action} on {name} to {args.user}" + (" (push includes pull)" if args.action == "push" else ""))
    return 0


def repo_revoke(args) -> int:
    name = _repository_name(args.name)
    grants = (principals.repository(name) or {}).get("grants") or {}
    if args.user not in grants:
        raise AccountError(f"{args.user} has no grant on {name}")
    accounts.revoke(name, args.user)
    print(f"revoked the {grants[args.user]} grant of {args.user} on {name}")
    return 0


def _existing_repository(name: str) -> dict:
    """The catalog item of a repository that has been pushed to; refuse any other name."""
    item = principals.repository(name)
    if item is None or "created" not in item:
        raise CliError(f"no repository {name} (nothing has been pushed to it)")
    return item


def _stargazers(name: str) -> list[str]:
    users: list[str] = []
    after = None
    while True:
        items, more = dynamo.query_page(keys.star_key(name, "")["pk"], "", 1000, after)
        users += [item["sk"] for item in items]
        if not more:
            return users
        after = items[-1]["sk"]


def repo_describe(args) -> int:
    name = _repository_name(args.name)
    item = _existing_repository(name)
    description = args.text.strip()
    if len(description) > DESCRIPTION_MAX:
        raise CliError(f"a description has at most {DESCRIPTION_MAX} characters (this one has {len(description)})")
    search_index.set_description(name, description, item.get("description") or "")
    print(f"{name}: description {'set to ' + repr(description) if description else 'cleared'}")
    return 0


def repo_official(args) -> int:
    name = _repository_name(args.name)
    _existing_repository(name)
    search_index.set_official(name, args.official)
    print(f"{name} is {'now' if args.official else 'no longer'} official")
    return 0


def repo_immutable(args) -> int:
    name = _repository_name(args.name)
    _existing_repository(name)
    metadata.set_immutable(name, args.immutable)
    print(f"{name}: tags are {'now immutable' if args.immutable else 'mutable again'}")
    return 0


# --- storage lifecycle ---------------------------------------------------------------------------------


def gc(args) -> int:
    """Run one garbage-collection pass now (the scheduled function's), printing what it removed."""
    from registry.services import gc as collector

    changes = {}
    if getattr(args, "bucket", None):
        changes["BLOB_BUCKET"] = args.bucket
    elif not os.environ.get("BLOB_BUCKET"):
        raise CliError("gc deletes blob objects: name the bucket with --bucket (or use --local / --stack)")
    if getattr(args, "untagged_days", None) is not None:
        changes["GC_UNTAGGED_DAYS"] = str(args.untagged_days)
    with environment(changes):
        report = collector.run(dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    if getattr(args, "json", False):
        _print_json(
            {
                "dry_run": report.dry_run,
                "complete": report.complete,
                "removed": [vars(item) for item in report.removed],
                "objects_freed": report.objects_freed,
                "bytes_freed": report.bytes_freed,
                "seconds": round(report.seconds, 3),
            }
        )
        return 0
    for item in report.removed:
        where = f"{item.name}@{item.digest}" if item.name else item.digest
        where = f"{item.name}:{item.tag} ({item.digest}, by its retention policy)" if item.kind == "tag" else where
        print(f"{verb} {item.kind} {where}" + (f" ({item.size} bytes)" if item.kind == "blob" else ""))
    print(
        f"{verb} {len(report.removed)} item(s), {report.objects_freed} blob object(s), {report.bytes_freed} bytes "
        f"({report.candidates} candidate(s) in {report.seconds:.1f} s{'' if report.complete else '; stopped at its deadline, run it again'})"
    )
    if not report.retention_complete:
        print("retention: the pass's budget ran out; the next pass continues where this one stopped")
    return 0


def usage(args) -> int:
    """Storage accounting and quotas (registry_admin.usage)."""
    from registry_admin import usage as usage_command

    try:
        return usage_command.run(args, _print_table, _print_json)
    except usage_command.UsageError as exc:
        raise CliError(str(exc)) from None


def _star(args, starred: bool) -> int:
    name = _repository_name(args.name)
    _existing_repository(name)
    _require_user(args.user)
    changed = search_index.star(name, args.user, starred)
    stars = int(principals.repository(name).get("stars") or 0)
    if changed:
        print(f"{args.user} {'starred' if starred else 'unstarred'} {name} ({stars} star{'' if stars == 1 else 's'})")
    else:
        print(f"{args.user} {'had already starred' if starred else 'had not starred'} {name} ({stars} star{'' if stars == 1 else 's'})")
    return 0


def repo_star(args) -> int:
    return _star(args, True)


def repo_unstar(args) -> int:
    return _star(args, False)


def repo_show(args) -> int:
    name = _repository_name(args.name)
    item = _existing_repository(name)
    view = {
        "name": name,
        "description": item.get("description") or "",
        "star_count": int(item.get("stars") or 0),
        "starred_by": _stargazers(name),
        "is_official": bool(item.get("official")),
        "immutable": bool(item.get("immutable")),
        "retention": admin_retention.effective_view(name),
        "visibility": item.get("visibility") or None,
        "grants": dict(item.get("grants") or {}),
        "created": int(item["created"]),
        "updated": int(item.get("updated") or item["created"]),
        "usage": _usage_view(name),
    }
    if getattr(args, "json", False):
        _print_json(view)
        return 0
    visibility = view["visibility"] or "not set (the registry's DEFAULT_VISIBILITY applies: private unless configured)"
    rows = [
        ["name", name],
        ["description", view["description"] or "-"],
        ["stars", f"{view['star_count']}" + (f" ({', '.join(view['starred_by'])})" if view["starred_by"] else "")],
        ["official", "yes" if view["is_official"] else "no"],
        ["immutable tags", "yes" if view["immutable"] else "no"],
        ["retention", admin_retention.summary(name, view["retention"])],
        ["visibility", visibility],
        ["grants", ", ".join(f"{user}: {action}" for user, action in sorted(view["grants"].items())) or "-"],
        ["created", _when(view["created"], "-")],
        ["updated", _when(view["updated"], "-")],
        *_usage_rows(view["usage"]),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label + ':':<{width + 1}} {value}")
    return 0


def _usage_view(name: str) -> dict:
    from registry.services import usage as accounting

    return accounting.repository_view(name)


def _usage_rows(view: dict) -> list[list[str]]:
    """repo show's storage lines: the repository's logical bytes, its namespace's counters and quota."""
    namespace = view["namespace"]
    quota = namespace["quota_bytes"]
    return [
        ["stored (logical)", inputs.format_bytes(view["logical_bytes"])],
        [
            f"namespace {namespace['namespace']}",
            f"{inputs.format_bytes(namespace['logical_bytes'])} logical, {inputs.format_bytes(namespace['deduplicated_bytes'])} deduplicated, "
            f"quota {'-' if quota is None else inputs.format_bytes(quota)}",
        ],
    ]


def reindex(args) -> int:
    result = catalog_index.rebuild()
    result["retention"] = admin_retention.backfill()
    if getattr(args, "json", False):
        _print_json(result)
        return 0
    print(
        f"catalog index: {result['repositories']} repositories, {result['added']} entries added, {result['removed']} removed; "
        f"{result['orphan_grants']} grant(s) of deleted users removed; "
        f"{result['retention']['tag_entries']} tag push-time entries written (retention)"
    )
    for namespace in result["orphan_namespaces"]:
        print(
            f"warning: {namespace}/ holds repositories but there is no user {namespace}: a user created with that name would own them",
            file=sys.stderr,
        )
    return 0


# --- the parser ----------------------------------------------------------------------------------------

EPILOG = f"""\
examples:
  {PROG} --local user create alice --admin
  echo "$PASSWORD" | {PROG} --stack registry user create ci --password-stdin
  {PROG} --stack registry --region eu-west-1 token create ci --scope read --expires-days 90
  {PROG} --local repo grant alice/app bob pull
  {PROG} --local repo describe library/busybox "Busybox base image."
  {PROG} --local repo official library/busybox --on
  {PROG} --local repo show library/busybox --json
  {PROG} --local repo immutable team/app --on
  {PROG} --local repo retention team/app --keep 10 --tags 'v*' --dry-run
  {PROG} --stack registry gc --dry-run
  {PROG} --stack registry usage quota team 10GiB
  {PROG} --table registry-metadata user list --json
  {PROG} --stack registry user delete alice --force
  {PROG} --stack registry reindex
  echo "$TOKEN" | {PROG} --stack registry upstream set dockerhub https://registry-1.docker.io --username me --password-stdin

The target and --json may come before the command or after it.
"""


def _common_options() -> argparse.ArgumentParser:
    # SUPPRESS: an option not given on a sub-command leaves what the main parser read.
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    target = common.add_argument_group("target (one of; default: $METADATA_TABLE)")
    target.add_argument(
        "--local", action="store_true", help=f"the stack `make run` serves ({LOCAL_STACK_FILE}, or ${LOCAL_STACK_FILE_ENV})"
    )
    target.add_argument("--stack", metavar="NAME", help=f"a deployed CloudFormation stack (its {STACK_OUTPUT} output)")
    target.add_argument("--table", metavar="NAME", help="a DynamoDB table")
    target.add_argument("--region", metavar="REGION", help="AWS region of --stack or --table (default: your AWS configuration's)")
    common.add_argument("--json", action="store_true", help="machine-readable output (list commands, token create, repo show)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Manage the users, access tokens, repository access and search metadata of a serverless registry.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    groups = parser.add_subparsers(dest="group", metavar="{user,token,repo,reindex,signing-key,gc,usage,upstream}", required=True)

    def command(subparsers, name, handler, help_text):
        sub = subparsers.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    password_help = "read the password from standard input (otherwise: prompt twice)"
    user = groups.add_parser("user", help="create, change, list and delete users").add_subparsers(
        dest="command", metavar="COMMAND", required=True
    )
    sub = command(user, "create", user_create, "create a user")
    sub.add_argument("name")
    sub.add_argument("--admin", action="store_true", help="may do everything to every repository")
    sub.add_argument("--password-stdin", action="store_true", help=password_help)
    sub = command(user, "passwd", user_passwd, "set a user's password")
    sub.add_argument("name")
    sub.add_argument("--password-stdin", action="store_true", help=password_help)
    command(user, "disable", user_disable, "refuse a user's sign-ins (password and tokens)").add_argument("name")
    command(user, "enable", user_enable, "allow a disabled user to sign in again").add_argument("name")
    delete_help = "delete a user, their grants and access tokens (refused while their namespace holds repositories)"
    sub = command(user, "delete", user_delete, delete_help)
    sub.add_argument("name")
    sub.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    sub.add_argument(
        "--force", action="store_true", help="also delete the repositories of the user's namespace NAME/… (blob bytes stay for garbage collection)"
    )
    command(user, "list", user_list, "list users")
    sub = command(user, "admin", user_admin, "make a user an admin, or not")
    sub.add_argument("name")
    switch = sub.add_mutually_exclusive_group(required=True)
    switch.add_argument("--on", dest="admin", action="store_true", default=None, help="make an admin")
    switch.add_argument("--off", dest="admin", action="store_false", default=None, help="no longer an admin")
    sub = command(user, "ratelimit", user_ratelimit, "override a user's pull rate limit (e.g. a CI robot)")
    sub.add_argument("name")
    sub.add_argument("limit", help="COUNT;w=SECONDS (e.g. '1000;w=21600'), unlimited, or default")

    token = groups.add_parser("token", help="personal access tokens").add_subparsers(dest="command", metavar="COMMAND", required=True)
    sub = command(token, "create", token_create, "issue an access token (shown once)")
    sub.add_argument("user")
    sub.add_argument(
        "--scope", default="read-write", metavar="{" + ",".join(accounts.SCOPES) + "}", help="what it allows (default: read-write)"
    )
    sub.add_argument("--description", default="", metavar="TEXT", help="what it is for")
    sub.add_argument("--expires-days", type=_days, metavar="N", help="expire after N days (default: never)")
    sub = command(token, "revoke", token_revoke, "revoke an access token")
    sub.add_argument("user")
    sub.add_argument("id", help="the token's id (see token list)")
    command(token, "list", token_list, "list a user's access tokens (never their secrets)").add_argument("user")

    repo = groups.add_parser("repo", help="repository visibility, grants, description, stars, official flag").add_subparsers(
        dest="command", metavar="COMMAND", required=True
    )
    sub = command(repo, "visibility", repo_visibility, "make a repository public (anyone may pull) or private")
    sub.add_argument("name")
    sub.add_argument("visibility", metavar="{public,private}")
    sub = command(repo, "grant", repo_grant, "let a user pull, or push (and pull), a repository")
    sub.add_argument("name")
    sub.add_argument("user")
    sub.add_argument("action", metavar="{pull,push}")
    sub = command(repo, "revoke", repo_revoke, "take a user's grant on a repository away")
    sub.add_argument("name")
    sub.add_argument("user")
    sub = command(repo, "describe", repo_describe, "set the description docker search shows (an empty TEXT clears it)")
    sub.add_argument("name")
    sub.add_argument("text", metavar="TEXT", help=f"at most {DESCRIPTION_MAX} characters")
    sub = command(repo, "official", repo_official, "mark a repository official in docker search, or not")
    sub.add_argument("name")
    switch = sub.add_mutually_exclusive_group(required=True)
    switch.add_argument("--on", dest="official", action="store_true", default=None, help="official")
    switch.add_argument("--off", dest="official", action="store_false", default=None, help="not official")
    sub = command(repo, "star", repo_star, "star a repository for a user (once per user)")
    sub.add_argument("name")
    sub.add_argument("user")
    sub = command(repo, "unstar", repo_unstar, "take a user's star off a repository")
    sub.add_argument("name")
    sub.add_argument("user")
    command(repo, "show", repo_show, "a repository's description, stars, official flag, visibility and grants").add_argument("name")
    sub = command(repo, "immutable", repo_immutable, "refuse pushes that would move an existing tag of a repository, or not")
    sub.add_argument("name")
    switch = sub.add_mutually_exclusive_group(required=True)
    switch.add_argument("--on", dest="immutable", action="store_true", default=None, help="tags cannot be moved")
    switch.add_argument("--off", dest="immutable", action="store_false", default=None, help="tags can be moved")
    admin_retention.add_parser(command, repo)

    sub = groups.add_parser(
        "gc", parents=[common], help="garbage collection: remove what nothing references, now", description="Run one garbage-collection pass now."
    )
    sub.set_defaults(handler=gc)
    sub.add_argument("--dry-run", action="store_true", help="print what a pass would remove, remove nothing")
    sub.add_argument("--bucket", metavar="NAME", help="the blob bucket (with --table; --local and --stack know it)")
    sub.add_argument(
        "--untagged-days", type=float, metavar="N", help="keep untagged manifests N days (default: $GC_UNTAGGED_DAYS or 7; the stack's UntaggedManifestDays)"
    )

    from registry_admin import usage as usage_command

    usage_command.add_parser(groups, common, usage)

    sub = groups.add_parser(
        "reindex",
        parents=[common],
        help="rebuild the catalog index from the catalog (once after upgrading; idempotent)",
        description="Rebuild the catalog index (VISIBLE#…, GRANTEE#…, USER#…/GRANT#…) from the catalog items, and remove grants "
        "of users that no longer exist, and write the push-time entries retention policies read (REPO#…/PUSHED#…) for tags "
        "pushed before they existed. Needed once for repositories pushed before the index existed; safe to repeat.",
    )
    sub.set_defaults(handler=reindex)

    signing = groups.add_parser("signing-key", help="the published token signing keys (rotation)").add_subparsers(
        dest="command", metavar="COMMAND", required=True
    )
    command(signing, "list", signing_key_list, "the published keys tokens are verified with")
    sub = command(signing, "retire", signing_key_retire, "stop accepting a key once every token it may still sign has expired")
    sub.add_argument("kid")
    sub.add_argument("--token-seconds", type=int, default=3600, metavar="N",
                     help="the stack's TokenSeconds (default: 3600, the largest it may be)")
    from registry_admin import upstreams  # pull-through cache upstreams

    upstreams.add_parser(groups, common)
    return parser


# --- running -----------------------------------------------------------------------------------------------


def _aws_message(exc: Exception, target: Target | None) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        if code == "ResourceNotFoundException" and target is not None:
            return f"table {target.table} not found {target.where}".rstrip() + " (check the target and region)"
        if code in ("UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException"):
            return f"AWS refused the credentials ({code}): {message}"
        return f"AWS error {code}: {message}"
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: configure a profile (AWS_PROFILE, aws sso login) or environment credentials"
    if isinstance(exc, NoRegionError):
        return "no AWS region: pass --region or set AWS_DEFAULT_REGION"
    if isinstance(exc, EndpointConnectionError) and target is not None and target.endpoint:
        return f"cannot reach the local stack's AWS endpoint {target.endpoint}: is `make run` running?"
    return f"AWS error: {exc}"


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    target = None
    try:
        args = parser.parse_args(argv)
        target = resolve_target(parser, args)
        with environment(target.env):
            return args.handler(args)
    except SystemExit as exc:  # argparse: --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    except (AccountError, CliError, admin_retention.RetentionError) as exc:
        return _fail(str(exc))
    except (ClientError, BotoCoreError) as exc:
        return _fail(_aws_message(exc, target))
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
