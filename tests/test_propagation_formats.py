"""Baggage, X-Ray, Cloud Trace, B3, Request-Id, and the composite chosen by OTEL_PROPAGATORS."""

from __future__ import annotations

import threading

import pytest

import nexs_serverless
from nexs_serverless import baggage, config, propagation
from nexs_serverless.model import SpanContext
from nexs_serverless.propagation.b3 import parse_single
from nexs_serverless.propagation.baggage import MAX_BYTES, format_baggage, parse_baggage
from nexs_serverless.propagation.incoming import Incoming, set_extras
from nexs_serverless.propagation.request_id import parse_header as parse_request_id
from nexs_serverless.propagation.xray import parse_header as parse_xray
from nexs_serverless.testing import reset

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
XRAY_TRACE = 0x5759E988BD862E3FE1BE46A994272793
XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def only(name: str) -> propagation.CompositePropagator:
    return propagation.CompositePropagator((name,))


# -- W3C baggage --------------------------------------------------------------------


def test_baggage_members_values_and_properties_are_read() -> None:
    """The specification's example: values trimmed and decoded, properties kept as metadata."""
    header = "key1=value1;property1;property2, key2 = value2, key3=value3; propertyKey=propertyValue"
    assert parse_baggage(header) == {
        "key1": ("value1", "property1;property2"),
        "key2": ("value2", ""),
        "key3": ("value3", "propertyKey=propertyValue"),
    }


def test_baggage_values_are_percent_decoded_as_utf8() -> None:
    """Percent-encoded UTF-8 is decoded; an invalid sequence becomes U+FFFD (W3C Baggage: MUST)."""
    assert parse_baggage("city=S%C3%A3o%20Paulo,bad=%FF,ok=1") == {
        "city": ("São Paulo", ""),
        "bad": ("\ufffd", ""),
        "ok": ("1", ""),
    }


def test_malformed_baggage_members_are_skipped() -> None:
    """Members without '=', with a bad key or a forbidden character are skipped; others kept."""
    assert parse_baggage('noequals,bad key=1,q="x",good=yes') == {"good": ("yes", "")}


def test_baggage_beyond_180_members_is_dropped_and_counted() -> None:
    """Only the first 180 members (OpenTelemetry's limit) are kept; the rest are counted as dropped."""
    entries = parse_baggage(",".join(f"k{i}=v" for i in range(190)))
    assert entries is not None
    assert len(entries) == 180
    assert nexs_serverless.stats()["baggage_dropped"] == 10


def test_baggage_header_over_8192_bytes_is_ignored() -> None:
    """A header beyond the size limit is not read at all."""
    assert parse_baggage("k=" + "v" * MAX_BYTES) is None


def test_baggage_is_written_encoded_with_its_metadata() -> None:
    """Values are percent-encoded; metadata follows the value."""
    assert format_baggage({"user": ("a b,c;d", ""), "t": ("1", "ttl=30")}) == "user=a%20b%2Cc%3Bd,t=1;ttl=30"


def test_baggage_that_would_cross_the_size_limit_is_left_out_whole() -> None:
    """Entries that do not fit in 8192 bytes are skipped entirely, never cut."""
    header = format_baggage({"big": ("x" * 8000, ""), "huge": ("y" * 500, ""), "small": ("z", "")})
    assert header == "big=" + "x" * 8000 + ",small=z"


@pytest.mark.parametrize(
    "prop",
    ["note=a\r\nX-Injected: 1", "p\nq", "bad key=1", "p=a b", "p=\x00", 'p="x"', "p=é", "=v", ""],
)
def test_baggage_properties_that_break_the_grammar_are_left_out(prop: str) -> None:
    """A property with a control character, a space, a quote or no key is dropped; its member is kept."""
    assert parse_baggage(f"k=v;ttl=30;{prop};flag") == {"k": ("v", "ttl=30;flag")}


