"""`tracer.span` arguments of another type: converted at start, so the batch encodes (session 11).

A name that is not a str, a start time that is not a positive int or a kind of
another type, stored as given, made the OTLP encoding of the whole batch fail:
every span of the invocation was lost. Attributes that are not a mapping and
links that are not a collection raised at the caller. The conversions live in
`_span_coerce`, which the common case never loads.
"""

from __future__ import annotations

import collections
import enum
import json
import os
import subprocess
import sys
import types

import pytest
from support.otlp_receiver import OTLPReceiver

from nexs_serverless import Link, SpanContext, SpanKind, flush, stats, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter, OTLPHttpExporter
from nexs_serverless.exporters.otlp_encode import encode_spans
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.testing import LambdaContext, reset

MODULE = "nexs_serverless._span_coerce"
# Redaction also turns a span name into text; off, so that only the tracer's conversion is tested.
NO_REDACTION = {"NEXS_REDACTION_ENABLED": "false"}


class Kind(enum.IntEnum):
    CLIENT = 2


@pytest.fixture
def exporting_to_receiver(receiver: OTLPReceiver) -> None:
    """Every flush of the test exports to `receiver` over OTLP/HTTP (the shared fixture only serves)."""
    reset(exporters=[OTLPHttpExporter(endpoint=receiver.url, timeout_s=5.0)], environ=NO_REDACTION)


def _exported(exporter: InMemoryExporter, name: str) -> FinishedSpan:
    flush()
    (span,) = [span for span in exporter.spans if span.name == name]
    assert encode_spans(exporter.spans)  # the batch these spans make still encodes
    return span


@pytest.mark.parametrize(
    ("arguments", "name", "kind", "start_ns"),
    [
        ({"name": 123}, "123", SpanKind.INTERNAL, None),
        ({"name": None}, "None", SpanKind.INTERNAL, None),
        ({"start_ns": 1.5e18}, "odd", SpanKind.INTERNAL, 1_500_000_000_000_000_000),
        ({"start_ns": "soon"}, "odd", SpanKind.INTERNAL, None),
        ({"start_ns": -5}, "odd", SpanKind.INTERNAL, None),
        ({"kind": 2.0}, "odd", SpanKind.INTERNAL, None),
        ({"kind": "client"}, "odd", SpanKind.CLIENT, None),
        ({"kind": Kind.CLIENT}, "odd", SpanKind.CLIENT, None),
    ],
)
@pytest.mark.usefixtures("exporting_to_receiver")
def test_an_odd_argument_no_longer_loses_the_batch_over_otlp(
    receiver: OTLPReceiver, arguments: dict[str, object], name: str, kind: int, start_ns: int | None
) -> None:
    """The odd span and the spans around it arrive, with a str name, an int start and a known kind."""
    tracer.span("before").end()
    odd = tracer.span(arguments.pop("name", "odd"), **arguments)  # type: ignore[arg-type]
    odd.end()
    tracer.span("after").end()
    flush()
    arrived = {span.name: span for span in receiver.spans()}
    assert sorted(arrived) == sorted(["before", name, "after"])
    span = arrived[name]
    assert span.kind == kind + 1  # OTLP's kinds are ours plus one
    if start_ns is None:  # junk is now, as `Span.end` makes it
        assert arrived["before"].start_time_unix_nano <= span.start_time_unix_nano
        assert span.start_time_unix_nano <= arrived["after"].start_time_unix_nano
    else:
        assert span.start_time_unix_nano == start_ns
    assert stats().get("spans_dropped_serialization", 0) == 0


@pytest.mark.usefixtures("exporting_to_receiver")
def test_an_invocation_with_an_odd_span_exports_all_its_spans(receiver: OTLPReceiver) -> None:
    """A handler whose span has a float start and an int name: its root and every span arrive."""

    @traced_handler(name="orders")
    def handler(event: dict[str, object], context: object) -> str:
        tracer.span("first").end()
        tracer.span(404, start_ns=1.5e18).end()  # type: ignore[arg-type]
        tracer.span("last").end()
        return "ok"

    assert handler({}, LambdaContext()) == "ok"
    assert sorted(receiver.span_names()) == ["404", "first", "last", "orders"]


def test_attributes_that_are_not_a_dict_are_read_or_dropped_and_counted(exporter: InMemoryExporter) -> None:
    """Another mapping is read; a list of pairs, a str or an int is one counted drop instead of raising."""
    before = stats().get("attributes_dropped", 0)
    tracer.span("proxy", attributes=types.MappingProxyType({"a": 1, "b": [1, 2]})).end()
    tracer.span("ordered", attributes=collections.OrderedDict(c="x")).end()
    for junk in ([("a", 1)], "abc", 5):
        tracer.span("junk", attributes=junk).end()  # type: ignore[arg-type]
    flush()
    by_name = collections.defaultdict(list)
    for span in exporter.spans:
        by_name[span.name].append(span)
    assert by_name["proxy"][0].attributes == {"a": 1, "b": (1, 2)}
    assert by_name["ordered"][0].attributes == {"c": "x"}
    assert [(span.attributes, span.dropped_attributes) for span in by_name["junk"]] == [({}, 1)] * 3
    assert stats()["attributes_dropped"] == before + 3
    assert encode_spans(exporter.spans)


