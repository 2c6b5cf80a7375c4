"""Users, personal access tokens, refresh tokens and who may do what to a repository.

Secrets are never stored: passwords as salted scrypt hashes (memory-hard),
access and refresh tokens (256 random bits each) as SHA-256 hashes, all
compared in constant time. Failed sign-ins are counted per source address,
and password failures also per (account, source) and per account, under keyed
hashes (``registry.auth.pseudonym``), never the names or addresses themselves;
past a threshold sign-ins are refused for a while (never a permanent
lock-out). Only passwords are guessable, so only password failures count
against an account, and they never lock its access or refresh tokens.

Who may do what (``allowed_actions``):

* anyone, signed in or not: ``pull`` on a public repository;
* a user: everything on their own namespace ``<user>/…``; what an owner
  granted them (``pull``, or ``push`` which includes pull) elsewhere;
* an admin: everything everywhere (for example ``library/…``);
* an access token limits its user further to its scope: ``read`` (pull),
  ``read-write`` (pull, push) or ``read-write-delete``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import time
from typing import NamedTuple

from registry.auth.pseudonym import pseudonym
from registry.config import settings
from registry.storage import catalog_index, principals
from registry.storage.dynamo import Conflict

USER_PATTERN = re.compile(r"[a-z0-9]+(?:[._-][a-z0-9]+)*")
USER_MAX = 30
PASSWORD_MIN = 8

# scrypt at n=2**14, r=8: 16 MiB and about 50 ms per check on one core.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}

ACCESS_TOKEN_PREFIX = "rpat_"
REFRESH_TOKEN_PREFIX = "rrt_"
SCOPES = {"read": ("pull",), "read-write": ("pull", "push"), "read-write-delete": ("pull", "push", "delete")}
ALL_ACTIONS = ("pull", "push", "delete")
GRANTS = {"pull": ("pull",), "push": ("pull", "push")}
VISIBILITIES = ("public", "private")

# Failed sign-ins are counted in a window that opens at the first failure.
THROTTLE_WINDOW = 15 * 60
# Password failures for one account from one source (address, IPv6 /64): one guesser's budget.
THROTTLE_ACCOUNT_SOURCE = 10
# Failures of any kind from one source (any account, any credential, malformed user names).
THROTTLE_SOURCE = 50
# Password failures for one account from all sources: a ceiling on distributed guessing that one
# source (10 at most) cannot reach; reaching it locks the password only, never the account's tokens.
THROTTLE_ACCOUNT = 100
REFRESH_LIFETIME = 90 * 24 * 3600


class AccountError(Exception):
    """A request the admin CLI or the token service refuses, with a message for the user."""


class SignInFailed(Exception):
    """Wrong credentials, unknown user, disabled user, or a revoked or expired token."""


class Throttled(Exception):
    """Too many failed sign-ins from this account or address; try again after ``retry_after`` s."""

    def __init__(self, retry_after: int):
        super().__init__(f"too many failed sign-ins; retry in {retry_after} s")
        self.retry_after = retry_after


class Principal(NamedTuple):
    """Who is asking: ``user`` is "" for an anonymous caller."""

    user: str = ""
    admin: bool = False
    # What the credential itself allows (an access token's scope); None: no limit.
    token_actions: tuple[str, ...] | None = None
    token_id: str | None = None
    pull_limit: str | None = None  # an override of the pull rate limit (registry.ratelimit)

    @property
    def anonymous(self) -> bool:
        return not self.user


ANONYMOUS = Principal()


# --- secrets ---------------------------------------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    b64 = base64.b64encode
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${b64(salt).decode()}${b64(digest).decode()}"


_DUMMY_HASH = "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    actual = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected))
    return hmac.compare_digest(actual, expected)


def _secret_hash(secret: str) -> str:
    # 256-bit random secrets need no slow hash: SHA-256 cannot be brute-forced back.
    return hashlib.sha256(secret.encode()).hexdigest()


def _new_secret(prefix: str) -> tuple[str, str, str]:
    """(token id, secret, the token string users hold: prefix + id + "_" + secret)."""
    token_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    return token_id, secret, f"{prefix}{token_id}_{secret}"


def _split_token(token: str, prefix: str) -> tuple[str, str] | None:
    if not token.startswith(prefix):
        return None
    token_id, _, secret = token[len(prefix) :].partition("_")
    if not re.fullmatch(r"[0-9a-f]{12}", token_id) or not secret:
        return None
    return token_id, secret


# --- users -----------------------------------------------------------------------------


def is_user_name(user: str) -> bool:
    """Whether ``user`` can be a user name: 2 to USER_MAX characters of USER_PATTERN (lower case)."""
    return 2 <= len(user) <= USER_MAX and USER_PATTERN.fullmatch(user) is not None


def sign_in_name(typed: str) -> str | None:
    """The user a sign-in names: ``typed`` folded to lower case (names are namespaces, so
    ``docker login -u Admin`` is admin), or None when it cannot be a user name. Only ASCII is
    folded: ``str.lower`` maps some non-ASCII letters to ASCII ones (KELVIN SIGN to k)."""
    folded = typed.lower() if typed.isascii() else typed
    return folded if is_user_name(folded) else None


def validate_user_name(user: str) -> str:
    if not is_user_name(user):
        raise AccountError(f"user names are 2 to {USER_MAX} characters of a-z, 0-9 and . _ - between them: {user!r}")
    return user


def _validate_password(password: str):
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"passwords need at least {PASSWORD_MIN} characters")


def create_user(user: str, password: str, admin: bool = False):
    validate_user_name(user)
    _validate_password(password)
    try:
        principals.create_user(user, {"password": hash_password(password), "admin": admin, "disabled": False})
    except Conflict:
        raise AccountError(f"user {user} exists already") from None


def set_password(user: str, password: str):
    """New password; refresh tokens issued before it stop working (a leaked password is cut off)."""
    _validate_password(password)
    _update(user, password=hash_password(password), password_changed_ms=int(time.time() * 1000))


def set_disabled(user: str, disabled: bool):
    _update(user, disabled=disabled)


def set_admin(user: str, admin: bool):
    _update(user, admin=admin)


def set_pull_limit(user: str, limit: str | None):
    """Override the user's pull rate limit: ``COUNT;w=SECONDS``, ``unlimited``, or None for the default."""
    if limit is not None:
        from registry import ratelimit

        try:
            ratelimit.parse(limit)
        except ValueError as exc:
            raise AccountError(str(exc)) from None
    if principals.get_user(user) is None:
        raise AccountError(f"no user {user}")
    principals.set_user_pull_limit(user, limit)