def test_baggage_metadata_set_through_the_api_is_checked_before_it_is_written() -> None:
    """Metadata the application sets is written only as far as it follows the grammar."""
    assert format_baggage({"k": ("v", "ttl=30\r\nX-Injected: 1;flag"), "j": ("w", "a,b")}) == "k=v;flag,j=w"


def test_baggage_api_sets_gets_and_removes_in_the_current_context() -> None:
    """`set`, `get`, `get_all`, `remove` and `clear` act on the current context."""
    baggage.set("tenant", "acme")
    baggage.set("user", "42", metadata="ttl=1")
    assert baggage.get("tenant") == "acme"
    assert baggage.get_all() == {"tenant": "acme", "user": "42"}
    baggage.remove("tenant")
    assert baggage.get("tenant") is None
    baggage.clear()
    assert baggage.get_all() == {}


def test_baggage_api_rejects_a_name_the_header_cannot_carry() -> None:
    """A name that is not an HTTP token is a programming error, raised at once."""
    with pytest.raises(config.ConfigError):
        baggage.set("bad name", "x")


def test_baggage_follows_wrap_into_threads() -> None:
    """A thread started through `wrap` sees the baggage of the code that wrapped it."""
    baggage.set("tenant", "acme")
    seen: list[str | None] = []
    thread = threading.Thread(target=nexs_serverless.wrap(lambda: seen.append(baggage.get("tenant"))))
    thread.start()
    thread.join()
    baggage.clear()
    assert seen == ["acme"]


def test_current_baggage_is_injected() -> None:
    """The baggage propagator writes whatever is current."""
    baggage.set("tenant", "acme")
    carrier: dict[str, str] = {}
    only("baggage").inject(carrier, None)
    baggage.clear()
    assert carrier == {"baggage": "tenant=acme"}


# -- AWS X-Ray ----------------------------------------------------------------------


def test_xray_header_gives_trace_parent_and_sampled() -> None:
    """Root, Parent and Sampled map to the trace id, parent id and flag."""
    context, kept = parse_xray(XRAY)
    assert context == SpanContext(XRAY_TRACE, 0x53995C3F42CD8AD8, 1, (), True)
    assert kept == ""


def test_xray_lineage_and_unknown_keys_are_kept_but_self_is_not() -> None:
    """Lineage and unknown keys are kept verbatim; Self (the previous hop) is not forwarded."""
    _, kept = parse_xray(
        f"Self=1-67891234-12456789abcdef012345678;{XRAY};Lineage=a87bd80c:1|68fd508a:5;Foo=bar"
    )
    assert kept == "Lineage=a87bd80c:1|68fd508a:5;Foo=bar"


@pytest.mark.parametrize(
    "pair",
    ["Note=a\r\nX-Injected: 1", "Note=a b", "Note=a=b", "Note=x,y", "Note=é", "Note=\x7f", "Bad Key=1"],
)
def test_xray_unknown_pairs_unsafe_in_a_header_are_dropped(pair: str) -> None:
    """An unknown pair is kept only with a token key and a visible-ASCII value free of separators."""
    context, kept = parse_xray(f"{XRAY};Lineage=a87bd80c:1;{pair};Foo=bar")
    assert context == SpanContext(XRAY_TRACE, 0x53995C3F42CD8AD8, 1, (), True)
    assert kept == "Lineage=a87bd80c:1;Foo=bar"


@pytest.mark.parametrize(("sampled", "flags"), [("1", 1), ("0", 0), ("?", 0), (None, 0)])
def test_xray_sampled_values(sampled: str | None, flags: int) -> None:
    """Only Sampled=1 reads as sampled; 0, deferred (?) and a missing key do not."""
    header = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8"
    if sampled is not None:
        header += f";Sampled={sampled}"
    context, _ = parse_xray(header)
    assert context is not None
    assert context.trace_flags == flags


