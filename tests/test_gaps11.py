"""B3's deferred sampling, header-pair lists as carriers, Powertools metadata namespaces with dots."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from aws_lambda_powertools import Tracer
from aws_lambda_powertools.tracing import tracer as powertools_tracer_module
from aws_xray_sdk.core.models.segment import Segment

from nexs_serverless import propagation, stats, traced_handler
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.exporters.xray_segments import SegmentOptions, to_document
from nexs_serverless.model import SpanContext
from nexs_serverless.powertools import METADATA_PREFIX, NexsProvider
from nexs_serverless.propagation.incoming import Incoming
from nexs_serverless.sampling.head import TraceIdRatio
from nexs_serverless.testing import LambdaContext, capture_spans, events, reset

SPAN = 0x00F067AA0BA902B7
# The low 64 bits of the first are under TraceIdRatio(0.5)'s bound, the second's over.
LOW_TRACE = 0x5759E988BD862E3F11BE46A994272793
HIGH_TRACE = 0x5759E988BD862E3FE1BE46A994272793
TRACE_HEX = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACE = int(TRACE_HEX, 16)
TRACEPARENT = f"00-{TRACE_HEX}-00f067aa0ba902b7-01"


# -- B3: no sampling state is "Defer", and the configured sampler decides ---------------------------


def _deferred(form: str, trace_id: int) -> dict[str, str]:
    """B3 headers for `trace_id` with no sampling state, in the single or the multi form."""
    if form == "b3":
        return {"b3": f"{trace_id:032x}-{SPAN:016x}"}
    return {"X-B3-TraceId": f"{trace_id:032x}", "X-B3-SpanId": f"{SPAN:016x}"}


@pytest.mark.parametrize("form", ["b3", "b3multi"])
@pytest.mark.parametrize(
    ("sampler", "arg", "trace_id", "recorded"),
    [
        ("parentbased_always_on", "1.0", HIGH_TRACE, True),
        ("parentbased_traceidratio", "0.5", LOW_TRACE, True),
        ("parentbased_traceidratio", "0.5", HIGH_TRACE, False),
        ("traceidratio", "0.5", LOW_TRACE, True),
        ("traceidratio", "0.5", HIGH_TRACE, False),
        ("parentbased_always_off", "1.0", LOW_TRACE, False),
    ],
)
def test_deferred_b3_continues_the_trace_with_the_samplers_root_decision(
    form: str, sampler: str, arg: str, trace_id: int, recorded: bool
) -> None:
    """A B3 context without a sampling state continues its trace under its parent, recorded as the
    sampler would record a root with that id; the outgoing B3 headers carry that decision."""
    exporter = InMemoryExporter()
    environ = {"OTEL_PROPAGATORS": form, "OTEL_TRACES_SAMPLER": sampler, "OTEL_TRACES_SAMPLER_ARG": arg}
    reset(environ=environ, exporters=[exporter])
    outgoing: dict[str, str] = {}

    @traced_handler
    def handler(event: object, context: object) -> str:
        propagation.inject(outgoing)
        return "ok"

    event = events.api_gateway_v2(method="GET", path="/", headers=_deferred(form, trace_id))
    assert handler(event, LambdaContext()) == "ok"
    found = [(s.trace_id, s.parent_span_id, s.parent_is_remote) for s in exporter.get_finished_spans()]
    assert found == ([(trace_id, SPAN, True)] if recorded else [])
    flag = "1" if recorded else "0"
    if form == "b3":
        assert outgoing["b3"].startswith(f"{trace_id:032x}-")
        assert outgoing["b3"].endswith(f"-{flag}")
    else:
        assert outgoing["X-B3-TraceId"] == f"{trace_id:032x}"
        assert outgoing["X-B3-Sampled"] == flag


@pytest.mark.parametrize("form", ["b3", "b3multi"])
def test_deferred_b3_takes_each_trace_ids_own_decision(form: str) -> None:
    """`propagation.extract` gives a deferred context the sampler's root decision for its id, ids kept;
    an empty X-B3-Sampled is no sampling state either."""
    sampler = {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    reset(environ={"OTEL_PROPAGATORS": form, **sampler})
    decisions = set()
    for trace_id in (LOW_TRACE, HIGH_TRACE):
        decided = 1 if TraceIdRatio(0.5).should_sample(trace_id, None) else 0
        decisions.add(decided)
        expected = SpanContext(trace_id, SPAN, decided, (), True)
        carrier = _deferred(form, trace_id)
        assert propagation.extract(carrier) == expected
        assert propagation.extract_incoming(carrier).context == expected
        if form == "b3multi":
            assert propagation.extract({**carrier, "X-B3-Sampled": ""}) == expected
    assert decisions == {0, 1}


@pytest.mark.parametrize(
    ("headers", "sampler", "flags"),
    [
        ({"b3": f"{TRACE_HEX}-{SPAN:016x}-1"}, "parentbased_always_off", 1),
        ({"b3": f"{TRACE_HEX}-{SPAN:016x}-d"}, "parentbased_always_off", 1),
        ({"b3": f"{TRACE_HEX}-{SPAN:016x}-0"}, "parentbased_always_on", 0),
        ({"b3": f"{TRACE_HEX}-{SPAN:016x}-0-05e3ac9a4f6e3b90"}, "parentbased_always_on", 0),
        ({"X-B3-TraceId": TRACE_HEX, "X-B3-SpanId": f"{SPAN:016x}", "X-B3-Sampled": "1"}, "always_off", 1),
        ({"X-B3-TraceId": TRACE_HEX, "X-B3-SpanId": f"{SPAN:016x}", "X-B3-Sampled": "true"}, "always_off", 1),
        ({"X-B3-TraceId": TRACE_HEX, "X-B3-SpanId": f"{SPAN:016x}", "X-B3-Flags": "1"}, "always_off", 1),
        ({"X-B3-TraceId": TRACE_HEX, "X-B3-SpanId": f"{SPAN:016x}", "X-B3-Sampled": "0"}, "always_on", 0),
        ({"X-B3-TraceId": TRACE_HEX, "X-B3-SpanId": f"{SPAN:016x}", "X-B3-Sampled": "false"}, "always_on", 0),
    ],
)
def test_an_explicit_b3_sampling_state_is_kept_whatever_the_sampler(
    headers: dict[str, str], sampler: str, flags: int
) -> None:
    """Accept (1, true), debug (d, X-B3-Flags: 1) and deny (0, false) are the sender's decision, kept."""
    reset(environ={"OTEL_PROPAGATORS": "b3", "OTEL_TRACES_SAMPLER": sampler})
    assert propagation.extract(headers) == SpanContext(TRACE, SPAN, flags, (), True)


