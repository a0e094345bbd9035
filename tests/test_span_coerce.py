"""Wrong-typed span API arguments: converted by `_span_coerce`, which a cold start never loads (issue #5)."""

from __future__ import annotations

import collections
import enum
import json
import os
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

import nexs_serverless
from nexs_serverless import SpanContext, StatusCode, configure, flush, stats, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan

MODULE = "nexs_serverless._span_coerce"
EVENTS = Path(nexs_serverless.__file__).parent / "events"


class Level(enum.IntEnum):
    HIGH = 3


class Region(str, enum.Enum):
    EU = "eu-west-1"


class Point(collections.namedtuple("Point", "x y")):
    """A tuple subclass: not the common ``tuple`` type, kept as the tuple it is."""


class Order:
    def __str__(self) -> str:
        return "order-42"


@pytest.fixture(autouse=True)
def _unloaded() -> Iterator[None]:
    """Each test starts with the conversion module unloaded, so that a test sees whether it loads."""
    sys.modules.pop(MODULE, None)
    yield
    sys.modules.pop(MODULE, None)


def _loaded() -> bool:
    return MODULE in sys.modules


def _count(name: str) -> int:
    return stats().get(name, 0)  # type: ignore[no-any-return]


def _exported(exporter: InMemoryExporter, name: str) -> FinishedSpan:
    flush()
    (span,) = [span for span in exporter.spans if span.name == name]
    return span


# -- the cold path -------------------------------------------------------------------------------

COLD_PATH = r"""
import io, json, sys
from pathlib import Path

from nexs_serverless import SpanContext, StatusCode, configure, traced_handler, tracer
from nexs_serverless.exporters import ConsoleExporter, InMemoryExporter
from nexs_serverless.testing import LambdaContext

memory = InMemoryExporter()
console = io.StringIO()
configure(exporters=[memory, ConsoleExporter(stream=console, verbose=True)])


@traced_handler
def handler(event, context):
    attributes = {"order.id": "42", "order.count": 3, "order.total": 9.5, "order.paid": True}
    with tracer.span("work", attributes=attributes, links=[SpanContext(5, 6)]) as span:
        span.set_attribute("order.tags", ["a", "b"])
        span.set_attribute("order.missing", None)
        span.set_attributes({"db.system": "dynamodb", "retries": (0, 1)})
        span.add_event("fetched", {"rows": 3})
        span.add_link(SpanContext(7, 8), {"why": "batch"})
        span.update_name("work-done")
        span.set_status(StatusCode.OK)
        child = tracer.span("child", kind=2, parent=span.context)
        child.end()
    if event.get("fail"):
        raise ValueError("bad order")
    return {"statusCode": 200}


events = [json.loads(Path(path).read_text(encoding="utf-8")) for path in sys.argv[1:]]
for event in [*events, {"fail": True}]:
    try:
        handler(event, LambdaContext())
    except ValueError:
        pass
loaded = "nexs_serverless._span_coerce" in sys.modules
spans = memory.get_finished_spans()
rare = tracer.span("rare")
rare.end(1.7e18)
print(json.dumps({
    "loaded_on_cold_path": loaded,
    "invocations": len(events) + 1,
    "roots": sum(1 for s in spans if "faas.trigger" in s.attributes),
    "work": sum(1 for s in spans if s.name == "work-done"),
    "errors": sum(1 for s in spans if s.status_code == StatusCode.ERROR),
    "printed": console.getvalue().count("work-done"),
    "loaded_after_rare": "nexs_serverless._span_coerce" in sys.modules,
}))
"""