@pytest.mark.parametrize(
    "header",
    [
        "Root=1-5759e988-bd862e3fe1be46a994272793",  # no Parent
        "Parent=53995c3f42cd8ad8;Sampled=1",  # no Root
        "Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8",  # unknown version
        "Root=1-5759e988-bd86;Parent=53995c3f42cd8ad8",  # short root
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=0000000000000000",  # zero parent
        "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;garbage",  # pair without '='
        "",
    ],
)
def test_malformed_xray_header_gives_no_context(header: str) -> None:
    """A header without a usable Root and Parent starts a new trace."""
    assert parse_xray(header) == (None, "")


def test_xray_keys_are_read_whatever_their_case_and_order() -> None:
    """Pairs may come in any order and key case."""
    context, _ = parse_xray("sampled=1; parent=53995c3f42cd8ad8 ;ROOT=1-5759e988-bd862e3fe1be46a994272793")
    assert context == SpanContext(XRAY_TRACE, 0x53995C3F42CD8AD8, 1, (), True)


def test_xray_inject_writes_kept_pairs_for_the_same_trace_only() -> None:
    """Lineage goes back out with the trace it came with, never with another trace."""
    token = set_extras({"xray": (XRAY_TRACE, "Lineage=a87bd80c:1")})
    try:
        same: dict[str, str] = {}
        only("xray").inject(same, SpanContext(XRAY_TRACE, 0x1122334455667788, 1))
        other: dict[str, str] = {}
        only("xray").inject(other, SpanContext(TRACE, SPAN, 0))
    finally:
        token.var.reset(token)
    root = "Root=1-5759e988-bd862e3fe1be46a994272793"
    assert same == {"X-Amzn-Trace-Id": f"{root};Parent=1122334455667788;Sampled=1;Lineage=a87bd80c:1"}
    assert other == {
        "X-Amzn-Trace-Id": "Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=0"
    }


def test_xray_lambda_reads_the_environment_when_nothing_came_before(monkeypatch: pytest.MonkeyPatch) -> None:
    """`xray-lambda` falls back to _X_AMZN_TRACE_ID; an earlier format's context keeps precedence."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", XRAY)
    alone = propagation.CompositePropagator(("tracecontext", "xray-lambda"))
    assert alone.extract({}).context == SpanContext(XRAY_TRACE, 0x53995C3F42CD8AD8, 1, (), True)
    assert alone.extract({"traceparent": TRACEPARENT}).context == SpanContext(TRACE, SPAN, 1, (), True)


def test_xray_lambda_reads_the_runtime_header_name() -> None:
    """A carrier holding the Runtime API's Lambda-Runtime-Trace-Id is read too."""
    assert only("xray-lambda").extract({"Lambda-Runtime-Trace-Id": XRAY}).context is not None


# -- Google Cloud Trace ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("4bf92f3577b34da6a3ce929d0e0e4736/67667974448284343;o=1", SpanContext(TRACE, SPAN, 1, (), True)),
        ("4bf92f3577b34da6a3ce929d0e0e4736/67667974448284343;o=0", SpanContext(TRACE, SPAN, 0, (), True)),
        ("4bf92f3577b34da6a3ce929d0e0e4736/67667974448284343", SpanContext(TRACE, SPAN, 0, (), True)),
        ("4bf92f3577b34da6a3ce929d0e0e4736/0;o=1", None),
        ("00000000000000000000000000000000/1;o=1", None),
        ("4bf92f3577b34da6a3ce929d0e0e4736/18446744073709551616;o=1", None),  # 2**64
        ("4bf92f3577b34da6a3ce929d0e0e4736/00f067aa0ba902b7;o=1", None),  # hex span id
        ("4bf92f3577b34da6a3ce929d0e0e4736", None),
    ],
)
def test_cloud_trace_context_header(header: str, expected: SpanContext | None) -> None:
    """TRACE/SPAN;o=OPTIONS with the span id in decimal; o=1 only is sampled."""
    assert only("cloud_trace").extract({"X-Cloud-Trace-Context": header}).context == expected


def test_cloud_trace_inject_writes_the_span_id_in_decimal() -> None:
    """The span id goes out as a decimal number."""
    carrier: dict[str, str] = {}
    only("gcp").inject(carrier, SpanContext(TRACE, SPAN, 1))
    assert carrier == {"X-Cloud-Trace-Context": "4bf92f3577b34da6a3ce929d0e0e4736/67667974448284343;o=1"}


