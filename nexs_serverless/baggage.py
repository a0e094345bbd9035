"""W3C baggage: name/value pairs that travel with the trace to every downstream call.

    from nexs_serverless import baggage

    baggage.set("tenant.id", "acme")     # sent with every outgoing call from here on
    baggage.get("tenant.id")             # -> "acme", also on the receiving side

Entries live in a context variable, so threads started with `wrap` and
``await``-ed tasks see the baggage of the code that started them, and an
invocation's baggage (read from its trigger) is gone when it returns. The
``baggage`` propagator (in ``OTEL_PROPAGATORS`` by default) writes them on the
way out, within the W3C Baggage limits (180 entries, 8192 bytes; entries that
do not fit are left out whole and counted as ``baggage_dropped``).

Values are any text (percent-encoded on the wire); names must be HTTP tokens
(RFC 9110 section 5.6.2), because the header cannot carry anything else.
"""

from __future__ import annotations

from _contextvars import ContextVar

from .config import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from contextvars import Token

__all__ = ["clear", "get", "get_all", "remove", "set"]

Entries = dict[str, tuple[str, str]]  # name -> (value, metadata/properties)

_EMPTY: Entries = {}
_entries: ContextVar[Entries] = ContextVar("nexs_baggage", default=_EMPTY)
_TCHAR = frozenset("!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def is_token(name: object) -> bool:
    """Whether `name` is a non-empty RFC 9110 token (what a baggage key must be)."""
    return type(name) is str and bool(name) and all(char in _TCHAR for char in name)


def get(name: str) -> str | None:
    """The value of baggage entry `name` in the current context, or None (also for a non-str name)."""
    if type(name) is not str:
        return None
    entry = _entries.get().get(name)
    return None if entry is None else entry[0]


def get_all() -> dict[str, str]:
    """Every baggage entry of the current context, as ``{name: value}``."""
    return {name: value for name, (value, _meta) in _entries.get().items()}


def set(name: str, value: str, *, metadata: str = "") -> None:
    """Add or replace entry `name` for the rest of the current context.

    Args:
        name: an HTTP token (letters, digits and ``!#$%&'*+-.^_`|~``).
        value: any text (a lone surrogate, which UTF-8 cannot carry, becomes U+FFFD).
        metadata: W3C baggage properties, sent after the value (``"ttl=30"``).

    Raises:
        ConfigError: when `name` is not a token or `value`/`metadata` is not text.
    """
    if not is_token(name):
        raise ConfigError(f"baggage name must be an HTTP token, got {name!r}")
    if type(value) is not str or type(metadata) is not str:
        raise ConfigError("baggage value and metadata must be str")
    if not value.isascii():
        value = _encodable(value)
    updated = dict(_entries.get())
    updated.pop(name, None)  # a replaced entry moves to the end, as a fresh one
    updated[name] = (value, metadata)
    _entries.set(updated)


def _encodable(value: str) -> str:
    """`value` with its lone surrogates replaced by U+FFFD, as W3C Baggage treats invalid UTF-8.

    Such a value (an escaped surrogate in JSON, a surrogate-escaped file name)
    made the header unencodable: no baggage at all went out.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return "".join("\ufffd" if "\ud800" <= char <= "\udfff" else char for char in value)
    return value


def remove(name: str) -> None:
    """Remove entry `name` from the current context (absent, or not a str: nothing happens)."""
    current = _entries.get()
    if type(name) is str and name in current:
        updated = dict(current)
        del updated[name]
        _entries.set(updated)


def clear() -> None:
    """Remove every entry from the current context."""
    _entries.set(_EMPTY)


def entries() -> Mapping[str, tuple[str, str]]:
    """The current entries with their metadata (read-only; for the propagator)."""
    return _entries.get()


def attach(values: Entries) -> Token[Entries]:
    """Make `values` the current baggage (an invocation adopting its trigger's); returns the token."""
    return _entries.set(values)


def restore(values: Mapping[str, tuple[str, str]] | None) -> None:
    """Make `values` (None: none) the current baggage again, if it changed since."""
    wanted = _EMPTY if values is None else values
    if _entries.get() is not wanted:
        _entries.set(wanted)  # type: ignore[arg-type]  # a value `entries` returned: our own dict


def detach(token: Token[Entries]) -> None:
    """Restore the baggage that was current before `attach`."""
    try:
        _entries.reset(token)
    except ValueError:  # reset from another context: fall back to empty
        _entries.set(_EMPTY)
