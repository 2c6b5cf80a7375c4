"""The token scope grammar (distribution's ``scope.md``): ``type[(class)]:name:actions``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from registry.references import NAME_PATTERN

_NAME = re.compile(NAME_PATTERN)


@dataclass(frozen=True)
class Scope:
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
    """Scopes from ``scope`` parameters (GET repeats the parameter, POST separates with spaces)."""
    found = []
    for value in values:
        for text in value.split():
            scope = parse(text)
            if scope is not None:
                found.append(scope)
    return found