# -- B3 -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1", SpanContext(TRACE, SPAN, 1, (), True)),
        ("4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-d", SpanContext(TRACE, SPAN, 1, (), True)),
        (
            "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0-05e3ac9a4f6e3b90",
            SpanContext(TRACE, SPAN, 0, (), True),
        ),
        # no sampling state ("Defer"): the default sampler's root decision, sampled
        ("4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", SpanContext(TRACE, SPAN, 1, (), True)),
        ("a3ce929d0e0e4736-00f067aa0ba902b7-1", SpanContext(0xA3CE929D0E0E4736, SPAN, 1, (), True)),
        ("0", None),
        ("4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-x", None),
        ("4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-1", None),
    ],
)
def test_b3_single_header(header: str, expected: SpanContext | None) -> None:
    """trace-span-sampled-parent, 64- or 128-bit trace ids, debug as sampled, sampling-only gives none."""
    assert parse_single(header) == expected


def test_b3_multi_headers_and_debug_flag() -> None:
    """X-B3-* headers are read; X-B3-Flags: 1 (debug) means sampled."""
    carrier = {
        "X-B3-TraceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "X-B3-SpanId": "00f067aa0ba902b7",
        "X-B3-Flags": "1",
    }
    assert only("b3multi").extract(carrier).context == SpanContext(TRACE, SPAN, 1, (), True)


def test_b3_inject_single_and_multi_without_parent_id() -> None:
    """b3 writes one header, b3multi three; neither writes a parent span id."""
    single: dict[str, str] = {}
    multi: dict[str, str] = {}
    only("b3").inject(single, SpanContext(TRACE, SPAN, 1))
    only("b3multi").inject(multi, SpanContext(TRACE, SPAN, 0))
    assert single == {"b3": "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"}
    assert multi == {
        "X-B3-TraceId": "4bf92f3577b34da6a3ce929d0e0e4736",
        "X-B3-SpanId": "00f067aa0ba902b7",
        "X-B3-Sampled": "0",
    }


# -- Azure Request-Id -------------------------------------------------------------------


def test_w3c_compatible_request_id_gives_its_ids() -> None:
    """|trace.span. is read as the W3C ids it holds."""
    context = only("request_id").extract(
        {"Request-Id": "|4bf92f3577b34da6a3ce929d0e0e4736.00f067aa0ba902b7."}
    )
    assert context.context == SpanContext(TRACE, SPAN, 1, (), True)


def test_hierarchical_request_id_derives_one_trace_per_root() -> None:
    """Legacy hierarchical ids sharing a root get the same derived trace id, distinct parents."""
    first = parse_request_id("|abc123.1.")
    second = parse_request_id("|abc123.1.2.")
    assert first is not None
    assert second is not None
    assert first.trace_id == second.trace_id
    assert first.span_id != second.span_id


def test_request_id_is_ignored_when_traceparent_is_present() -> None:
    """Request-Id is only the fallback of callers that send no traceparent."""
    carrier = {"traceparent": "garbage", "Request-Id": "|4bf92f3577b34da6a3ce929d0e0e4736.00f067aa0ba902b7."}
    assert only("request_id").extract(carrier).context is None


def test_request_id_inject() -> None:
    """Request-Id goes out in the W3C-compatible form."""
    carrier: dict[str, str] = {}
    only("request_id").inject(carrier, SpanContext(TRACE, SPAN, 1))
    assert carrier == {"Request-Id": "|4bf92f3577b34da6a3ce929d0e0e4736.00f067aa0ba902b7."}


# -- the composite and the configuration ------------------------------------------------


def test_known_names_match_the_configuration_names() -> None:
    """Every OTEL_PROPAGATORS name config accepts has a format, and the other way round."""
    assert set(propagation._FORMATS) | {"none"} == set(config.PROPAGATOR_NAMES)