# -- lists of header pairs as carriers ---------------------------------------------------------------


def _each_form(pairs: list[tuple[str, str]]) -> list[object]:
    """`pairs` as an ASGI scope's headers (bytes, lower case), as str lists, and as a tuple of tuples."""
    return [
        [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in pairs],
        [[name, value] for name, value in pairs],
        tuple((name.upper(), value) for name, value in pairs),
    ]


XRAY = "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1"
FORMATS = [
    ("tracecontext", [("traceparent", TRACEPARENT)], SpanContext(TRACE, SPAN, 1, (), True)),
    ("xray", [("X-Amzn-Trace-Id", XRAY)], SpanContext(HIGH_TRACE, 0x53995C3F42CD8AD8, 1, (), True)),
    ("b3", [("b3", f"{TRACE_HEX}-{SPAN:016x}-1")], SpanContext(TRACE, SPAN, 1, (), True)),
    (
        "b3multi",
        [("X-B3-TraceId", TRACE_HEX), ("X-B3-SpanId", f"{SPAN:016x}"), ("X-B3-Sampled", "1")],
        SpanContext(TRACE, SPAN, 1, (), True),
    ),
    (
        "cloud_trace",
        [("X-Cloud-Trace-Context", f"{TRACE_HEX}/{SPAN};o=1")],
        SpanContext(TRACE, SPAN, 1, (), True),
    ),
    ("request_id", [("Request-Id", f"|{TRACE_HEX}.{SPAN:016x}.")], SpanContext(TRACE, SPAN, 1, (), True)),
]


@pytest.mark.parametrize(("name", "pairs", "expected"), FORMATS)
def test_every_format_reads_a_list_of_header_pairs(
    name: str, pairs: list[tuple[str, str]], expected: SpanContext
) -> None:
    """Each format's own `extract`, and `propagation.extract` with that format configured, read the
    context from a list of (name, value) pairs, bytes or text, whatever the names' case."""
    reset(environ={"OTEL_PROPAGATORS": name})
    fmt = propagation.CompositePropagator((name,)).propagators[0]
    for carrier in _each_form(pairs):
        incoming = Incoming()
        fmt.extract(carrier, incoming)  # type: ignore[attr-defined]
        assert incoming.context == expected, carrier
        assert propagation.extract(carrier) == expected, carrier
        assert propagation.extract_incoming(carrier).context == expected, carrier


def test_an_asgi_scopes_headers_give_context_baggage_and_joined_lines() -> None:
    """With the default formats, an ASGI scope's headers give the context, its repeated tracestate
    lines joined into one list, and baggage from every baggage line."""
    headers = [
        (b"host", b"example.com"),
        (b"traceparent", TRACEPARENT.encode()),
        (b"tracestate", b"a=1"),
        (b"tracestate", b"b=2"),
        (b"baggage", b"user=alice"),
        (b"baggage", b"tenant=acme"),
    ]
    expected = SpanContext(TRACE, SPAN, 1, (("a", "1"), ("b", "2")), True)
    assert propagation.extract(headers) == expected
    incoming = propagation.extract_incoming(headers)
    assert incoming.context == expected
    assert incoming.baggage == {"user": ("alice", ""), "tenant": ("acme", "")}


