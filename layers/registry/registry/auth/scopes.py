"""The token scope grammar (distribution's ``scope.md``): ``type[(class)]:name:actions``.

A token request names at most ``MAX_SCOPES`` distinct resources (after
merging repeats of one resource): each is one key of the single
``BatchGetItem`` the token service reads access with, and one entry of the
token's ``access`` claim, which must stay small enough for an
``Authorization`` header (see ``registry.auth.tokens.MAX_TOKEN_BYTES``).
docker asks for 1 or 2 scopes per token, containerd and skopeo a few.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from registry.references import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)

# Distinct resources (type, name) per token request.
MAX_SCOPES = 10


class TooManyScopes(ValueError):
    """More than MAX_SCOPES distinct resources in one token request."""


class Scope(NamedTuple):
    type: str  # repository | registry
    name: str  # a repository name, or "catalog"
    actions: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(self.actions)}"

    def claim(self) -> dict:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


def parse(text: str) -> Scope | None:
    """One scope, or None when it is not one we serve (ignored, as the spec allows)."""
    kind, _, rest = text.partition(":")
    name, _, actions = rest.rpartition(":")
    kind = re.sub(r"\(.*\)$", "", kind)  # a resource class, e.g. repository(plugin), is ignored
    wanted = tuple(dict.fromkeys(a for a in actions.split(",") if a))
    if not wanted:
        return None
    if kind == "repository" and _NAME.fullmatch(name) and len(name) <= 255:
        return Scope("repository", name, wanted)
    if kind == "registry" and name == "catalog":
        return Scope("registry", "catalog", wanted)
    return None


def parse_all(values: list[str]) -> list[Scope]:
    """Scopes from ``scope`` parameters (GET repeats the parameter, POST separates with spaces).

    Scopes for the same resource are merged into one (their actions united, in
    order of first mention). Raises TooManyScopes past MAX_SCOPES resources.
    """
    merged: dict[tuple[str, str], dict[str, None]] = {}
    for value in values:
        for text in value.split():
            scope = parse(text)
            if scope is None:
                continue
            actions = merged.setdefault((scope.type, scope.name), {})
            if len(merged) > MAX_SCOPES:
                raise TooManyScopes(f"a token request may name at most {MAX_SCOPES} distinct repositories or resources")
            actions.update(dict.fromkeys(scope.actions))
    return [Scope(kind, name, tuple(actions)) for (kind, name), actions in merged.items()]
