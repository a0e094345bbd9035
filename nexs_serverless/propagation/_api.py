"""`extract`, `inject` and the composite propagator behind them (see the package's docstring).

Why a module of its own: the package's ``__init__`` is imported whenever any of
its submodules is, and a Lambda cold start needs only `_carrier`, `options`,
`xray` and `incoming` (to read ``_X_AMZN_TRACE_ID``). Keeping this code here
spares the cold start its load (about 0.6 M instructions, with `baggage`).

A header object other than a dict (``http.client.HTTPMessage``, a framework's
``Headers``) is read through `_carrier.combined`: its repeated lines joined, as
the W3C formats require (several ``tracestate``/``baggage`` lines are one list;
two ``traceparent`` lines are invalid).

`inject` also writes into a list of (name, value) pairs (an ASGI message's or
httpx's raw headers, WSGI's response headers): the formats write into a dict,
which `_write_lines` then merges into the list. That code lives here, not in
`_carrier`, which a cold start loads and which has no use for it.
"""

from __future__ import annotations

import importlib

from .. import _guard as guard
from ..baggage import _entries as _baggage_entries
from ..context import _current
from ..runtime import runtime
from ._carrier import Headers, _last_trace, combined, drop_variants, headers_from, hex_ids, lowered, text
from .incoming import Incoming

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..config import Settings
    from ..model import SpanContext
    from ..span import Span

    # `format_traceparent`, `format_tracestate`, `XRayPropagator.inject`: what `inject` calls
    # for the default formats.
    _W3CThenXRay = tuple[
        Callable[[str, str, int], str],
        Callable[[tuple[tuple[str, str], ...]], str],
        Callable[[object, Span | SpanContext, tuple[str, str] | None], None],
    ]

# OTEL_PROPAGATORS name -> "module:Class"; kept equal to config.PROPAGATOR_NAMES minus "none".
_FORMATS: dict[str, str] = {
    "tracecontext": ".tracecontext:TraceContextPropagator",
    "baggage": ".baggage:BaggagePropagator",
    "xray": ".xray:XRayPropagator",
    "xray-lambda": ".xray:XRayLambdaPropagator",
    "b3": ".b3:B3SinglePropagator",
    "b3multi": ".b3:B3MultiPropagator",
    "cloud_trace": ".cloud_trace:CloudTracePropagator",
    "gcp": ".cloud_trace:CloudTracePropagator",
    "request_id": ".request_id:RequestIdPropagator",
}


def load(name: str) -> object:
    """A propagator instance for an ``OTEL_PROPAGATORS`` name.

    Raises:
        KeyError: for an unknown name.
    """
    module_name, _, class_name = _FORMATS[name].partition(":")
    module = importlib.import_module(module_name, __package__)
    return getattr(module, class_name)()