def _update(user: str, **changes):
    try:
        principals.update_user(user, **changes)
    except Conflict:
        raise AccountError(f"no user {user}") from None


def namespace_repositories(user: str) -> list[str]:
    """Repositories (pushed to) in ``user``'s namespace ``<user>/…``."""
    return [item["sk"] for item in catalog_index.namespace_items(user) if "created" in item]


def delete_user(user: str, force: bool = False) -> dict:
    """Delete a user so that nothing of theirs passes to a later user of the same name.

    Removes their grants (from each repository and from the catalog index),
    their access and refresh tokens, and the catalog items of their namespace
    ``<user>/…``. A namespace that still holds repositories is refused unless
    ``force``, which deletes those repositories (``catalog_index.delete_repository``:
    tags, manifests, links, index and search entries; blob bytes stay for
    garbage collection). Grants go first, the user item next (no new grant
    can name the user after that), then the grants again (any made
    meanwhile) and the rest, so a run that stops half-way can be repeated.
    Returns {"repositories": names deleted, "grants": repositories whose grant was removed}.
    """
    if principals.get_user(user) is None:
        raise AccountError(f"no user {user}")
    items = catalog_index.namespace_items(user)
    pushed = [item["sk"] for item in items if "created" in item]
    if pushed and not force:
        shown = ", ".join(pushed[:5]) + (f" and {len(pushed) - 5} more" if len(pushed) > 5 else "")
        raise AccountError(
            f"the namespace {user}/ holds {len(pushed)} repositories ({shown}): a user created later with this name "
            "would own them; delete them first, or pass --force to delete them with the user"
        )
    revoked = _drop_grants(user)
    principals.delete_user_item(user)
    revoked += _drop_grants(user)
    for item in items:
        catalog_index.delete_repository(item["sk"], item)
    principals.delete_user(user)
    return {"repositories": pushed, "grants": sorted(set(revoked))}


def _drop_grants(user: str) -> list[str]:
    names = catalog_index.user_grants(user)
    for name in names:
        principals.set_repository_access(name, grant=(user, None))
    return names


def list_users() -> list[dict]:
    return [
        {"user": item["pk"].split("#", 1)[1], "admin": bool(item.get("admin")), "disabled": bool(item.get("disabled"))}
        for item in sorted(principals.list_users(), key=lambda i: i["pk"])
    ]


# --- access tokens -----------------------------------------------------------------------


