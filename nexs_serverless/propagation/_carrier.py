"""Carriers: case-insensitive reads and writes on dict-like header maps (and reads of header lists).

HTTP field names are case-insensitive (RFC 9110, section 5.1), and the places a
context travels in serverless events do not agree on case: API Gateway REST
keeps the client's casing, HTTP APIs and ALB lower-case it, SQS and SNS
message attributes keep whatever the producer wrote. Reads therefore try the
name as given, then scan the keys once; a `Headers` dict (keys already lower
case, built by the triggers) skips the scan.

Values may arrive as text, bytes, or lists (ALB and API Gateway
``multiValueHeaders``); lists are joined with commas, as RFC 9110 section 5.3
combines repeated fields. Anything else reads as absent.

A header object other than a dict (``http.client.HTTPMessage``, a framework's
``Headers``) is read through its ``items()``, repeated lines joined the same
way (`combined`, `get`): its ``get`` answers with the first line only, and the
W3C formats count on every line (several ``tracestate`` or ``baggage`` lines
are one list, two ``traceparent`` lines are invalid). A list or tuple of
(name, value) pairs, text or bytes (an ASGI scope's ``headers``), is read as
such an object's lines. Writing into such a list is `_api._write_lines`'s job,
kept out of this module, which every cold start loads.
"""

from __future__ import annotations

from ..model import remote_context as new_context

__all__ = [
    "Headers",
    "combined",
    "drop_variants",
    "get",
    "headers_from",
    "hex_ids",
    "lowered",
    "new_context",
    "text",
]

# (trace id, its hex) of the trace being propagated; one tuple, swapped atomically between threads.
_last_trace: list[tuple[int, str]] = [(0, "")]


def hex_ids(trace_id: int, span_id: int) -> tuple[str, str]:
    """The lower-case hex of a context's ids (32 and 16 digits); the trace's is cached."""
    cached_id, trace_hex = _last_trace[0]
    if cached_id != trace_id:
        trace_hex = "%032x" % trace_id  # noqa: UP031 - measurably faster than f-strings here
        _last_trace[0] = (trace_id, trace_hex)
    return trace_hex, "%016x" % span_id  # noqa: UP031


class Headers(dict):  # type: ignore[type-arg]
    """A ``dict[str, str]`` whose keys are lower case, so lookups need no scan."""

    __slots__ = ()


def text(value: object) -> str | None:
    """A header value as text: str as is, bytes as Latin-1, a list of those joined with ','.

    A list is one header's lines (``multiValueHeaders``): each item must be text or
    bytes, so a nested list (no event has one) reads as absent instead of recursing.
    """
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is bytes or kind is bytearray:
        return bytes(value).decode("latin-1")  # type: ignore[call-overload, no-any-return]
    if kind is list or kind is tuple:
        parts: list[str] = []
        for item in value:  # type: ignore[attr-defined]
            item_kind = type(item)
            if item_kind is str:
                parts.append(item)
            elif item_kind is bytes or item_kind is bytearray:
                parts.append(bytes(item).decode("latin-1"))
            else:
                return None
        return ",".join(parts) if parts else None
    return None


def get(carrier: object, name: str) -> str | None:
    """The value of header `name` (given in lower case) in `carrier`, or None.

    A header object other than a dict gives every line of `name`, joined as
    `combined` joins them: a format's own `extract` then reads what the
    composite's reads. Never raises: a carrier that is not a mapping, or that
    fails while read, reads as empty.
    """
    kind = type(carrier)
    try:
        if kind is not dict and kind is not Headers:
            pairs = _pairs(carrier)
            if pairs is not None:
                lines = [line for field, line in _fields(pairs) if field == name]
                return ",".join(lines) if lines else None
        value = carrier.get(name)  # type: ignore[attr-defined]
        if value is None and kind is not Headers:
            for key in carrier:  # type: ignore[attr-defined]
                if type(key) is str and len(key) == len(name) and key.lower() == name:
                    value = carrier[key]  # type: ignore[index]
                    break
    except Exception:
        return None
    if value is None:
        return None
    return text(value)


def drop_variants(carrier: dict[object, object], names: frozenset[str]) -> None:
    """Remove keys of a plain dict that differ only in case from `names` (given lower case).

    Called before writing `names`, and only then, so a carrier that arrived with
    ``Traceparent`` does not leave with both ``Traceparent`` and ``traceparent``,
    and one whose header nothing replaces keeps it.
    """
    for key in [k for k in carrier if type(k) is str and k.lower() in names]:
        del carrier[key]


def lowered(carrier: dict[object, object]) -> Headers:
    """`carrier` as `Headers`: one pass over the keys instead of one scan per missed lookup."""
    for key, value in carrier.items():
        if type(key) is not str or type(value) is not str or not key.islower():
            return headers_from(carrier)
    return Headers(carrier)


def headers_from(mapping: object) -> Headers:
    """A `Headers` copy of `mapping`: lower-case names, text values; unreadable entries skipped."""
    out = Headers()
    items = getattr(mapping, "items", None)
    if items is None:
        return out
    try:
        pairs: list[tuple[object, object]] = list(items())
    except Exception:
        return out
    for key, value in pairs:
        if type(key) is not str:
            continue
        converted = text(value)
        if converted is not None:
            out[key.lower()] = converted
    return out


def combined(carrier: object) -> object:
    """`carrier` as `Headers` when it is a header map other than a dict, its repeated fields joined.

    HTTP lets a field repeat (RFC 9110 section 5.3), and the W3C formats count on
    it: several ``tracestate`` or ``baggage`` lines are one list, and two
    ``traceparent`` lines are invalid. Most header objects answer ``get`` with the
    first line only (``http.client.HTTPMessage``, Starlette's and werkzeug's
    ``Headers``, aiohttp's multidict) but list every line in ``items()``; joining
    those with commas gives what a proxy that merged them would send. Anything
    without ``items`` is returned unchanged, to be read through its ``get``.
    """
    pairs = _pairs(carrier)
    if pairs is None:
        return carrier
    out = Headers()
    for name, line in _fields(pairs):
        previous = out.get(name)
        out[name] = line if previous is None else f"{previous},{line}"
    return out


def _pairs(carrier: object) -> list[tuple[object, object]] | None:
    """Every (name, value) line of a header object, or None when it lists none (no ``items``, or it fails).

    A list or tuple of 2-item pairs (an ASGI scope's ``headers``) is its own list
    of lines; with any other item it lists none.
    """
    kind = type(carrier)
    if kind is list or kind is tuple:
        pairs: list[tuple[object, object]] = []
        for pair in carrier:  # type: ignore[attr-defined]
            pair_kind = type(pair)
            if (pair_kind is not tuple and pair_kind is not list) or len(pair) != 2:
                return None
            pairs.append((pair[0], pair[1]))
        return pairs
    items = getattr(carrier, "items", None)
    if items is None:
        return None
    try:
        return list(items())
    except Exception:
        return None


def _fields(pairs: list[tuple[object, object]]) -> list[tuple[str, str]]:
    """(lower-case name, text value) of each readable line, in order; bytes names read as Latin-1."""
    out: list[tuple[str, str]] = []
    for key, value in pairs:
        field = key.decode("latin-1") if type(key) is bytes else key
        if type(field) is not str:
            continue
        converted = text(value)
        if converted is not None:
            out.append((field.lower(), converted))
    return out