def test_two_traceparent_pairs_are_invalid_as_two_lines_are() -> None:
    """Repeated names are joined as repeated header lines are: one traceparent pair gives the context,
    two give none."""
    other = f"00-{HIGH_TRACE:032x}-00f067aa0ba902b7-01"
    one = [(b"traceparent", TRACEPARENT.encode())]
    assert propagation.extract(one) == SpanContext(TRACE, SPAN, 1, (), True)
    assert propagation.extract([*one, (b"traceparent", other.encode())]) is None


@pytest.mark.parametrize(
    "extra",
    [["traceparent", TRACEPARENT], [("tracestate", "a=1", "x")], [3], ["ab"]],
)
def test_a_list_with_anything_but_header_pairs_gives_no_context(extra: list[object]) -> None:
    """A list of pairs reads; with any item other than a 2-item pair it reads as no headers, no error."""
    pairs: list[object] = [("traceparent", TRACEPARENT)]
    assert propagation.extract(pairs) == SpanContext(TRACE, SPAN, 1, (), True)
    before = stats().get("internal_errors", 0)
    assert propagation.extract(pairs + extra) is None
    assert propagation.extract_incoming(pairs + extra).context is None
    assert stats().get("internal_errors", 0) == before


# -- Powertools metadata namespaces, as the X-Ray SDK files them --------------------------------------


@pytest.fixture
def _fresh_powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Powertools keeps Tracer config on the class and cold start in a module global: reset both."""
    Tracer._reset_config()
    monkeypatch.setattr(powertools_tracer_module, "is_cold_start", True)
    yield
    Tracer._reset_config()


def _record_metadata(calls: list[tuple[str, object, str]]) -> tuple[dict[str, object], int]:
    """The attributes of one Powertools subsegment after `put_metadata(*call)` for each of `calls`,
    and the metadata counted as dropped."""
    tracer = Tracer(service="payments.api", provider=NexsProvider(), disabled=False)
    with capture_spans() as spans:
        with tracer.provider.in_subsegment("## work") as subsegment:
            for key, value, namespace in calls:
                subsegment.put_metadata(key, value, namespace)
        dropped = stats().get("powertools_metadata_dropped", 0)
    (span,) = spans.get_finished_spans()
    return dict(span.attributes), dropped


CALLS: list[tuple[str, object, str]] = [
    ("k", {"v": 1}, "a.b"),
    ("order.id", 7, "default"),
    ("plain", "x", "payment"),
    ("share", 0.5, "50%"),
    ("odd", True, "%2E"),
]


@pytest.mark.usefixtures("_fresh_powertools")
def test_a_metadata_namespaces_own_dots_are_escaped_in_the_attribute_name() -> None:
    """A namespace's '.' and '%' are written %2E and %25, so the first dot after the prefix ends it;
    dots in the key stay as they are."""
    assert _record_metadata(CALLS)[0] == {
        METADATA_PREFIX + "a%2Eb.k": '{"v":1}',
        METADATA_PREFIX + "default.order.id": 7,
        METADATA_PREFIX + "payment.plain": "x",
        METADATA_PREFIX + "50%25.share": 0.5,
        METADATA_PREFIX + "%252E.odd": True,
    }


@pytest.mark.usefixtures("_fresh_powertools")
def test_a_reserved_aws_namespace_is_dropped_as_the_xray_sdk_drops_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """put_metadata under 'AWS.…' records nothing, is counted, and is logged once."""
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        attributes, dropped = _record_metadata([("r", 1, "AWS.x"), ("s", 2, "AWS.y"), ("kept", 3, "app")])
    assert attributes == {METADATA_PREFIX + "app.kept": 3}
    assert dropped == 2
    assert len([r for r in caplog.records if "AWS." in r.getMessage()]) == 1


@pytest.mark.usefixtures("_fresh_powertools")
def test_xray_documents_file_metadata_under_the_namespaces_the_xray_sdk_uses() -> None:
    """The X-Ray document of a Powertools subsegment has the metadata sections the X-Ray SDK itself
    writes for the same put_metadata calls (dotted namespaces and keys, reserved AWS. dropped)."""
    calls = [*CALLS, ("r", 1, "AWS.x")]
    sdk_segment = Segment("work")
    for key, value, namespace in calls:
        sdk_segment.put_metadata(key, value, namespace)
    tracer = Tracer(service="payments.api", provider=NexsProvider(), disabled=False)
    with capture_spans() as spans:
        with tracer.provider.in_subsegment("## work") as subsegment:
            for key, value, namespace in calls:
                subsegment.put_metadata(key, value, namespace)
    (span,) = spans.get_finished_spans()
    metadata = dict(to_document(span, SegmentOptions())["metadata"])  # type: ignore[call-overload]
    metadata.pop("otel")
    assert metadata == sdk_segment.to_dict()["metadata"]
