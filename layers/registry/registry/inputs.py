"""Numbers and JSON documents taken from client input, parsed with bounds.

Every number a client sends (``n`` and ``page`` query parameters,
``Content-Length``, ``Content-Range``, rate limits, CLI counts) goes through
``natural``; every JSON document a client sends (manifests, management API
bodies, a bearer token's header) through ``json_document``. The bounds are
checked *before* Python's own parsers run, because those fail in ways that are
not ``ValueError`` or do work proportional to the input:

* ``str.isdigit()`` and ``int()`` accept non-ASCII digits (``"²".isdigit()``
  is true, ``int("٣")`` is 3), ``int()`` also accepts ``" 1"``, ``"+1"`` and
  ``"1_0"``, and refuses strings of more than 4,300 digits with a ValueError
  a caller rarely expects (Python docs, "Integer string conversion length
  limitation"). ``natural`` accepts ASCII ``[0-9]`` only, at most
  ``MAX_DIGITS`` of them (19: every count, offset or size this registry
  handles fits, and so does DynamoDB's 38-digit Number).
* ``json.loads`` recurses once per nesting level, in C, guarded by the
  interpreter's recursion limit: a document nested deeper than about 1,000
  levels raises ``RecursionError`` (not a ``ValueError``), after parsing
  everything up to that point, and at a depth that depends on how deep the
  caller's own stack already is. Anything that walks the parsed document
  recursively afterwards (boto3's ``TypeSerializer``, ``json.dumps``) has the
  same problem, and DynamoDB refuses attributes nested deeper than 32 levels
  (AWS docs, "Service, account, and table quotas in Amazon DynamoDB").
  ``json_document`` therefore measures the bracket depth outside strings
  first, in at most ``MAX_JSON_DEPTH`` linear passes done by C code
  (``re.sub``, ``bytes.translate``), and only parses a document within that
  depth: no real manifest nests deeper than 5 levels.
"""

from __future__ import annotations

import json
import re

# At most this many digits: 10**19 - 1 is far above any size, offset or count here.
MAX_DIGITS = 19
_NATURAL = re.compile(rb"[0-9]{1,%d}" % MAX_DIGITS)

# JSON nesting allowed in client documents: an OCI index's annotations sit at
# depth 3; 32 is DynamoDB's own nesting limit for a stored attribute.
MAX_JSON_DEPTH = 32

# A JSON string literal (escapes included): its brackets do not nest anything.
# An unterminated string runs to the end, and a lone backslash is taken as it is,
# so each byte is looked at once (no rescans from later quotes: linear time).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.?)*+(?:"|\Z)', re.DOTALL)
_BRACKETS_ONLY = bytes(range(256)).translate(None, b"[]{}")
_INNERMOST_PAIR = re.compile(rb"\[\]|\{\}")


class NumberInvalid(ValueError):
    """Not a natural number in ASCII digits, or more than ``MAX_DIGITS`` of them."""


# Size units (IEC binary and SI decimal), matched case-insensitively: "10GiB", "500 MB", "1.5TiB".
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}
_SIZE = re.compile(r"([0-9]{1,%d})(?:\.([0-9]{1,6}))? ?([A-Za-z]{0,3})" % MAX_DIGITS)


def byte_size(text: str) -> int:
    """A size such as ``10GiB``, ``1.5 TB`` or ``1048576`` in bytes (rounded down); NumberInvalid otherwise.

    The digits go through ``natural`` (ASCII only, bounded); at most 6 decimals;
    units B, kB, MB, GB, TB (powers of 1000) and KiB, MiB, GiB, TiB (of 1024),
    in any case. The result is at most ``10**MAX_DIGITS - 1``.
    """
    match = _SIZE.fullmatch(text or "") if isinstance(text, str) and text.isascii() else None
    if match is None or match.group(3).lower() not in _UNITS:
        raise NumberInvalid("expected a size such as 10GiB, 500MB or a number of bytes")
    whole, fraction, unit = natural(match.group(1)), match.group(2) or "", _UNITS[match.group(3).lower()]
    value = whole * unit + (natural(fraction) * unit // 10 ** len(fraction) if fraction else 0)
    if value >= 10**MAX_DIGITS:
        raise NumberInvalid(f"a size is below 10**{MAX_DIGITS} bytes")
    return value


def format_bytes(size: int) -> str:
    """``size`` bytes for people: ``512 B``, ``1.5 KiB``, ``10.0 GiB`` (powers of 1024, one decimal)."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(value) < 1024 or unit == "PiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"


class DocumentInvalid(ValueError):
    """Not JSON, or JSON nested deeper than allowed."""


def natural(text: str | bytes | None, max_digits: int = MAX_DIGITS) -> int:
    """``text`` as a non-negative int: ASCII ``[0-9]{1,max_digits}`` exactly, else NumberInvalid.

    No sign, no spaces, no underscores, no non-ASCII digits (``²``, ``٣``).
    """
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    if raw is None or len(raw) > max_digits or not _NATURAL.fullmatch(raw):
        raise NumberInvalid(f"expected at most {max_digits} ASCII digits")
    return int(raw)


def nesting_within(data: bytes, max_depth: int) -> bool:
    """Whether ``data``'s brackets outside JSON strings nest at most ``max_depth`` deep.

    Strings are cut out, everything but brackets dropped, then the innermost
    ``[]``/``{}`` pairs removed once per level: each pass is one C-speed scan,
    and there are at most ``max_depth`` of them. Brackets that do not pair up
    (not JSON anyway) also answer False.
    """
    brackets = _JSON_STRING.sub(b"", data).translate(None, _BRACKETS_ONLY)
    for _ in range(max_depth):
        if not brackets:
            return True
        shorter = _INNERMOST_PAIR.sub(b"", brackets)
        if len(shorter) == len(brackets):
            return False
        brackets = shorter
    return not brackets


def json_document(data: bytes | str, max_depth: int = MAX_JSON_DEPTH):
    """``json.loads(data)`` for client input: DocumentInvalid if not JSON or nested over ``max_depth``.

    The size bound is the caller's (a manifest's 4 MiB, a request body's own cap):
    the depth scan and the parse are both linear in it.
    """
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else bytes(data)
    if not nesting_within(raw, max_depth):
        raise DocumentInvalid(f"not JSON, or JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise DocumentInvalid("not valid JSON") from None