def test_default_propagators_read_w3c_and_xray_and_write_all() -> None:
    """Default: tracecontext, baggage, xray; injection writes every format."""
    carrier: dict[str, str] = {}
    propagation.inject(carrier, SpanContext(TRACE, SPAN, 1))
    assert set(carrier) == {"traceparent", "X-Amzn-Trace-Id"}
    assert propagation.extract(carrier) == SpanContext(TRACE, SPAN, 1, (), True)
    assert propagation.fields() == ("traceparent", "tracestate", "baggage", "X-Amzn-Trace-Id")


def test_a_later_format_overrides_an_earlier_one() -> None:
    """As OpenTelemetry's composite: the last format that finds a valid context wins."""
    carrier = {"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": XRAY}
    reset(environ={"OTEL_PROPAGATORS": "tracecontext,xray"})
    assert propagation.extract(carrier) == SpanContext(XRAY_TRACE, 0x53995C3F42CD8AD8, 1, (), True)
    reset(environ={"OTEL_PROPAGATORS": "xray,tracecontext"})
    assert propagation.extract(carrier) == SpanContext(TRACE, SPAN, 1, (), True)


def test_an_invalid_later_format_does_not_erase_an_earlier_context() -> None:
    """A malformed header of a later format leaves the earlier context in place."""
    carrier = {"traceparent": TRACEPARENT, "X-Amzn-Trace-Id": "Root=broken"}
    assert propagation.extract(carrier) == SpanContext(TRACE, SPAN, 1, (), True)


def test_none_reads_and_writes_nothing() -> None:
    """OTEL_PROPAGATORS=none turns propagation off."""
    reset(environ={"OTEL_PROPAGATORS": "none"})
    carrier: dict[str, str] = {}
    propagation.inject(carrier, SpanContext(TRACE, SPAN, 1))
    assert carrier == {}
    assert propagation.extract({"traceparent": TRACEPARENT}) is None


def test_inject_defaults_to_the_current_span(exporter: object) -> None:
    """Without a context argument, the current span's context is written."""
    with nexs_serverless.tracer.span("work") as span:
        carrier: dict[str, str] = {}
        propagation.inject(carrier)
    assert carrier["traceparent"] == f"00-{span.trace_id:032x}-{span.span_id:016x}-01"


class _Exploding(dict):  # type: ignore[type-arg]
    def get(self, key: object, default: object = None) -> object:
        raise RuntimeError("broken carrier")


@pytest.mark.parametrize("carrier", [None, 42, "traceparent", ["traceparent"], object(), _Exploding()])
def test_extract_from_anything_never_raises(carrier: object) -> None:
    """Carriers that are not mappings, or that fail when read, give no context."""
    assert propagation.extract(carrier) is None


def test_extract_incoming_carries_baggage_and_extras() -> None:
    """The full extraction returns the context, the baggage and the X-Ray pairs to keep."""
    incoming = propagation.extract_incoming(
        {"traceparent": TRACEPARENT, "baggage": "k=v", "X-Amzn-Trace-Id": "Root=bad"}
    )
    assert isinstance(incoming, Incoming)
    assert incoming.baggage == {"k": ("v", "")}
    assert incoming.context == SpanContext(TRACE, SPAN, 1, (), True)


def test_headers_with_byte_values_are_read() -> None:
    """Byte header values (raw HTTP servers) are read as Latin-1 text."""
    assert propagation.extract({b"traceparent": b"x", "traceparent": TRACEPARENT.encode()}) is not None


def test_baggage_lookups_with_a_name_that_is_not_a_string_find_nothing() -> None:
    """``baggage.get([])`` / ``remove([])`` answer as for an absent name (they raised TypeError)."""
    baggage.set("tenant", "acme")
    try:
        assert baggage.get([]) is None  # type: ignore[arg-type]
        baggage.remove([])  # type: ignore[arg-type]
        assert baggage.get_all() == {"tenant": "acme"}
    finally:
        baggage.clear()