class CompositePropagator:
    """Several formats used as one.

    Args:
        names: ``OTEL_PROPAGATORS`` names, in order; ``none`` and repeats are skipped.

    Raises:
        KeyError: for an unknown name.
    """

    __slots__ = (
        "_context_extractors",
        "_dict_context",
        "_extractors",
        "_injectors",
        "_plain_injectors",
        "_trace_fields",
        "_w3c_then_xray",
        "fields",
        "names",
        "propagators",
    )

    def __init__(self, names: Sequence[str]) -> None:
        unique = [name for index, name in enumerate(names) if name != "none" and name not in names[:index]]
        self.names = tuple(unique)
        self.propagators: tuple[object, ...] = tuple(load(name) for name in unique)
        seen: list[str] = []
        for propagator in self.propagators:
            seen.extend(field for field in propagator.fields if field not in seen)  # type: ignore[attr-defined]
        self.fields = tuple(seen)
        # What the trace formats write, every one of them, whenever the context is valid (and only
        # then): the names `inject` clears of the caller's own variants first. Baggage clears its
        # own name, when it writes (`BaggagePropagator.inject`).
        self._trace_fields = frozenset(
            field.lower()
            for propagator in self.propagators
            if propagator.name != "baggage"  # type: ignore[attr-defined]
            for field in propagator.fields  # type: ignore[attr-defined]
        )
        self._extractors = tuple(propagator.extract for propagator in self.propagators)  # type: ignore[attr-defined]
        # `extract_context` needs no baggage nor kept extras: each format's `extract_context`
        # takes the context found so far and returns it or its own, with no `Incoming` built.
        self._context_extractors = tuple(
            propagator.extract_context  # type: ignore[attr-defined]
            for propagator in self.propagators
            if propagator.name != "baggage"  # type: ignore[attr-defined]
        )
        # The default formats (W3C then X-Ray, baggage anywhere) get paths of their own: a call per
        # format from one call site, and `lowered`'s copy, were about a sixth of extract+inject
        # (A/B measured). `_dict_context` reads a plain dict in one call; `inject` writes
        # ``traceparent`` itself, then calls X-Ray's writer, while no baggage is set.
        self._dict_context: Callable[[dict[object, object]], SpanContext | None] | None = None
        self._w3c_then_xray: _W3CThenXRay | None = None
        if tuple(name for name in unique if name != "baggage") == ("tracecontext", "xray"):
            from .tracecontext import format_traceparent, format_tracestate

            self._dict_context = _default_reader()
            xray = self.propagators[unique.index("xray")]
            self._w3c_then_xray = (format_traceparent, format_tracestate, xray.inject)  # type: ignore[attr-defined]
        self._injectors = tuple(propagator.inject for propagator in self.propagators)  # type: ignore[attr-defined]
        # Baggage writes nothing while no entry is set (the usual case): one contextvar read
        # in `inject` picks the tuple without it, instead of a call that returns at once.
        self._plain_injectors = tuple(
            propagator.inject  # type: ignore[attr-defined]
            for propagator in self.propagators
            if propagator.name != "baggage"  # type: ignore[attr-defined]
        )

    def extract(self, carrier: object) -> Incoming:
        """Everything `carrier` brought: context (the last valid one wins), baggage, extras."""
        incoming = Incoming()
        if type(carrier) is dict:
            carrier = lowered(carrier)
        elif type(carrier) is not Headers:
            carrier = combined(carrier)
        for extract_from in self._extractors:
            extract_from(carrier, incoming)
        return incoming

    def extract_context(self, carrier: object) -> SpanContext | None:
        """Only the context of `carrier` (baggage is not read)."""
        if type(carrier) is dict:
            if self._dict_context is not None:
                return self._dict_context(carrier)
            carrier = lowered(carrier)
        elif type(carrier) is not Headers:
            carrier = combined(carrier)
        context = None
        for extract_from in self._context_extractors:
            context = extract_from(carrier, context)
        return context

    def inject(self, carrier: object, context: Span | SpanContext | None) -> None:
        """Write `context` (skipped when invalid) and the current baggage into `carrier`.

        A plain dict loses the keys that differ only in case from a name written
        (``Traceparent`` gives way to ``traceparent``); a format that writes nothing
        leaves the caller's own header alone (a ``baggage`` set by hand stays when no
        baggage is current, a ``traceparent`` when the context is invalid). A list of
        (name, value) pairs is written the same way, line by line (`_write_lines`).
        """
        ids = None
        if context is not None:
            trace_id = context.trace_id
            if trace_id and context.span_id:
                cached_id, trace_hex = _last_trace[0]  # hex_ids, inlined on this hot path
                if cached_id != trace_id:
                    trace_hex = hex_ids(trace_id, context.span_id)[0]
                ids = (trace_hex, "%016x" % context.span_id)  # noqa: UP031 - faster than an f-string
        if type(carrier) is dict:
            if ids is not None and carrier:
                drop_variants(carrier, self._trace_fields)
        elif type(carrier) is list or type(carrier) is tuple:
            self._inject_lines(carrier, context, ids)
            return
        for inject_into in self._injectors if _baggage_entries.get() else self._plain_injectors:
            inject_into(carrier, context, ids)

    def _inject_lines(
        self,
        lines: list[object] | tuple[object, ...],
        context: Span | SpanContext | None,
        ids: tuple[str, str] | None,
    ) -> None:
        """`inject` into a list of header pairs: the formats write a dict, then its entries replace lines.

        The formats assign ``carrier[name]``; a dict for them, merged afterwards,
        keeps that one way of writing. The names cleared are those `drop_variants`
        clears in a dict: every trace field when the context is valid, and what was written.
        """
        written: dict[str, str] = {}
        for inject_into in self._injectors if _baggage_entries.get() else self._plain_injectors:
            inject_into(written, context, ids)
        _write_lines(lines, written, self._trace_fields if ids is not None else frozenset())


