"""The fast paths of `extract`/`inject` agree with the general ones they shortcut."""

from __future__ import annotations

import pytest

import nexs_serverless
from nexs_serverless import baggage, propagation
from nexs_serverless.model import SpanContext
from nexs_serverless.propagation._carrier import headers_from
from nexs_serverless.propagation.incoming import Incoming
from nexs_serverless.testing import reset

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1;Lineage=a:1"
ALL_FORMATS = "tracecontext,baggage,xray,xray-lambda,b3,b3multi,cloud_trace,request_id"

CARRIERS = [
    {},
    {"traceparent": TRACEPARENT},
    {"Traceparent": TRACEPARENT, "TraceState": "a=1,b=2"},
    {"traceparent": "ff-" + TRACEPARENT[3:]},
    {"x-amzn-trace-id": XRAY},
    {"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": XRAY},
    {"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": "Root=broken"},
    {"b3": "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"},
    {"X-B3-TraceId": "4bf92f3577b34da6a3ce929d0e0e4736", "X-B3-SpanId": "00f067aa0ba902b7"},
    {"X-Cloud-Trace-Context": "4bf92f3577b34da6a3ce929d0e0e4736/123;o=1"},
    {"Request-Id": "|4bf92f3577b34da6a3ce929d0e0e4736.00f067aa0ba902b7."},
    {"lambda-runtime-trace-id": XRAY, "baggage": "k=v"},
]


@pytest.mark.parametrize("order", [ALL_FORMATS, ",".join(reversed(ALL_FORMATS.split(",")))])
@pytest.mark.parametrize("carrier", CARRIERS)
def test_context_only_extraction_equals_the_full_one(order: str, carrier: dict[str, str]) -> None:
    """`extract` and `extract_context` give the context `extract_incoming` gives, in any format order."""
    reset(environ={"OTEL_PROPAGATORS": order})
    expected = propagation.extract_incoming(carrier).context
    assert propagation.extract(carrier) == expected
    assert propagation.composite().extract_context(carrier) == expected
    assert propagation.extract(headers_from(carrier)) == expected


@pytest.mark.parametrize("name", ALL_FORMATS.split(",")[:1] + ALL_FORMATS.split(",")[2:])
def test_each_format_keeps_the_earlier_context_when_it_finds_none(name: str) -> None:
    """A format's `extract_context` returns the context found before it when its header is absent."""
    earlier = SpanContext(TRACE, SPAN, 1, (), True)
    propagator = propagation.load(name)
    assert propagator.extract_context(headers_from({"other": "x"}), earlier) is earlier  # type: ignore[attr-defined]
    incoming = Incoming(earlier)
    propagator.extract(headers_from({"other": "x"}), incoming)  # type: ignore[attr-defined]
    assert incoming.context is earlier


@pytest.mark.parametrize("with_baggage", [False, True])
@pytest.mark.parametrize("carrier", [{}, {"Traceparent": "old", "X-AMZN-TRACE-ID": "old", "other": "x"}])
def test_module_inject_writes_what_the_composite_writes(with_baggage: bool, carrier: dict[str, str]) -> None:
    """The inlined module-level `inject` writes the same headers, in the same order, as the method."""
    reset(environ={"OTEL_PROPAGATORS": "tracecontext,baggage,xray,b3"})
    if with_baggage:
        baggage.set("tenant", "acme")
    context = SpanContext(TRACE, SPAN, 1, (("a", "1"),), True)
    by_module = dict(carrier)
    by_method = dict(carrier)
    propagation.inject(by_module, context)
    propagation.composite().inject(by_method, context)
    baggage.clear()
    assert list(by_module.items()) == list(by_method.items())
    assert ("baggage" in by_module) is with_baggage


def test_baggage_set_after_the_composite_is_built_is_written_in_its_place() -> None:
    """Baggage is read per call, and written between the formats listed before and after it."""
    propagation.composite()
    carrier: dict[str, str] = {}
    with nexs_serverless.tracer.span("work") as span:
        baggage.set("tenant", "acme")
        propagation.inject(carrier, span)
        baggage.clear()
    assert list(carrier) == ["traceparent", "baggage", "X-Amzn-Trace-Id"]
    assert carrier["baggage"] == "tenant=acme"


