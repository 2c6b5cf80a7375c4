"""``registry-admin repo retention``: set, show, clear and try out retention policies (registry.services.retention).

    registry-admin repo retention team/app --keep 10 --tags 'v*'        # the 10 newest v* tags stay
    registry-admin repo retention --namespace team --expire-days 90      # every team/… repository without its own policy
    registry-admin repo retention team/app                               # show the policy in force
    registry-admin repo retention team/app --dry-run                     # what it would delete now
    registry-admin repo retention team/app --keep 3 --dry-run            # what these rules would delete (nothing saved)
    registry-admin repo retention team/app --clear

The rules given replace the whole policy (a rule not given is unset). Also
here: the ``reindex`` step writing the push-time entries of tags pushed
before retention existed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from registry import keys
from registry.errors import RegistryError
from registry.services import retention
from registry.storage import dynamo
from registry.storage import retention as store


class RetentionError(Exception):
    """A refusal for the operator (the CLI prints it and exits 1)."""


def add_parser(command, repo_subparsers):
    """Register ``repo retention`` on the ``repo`` group (``command`` is cli.build_parser's helper)."""
    sub = command(repo_subparsers, "retention", run, "set, show or clear a retention policy (which tags the gc pass deletes)")
    sub.add_argument("name", nargs="?", help="a repository (omit with --namespace)")
    sub.add_argument("--namespace", metavar="NS", help="the policy of every repository NS/… without a policy of its own")
    sub.add_argument("--keep", metavar="N", help=f"keep the N most recently pushed matching tags (1 to {retention.KEEP_MAX})")
    sub.add_argument("--expire-days", metavar="D", help="keep matching tags pushed within the last D days")
    sub.add_argument("--tags", metavar="PATTERN", help="glob the whole tag must match (* ? [set] [!set]; default: every tag); quote it")
    sub.add_argument("--untagged-days", metavar="D", help="collect untagged manifests after D days here (instead of the gc default)")
    sub.add_argument("--clear", action="store_true", help="remove the policy")
    sub.add_argument("--dry-run", action="store_true", help="print what the policy (or the rules given) would delete now; change nothing")
    return sub


def _subject(args) -> tuple[str, str | None]:
    """(subject, repository or None for a namespace)."""
    try:
        if args.namespace is not None:
            if args.name is not None:
                raise RetentionError("give a repository NAME or --namespace NS, not both")
            return retention.namespace_subject(retention.check_namespace(args.namespace)), None
        if args.name is None:
            raise RetentionError("give a repository NAME or --namespace NS")
        if args.name.endswith(keys.NAMESPACE_SUFFIX):
            raise RetentionError(f"for a namespace write --namespace {args.name[: -len(keys.NAMESPACE_SUFFIX)]}")
        from registry.references import parse_name

        return parse_name(args.name), args.name
    except RegistryError as exc:
        raise RetentionError(exc.message) from None
    except retention.PolicyInvalid as exc:
        raise RetentionError(str(exc)) from None


def _rules(args) -> dict:
    return {k: v for k, v in {"keep": args.keep, "expire_days": args.expire_days, "tags": args.tags, "untagged_days": args.untagged_days}.items() if v is not None}


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M UTC")


def run(args) -> int:
    subject, name = _subject(args)
    rules = _rules(args)
    if args.clear and rules:
        raise RetentionError("--clear takes no rule options")
    if name is not None:
        from registry.storage import metadata

        if not metadata.repository_exists(name):
            raise RetentionError(f"no repository {name} (nothing has been pushed to it)")
    try:
        policy = retention.parse_policy(subject, rules) if rules else None
    except retention.PolicyInvalid as exc:
        raise RetentionError(str(exc)) from None
    if rules and policy is None:
        raise RetentionError("give --keep, --expire-days or --untagged-days (or --clear)")
    if args.dry_run:
        return _dry_run(args, subject, name, policy)
    if args.clear:
        retention.set_policy(subject, None)
        print(f"{subject}: retention policy cleared")
        return 0
    if policy is not None:
        retention.set_policy(subject, policy)
        print(f"{subject}: {policy.describe()}")
        return 0
    return _show(args, subject, name)


def _show(args, subject: str, name: str | None) -> int:
    mine = retention.own(subject)
    applied = mine if name is None else (mine or retention.effective(name))
    if getattr(args, "json", False):
        print(json.dumps({"subject": subject, "policy": mine and mine.fields(), "effective": applied and applied.view()}, indent=2, sort_keys=True))
        return 0
    if applied is None:
        print(f"{subject}: no retention policy")
    elif applied is mine:
        print(f"{subject}: {mine.describe()}")
    else:
        print(f"{subject}: no policy of its own; {applied.subject}'s applies: {applied.describe()}")
    return 0


def effective_view(name: str) -> dict | None:
    """The policy in force for repository ``name`` (``applies_from`` says where it is set), or None."""
    policy = retention.effective(name)
    return None if policy is None else policy.view()


def summary(name: str, view: dict | None) -> str:
    """``repo show``'s line: the policy in force and where it is set."""
    if view is None:
        return "none"
    policy = retention.Policy(view["applies_from"], view["keep"], view["expire_days"], view["tags"], view["untagged_days"])
    return policy.describe() + ("" if view["applies_from"] == name else f" (the namespace policy {view['applies_from']})")


def _repositories(subject: str, name: str | None):
    """The repositories a dry run looks at: the one named, or every one of the namespace without its own policy."""
    if name is not None:
        yield name
        return
    namespace, after = subject[: -len(keys.NAMESPACE_SUFFIX)], None
    while True:
        names = store.namespace_repositories(namespace, None, retention.PAGE, after)
        for repository, own in zip(names, store.get_policies(names) if names else []):
            if own is None:
                yield repository
        if len(names) < retention.PAGE:
            return
        after = names[-1]


def _dry_run(args, subject: str, name: str | None, policy) -> int:
    found, incomplete, skipped = [], False, []
    for repository in _repositories(subject, name):
        applied = policy or (retention.own(subject) if name is None else retention.effective(repository))
        if applied is None:
            continue
        report = retention.preview(repository, applied)
        found += report.deleted
        incomplete |= not report.complete
        skipped += report.skipped
    if getattr(args, "json", False):
        print(json.dumps({"dry_run": True, "complete": not incomplete, "skipped": skipped, "would_delete": [vars(d) for d in found]}, indent=2, sort_keys=True))
        return 0
    for deletion in found:
        print(f"would delete tag {deletion.name}:{deletion.tag} ({deletion.digest}, pushed {_when(deletion.pushed)}; policy {deletion.policy})")
    print(f"would delete {len(found)} tag(s); nothing was changed" + ("; more than one pass's budget: the pass would continue later" if incomplete else ""))
    for repository in skipped:
        print(f"warning: {repository}: too many tags to count the newest --keep within one pass; nothing would be deleted there")
    return 0


def backfill() -> dict:
    """``reindex``: the push-time entry of every tag of every repository (tags pushed before retention existed)."""
    repositories = entries = 0
    after = None
    while True:
        items, more = dynamo.query_page(keys.VISIBLE_ALL_PK, "", 1000, after)
        for item in items:
            repositories += 1
            entries += store.backfill_pushed(item["sk"])
        if not more:
            return {"repositories": repositories, "tag_entries": entries}
        after = items[-1]["sk"]

