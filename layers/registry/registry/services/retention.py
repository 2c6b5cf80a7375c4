"""Retention policies: which tags a repository keeps, applied by the garbage-collection pass.

A policy is set on a repository (``team/app``) or on a namespace (``team/*``:
every repository whose first component is ``team``); a repository's own
policy replaces its namespace's entirely (no field is inherited). Rules:

* ``tags``: the tags the policy looks at, a glob matched against the whole
  tag, case-sensitively (``fnmatch.fnmatchcase``: ``*`` any run, ``?`` one
  character, ``[abc]``/``[!abc]`` a set); default ``*``. Other tags are never
  deleted by the policy, and do not count towards ``keep``;
* ``keep``: the ``keep`` most recently pushed matching tags are kept;
* ``expire_days``: matching tags pushed within the last ``expire_days`` days
  are kept;
* ``untagged_days``: manifests no tag or index refers to are collected after
  this many days in these repositories (instead of ``GC_UNTAGGED_DAYS``).

With both ``keep`` and ``expire_days`` a matching tag is deleted only when
neither keeps it (older than ``expire_days`` *and* beyond the ``keep``
newest), as Harbor's retention rules combine: deleting cannot be undone, so
every rule must agree. "Pushed" is the time the tag last moved (its
``updated``), so re-pushing a tag renews it; ``keep`` counts tags, not images.

Tags are deleted through ``metadata.delete_tag`` (the tag DELETE endpoint's
path), on condition that the tag was not pushed since it was read, so their
manifests and blobs become garbage-collection candidates and are freed by the
same safe pass as any other deletion. Immutable-tag repositories are no
exception: immutability stops a push from moving a tag, not a policy from
expiring it (ECR documents its tag immutability as preventing a tag from being
overwritten, AWS docs "Image tag mutability", and makes no exception for it in
lifecycle policies). Combining rules by "keep if any rule keeps" follows
Harbor ("the OR algorithm is used between rules", goharbor.io, "Create Tag
Retention Rules").

Cost (docs: README "Storage lifecycle"): the pass reads the ``RETENTION``
partition from a cursor, and for each repository its tags' push-time entries
(``PUSHED#``) newest first: the ``keep`` newest matching ones (at most
``COUNT_SCAN_MAX`` entries read to find them), then the deletable ones from the
``expire_days`` cutoff down. At most ``READ_BUDGET`` entries read and
``DELETE_BUDGET`` tags deleted per pass; the cursor records where it stopped.
"""

from __future__ import annotations

import fnmatch
import re
import time
from typing import NamedTuple

from registry import inputs, keys
from registry.errors import OciError, RegistryError
from registry.http import Request, Response
from registry.log import logger
from registry.references import parse_name
from registry.storage import dynamo, metadata
from registry.storage import retention as store

PATTERN_MAX = 128  # a tag is at most 128 characters (OCI distribution spec)
_PATTERN_CHARS = re.compile(r"[A-Za-z0-9._\-*?\[\]!]+")
KEEP_MAX = 1000
DAYS_MAX = 36500  # a hundred years
DAY = 86400
PAGE = 100  # push-time entries per Query (and tag items per BatchGetItem)
COUNT_SCAN_MAX = 2000  # entries read to find the ``keep`` newest matching tags; beyond: skipped this pass, nothing deleted
READ_BUDGET = 5000  # push-time entries read per pass
DELETE_BUDGET = 500  # tags deleted per pass (4 writes each)
BODY_MAX = 4096


class PolicyInvalid(ValueError):
    """A policy field out of bounds or malformed (the message says which)."""


class Policy(NamedTuple):
    subject: str  # a repository name, or "<namespace>/*"
    keep: int | None = None
    expire_days: int | None = None
    tags: str = "*"
    untagged_days: int | None = None

    def matches(self, tag: str) -> bool:
        return fnmatch.fnmatchcase(tag, self.tags)

    @property
    def deletes_tags(self) -> bool:
        return self.keep is not None or self.expire_days is not None

    def fields(self) -> dict:
        return {"keep": self.keep, "expire_days": self.expire_days, "tags": self.tags, "untagged_days": self.untagged_days}

    def view(self) -> dict:
        return {"applies_from": self.subject, **self.fields()}

    def describe(self) -> str:
        rules = []
        if self.keep is not None:
            rules.append(f"keep the {self.keep} newest")
        if self.expire_days is not None:
            rules.append(f"keep those pushed within {self.expire_days} days")
        text = f"tags {self.tags!r}: " + (" and ".join(rules) + ", delete the rest" if rules else "no tag rule")
        if self.untagged_days is not None:
            text += f"; untagged manifests kept {self.untagged_days} days"
        return text


