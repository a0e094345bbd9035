"""Trace and span ids from a fast, fork-safe generator.

Why not `random` or `uuid4`: `random` costs about 2 ms to import on a small
Lambda (it pulls in hashlib) and `uuid4` reads the OS for every id. The C
Mersenne Twister behind `random` is usable on its own: seeded once from
`os.urandom`, it draws 64 bits in about 50 ns.
"""

from __future__ import annotations

import os

try:
    from _random import Random as _Random
except ImportError:  # pragma: no cover - other interpreters
    from random import Random as _Random  # type: ignore[assignment]

__all__ = ["new_span_id", "new_trace_id", "random_bits", "reseed"]

_rng = _Random()
_bits = _rng.getrandbits
random_bits = _bits  # `random_bits(k)`: k random bits, possibly 0 (callers check)


def reseed() -> None:
    """Seed from the OS; called at import and in a forked child."""
    _rng.seed(int.from_bytes(os.urandom(32), "big"))


def new_trace_id() -> int:
    """A random 128-bit trace id, never 0."""
    while True:
        value = _bits(128)
        if value:
            return value


def new_span_id() -> int:
    """A random 64-bit span id, never 0."""
    while True:
        value = _bits(64)
        if value:
            return value


reseed()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=reseed)