def test_a_cold_path_shaped_invocation_does_not_load_the_conversions() -> None:
    """Handlers for every AWS trigger, common argument types and a failure leave `_span_coerce` unloaded."""
    lambda_events = sorted(
        str(path) for path in EVENTS.glob("*.json") if not path.name.startswith(("azure-", "gcp-"))
    )
    assert lambda_events  # the shipped samples are where this test expects them
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_", "AWS_LAMBDA_"))}
    out = subprocess.run(
        [sys.executable, "-c", COLD_PATH, *lambda_events],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    report = json.loads(out.stdout)
    assert report["loaded_on_cold_path"] is False
    assert report["roots"] == report["invocations"] == len(lambda_events) + 1
    assert report["work"] == report["printed"] == report["invocations"]
    assert report["errors"] >= 1  # the failing invocation's root
    assert report["loaded_after_rare"] is True  # the check above can see the module load


def test_common_argument_types_do_not_load_the_conversions(exporter: InMemoryExporter) -> None:
    """Str/int/float/bool values, None, plain lists, dicts, int times and statuses, our contexts: no load."""
    configure(environ={"OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT": "3"})
    span = tracer.span("s", attributes={"a": "x", "n": [1, 2]}, parent=SpanContext(1, 2))
    span.set_attributes({"b": 1.5, "c": False, "d": None, "e": ("abcd", "ef"), "f": []})
    span.add_event("e", {"k": "v"}, timestamp_ns=5)
    span.add_link(SpanContext(3, 4), {"k": 1})
    span.record_exception(ValueError("bad"), {"extra": "yes"})
    span.set_status(StatusCode.ERROR, "broken")
    span.end(10)
    exported = _exported(exporter, "s")
    assert not _loaded()
    assert exported.attributes == {"a": "x", "n": (1, 2), "b": 1.5, "c": False, "e": ("abc", "ef"), "f": ()}
    assert exported.dropped_attributes == 1  # None
    assert exported.end_ns == 10
    assert exported.events[1].attributes["extra"] == "yes"
    assert (exported.status_code, exported.status_description) == (StatusCode.ERROR, "broken")


# -- each rare conversion loads the module and exports what it did ----------------------------------


def test_statuses_of_other_types_load_the_conversions(exporter: InMemoryExporter) -> None:
    """A float code is ignored; OpenTelemetry's ``StatusCode`` and ``Status`` are read as ours."""
    otel_trace = pytest.importorskip("opentelemetry.trace")
    ignored = tracer.span("ignored")
    ignored.set_status(2.0, "why")  # type: ignore[arg-type]
    ignored.end()
    by_code = tracer.span("by-code")
    by_code.set_status(otel_trace.StatusCode.ERROR, "boom")
    by_code.end()
    by_status = tracer.span("by-status")
    by_status.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, "bust"))
    by_status.end()
    assert _loaded()
    assert _exported(exporter, "ignored").status_code == StatusCode.UNSET
    by_code_exported = _exported(exporter, "by-code")
    assert (by_code_exported.status_code, by_code_exported.status_description) == (StatusCode.ERROR, "boom")
    assert _exported(exporter, "by-status").status_description == "bust"


@pytest.mark.parametrize(("when", "expected"), [(1.7e18, 1_700_000_000_000_000_000), (0, None), (-5, None)])
def test_times_that_are_not_positive_ints_load_the_conversions(
    exporter: InMemoryExporter, when: object, expected: int | None
) -> None:
    """A float end or event time is converted; zero or a negative time is now."""
    span = tracer.span("s")
    span.add_event("e", timestamp_ns=when)  # type: ignore[arg-type]
    span.end(when)  # type: ignore[arg-type]
    exported = _exported(exporter, "s")
    assert _loaded()
    assert type(exported.end_ns) is int
    assert type(exported.events[0].timestamp_ns) is int
    if expected is None:
        assert exported.end_ns >= exported.start_ns
    else:
        assert exported.end_ns == exported.events[0].timestamp_ns == expected


