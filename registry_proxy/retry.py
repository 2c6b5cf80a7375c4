"""Capped exponential backoff with full jitter, for part uploads.

The delay before try ``n`` (n >= 1 being the first retry) is a uniform random number in
``[0, min(cap, base * 2**n))``: the "Full Jitter" strategy AWS recommends for calls to its services
(AWS Architecture Blog, "Exponential Backoff And Jitter", 2015; AWS SDKs' standard retry mode,
https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html), which spreads retries of
parallel parts so they do not hit S3 in lock-step.
"""

from __future__ import annotations

import random

# HTTP statuses worth another try: S3's throttling and transient server errors
# (S3 "Error responses": 500 InternalError, 503 SlowDown) and request timeouts.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def backoff(retry: int, base: float = 0.25, cap: float = 8.0, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number *retry* (1, 2, ...): uniform in [0, min(cap, base * 2**retry))."""
    ceiling = min(cap, base * (2 ** retry))
    return (rng or random).uniform(0, ceiling)


def retryable(status: int) -> bool:
    """Whether an HTTP *status* from S3 means the same request may succeed later."""
    return status in RETRYABLE_STATUSES
