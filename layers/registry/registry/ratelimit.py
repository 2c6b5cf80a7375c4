"""Pull rate limits like Docker Hub's: ``ratelimit-limit: 100;w=21600``.

A GET of an image manifest counts as a pull; a HEAD does not, nor does a GET
of an index (Docker Hub counts "one pull for each architecture": the platform
manifests a client then fetches are the pulls). Anonymous callers are counted
per source address (IPv6 per /64), signed-in callers per account, with their
own limits; an account may carry an override (a number, or ``unlimited``:
then no headers at all, as on Docker Hub).

Windows are fixed: counter ``RATE#<who>`` / ``<window start>`` with TTL. A pull
is counted by one conditional UpdateItem (``ADD pulls 1`` only while
``pulls < limit``), so the count is exact under any concurrency and at most
one write per counted pull. Error bound of fixed windows: a caller may make
up to 2 × limit pulls across the boundary of two windows (limit at the end of
one, limit at the start of the next), never more than limit within one.
"""

from __future__ import annotations

import re
import time
from typing import NamedTuple

from registry import inputs
from registry.auth import guard
from registry.config import settings
from registry.errors import OciError, RegistryError
from registry.storage import ratelimits

_LIMIT = re.compile(r"([0-9]+);w=([0-9]+)")
# A count or a window of at most 9 digits (a billion pulls, 31 years): no more is meaningful.
COUNT_DIGITS = 9


class Limit(NamedTuple):
    count: int
    window: int

    def __str__(self) -> str:
        return f"{self.count};w={self.window}"


def parse(text: str | None) -> Limit | None:
    """``COUNT;w=SECONDS`` -> Limit; ``unlimited`` -> None. Raises ValueError otherwise."""
    text = (text or "").strip()
    if text == "unlimited":
        return None
    found = _LIMIT.fullmatch(text)
    try:
        count, window = (inputs.natural(found.group(1), COUNT_DIGITS), inputs.natural(found.group(2), COUNT_DIGITS)) if found else (0, 0)
    except inputs.NumberInvalid:
        count, window = 0, 0
    if window <= 0:
        raise ValueError(f"a rate limit is COUNT;w=SECONDS (each at most {COUNT_DIGITS} digits) or unlimited, not {text[:60]!r}")
    return Limit(count, window)


class Meter(NamedTuple):
    """One caller's limit and counter for the current window."""

    limit: Limit
    who: str  # counter key: user:<name> or ip:<address or /64>
    source: str  # docker-ratelimit-source: the account name or the address
    window_start: int
    now: float

    @property
    def retry_after(self) -> int:
        return max(1, int(self.window_start + self.limit.window - self.now))

    def headers(self, used: int) -> dict:
        remaining = max(self.limit.count - used, 0)
        return {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": f"{remaining};w={self.limit.window}",
            "docker-ratelimit-source": self.source,
        }

    def key(self) -> dict:
        return ratelimits.counter_key(self.who, self.window_start)

    def count(self) -> int:
        """Count one pull; the pulls used so far in this window. Raises 429 at the limit."""
        used = ratelimits.increment(self.key(), self.limit.count, self.window_start + self.limit.window)
        if used is None:
            raise RegistryError(
                OciError.TOOMANYREQUESTS,
                f"You have reached your pull rate limit of {self.limit.count} pulls per {self.limit.window} seconds. "
                f"Try again in {self.retry_after} seconds" + (", or sign in for a higher limit." if self.who.startswith("ip:") else "."),
                headers={**self.headers(self.limit.count), "Retry-After": str(self.retry_after)},
            )
        return used

    def refund(self):
        """Take back a counted GET that turned out not to be a pull (an index, or nothing found)."""
        ratelimits.decrement(self.key())


def meter(request) -> Meter | None:
    """The caller's meter, or None for an unlimited caller."""
    caller = request.caller
    user = getattr(caller, "user", "") or ""
    if user:
        override = getattr(caller, "rate_limit", None)
        limit = parse(override) if override else parse(settings().rate_limit_authenticated)
        who, source = f"user:{user}", user
    else:
        # Imported here: only an anonymous caller needs it, and the sign-in module it lives in
        # costs the manifest function's cold start about 5 ms (docs/performance.md, section 3).
        from registry import accounts

        limit = parse(settings().rate_limit_anonymous)
        source = accounts.source_key(request.source_ip)
        who = f"ip:{source}"
    if limit is None:
        return None
    now = clock()
    return Meter(limit, who, source, int(now) - int(now) % limit.window, now)


def preview_headers(request) -> dict:
    """The caller's rate-limit headers without counting a pull; {} for an unlimited caller
    or a token that does not verify.

    Docker Hub shows them on any ``/v2/`` answer, which its documentation uses
    to check a budget without spending it (``curl --head -H "Authorization:
    Bearer $TOKEN" https://registry-1.docker.io/v2/ratelimitpreview/test/manifests/latest``).
    Costs one GetItem (the counter).
    """
    caller = guard.identify(request)
    if caller is None:
        return {}
    request.caller = caller
    found = meter(request)
    if found is None:
        return {}
    return found.headers(ratelimits.used(ratelimits.read(found.key())))


def clock() -> float:
    return time.time()
