"""Session 12, `inject` into a list of header pairs (an ASGI message's or httpx's raw headers)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

import nexs_serverless
from nexs_serverless import baggage, propagation, tracer
from nexs_serverless.model import SpanContext
from nexs_serverless.testing import reset

TRACE = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
FORMATS = sorted(propagation._FORMATS)
TRACE_FORMATS = [name for name in FORMATS if name != "baggage"]
ORDERS = ["tracecontext,baggage,xray", "b3,baggage,tracecontext"]  # the default path, the general one

Inject = Callable[[object, SpanContext], None]


def _by_module(carrier: object, context: SpanContext) -> None:
    propagation.inject(carrier, context)


def _by_method(carrier: object, context: SpanContext) -> None:
    propagation.composite().inject(carrier, context)


INJECTS = [pytest.param(_by_module, id="inject"), pytest.param(_by_method, id="composite")]


@pytest.fixture(autouse=True)
def _no_baggage() -> Iterator[None]:
    """Baggage a test sets is gone before the next one."""
    yield
    baggage.clear()


def _names(lines: list[tuple[object, object]]) -> list[str]:
    return [(name.decode() if isinstance(name, bytes) else str(name)).lower() for name, _ in lines]


# -- every format, through the public function and the composite ---------------------------------


@pytest.mark.parametrize("inject", INJECTS)
@pytest.mark.parametrize("raw", [False, True], ids=["text", "bytes"])
@pytest.mark.parametrize("name", TRACE_FORMATS)
def test_every_format_round_trips_through_a_list(name: str, raw: bool, inject: Inject) -> None:
    """What `inject` writes into a list of pairs, `extract` reads back from that list as the same context."""
    reset(environ={"OTEL_PROPAGATORS": name})
    state = (("vendor", "v1"),) if name == "tracecontext" else ()  # only W3C carries a tracestate
    flags = 1 if name == "request_id" else 0  # Request-Id carries no decision: it reads as sampled
    lines: list[tuple[object, object]] = [(b"host", b"example.com")] if raw else [("Host", "example.com")]
    inject(lines, SpanContext(TRACE, SPAN, flags, state))
    assert propagation.extract(lines) == SpanContext(TRACE, SPAN, flags, state, True)
    assert all(type(part) is (bytes if raw else str) for pair in lines for part in pair)


@pytest.mark.parametrize("inject", INJECTS)
@pytest.mark.parametrize("order", ORDERS)
def test_baggage_round_trips_through_a_list(order: str, inject: Inject) -> None:
    """The current baggage is written into a list of pairs and read back from it."""
    reset(environ={"OTEL_PROPAGATORS": order})
    baggage.set("tenant", "acme corp")
    lines: list[tuple[bytes, bytes]] = [(b"baggage", b"old=1")]
    inject(lines, SpanContext(TRACE, SPAN, 1))
    assert propagation.extract_incoming(lines).baggage == {"tenant": ("acme corp", "")}
    assert _names(lines).count("baggage") == 1


@pytest.mark.parametrize("inject", INJECTS)
@pytest.mark.parametrize("order", ORDERS)
def test_a_list_gets_the_lines_a_dict_gets(order: str, inject: Inject) -> None:
    """Names, values and order in a list are a dict's items after the same `inject`."""
    reset(environ={"OTEL_PROPAGATORS": order})
    baggage.set("tenant", "acme")
    context = SpanContext(TRACE, SPAN, 1, (("a", "1"),))
    as_dict: dict[str, str] = {}
    as_list: list[tuple[str, str]] = []
    inject(as_dict, context)
    inject(as_list, context)
    assert as_list == list(as_dict.items())


# -- replacing, keeping the element type ----------------------------------------------------------


@pytest.mark.parametrize("inject", INJECTS)
def test_every_line_of_a_header_is_replaced_by_one_in_the_first_ones_place(inject: Inject) -> None:
    """Two ``Traceparent`` lines (any case) leave one ``traceparent``, where the first was; others stay."""
    lines = [("Accept", "*/*"), ("Traceparent", "old"), ("x-other", "1"), ("TRACEPARENT", "older")]
    inject(lines, SpanContext(TRACE, SPAN, 1))
    assert lines[:3] == [("Accept", "*/*"), ("traceparent", TRACEPARENT), ("x-other", "1")]
    assert _names(lines).count("traceparent") == 1
    assert _names(lines)[3:] == ["x-amzn-trace-id"]  # a header not there before is appended


@pytest.mark.parametrize("inject", INJECTS)
def test_bytes_pairs_stay_bytes_pairs_with_lower_case_names(inject: Inject) -> None:
    """An ASGI header list gets bytes pairs, names in lower case as ASGI requires, its old line replaced."""
    lines = [(b"host", b"example.com"), (b"X-Amzn-Trace-Id", b"Root=old")]
    inject(lines, SpanContext(TRACE, SPAN, 1))
    assert lines == [
        (b"host", b"example.com"),
        (b"x-amzn-trace-id", b"Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=00f067aa0ba902b7;Sampled=1"),
        (b"traceparent", TRACEPARENT.encode()),
    ]


@pytest.mark.parametrize("inject", INJECTS)
def test_pairs_written_as_lists_stay_lists(inject: Inject) -> None:
    """A list of [name, value] lists (decoded JSON) gets [name, value] lists."""
    lines: list[list[str]] = [["host", "example.com"]]
    inject(lines, SpanContext(TRACE, SPAN, 1))
    assert all(type(pair) is list for pair in lines)
    assert ["traceparent", TRACEPARENT] in lines