def create_access_token(user: str, scope: str = "read-write", description: str = "", expires_days: int | None = None) -> dict:
    """Issue a personal access token; the returned ``token`` is shown once and never stored."""
    if scope not in SCOPES:
        raise AccountError(f"scope must be one of {', '.join(SCOPES)}")
    if expires_days is not None and int(expires_days) < 1:
        raise AccountError("an access token expires after at least 1 day (or never: leave the expiry out)")
    if principals.get_user(user) is None:
        raise AccountError(f"no user {user}")
    token_id, secret, token = _new_secret(ACCESS_TOKEN_PREFIX)
    attributes = {"secret_sha256": _secret_hash(secret), "scope": scope, "description": description, "created": int(time.time()), "revoked": False}
    if expires_days is not None:
        attributes["expires_at"] = int(time.time()) + int(expires_days) * 86400
    principals.put_access_token(user, token_id, attributes)
    return {"id": token_id, "token": token, "scope": scope, "expires_at": attributes.get("expires_at")}


def revoke_access_token(user: str, token_id: str):
    if not principals.revoke_access_token(user, token_id):
        raise AccountError(f"user {user} has no access token {token_id}")


def list_access_tokens(user: str) -> list[dict]:
    return [
        {
            "id": item["sk"].split("#", 1)[1],
            "scope": item["scope"],
            "description": item.get("description", ""),
            "created": int(item["created"]),
            "expires_at": int(item["expires_at"]) if item.get("expires_at") else None,
            "revoked": bool(item.get("revoked")),
        }
        for item in principals.list_access_tokens(user)
    ]


def _live_access_token(item: dict | None, secret: str) -> dict | None:
    """The access token item when it is live and ``secret`` is its secret, else None."""
    if item is None or item.get("revoked"):
        return None
    if item.get("expires_at") and item["expires_at"] < time.time():
        return None
    if not hmac.compare_digest(item["secret_sha256"], _secret_hash(secret)):
        return None
    return item


# --- signing in ----------------------------------------------------------------------------