# --- parsing ----------------------------------------------------------------------------------


def check_pattern(pattern: str) -> str:
    """A tag glob: 1 to PATTERN_MAX of tag characters and ``* ? [ ] !``; PolicyInvalid otherwise."""
    if not isinstance(pattern, str) or not 1 <= len(pattern) <= PATTERN_MAX or not _PATTERN_CHARS.fullmatch(pattern):
        raise PolicyInvalid(
            f"tags must be a glob of 1 to {PATTERN_MAX} characters: tag characters (A-Z a-z 0-9 . _ -) and * ? [ ] !"
        )
    if pattern.count("[") != pattern.count("]"):
        raise PolicyInvalid("tags: every [ of a character set needs its ]")
    return pattern


def _count(value, name: str, low: int, high: int) -> int | None:
    """A whole number from JSON or the command line, through ``inputs.natural`` (no sign, no float, no bool)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PolicyInvalid(f"{name} must be a whole number from {low} to {high}")
    try:
        number = inputs.natural(str(value), max_digits=6)
    except inputs.NumberInvalid:
        raise PolicyInvalid(f"{name} must be a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise PolicyInvalid(f"{name} must be a whole number from {low} to {high}")
    return number


def parse_policy(subject: str, fields: dict) -> Policy | None:
    """A Policy from ``keep``, ``expire_days``, ``tags``, ``untagged_days``; None when no rule is set (clears it)."""
    unknown = set(fields) - set(store.POLICY_FIELDS)
    if unknown:
        raise PolicyInvalid(f"unknown field(s): {', '.join(sorted(unknown))[:200]} (allowed: {', '.join(store.POLICY_FIELDS)})")
    keep = _count(fields.get("keep"), "keep", 1, KEEP_MAX)
    expire = _count(fields.get("expire_days"), "expire_days", 1, DAYS_MAX)
    untagged = _count(fields.get("untagged_days"), "untagged_days", 1, DAYS_MAX)
    tags = check_pattern(fields["tags"]) if fields.get("tags") is not None else "*"
    if keep is None and expire is None and untagged is None:
        if fields.get("tags") is not None:
            raise PolicyInvalid("tags needs keep or expire_days")
        return None
    return Policy(subject, keep, expire, tags, untagged)


def _from_item(item: dict) -> Policy:
    number = lambda key: None if item.get(key) is None else int(item[key])  # noqa: E731
    return Policy(item["sk"], number("keep"), number("expire_days"), item.get("tags") or "*", number("untagged_days"))


def namespace_subject(namespace: str) -> str:
    return f"{namespace}{keys.NAMESPACE_SUFFIX}"


def check_namespace(namespace: str) -> str:
    """A namespace is a name's first component (one component, the name grammar)."""
    if "/" in namespace:
        raise PolicyInvalid("a namespace is one name component (team, not team/app)")
    parse_name(namespace)
    return namespace


# --- reading and setting ------------------------------------------------------------------------


def policies_for(names: list[str]) -> dict[str, Policy | None]:
    """The policy in force for each repository of ``names``: its own, else its namespace's (BatchGetItem per 50 names)."""
    subjects = list(dict.fromkeys(s for name in names for s in (name, namespace_subject(name.split("/", 1)[0]))))
    found = {}
    for start in range(0, len(subjects), 100):
        chunk = subjects[start : start + 100]
        found.update({s: item for s, item in zip(chunk, store.get_policies(chunk)) if item is not None})
    result = {}
    for name in names:
        item = found.get(name) or found.get(namespace_subject(name.split("/", 1)[0]))
        result[name] = _from_item(item) if item else None
    return result


def effective(name: str) -> Policy | None:
    return policies_for([name])[name]


def own(subject: str) -> Policy | None:
    item = store.get_policies([subject])[0]
    return _from_item(item) if item else None


def set_policy(subject: str, policy: Policy | None):
    store.put_policy(subject, None if policy is None else {k: v for k, v in policy.fields().items() if v is not None})