@pytest.mark.parametrize("inject", INJECTS)
def test_an_empty_list_gets_text_pairs(inject: Inject) -> None:
    """With no line to take the type from, the pairs are text (WSGI's form; httpx takes either)."""
    lines: list[tuple[str, str]] = []
    inject(lines, SpanContext(TRACE, SPAN, 1))
    assert lines[0] == ("traceparent", TRACEPARENT)
    assert all(type(pair) is tuple and type(pair[0]) is str and type(pair[1]) is str for pair in lines)


@pytest.mark.parametrize("inject", INJECTS)
def test_a_stale_tracestate_goes_with_the_old_traceparent(inject: Inject) -> None:
    """A context without trace state removes the caller's ``tracestate`` lines, as a dict loses its key."""
    lines = [(b"tracestate", b"old=1"), (b"traceparent", b"old"), (b"Tracestate", b"old=2")]
    inject(lines, SpanContext(TRACE, SPAN, 1))
    assert _names(lines) == ["traceparent", "x-amzn-trace-id"]


@pytest.mark.parametrize("inject", INJECTS)
@pytest.mark.parametrize("order", ORDERS)
def test_an_invalid_context_keeps_the_callers_trace_lines(order: str, inject: Inject) -> None:
    """With no valid context the caller's trace lines stay; the current baggage replaces its own."""
    reset(environ={"OTEL_PROPAGATORS": order})
    baggage.set("tenant", "acme")
    lines = [("Traceparent", TRACEPARENT), ("BAGGAGE", "old=1"), ("X-B3-TraceId", "1")]
    inject(lines, SpanContext(0, SPAN, 1))
    assert lines == [("Traceparent", TRACEPARENT), ("baggage", "tenant=acme"), ("X-B3-TraceId", "1")]


def test_inject_uses_the_current_span_for_a_list() -> None:
    """Without a context argument, the current span's context is written into the list."""
    lines: list[tuple[bytes, bytes]] = []
    with tracer.span("call") as span:
        propagation.inject(lines)
    assert propagation.extract(lines) == SpanContext(span.trace_id, span.span_id, span.trace_flags, (), True)


# -- carriers that cannot be written --------------------------------------------------------------


@pytest.mark.parametrize(
    ("carrier", "message"),
    [
        ((("host", "example.com"),), "cannot inject into a tuple of header pairs, which cannot change"),
        (["host", "example.com"], "cannot inject into a list holding str items"),
        ([("host", "example.com", "x")], "cannot inject into a list holding tuple items"),
    ],
    ids=["tuple", "list-of-str", "list-of-triples"],
)
def test_an_unwritable_header_list_is_reported_and_left_unchanged(
    carrier: object, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A tuple, or a list of anything but pairs, is one counted internal error with a clear log line."""
    before = repr(carrier)
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        propagation.inject(carrier, SpanContext(TRACE, SPAN, 1))
        propagation.inject(carrier, SpanContext(TRACE, SPAN, 1))
    assert repr(carrier) == before
    assert nexs_serverless.stats()["internal_errors"] == 2
    assert [record.getMessage() for record in caplog.records if message in record.getMessage()] != []
    assert len(caplog.records) == 1  # logged once


@pytest.mark.parametrize("inject", INJECTS)
def test_a_tuple_is_not_reported_when_there_is_nothing_to_write(inject: Inject) -> None:
    """As for any carrier, an invalid context and no baggage write nothing, so nothing is reported."""
    inject((("host", "example.com"),), SpanContext(0, SPAN, 1))
    assert nexs_serverless.stats().get("internal_errors", 0) == 0


def test_the_composite_method_raises_for_an_unwritable_header_list() -> None:
    """`CompositePropagator.inject` is not guarded: a tuple of pairs raises its TypeError to the caller."""
    with pytest.raises(TypeError, match="pass a list"):
        propagation.composite().inject((("host", "example.com"),), SpanContext(TRACE, SPAN, 1))


# -- on the wire ----------------------------------------------------------------------------------


class _Echo(BaseHTTPRequestHandler):
    """Records every header line of the requests it answers."""

    server: _Server

    def do_GET(self) -> None:
        self.server.seen.append(list(self.headers.items()))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    seen: list[list[tuple[str, str]]]


@pytest.fixture
def server() -> Iterator[_Server]:
    """A local HTTP server on 127.0.0.1 recording the header lines it receives."""
    httpd = _Server(("127.0.0.1", 0), _Echo)
    httpd.seen = []
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_httpx_sends_raw_header_lines_the_context_was_injected_into(server: _Server) -> None:
    """Raw bytes pairs with an old ``traceparent``, injected then sent by httpx, carry one, the new one."""
    lines = [(b"accept", b"*/*"), (b"traceparent", b"00-" + b"1" * 32 + b"-" + b"2" * 16 + b"-01")]
    propagation.inject(lines, SpanContext(TRACE, SPAN, 1))
    host, port = server.server_address[:2]
    with httpx.Client() as client:
        client.get(f"http://{host!s}:{port}/", headers=lines)
    (received,) = server.seen
    assert [value for name, value in received if name.lower() == "traceparent"] == [TRACEPARENT]
    assert propagation.extract(received) == SpanContext(TRACE, SPAN, 1, (), True)
