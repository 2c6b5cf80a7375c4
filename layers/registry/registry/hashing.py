"""Resumable digests: verify a blob that arrives over many requests without re-reading it.

An upload keeps the running SHA-256 and SHA-512 states (``rehashes``, about
100 bytes each when serialized) in its DynamoDB session item, so each chunk is
hashed once, in the request that carries it, whichever algorithm the client
names when it completes the upload.
"""

from __future__ import annotations

import rehashes

_KINDS = {"sha256": rehashes.PySha256, "sha512": rehashes.PySha512}


def new_states() -> dict[str, bytes]:
    return {algorithm: kind().serialize() for algorithm, kind in _KINDS.items()}


def update(states: dict[str, bytes], data: bytes) -> dict[str, bytes]:
    """The states after hashing ``data`` (the input is left unchanged)."""
    if not data:
        return dict(states)
    out = {}
    for algorithm, state in states.items():
        hasher = _KINDS[algorithm].deserialize(bytes(state))
        hasher.update(data)
        out[algorithm] = hasher.serialize()
    return out


def hexdigest(states: dict[str, bytes], algorithm: str) -> str:
    return _KINDS[algorithm].deserialize(bytes(states[algorithm])).finalize()


def resume(algorithm: str, state: bytes | None = None):
    """A hasher for ``algorithm`` (``update``, ``serialize``, ``finalize`` -> hex), fresh or from a saved state."""
    kind = _KINDS[algorithm]
    return kind.deserialize(bytes(state)) if state is not None else kind()