def test_an_invalid_context_writes_only_the_baggage() -> None:
    """With no valid context, the trace formats write nothing and the baggage is still sent."""
    baggage.set("tenant", "acme")
    carrier: dict[str, str] = {}
    propagation.inject(carrier, SpanContext(0, SPAN, 1))
    baggage.clear()
    assert carrier == {"baggage": "tenant=acme"}


# `inject` removes a caller's header only to write its own in its place (any case variant of it).

INJECT_ORDERS = ["tracecontext,baggage,xray", "b3,baggage,tracecontext"]  # default path, general path


def _inject(by_method: bool, carrier: dict[str, str], context: SpanContext | None) -> None:
    if by_method:
        propagation.composite().inject(carrier, context)
    else:
        propagation.inject(carrier, context)


@pytest.mark.parametrize("order", INJECT_ORDERS)
@pytest.mark.parametrize("by_method", [False, True])
def test_inject_keeps_the_callers_baggage_when_none_is_current(order: str, by_method: bool) -> None:
    """With no baggage current, the caller's own ``Baggage`` header stays beside the trace headers."""
    reset(environ={"OTEL_PROPAGATORS": order})
    carrier = {"Baggage": "tenant=acme", "Traceparent": "old", "other": "x"}
    _inject(by_method, carrier, SpanContext(TRACE, SPAN, 1))
    assert carrier["Baggage"] == "tenant=acme"
    assert carrier["traceparent"] == TRACEPARENT
    assert "Traceparent" not in carrier


@pytest.mark.parametrize("order", INJECT_ORDERS)
@pytest.mark.parametrize("by_method", [False, True])
def test_inject_keeps_the_callers_trace_headers_without_a_valid_context(order: str, by_method: bool) -> None:
    """With no valid context, the caller's trace headers stay; the current baggage replaces its own."""
    reset(environ={"OTEL_PROPAGATORS": order})
    carrier = {"Traceparent": TRACEPARENT, "X-B3-TraceId": "1", "BAGGAGE": "old=1", "other": "x"}
    baggage.set("tenant", "acme")
    _inject(by_method, carrier, SpanContext(0, SPAN, 1))
    baggage.clear()
    assert carrier == {
        "Traceparent": TRACEPARENT,
        "X-B3-TraceId": "1",
        "other": "x",
        "baggage": "tenant=acme",
    }


# The default formats' own paths: `extract` reads a plain dict in one function, `inject` writes
# ``traceparent`` inline. They must give what the general per-format path gives.

DEFAULT_ORDERS = ["tracecontext,baggage,xray", "tracecontext,xray", "baggage,tracecontext,xray"]
XRAY_CONTEXT = SpanContext(0x5759E988BD862E3FE1BE46A994272793, 0x53995C3F42CD8AD8, 1, (), True)


class _Name(str):
    """A str subclass, as an enum member or a framework's header name may be."""


DICT_CARRIERS: list[dict[object, object]] = [
    {"traceparent": TRACEPARENT},
    {"TRACEPARENT": TRACEPARENT, "TraceState": b"a=1,b=2"},
    {"traceparent": TRACEPARENT.encode()},
    {"traceparent": bytearray(TRACEPARENT.encode()), "tracestate": ["a=1", "b=2"]},
    {"traceparent": [TRACEPARENT]},
    {"traceparent": (TRACEPARENT,)},
    {"traceparent": [TRACEPARENT, 1]},
    {"traceparent": 55},
    {"traceparent": None, "Traceparent": TRACEPARENT},
    {"Traceparent": TRACEPARENT, "traceparent": "00-broken"},
    {"traceparent": TRACEPARENT, "Traceparent": [b"00-broken"]},
    {1: "x", "traceparent": TRACEPARENT},
    {b"traceparent": TRACEPARENT},
    {_Name("traceparent"): TRACEPARENT},
    {"traceparent": _Name(TRACEPARENT)},
    {"123": "x", "traceparent": TRACEPARENT, "tracestate": "a=1,a=2"},
    {"traceparent": TRACEPARENT, "tracestate": ""},
    {"traceparent": TRACEPARENT, "x-amzn-trace-id": XRAY},
    {"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": XRAY.encode()},
    {"traceparent": TRACEPARENT, "x-amzn-trace-id": ["Root=1-5759e988-bd862e3fe1be46a994272793", "x"]},
    {"traceparent": TRACEPARENT, "x-amzn-trace-id": "Root=broken"},
    {"traceparent": "", "x-amzn-trace-id": XRAY},
    {"other": "x"},
    {},
]