def test_links_to_spans_and_opentelemetry_contexts_load_the_conversions(exporter: InMemoryExporter) -> None:
    """Links given as a span or OpenTelemetry's context are stored as ours; junk is dropped and counted."""
    otel_trace = pytest.importorskip("opentelemetry.trace")
    other = tracer.span("other")
    otel_context = otel_trace.SpanContext(
        trace_id=5,
        span_id=6,
        is_remote=True,
        trace_flags=otel_trace.TraceFlags(1),
        trace_state=otel_trace.TraceState([("k", "v")]),
    )
    span = tracer.span("s")
    span.add_link(other)  # type: ignore[arg-type]
    span.add_link(otel_context, {"why": "fan-in"})  # type: ignore[arg-type]
    span.add_link(None)  # type: ignore[arg-type]
    span.end()
    exported = _exported(exporter, "s")
    assert _loaded()
    assert [link.context for link in exported.links] == [
        other.context,
        SpanContext(5, 6, 1, (("k", "v"),), True),
    ]
    assert exported.links[1].attributes == {"why": "fan-in"}
    assert exported.dropped_links == 1


def test_an_opentelemetry_parent_loads_the_conversions(exporter: InMemoryExporter) -> None:
    """An explicit parent given as OpenTelemetry's context goes through `_span_coerce.parent_of`."""
    otel_trace = pytest.importorskip("opentelemetry.trace")
    parent = otel_trace.SpanContext(
        trace_id=5, span_id=6, is_remote=False, trace_flags=otel_trace.TraceFlags(1)
    )
    tracer.span("child", parent=parent).end()
    exported = _exported(exporter, "child")
    assert _loaded()
    assert (exported.trace_id, exported.parent_span_id) == (5, 6)


def test_other_mappings_and_lists_of_pairs_load_the_conversions(exporter: InMemoryExporter) -> None:
    """Another mapping is read; a list of pairs is dropped and counted, in each method that takes them."""
    span = tracer.span("s")
    span.set_attributes(types.MappingProxyType({"a": 1}))
    span.set_attributes([("b", 2)])  # type: ignore[arg-type]
    span.add_event("pairs", [("c", 3)])  # type: ignore[arg-type]
    span.add_event("ordered", collections.OrderedDict(d=4))
    span.record_exception(ValueError("bad"), types.MappingProxyType({"e": 5}))
    span.end()
    exported = _exported(exporter, "s")
    assert _loaded()
    assert exported.attributes == {"a": 1}
    assert exported.dropped_attributes == 1
    pairs, ordered, exception = exported.events
    assert (pairs.attributes, pairs.dropped_attributes) == ({}, 1)
    assert (ordered.attributes, ordered.dropped_attributes) == ({"d": 4}, 0)
    assert exception.attributes["e"] == 5


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Level.HIGH, 3),
        (Region.EU, "eu-west-1"),
        (b"caf\xc3\xa9", "café"),
        (Order(), "order-42"),
        ([Level.HIGH, Level.HIGH], (3, 3)),
        ([1, 2.5], (1.0, 2.5)),
        (["a", 1], ("a", "1")),
        (Point(1, 2), (1, 2)),
    ],
)
def test_attribute_values_of_other_types_load_the_conversions(
    exporter: InMemoryExporter, value: object, expected: object
) -> None:
    """Enums, bytes, objects and mixed or subclassed sequences are converted as before, and counted."""
    before = _count("attributes_converted")
    with tracer.span("s") as span:
        span.set_attribute("v", value)
    exported = _exported(exporter, "s")
    assert _loaded()
    assert exported.attributes["v"] == expected
    assert type(exported.attributes["v"]) is type(expected)
    if type(value) is Point:  # one primitive type inside: kept as it is, not a conversion
        assert _count("attributes_converted") == before
    else:
        assert _count("attributes_converted") > before


def test_an_attribute_value_whose_text_raises_is_dropped_and_counted(exporter: InMemoryExporter) -> None:
    """A ``__str__`` that raises drops the value instead of reaching the caller."""

    class Unprintable:
        def __str__(self) -> str:
            raise RuntimeError("no text")

    before = _count("attributes_dropped")
    with tracer.span("s") as span:
        span.set_attribute("v", Unprintable())
    exported = _exported(exporter, "s")
    assert _loaded()
    assert "v" not in exported.attributes
    assert exported.dropped_attributes == 1
    assert _count("attributes_dropped") > before