def _write_lines(lines: object, headers: dict[str, str], cleared: frozenset[str]) -> None:
    """Write `headers` into `lines`, a list of (name, value) pairs, as a dict would take them.

    A header already there (any case, any number of lines) is replaced where its
    first line was, its other lines removed: two ``traceparent`` lines would make
    the receiver drop the context (W3C Trace Context, section 3.2). Names in
    `cleared` lose their lines even when nothing replaces them (a stale
    ``tracestate`` must not follow a new ``traceparent``). Other headers are
    appended. New lines take the type of the list's first: bytes pairs (an ASGI
    message's headers) get lower-case names, as ASGI requires, and Latin-1
    values; anything else, an empty list included, gets text pairs, the form of
    WSGI's headers and of httpx's, which take either. Nothing changes unless all
    of it can be written.

    Raises:
        TypeError: when there is something to write and `lines` is a tuple (it
            cannot change) or holds anything but pairs.
    """
    if not headers:
        return
    if type(lines) is not list:
        raise TypeError(
            f"cannot inject into a {type(lines).__name__} of header pairs, which cannot change: pass a list"
        )
    for pair in lines:
        if (type(pair) is not tuple and type(pair) is not list) or len(pair) != 2:
            raise TypeError(
                f"cannot inject into a list holding {type(pair).__name__} items: "
                "expected (name, value) pairs, as in an ASGI message's headers"
            )
    first = lines[0] if lines else None
    raw = first is not None and isinstance(first[0], (bytes, bytearray))
    make: Callable[[tuple[object, object]], object] = list if type(first) is list else tuple
    new: dict[str, object] = {}
    for name, value in headers.items():
        key = name.lower()
        new[key] = make((key.encode("latin-1"), value.encode("latin-1")) if raw else (name, value))
    cleared = cleared | new.keys()
    out: list[object] = []
    for pair in lines:
        name = pair[0]
        if isinstance(name, (bytes, bytearray)):
            name = bytes(name).decode("latin-1")
        if isinstance(name, str):
            key = name.lower()
            if key in cleared:
                replacement = new.pop(key, None)
                if replacement is not None:
                    out.append(replacement)
                continue
        out.append(pair)
    out.extend(new.values())
    lines[:] = out


def _default_reader() -> Callable[[dict[object, object]], SpanContext | None]:
    """`CompositePropagator.extract_context` of W3C then X-Ray for a plain dict, in one call.

    The general path takes four: `lowered` (a copy), then each format's reader,
    then the parser; this reader checks the keys without copying and calls the
    parsers directly, with the same result.
    """
    from .tracecontext import parse_traceparent, parse_tracestate
    from .xray import parse_header

    def read(carrier: dict[object, object]) -> SpanContext | None:
        # `lowered` without its copy: when every key is lower-case text, a missed `get` is final
        # and only the values read need converting (bytes, lists); otherwise, `lowered`'s copy.
        for key in carrier:
            if type(key) is not str or not key.islower():
                carrier = headers_from(carrier)
                break
        context = None
        value = carrier.get("traceparent")
        if value is not None:
            if type(value) is not str:
                value = text(value)
            if value:
                state = carrier.get("tracestate")
                if state is not None and type(state) is not str:
                    state = text(state)
                context = parse_traceparent(value, (parse_tracestate(state) or ()) if state else ())
        header = carrier.get("x-amzn-trace-id")
        if header is not None:
            if type(header) is not str:
                header = text(header)
            if header:
                found = parse_header(header, True)[0]
                if found is not None:
                    context = found
        return context

    return read


# (settings, the composite built from them); one tuple, swapped atomically.
_cache: list[tuple[object, CompositePropagator | None]] = [(None, None)]