def test_links_that_are_not_a_list_are_read_or_dropped_and_counted(exporter: InMemoryExporter) -> None:
    """A context alone is one link, a generator its links; what is not a collection is one counted drop."""
    before = stats().get("links_dropped_invalid", 0)
    tracer.span("alone", links=SpanContext(5, 6)).end()
    tracer.span("generator", links=(Link(SpanContext(7, 8), {"k": "v"}) for _ in range(2))).end()
    tracer.span("junk", links=5).end()  # type: ignore[arg-type]
    alone = _exported(exporter, "alone")
    generator = _exported(exporter, "generator")
    junk = _exported(exporter, "junk")
    assert [link.context for link in alone.links] == [SpanContext(5, 6)]
    assert alone.dropped_links == 0
    assert [(link.context, link.attributes) for link in generator.links] == [
        (SpanContext(7, 8), {"k": "v"})
    ] * 2
    assert (junk.links, junk.dropped_links) == ((), 1)
    assert stats()["links_dropped_invalid"] == before + 1


def test_a_span_given_as_a_link_is_its_context_without_its_attributes(exporter: InMemoryExporter) -> None:
    """``links=[span]`` links to it as `add_link(span)` does (its attributes were copied onto the link)."""
    with tracer.span("other", attributes={"db.statement": "SELECT 1"}) as other:
        pass
    kept = _exported(exporter, "other")
    tracer.span("s", links=[other, kept, Link(SpanContext(5, 6), {"why": "batch"})]).end()  # type: ignore[list-item]
    span = _exported(exporter, "s")
    assert [(link.context, link.attributes) for link in span.links] == [
        (other.context, {}),
        (kept.context, {}),
        (SpanContext(5, 6), {"why": "batch"}),
    ]


def test_opentelemetry_links_and_spans_as_links_keep_their_own_attributes(exporter: InMemoryExporter) -> None:
    """OpenTelemetry's ``Link`` keeps its attributes; its span (from the SDK) is a context alone."""
    otel_trace = pytest.importorskip("opentelemetry.trace")
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    context = otel_trace.SpanContext(
        trace_id=5, span_id=6, is_remote=False, trace_flags=otel_trace.TraceFlags(1)
    )
    sdk_span = sdk_trace.TracerProvider().get_tracer("t").start_span("sdk", attributes={"secret": "x"})
    tracer.span("s", links=[otel_trace.Link(context, {"why": "fan-in"}), sdk_span]).end()
    sdk_span.end()
    span = _exported(exporter, "s")
    sdk_context = sdk_span.get_span_context()
    assert [(link.context[:2], link.attributes) for link in span.links] == [
        ((5, 6), {"why": "fan-in"}),
        ((sdk_context.trace_id, sdk_context.span_id), {}),
    ]


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (2.0, SpanKind.INTERNAL),
        ([2], SpanKind.INTERNAL),
        (True, SpanKind.SERVER),
        ("SpanKind.CLIENT", SpanKind.CLIENT),
    ],
)
def test_a_kind_of_another_type_is_stored_as_an_int(
    exporter: InMemoryExporter, kind: object, expected: int
) -> None:
    """A float or a list is INTERNAL (a list raised, a float broke the batch); a bool or name, its kind."""
    tracer.span("s", kind=kind).end()  # type: ignore[arg-type]
    span = _exported(exporter, "s")
    assert span.kind == expected
    assert type(span.kind) is int


COMMON_PATH = r"""
import json, sys
from nexs_serverless import Link, SpanContext, SpanKind, configure, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext

memory = InMemoryExporter()
configure(exporters=[memory])


@traced_handler(name="orders")
def handler(event, context):
    with tracer.span("a", kind=SpanKind.CLIENT, attributes={"k": "v"}, links=[SpanContext(5, 6)]) as a:
        tracer.span("b", start_ns=1_700_000_000_000_000_000, links=(Link(SpanContext(7, 8)),)).end()
        tracer.span("c", kind=0, parent=a.context, attributes={}).end()
        tracer.span("d", parent=a).end()
        tracer.span("e", parent=tracer.ROOT, start_ns=None, links=[]).end()
    return "ok"


handler({}, LambdaContext())
loaded = "nexs_serverless._span_coerce" in sys.modules
exported = len(memory.get_finished_spans())
tracer.span("late", start_ns=1.5e18).end()
after = "nexs_serverless._span_coerce" in sys.modules
print(json.dumps({"loaded": loaded, "exported": exported, "loaded_after": after}))
"""


def test_common_argument_types_at_span_start_do_not_load_the_conversions() -> None:
    """Str names, int kinds and starts, dicts, lists of links, our parents: `_span_coerce` stays unloaded."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_", "AWS_LAMBDA_"))}
    out = subprocess.run(
        [sys.executable, "-c", COMMON_PATH], capture_output=True, text=True, env=env, check=True, timeout=120
    )
    report = json.loads(out.stdout)
    assert report == {"loaded": False, "exported": 6, "loaded_after": True}


def test_times_past_64_bits_are_taken_as_now_and_the_batch_still_encodes() -> None:
    """A start or end time of 2**63 ns or more (no such time; it does not fit the encoders'
    64-bit fields) made the encoding of the whole batch fail; it is taken as now."""
    memory = InMemoryExporter()
    reset(exporters=[memory])
    with tracer.span("late start", start_ns=2**64 + 5):
        pass
    with tracer.span("late end") as span:
        span.add_event("late event", timestamp_ns=2**64)
        span.end(2**70)
    flush()
    spans = memory.get_finished_spans()
    assert sorted(span.name for span in spans) == ["late end", "late start"]
    assert all(0 < span.start_ns <= span.end_ns < 2**63 for span in spans)
    (event,) = [event for span in spans for event in span.events]
    assert 0 < event.timestamp_ns < 2**63
    assert encode_spans(spans)  # the batch encodes
