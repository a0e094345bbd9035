"""What only a configured `Redactor` needs: its rule tables checked and compiled, and the HMAC.

Split from `redaction` because the default redactor (the credential key names and
detectors, no table, no hash) needs none of it: a cold start with default settings never
loads this module. A detector or key table (``NEXS_REDACTION_DETECTORS``,
``NEXS_REDACTION_KEYS`` or the constructor's arguments) or a hash key does.

The ``hash`` action replaces a value with ``hmac:<16 hex>``: HMAC-SHA256 keyed by
``NEXS_REDACTION_HASH_KEY`` or by a key drawn per process, so equal values stay
joinable without being readable.
"""

from __future__ import annotations

from . import _stats as stats
from .config import ConfigError
from .redaction import ACTIONS, CREDENTIALS, OPT_IN
from .redaction_keys import glob

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from re import Pattern

__all__ = ["compile_rules", "hasher"]


def compile_rules(
    chosen: dict[str, str],
    detectors: Mapping[str, str],
    keys: Mapping[str, str],
    hash_key: bytes | None,
) -> list[tuple[Pattern[str], str]]:
    """Apply `detectors` to `chosen` (detector name -> action) in place; the compiled key rules.

    Raises:
        ConfigError: for an unknown detector or action, an empty key pattern, or a
            hash key under 16 bytes (checked in that order).
    """
    for name, action in detectors.items():
        names = ("ipv4", "ipv6") if name == "ip" else (name,)
        for one in names:
            if one not in CREDENTIALS and one not in OPT_IN:
                raise ConfigError(f"unknown detector {name!r}; known: {', '.join(CREDENTIALS + OPT_IN)}, ip")
            if action == "off":
                chosen.pop(one, None)
            elif action in ("redact", "hash", "drop"):
                chosen[one] = action
            else:
                raise ConfigError(f"detector {name!r}: action {action!r} is not redact, hash, drop or off")
    key_rules: list[tuple[Pattern[str], str]] = []
    for pattern, action in keys.items():
        if action not in ACTIONS:
            raise ConfigError(f"key rule {pattern!r}: action {action!r} is not one of {', '.join(ACTIONS)}")
        if not pattern:
            raise ConfigError("key rule: empty pattern")
        key_rules.append((glob(pattern), action))
    if hash_key is not None and len(hash_key) < 16:
        raise ConfigError("hash_key must be at least 16 bytes")
    return key_rules


def hasher(hash_key: bytes | None) -> Callable[[str], str]:
    """The ``hash`` action: text -> ``hmac:<16 hex>``, keyed by `hash_key` (default: 32 random bytes)."""
    # hmac pulls in OpenSSL (~8 ms on a small Lambda): loaded only when a rule hashes.
    import hmac
    import os

    key = os.urandom(32) if hash_key is None else hash_key
    digest = hmac.digest

    def hash_text(text: str) -> str:
        mac = digest(key, text.encode("utf-8", "replace"), "sha256")
        stats.incr("redaction_hashed")
        return "hmac:" + mac[:8].hex()

    return hash_text