@pytest.mark.parametrize("order", DEFAULT_ORDERS)
@pytest.mark.parametrize("carrier", DICT_CARRIERS)
def test_the_default_formats_read_a_dict_as_the_general_path_does(
    order: str, carrier: dict[object, object]
) -> None:
    """Mixed case, bytes, lists, non-text keys and values: the dict reader agrees with the per-format path."""
    reset(environ={"OTEL_PROPAGATORS": order})
    composite = propagation.composite()
    assert composite._dict_context is not None  # the path under test is taken
    expected = composite.extract(dict(carrier)).context  # `lowered`, then one reader per format
    assert propagation.extract(dict(carrier)) == expected
    assert composite.extract_context(dict(carrier)) == expected


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        ({"Traceparent": TRACEPARENT.encode()}, SpanContext(TRACE, SPAN, 1, (), True)),
        (
            {"traceparent": [TRACEPARENT], "tracestate": [b"a=1", "b=2"]},
            SpanContext(TRACE, SPAN, 1, (("a", "1"), ("b", "2")), True),
        ),
        ({"traceparent": TRACEPARENT, "tracestate": "a=1,a=2"}, SpanContext(TRACE, SPAN, 1, (), True)),
        ({1: "one", "traceparent": TRACEPARENT, "X-AMZN-TRACE-ID": XRAY}, XRAY_CONTEXT),
        (
            {"traceparent": TRACEPARENT, "x-amzn-trace-id": "Root=1-5759e988-bd862e3fe1be46a994272793"},
            SpanContext(TRACE, SPAN, 1, (), True),
        ),
        ({"traceparent": 55, "tracestate": "a=1"}, None),
        ({_Name("traceparent"): TRACEPARENT}, None),
        ({"traceparent": _Name(TRACEPARENT)}, None),
    ],
)
def test_the_default_dict_reader_results(carrier: dict[object, object], expected: SpanContext | None) -> None:
    """What the default formats read from a plain dict: any case, bytes and lists; X-Ray last."""
    assert propagation.extract(carrier) == expected


def test_the_default_dict_reader_does_not_change_the_carrier() -> None:
    """Keys that need lower-casing are read from a copy; the caller's dict is left as it was."""
    carrier: dict[object, object] = {"Traceparent": TRACEPARENT.encode(), 2: "x"}
    assert propagation.extract(carrier) == SpanContext(TRACE, SPAN, 1, (), True)
    assert carrier == {"Traceparent": TRACEPARENT.encode(), 2: "x"}


@pytest.mark.parametrize("order", [*DEFAULT_ORDERS, "xray,tracecontext", "tracecontext"])
def test_only_w3c_then_xray_takes_the_default_paths(order: str) -> None:
    """The shortcuts are built for W3C followed by X-Ray (baggage anywhere), and for nothing else."""
    composite = propagation.CompositePropagator(order.split(","))
    default = order in DEFAULT_ORDERS
    assert (composite._dict_context is not None) is default
    assert (composite._w3c_then_xray is not None) is default


@pytest.mark.parametrize("order", DEFAULT_ORDERS)
@pytest.mark.parametrize("flags", [0, 1, 2, 3, 0xFF])
@pytest.mark.parametrize(
    "state", [(), (("a", "1"), ("b", "2")), tuple((f"k{index}", "v") for index in range(40))]
)
@pytest.mark.parametrize("kept", [False, True])
def test_the_default_inject_writes_what_each_format_writes(
    order: str, flags: int, state: tuple[tuple[str, str], ...], kept: bool
) -> None:
    """Flags, tracestate (cut at 32 members), X-Ray's kept pairs: inlined, the same as per format."""
    from nexs_serverless.propagation.incoming import _extras, set_extras

    reset(environ={"OTEL_PROPAGATORS": order})
    context = SpanContext(TRACE, SPAN, flags, state, True)
    token = set_extras({"xray": (TRACE, "Lineage=a:1")} if kept else None)
    try:
        by_module: dict[str, str] = {"Traceparent": "old", "X-AMZN-TRACE-ID": "old", "other": "x"}
        by_method = dict(by_module)
        propagation.inject(by_module, context)
        propagation.composite().inject(by_method, context)  # one call per format
    finally:
        _extras.reset(token)
    assert list(by_module.items()) == list(by_method.items())
    assert by_module["traceparent"] == f"00-{TRACE:032x}-{SPAN:016x}-{flags:02x}"
    assert by_module["X-Amzn-Trace-Id"].endswith(";Lineage=a:1") is kept
    assert by_module.get("tracestate", "") == ",".join(f"{key}={value}" for key, value in state[:32])
    assert "Traceparent" not in by_module


