"""W3C Baggage: the ``baggage`` header (``OTEL_PROPAGATORS=baggage``).

Grammar and limits from the W3C Baggage specification:

- ``key = value *( ; property )`` members separated by commas, optional
  whitespace around separators; the key is an RFC 9110 token, the value is
  percent-encoded ``baggage-octet`` text (decoded as UTF-8 on the way in, an
  invalid sequence becoming U+FFFD as the specification requires).
- Limits: at most 180 members and 8192 bytes per header. The specification
  asks for at least 64 members and 8192 bytes; 180 is its earlier limit, which
  OpenTelemetry's SDKs still apply, so a service behind them gets every member
  they send. A header over 8192 bytes is ignored whole; members past the
  180th, and on the way out members that would cross either limit, are left
  out whole ("MUST NOT propagate partial list-members"), counted as
  ``baggage_dropped``.
- A malformed member is skipped; the others are kept.

Properties (``;key`` or ``;key=value``, the same key and value grammar) are
kept as the entry's metadata and written back; a property that breaks the
grammar (a control character, a CR/LF that would split the header, a
separator inside a value) is left out, its member kept. The metadata the
application sets through `nexs_serverless.baggage` is checked the same way
on the way out, so nothing written can make the caller's request invalid.
"""

from __future__ import annotations

import re

from .. import _stats as stats
from ..baggage import _entries
from ._carrier import Headers, drop_variants, get

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from ..model import SpanContext
    from ..span import Span
    from .incoming import Incoming

__all__ = ["BaggagePropagator", "format_baggage", "parse_baggage", "valid_properties"]

MAX_MEMBERS = 180
MAX_BYTES = 8192
_OWS = " \t"
_KEY = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_VALUE = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")
# Characters that may stay as they are in a value; everything else is percent-encoded.
_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"
_NAMES = frozenset(("baggage",))


def parse_baggage(header: str | None) -> dict[str, tuple[str, str]] | None:
    """The entries of a ``baggage`` header (name -> (value, metadata)), or None when there are none."""
    if not header:
        return None
    if len(header.encode("utf-8", "replace")) > MAX_BYTES:
        stats.incr("baggage_dropped")
        return None
    from urllib.parse import unquote

    entries: dict[str, tuple[str, str]] = {}
    for raw in header.split(","):
        member = raw.strip(_OWS)
        if not member:
            continue
        if len(entries) >= MAX_MEMBERS:
            stats.incr("baggage_dropped")
            continue
        pair, _, properties = member.partition(";")
        key, sep, value = pair.partition("=")
        key = key.strip(_OWS)
        value = value.strip(_OWS)
        if not sep or _KEY.fullmatch(key) is None or _VALUE.fullmatch(value) is None:
            continue
        # "percent-encoded octet sequences that do not match the UTF-8 encoding scheme MUST be
        # replaced with the replacement code point (U+FFFD)": the member is kept.
        decoded = unquote(value, errors="replace")
        entries.pop(key, None)
        entries[key] = (decoded, valid_properties(properties) if properties else "")
    return entries or None


def valid_properties(properties: str) -> str:
    """The properties of `properties` that follow the grammar, ``;``-joined (OWS around them removed).

    Runs only for members that have properties: most carry none.
    """
    kept: list[str] = []
    for raw in properties.split(";"):
        key, sep, value = raw.partition("=")
        key = key.strip(_OWS)
        if _KEY.fullmatch(key) is None:
            continue
        if sep:
            value = value.strip(_OWS)
            if _VALUE.fullmatch(value) is None:
                continue
            kept.append(f"{key}={value}")
        else:
            kept.append(key)
    return ";".join(kept)


def format_baggage(values: Mapping[str, tuple[str, str]]) -> str | None:
    """The ``baggage`` header for `values`, within the limits; None when nothing fits."""
    from urllib.parse import quote

    parts: list[str] = []
    size = 0
    for key, (value, metadata) in values.items():
        member = f"{key}={quote(value, safe=_SAFE)}"
        properties = valid_properties(metadata) if metadata else ""  # the API takes any text
        if properties:
            member += ";" + properties
        added = len(member) + (1 if parts else 0)
        if len(parts) >= MAX_MEMBERS or size + added > MAX_BYTES:
            stats.incr("baggage_dropped")
            continue
        parts.append(member)
        size += added
    return ",".join(parts) if parts else None


class BaggagePropagator:
    """The ``baggage`` header: read into the incoming entries, written from `nexs_serverless.baggage`."""

    __slots__ = ()
    name = "baggage"
    fields = ("baggage",)

    def extract(self, carrier: object, incoming: Incoming) -> None:
        """Set `incoming.baggage` from the carrier's header."""
        header = carrier.get("baggage") if type(carrier) is Headers else get(carrier, "baggage")
        if header:
            entries = parse_baggage(header)
            if entries:
                incoming.baggage = entries

    def inject(self, carrier: object, context: SpanContext | Span, ids: tuple[str, str] | None) -> None:
        """Write the current baggage (whatever the span context), replacing any ``Baggage`` variant.

        The caller's own ``baggage`` is replaced only when there is some to write.
        """
        current = _entries.get()
        if current:
            header = format_baggage(current)
            if header:
                if type(carrier) is dict:
                    drop_variants(carrier, _NAMES)
                carrier["baggage"] = header  # type: ignore[index]