def any_policy() -> bool:
    """Whether any repository or namespace has a policy (one Query of one item)."""
    return store.any_policy()


def shortest_untagged_seconds() -> int | None:
    days = store.shortest_untagged_days()
    return None if days is None else days * DAY


# --- applying ---------------------------------------------------------------------------------------


class Deletion(NamedTuple):
    name: str
    tag: str
    digest: str
    pushed: int  # epoch s
    policy: str  # the subject it came from


class Report:
    """What applying the policies did (a plain class: a dataclass costs about 1 ms of INIT)."""

    def __init__(self, dry_run: bool):
        self.dry_run = dry_run
        self.deleted: list[Deletion] = []
        self.skipped: list[str] = []  # repositories whose keep count could not be established
        self.complete = True
        self.reads = 0


class _Stop(Exception):
    """The pass's budget or deadline is spent."""


class _Run:
    def __init__(self, dry_run: bool, now: int, deadline: float | None, read_budget: int, delete_budget: int):
        self.dry_run, self.now, self.deadline = dry_run, now, deadline
        self.read_budget, self.delete_budget = read_budget, delete_budget
        self.report = Report(dry_run)

    def _spend(self, reads: int = 0, deletes: int = 0):
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise _Stop()
        if self.report.reads + reads > self.read_budget or len(self.report.deleted) + deletes > self.delete_budget:
            raise _Stop()
        self.report.reads += reads

    def _live(self, name: str, entries: list[dict]) -> list[dict]:
        """The entries that still describe their tag (same push time), each with the tag's ``digest``; drops stale ones."""
        live = []
        for start in range(0, len(entries), PAGE):
            chunk = entries[start : start + PAGE]
            for entry, tag in zip(chunk, store.tags(name, [e["tag"] for e in chunk])):
                if tag is not None and int(tag.get("updated") or -1) == entry["when"]:
                    live.append({**entry, "digest": tag["digest"]})
                elif not self.dry_run:
                    store.drop_entry(name, entry["sk"])  # the tag moved (its new entry is elsewhere) or is gone
        return live

    def _boundary(self, name: str, policy: Policy) -> str | None:
        """The sort key of the ``keep``-th newest matching tag ("" when nothing is kept by count; None: fewer tags, or unknown)."""
        if policy.keep is None:
            return ""
        kept, below, scanned = 0, None, 0
        while True:
            self._spend(reads=PAGE)
            entries = store.pushed_entries(name, None, below, PAGE)
            scanned += len(entries)
            for entry in self._live(name, [e for e in entries if policy.matches(e["tag"])]):
                kept += 1
                if kept == policy.keep:
                    return entry["sk"]
            if len(entries) < PAGE:
                return None  # at most ``keep`` matching tags: all kept
            if scanned >= COUNT_SCAN_MAX:
                logger.warning("retention: too many tags to count", extra={"repository": name})
                self.report.skipped.append(name)
                return None
            below = entries[-1]["sk"]

    def repository(self, name: str, policy: Policy, resume_below: str | None = None) -> str | None:
        """Apply ``policy`` to ``name``. On _Stop, ``self.stopped_below`` is where a later pass resumes its deletions."""
        self.stopped_below = resume_below
        if not policy.deletes_tags:
            return None
        boundary = self._boundary(name, policy)
        if boundary is None:
            return None
        newest = None if policy.expire_days is None else self.now - policy.expire_days * DAY - 1
        below = boundary or None
        if resume_below is not None and (below is None or resume_below < below):
            below = resume_below  # entries above it were handled by the pass that stopped there
        while True:
            self.stopped_below = below
            self._spend(reads=PAGE)
            entries = store.pushed_entries(name, newest, below, PAGE)
            for entry in self._live(name, [e for e in entries if policy.matches(e["tag"])]):
                self._spend(deletes=1)
                if self.dry_run or metadata.delete_tag(name, entry["tag"], pushed=entry["when"]):
                    self.report.deleted.append(Deletion(name, entry["tag"], entry["digest"], entry["when"], policy.subject))
                self.stopped_below = entry["sk"]
            if len(entries) < PAGE:
                return None
            below = entries[-1]["sk"]