def composite(settings: Settings | None = None) -> CompositePropagator:
    """The propagator ``OTEL_PROPAGATORS`` asks for (default: the current settings'), cached."""
    if settings is None:
        settings = runtime.settings
    cached_settings, cached = _cache[0]
    if cached_settings is settings and cached is not None:
        return cached
    built = CompositePropagator(settings.propagators)
    _cache[0] = (settings, built)
    return built


def extract(carrier: object) -> SpanContext | None:
    """The remote span context in `carrier`, or None (malformed input included; never raises)."""
    try:
        cached_settings, cached = _cache[0]
        if cached is None or cached_settings is not runtime.settings:
            cached = composite()
        # `CompositePropagator.extract_context`, inlined: one call less on every invocation.
        if type(carrier) is dict:
            read = cached._dict_context
            if read is not None:
                return read(carrier)
            carrier = lowered(carrier)
        elif type(carrier) is not Headers:
            carrier = combined(carrier)
        context = None
        for extract_from in cached._context_extractors:
            context = extract_from(carrier, context)
        return context
    except Exception as exc:
        guard.report("propagation.extract", exc)
        return None


def extract_incoming(carrier: object) -> Incoming:
    """Context, baggage and kept extras from `carrier` (an empty `Incoming` on any failure)."""
    try:
        return composite().extract(carrier)
    except Exception as exc:
        guard.report("propagation.extract", exc)
        return Incoming()


def inject(carrier: object, context: Span | SpanContext | None = None) -> None:
    """Write `context` (default: the current span) and the current baggage into `carrier`.

    Nothing is written for the trace when there is no valid context, and then the
    caller's own trace headers stay (as its ``baggage`` stays when none is current;
    see `CompositePropagator.inject`); never raises.

    `carrier` may also be a list of (name, value) pairs, text or bytes (an ASGI
    message's ``headers``, httpx's raw headers): a header already there is replaced
    (every line of it, any case), the others appended, in the list's own pair type
    (`_write_lines`). A tuple cannot be written into: the error is counted and
    logged once, as for any carrier that cannot be written.
    """
    try:
        if context is None:
            context = _current.get()
        cached_settings, cached = _cache[0]
        if cached is None or cached_settings is not runtime.settings:
            cached = composite()
        # `CompositePropagator.inject`, inlined: one call less per outgoing request.
        ids = None
        if context is not None:
            trace_id = context.trace_id
            if trace_id:
                span_id = context.span_id
                if span_id:
                    cached_id, trace_hex = _last_trace[0]
                    if cached_id != trace_id:
                        trace_hex = hex_ids(trace_id, span_id)[0]
                    span_hex = "%016x" % span_id  # noqa: UP031 - faster than an f-string
                    ids = (trace_hex, span_hex)
        # A list of header pairs is written by `_inject_lines`; tested for only where something would
        # be written into it, so that a dict takes no test more than before (one `ids is None` with baggage).
        if ids is not None:
            if type(carrier) is dict:
                if carrier:
                    drop_variants(carrier, cached._trace_fields)
            elif type(carrier) is list or type(carrier) is tuple:
                cached._inject_lines(carrier, context, ids)
                return
        if _baggage_entries.get():
            if ids is None and (type(carrier) is list or type(carrier) is tuple):
                cached._inject_lines(carrier, context, ids)
                return
            for inject_into in cached._injectors:
                inject_into(carrier, context, ids)
            return
        default = cached._w3c_then_xray
        if default is None:
            for inject_into in cached._plain_injectors:
                inject_into(carrier, context, ids)
        elif ids is not None:
            # `TraceContextPropagator.inject`, inlined; then X-Ray's.
            flags = context.trace_flags  # type: ignore[union-attr]
            carrier["traceparent"] = (  # type: ignore[index]
                f"00-{trace_hex}-{span_hex}-01" if flags == 1 else default[0](trace_hex, span_hex, flags)
            )
            state = context.trace_state  # type: ignore[union-attr]
            if state:
                carrier["tracestate"] = default[1](state)  # type: ignore[index]
            default[2](carrier, context, ids)  # type: ignore[arg-type]
    except Exception as exc:
        guard.report("propagation.inject", exc)


def fields() -> tuple[str, ...]:
    """The header names the configured formats write (for CORS and allow-lists)."""
    return composite().fields