def source_key(address: str) -> str:
    """The throttle key of a source address: IPv6 callers are counted per /64."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address or "unknown"
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _limit(kind: str) -> int:
    return {"source": THROTTLE_SOURCE, "account-source": THROTTLE_ACCOUNT_SOURCE, "account": THROTTLE_ACCOUNT}[kind]


def _throttles(user: str | None, source: str) -> list[tuple[str, str]]:
    """(kind, keyed hash) of the counters a sign-in is checked against and charged to.

    Always the source; with ``user`` (a password sign-in of a valid name) also
    (account, source) and account. Tokens have 256 random bits: guessing them
    is hopeless, so their failures count against the source only and no
    account counter ever refuses them.
    """
    throttles = [("source", pseudonym("source", source))]
    if user is not None:
        throttles += [("account-source", pseudonym("account-source", user, source)), ("account", pseudonym("account", user))]
    return throttles


def _check_throttles(throttles: list[tuple[str, str]], windows: list[tuple[int, int]]):
    """Throttled (with the longest wait) when any counter has reached its limit."""
    waits = [left for (kind, _), (failures, left) in zip(throttles, windows) if failures >= _limit(kind)]
    if waits:
        raise Throttled(max(waits))


def _fail(throttles: list[tuple[str, str]]):
    for kind, key in throttles:
        principals.count_failure(kind, key, THROTTLE_WINDOW)
    raise SignInFailed()


def sign_in(user: str, secret: str, source_address: str) -> Principal:
    """Check a user name (folded to lower case) with a password or a personal access token.

    A name that cannot be a user's is refused before it touches storage (it
    may be a secret typed into the wrong field). Reads in one BatchGetItem;
    raises ``Throttled`` before checking anything when a counter is over its
    limit, ``SignInFailed`` (and counts the failure) otherwise.
    """
    source = source_key(source_address)
    name = sign_in_name(user)
    token = _split_token(secret, ACCESS_TOKEN_PREFIX)
    throttles = _throttles(name if token is None else None, source)
    if name is None:
        _check_throttles(throttles, principals.sign_in_state(throttles)["windows"])
        _fail(throttles)
    state = principals.sign_in_state(throttles, name, access_token=token[0] if token else None)
    _check_throttles(throttles, state["windows"])
    record = state["user"]
    if token is not None:
        item = _live_access_token(state["access_token"], token[1])
        if record is None or record.get("disabled") or item is None:
            _fail(throttles)
        return Principal(name, bool(record.get("admin")), SCOPES[item["scope"]], token[0], record.get("pull_limit"))
    # Unknown and disabled users cost one scrypt too, so timing does not tell which names exist.
    password_ok = check_password(secret, (record or {}).get("password") or _DUMMY_HASH)
    if record is None or record.get("disabled") or not password_ok:
        _fail(throttles)
    return Principal(name, bool(record.get("admin")), pull_limit=record.get("pull_limit"))


def issue_refresh_token(principal: Principal) -> str:
    token_id, secret, token = _new_secret(REFRESH_TOKEN_PREFIX)
    principals.put_refresh_token(
        principal.user,
        token_id,
        {
            "secret_sha256": _secret_hash(secret),
            "token_id": principal.token_id,
            "created_ms": int(time.time() * 1000),
            "expires_at": int(time.time()) + REFRESH_LIFETIME,
        },
    )
    # The user name travels with the token so it can be looked up without a scan.
    return f"{token}.{principal.user}"


def redeem_refresh_token(refresh_token: str, source_address: str) -> Principal:
    """The principal a refresh token stands for, checked again (user, access token) as at sign-in.

    Its failures count against the source only (the token has 256 random
    bits), so no number of wrong passwords locks a refresh token out.
    """
    raw, _, user = refresh_token.rpartition(".")
    parts = _split_token(raw, REFRESH_TOKEN_PREFIX)
    well_formed = parts is not None and is_user_name(user)  # issued lower case: not folded
    throttles = _throttles(None, source_key(source_address))
    state = principals.sign_in_state(throttles, user if well_formed else None, refresh_token=parts[0] if well_formed else None)
    _check_throttles(throttles, state["windows"])
    if not well_formed:
        _fail(throttles)
    item, record = state["refresh_token"], state["user"]
    valid = (
        item is not None
        and item["expires_at"] > time.time()
        and hmac.compare_digest(item["secret_sha256"], _secret_hash(parts[1]))
        and record is not None
        and not record.get("disabled")
        and item.get("created_ms", 0) > record.get("password_changed_ms", 0)
    )
    if not valid:
        _fail(throttles)
    token_actions = None
    if item.get("token_id"):
        access = principals.get_access_token(user, item["token_id"])
        live = access is not None and not access.get("revoked") and not (access.get("expires_at") and access["expires_at"] < time.time())
        if not live:
            _fail(throttles)
        token_actions = SCOPES[access["scope"]]
    return Principal(user, bool(record.get("admin")), token_actions, item.get("token_id"), record.get("pull_limit"))


# --- repository access -------------------------------------------------------------------------


def visibility_of(repository: dict | None) -> str:
    if repository and repository.get("visibility") in VISIBILITIES:
        return repository["visibility"]
    return settings().default_visibility


def allowed_actions(principal: Principal, name: str, repository: dict | None) -> set[str]:
    """What ``principal`` may do on repository ``name`` (its catalog item, or None)."""
    allowed: set[str] = set()
    if visibility_of(repository) == "public":
        allowed.add("pull")
    if not principal.anonymous:
        if principal.admin or name.split("/", 1)[0] == principal.user:
            allowed.update(ALL_ACTIONS)
        grant = ((repository or {}).get("grants") or {}).get(principal.user)
        allowed.update(GRANTS.get(grant, ()))
    if principal.token_actions is not None:
        allowed &= set(principal.token_actions)
    return allowed


def set_visibility(name: str, visibility: str):
    if visibility not in VISIBILITIES:
        raise AccountError("visibility is public or private")
    principals.set_repository_access(name, visibility=visibility)


def grant(name: str, user: str, action: str):
    """Let ``user`` pull or push ``name``; at most ``catalog_index.GRANTS_MAX`` users per repository."""
    if action not in GRANTS:
        raise AccountError(f"a grant is one of {', '.join(GRANTS)}")
    if principals.get_user(user) is None:
        raise AccountError(f"no user {user}")
    grants = (principals.repository(name) or {}).get("grants") or {}
    if user not in grants and len(grants) >= catalog_index.GRANTS_MAX:
        raise AccountError(f"{name} has {len(grants)} grants, the most a repository may hold; revoke one first")
    try:
        principals.set_repository_access(name, grant=(user, action))
    except principals.NoSuchUser:
        raise AccountError(f"no user {user}") from None


def revoke(name: str, user: str):
    grants = (principals.repository(name) or {}).get("grants") or {}
    if user not in grants:
        raise AccountError(f"{user} has no grant on {name}")
    principals.set_repository_access(name, grant=(user, None))