def preview(name: str, policy: Policy | None = None) -> Report:
    """What ``name``'s policy (or ``policy``) would delete now; deletes nothing. Bounded by the pass's budgets."""
    run = _Run(True, int(time.time()), None, READ_BUDGET, DELETE_BUDGET)
    policy = policy or effective(name)
    if policy is not None:
        try:
            run.repository(name, policy)
        except _Stop:
            run.report.complete = False
    return run.report


def apply_all(dry_run: bool = False, deadline: float | None = None, now: int | None = None,
              read_budget: int = READ_BUDGET, delete_budget: int = DELETE_BUDGET) -> Report:
    """The pass's retention step: every policy from the saved cursor on, within the budgets and ``deadline``.

    A dry run starts from the cursor too but neither deletes nor moves it.
    """
    run = _Run(dry_run, int(time.time()) if now is None else now, deadline, read_budget, delete_budget)
    cursor = store.get_cursor()
    position = {"policy": cursor.get("policy"), "repository": cursor.get("repository"), "below": cursor.get("below")}
    try:
        _walk(run, position)
        position = {}
    except _Stop:
        run.report.complete = False
    if not dry_run:
        store.put_cursor(position)
    return run.report


def _walk(run: _Run, position: dict):
    """Every policy from ``position`` on; ``position`` is kept up to date, so on _Stop it is where to resume."""
    after = None
    start = position.get("policy") or ""
    while True:
        run._spend()
        items = store.policies_from(start, PAGE, after)
        for item in items:
            policy = _from_item(item)
            if position.get("policy") != policy.subject:
                position.update(policy=policy.subject, repository=None, below=None)
            if policy.subject.endswith(keys.NAMESPACE_SUFFIX):
                _namespace(run, policy, position)
            else:
                _one(run, policy.subject, policy, position)
        if len(items) < PAGE:
            return
        after = items[-1]["sk"]


def _one(run: _Run, name: str, policy: Policy, position: dict):
    resume = position.get("below") if position.get("repository") == name else None
    position.update(repository=name, below=resume)
    try:
        run.repository(name, policy, resume)
    except _Stop:
        position["below"] = getattr(run, "stopped_below", None)
        raise
    position["below"] = None


def _namespace(run: _Run, policy: Policy, position: dict):
    """A namespace policy: each repository of the namespace without a policy of its own."""
    namespace = policy.subject[: -len(keys.NAMESPACE_SUFFIX)]
    start, after = position.get("repository"), None
    while True:
        run._spend()
        names = store.namespace_repositories(namespace, start, PAGE, after)
        own_policies = store.get_policies(names) if names else []
        for name, own_item in zip(names, own_policies):
            if own_item is None:
                _one(run, name, policy, position)
        if len(names) < PAGE:
            return
        after = names[-1]


# --- the management API: GET and PUT /api/v1/repositories/<name>/retention -------------------------------


def _repository(name: str):
    parse_name(name)
    if not metadata.repository_exists(name):
        raise RegistryError(OciError.NAME_UNKNOWN, f"repository {name} not known to registry", detail={"name": name})


def _view(name: str) -> dict:
    mine = own(name)
    applied = mine or effective(name)
    return {"name": name, "policy": None if mine is None else mine.fields(), "effective": None if applied is None else applied.view()}


def get(request: Request, name: str) -> Response:
    """The repository's own policy and the one in force (its own or its namespace's). Needs pull."""
    _repository(name)
    return Response.json(200, _view(name))


def put(request: Request, name: str) -> Response:
    """Set the repository's own policy (``{}`` or only nulls: clear it). Needs push, like immutable tags."""
    _repository(name)
    from registry.services.repositories import request_document

    document = request_document(request, max_depth=1, max_bytes=BODY_MAX)
    if not isinstance(document, dict):
        raise RegistryError(OciError.REQUEST_INVALID, 'the body must be a JSON object: {"keep", "expire_days", "tags", "untagged_days"}')
    try:
        policy = parse_policy(name, document)
    except PolicyInvalid as exc:
        raise RegistryError(OciError.REQUEST_INVALID, str(exc)) from None
    try:
        set_policy(name, policy)
    except dynamo.Conflict:
        raise RegistryError(OciError.TOOMANYREQUESTS, "the policy is being changed by other requests: try again", headers={"Retry-After": "1"}) from None
    return Response.json(200, _view(name))