@pytest.mark.parametrize("context", [None, SpanContext(0, SPAN), SpanContext(TRACE, 0)])
def test_the_default_inject_writes_nothing_without_a_valid_context(context: SpanContext | None) -> None:
    """No trace header, and other keys kept, when there is no valid context (and no current span)."""
    carrier = {"other": "x"}
    propagation.inject(carrier, context)
    assert carrier == {"other": "x"}


# X-Ray ids are checked with string methods, not `re`: the same accept/reject rules as the patterns had.

ROOT = "1-5759e988-bd862e3fe1be46a994272793"
PARENT = "53995c3f42cd8ad8"


def _xray(root: str = ROOT, parent: str = PARENT) -> SpanContext | None:
    from nexs_serverless.propagation.xray import parse_header

    return parse_header(f"Root={root};Parent={parent};Sampled=1")[0]


def test_xray_ids_in_upper_case_hex_are_read() -> None:
    """Hex digits in either case, in Root and Parent."""
    assert _xray(ROOT.upper(), PARENT.upper()) == XRAY_CONTEXT
    assert _xray("1-5759E988-bd862E3FE1BE46a994272793", "53995C3f42cd8AD8") == XRAY_CONTEXT


@pytest.mark.parametrize(
    "root",
    [
        "1-5759e988-bd862e3fe1be46a99427279_",  # int(..., 16) takes "_" between digits
        "1-5759e988-bd862e3fe1be46a9942727+3",
        "1-5759e988-bd862e3f e1be46a994272793",
        "1-0x59e988-bd862e3fe1be46a994272793",
        "1-5759e988-bd862e3fe1be46a99427279\u0663",  # ARABIC-INDIC DIGIT THREE
        "1-5759e988-bd862e3fe1be46a99427279\uff13",  # FULLWIDTH DIGIT THREE
        "1-5759e988-bd862e3fe1be46a99427279g",
        "1-5759e988-bd862e3fe1be46a9942727931",  # 25 digits
        "1-5759e988-bd862e3fe1be46a99427279",  # 23 digits
        "1-5759e98-8bd862e3fe1be46a994272793",  # the dash one place early
        "1-5759e988bd862e3fe1be46a994272793-",
        "2-5759e988-bd862e3fe1be46a994272793",
        "1_5759e988-bd862e3fe1be46a994272793",
        "15759e988-bd862e3fe1be46a994272793",
        "",
    ],
)
def test_malformed_xray_roots_give_no_context(root: str) -> None:
    """Anything but "1-", 8 hex digits, "-", 24 hex digits is refused."""
    assert _xray(root=root) is None


@pytest.mark.parametrize(
    "parent",
    [
        "53995c3f42cd8ad_",
        "+3995c3f42cd8ad8",
        "-3995c3f42cd8ad8",
        "0x995c3f42cd8ad8",
        "53995c3f 42cd8ad8",
        "53995c3f42cd8a\u0663\u0663",
        "53995c3f42cd8ad",
        "53995c3f42cd8ad80",
        "53995c3f42cd8adg",
    ],
)
def test_malformed_xray_parents_give_no_context(parent: str) -> None:
    """Anything but exactly 16 hex digits is refused."""
    assert _xray(parent=parent) is None


def test_the_xray_module_compiles_no_pattern() -> None:
    """Nothing from `re` is compiled when it loads: a cold start pays no pattern compilation for it."""
    import re

    from nexs_serverless.propagation import xray

    assert "re" not in vars(xray)
    assert not [name for name, value in vars(xray).items() if isinstance(value, re.Pattern)]
