"""urllib3/requests and httpx: a CLIENT span per request, its context in the request's headers."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from support.clouds import echo, http_server
from support.memory import finish

from nexs_serverless import SpanKind, StatusCode, baggage, instrumentation, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.testing import LambdaContext, events

XRAY_HEADER = "Root=1-6749f3a0-5759e988bd862e3fe1be46a9;Parent=53995c3f42cd8ad8;Sampled=1"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A local server answering with the headers it received."""
    with http_server(echo) as url:
        yield url


@pytest.fixture(autouse=True)
def instrumented() -> Iterator[None]:
    """HTTP clients and logging instrumented for the test, restored afterwards."""
    instrumentation.instrument("urllib3", "httpx", "logging")
    yield
    instrumentation.uninstrument("urllib3", "httpx", "logging")


def client_span(spans: list[FinishedSpan]) -> FinishedSpan:
    (span,) = [span for span in spans if span.kind == SpanKind.CLIENT]
    return span


def test_requests_get_is_a_client_span_whose_context_the_server_receives(
    server: str, spans: InMemoryExporter
) -> None:
    """requests (through urllib3): span attributes, and traceparent of that span at the server."""
    import requests

    with tracer.span("handler") as handler:
        received = requests.get(
            f"{server}/orders?x=1", headers={"Accept": "application/json"}, timeout=5
        ).json()
    span = client_span(finish(spans))
    assert span.name == "GET"
    assert span.parent_span_id == handler.span_id
    assert span.attributes["http.request.method"] == "GET"
    assert span.attributes["url.full"] == f"{server}/orders?x=1"
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["http.response.status_code"] == 200
    headers = {key.lower(): value for key, value in received["headers"].items()}
    assert headers["traceparent"] == f"00-{span.trace_id:032x}-{span.span_id:016x}-01"
    assert headers["accept"] == "application/json"


def test_each_redirect_hop_is_its_own_span(server: str, spans: InMemoryExporter) -> None:
    """PoolManager follows a redirect with a second request: a span per hop, as HTTP conventions say."""
    import urllib3

    with tracer.span("handler"):
        response = urllib3.PoolManager().request("GET", f"{server}/redirect")
    body = json.loads(response.data)
    first, second = [span for span in finish(spans) if span.kind == SpanKind.CLIENT]
    assert body["path"] == "/final"
    assert first.attributes["http.response.status_code"] == 302
    assert first.status_code == StatusCode.UNSET
    assert {k.lower(): v for k, v in body["headers"].items()}["traceparent"].endswith(
        f"{second.span_id:016x}-01"
    )


def test_retries_inside_one_pool_call_stay_in_one_span(server: str, spans: InMemoryExporter) -> None:
    """A pool's own redirect handling re-enters urlopen: still one span, both hops carry it."""
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", int(server.rsplit(":", 1)[1]))
    with tracer.span("handler"):
        response = pool.urlopen("GET", "/redirect", redirect=True)
    body = json.loads(response.data)
    span = client_span(finish(spans))
    assert body["path"] == "/final"
    assert {k.lower(): v for k, v in body["headers"].items()}["traceparent"].endswith(
        f"{span.span_id:016x}-01"
    )


def test_server_errors_mark_the_client_span(server: str, spans: InMemoryExporter) -> None:
    """4xx and 5xx are errors for a client: status ERROR, error.type the code."""
    import requests

    with tracer.span("handler"):
        requests.get(f"{server}/status/503", timeout=5)
    span = client_span(finish(spans))
    assert span.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "503"


def test_connection_errors_are_recorded_and_raised(spans: InMemoryExporter) -> None:
    """A refused connection: exception event and status ERROR on the span, error raised unchanged."""
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", 9, retries=False)
    with tracer.span("handler"), pytest.raises(urllib3.exceptions.NewConnectionError):
        pool.request("GET", "/")
    span = client_span(finish(spans))
    assert span.status_code == StatusCode.ERROR
    assert span.events[0].name == "exception"


def test_httpx_sync_and_async_requests(server: str, spans: InMemoryExporter) -> None:
    """httpx, sync and async: one span each, headers carry it, baggage too."""
    import httpx

    async def fetch() -> dict[str, object]:
        async with httpx.AsyncClient() as client:
            return dict((await client.get(f"{server}/async")).json())

    baggage.set("tenant", "acme")
    try:
        with tracer.span("handler"):
            sync = httpx.get(f"{server}/sync").json()
            asynchronous = asyncio.run(fetch())
    finally:
        baggage.clear()
    clients = [span for span in finish(spans) if span.kind == SpanKind.CLIENT]
    assert len(clients) == 2
    for span, body in zip(clients, (sync, asynchronous), strict=True):
        headers = {k.lower(): v for k, v in body["headers"].items()}  # type: ignore[attr-defined]
        assert headers["traceparent"] == f"00-{span.trace_id:032x}-{span.span_id:016x}-01"
        assert headers["baggage"] == "tenant=acme"


def test_requests_outside_a_trace_are_left_alone(server: str, spans: InMemoryExporter) -> None:
    """No current span: no span, no header."""
    import requests

    received = requests.get(server, timeout=5).json()
    assert "traceparent" not in {k.lower() for k in received["headers"]}
    assert finish(spans) == []


def test_callers_headers_object_is_not_modified(server: str, spans: InMemoryExporter) -> None:
    """The context goes into a copy of the caller's headers."""
    import urllib3

    headers = {"Accept": "text/plain"}
    with tracer.span("handler"):
        urllib3.PoolManager().request("GET", server, headers=headers)
    assert headers == {"Accept": "text/plain"}


def test_a_relative_url_with_a_scheme_in_its_query_is_completed_from_the_pool(
    server: str, spans: InMemoryExporter
) -> None:
    """``/login?next=https://...`` is relative: url.full and server.* come from the pool's address."""
    import urllib3

    url = f"{server}/login?next=https://app.example.com/home"
    with tracer.span("handler"):
        urllib3.PoolManager().request("GET", url)
    span = client_span(finish(spans))
    assert span.attributes["url.full"] == url
    assert span.attributes["server.address"] == "127.0.0.1"
    assert span.attributes["server.port"] == int(server.rsplit(":", 1)[1])


def test_a_baggage_header_the_caller_sets_is_sent_when_none_is_current(
    server: str, spans: InMemoryExporter
) -> None:
    """With no baggage current, the request's own ``baggage`` header goes out unchanged, with traceparent."""
    import urllib3

    with tracer.span("handler"):
        response = urllib3.PoolManager().request("GET", server, headers={"baggage": "tenant=acme"})
    headers = {key.lower(): value for key, value in json.loads(response.data)["headers"].items()}
    assert headers["baggage"] == "tenant=acme"
    assert "traceparent" in headers


@pytest.mark.parametrize(
    ("attribute", "value"),
    [
        ("baggage", "tenant=acme;note=a\r\nX-Injected: 1"),
        ("X-Amzn-Trace-Id", f"{XRAY_HEADER};Note=a\r\nX-Injected: 1"),
    ],
)
def test_a_cr_lf_in_a_received_header_never_reaches_an_outgoing_request(
    server: str, spans: InMemoryExporter, attribute: str, value: str
) -> None:
    """A CR/LF in a baggage property or an unknown X-Ray pair is left out: the handler's own request works."""
    import urllib3

    event = events.sqs(messages=["one"])
    event["Records"][0]["messageAttributes"][attribute] = {"stringValue": value, "dataType": "String"}

    @traced_handler
    def handler(event: object, context: object) -> Any:
        return json.loads(urllib3.PoolManager().request("GET", server).data)

    received = handler(event, LambdaContext())
    headers = {key.lower(): value for key, value in received["headers"].items()}
    assert "x-injected" not in headers
    assert headers.get("baggage") == ("tenant=acme" if attribute == "baggage" else None)
    assert headers["x-amzn-trace-id"].endswith(";Sampled=1")


def test_log_records_carry_the_current_trace(
    spans: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """Plain logging records get trace_id/span_id inside a span, None outside."""
    logger = logging.getLogger("orders")
    with caplog.at_level(logging.INFO, logger="orders"):
        with tracer.span("handler") as span:
            logger.info("inside")
        logger.info("outside")
    inside, outside = caplog.records
    assert inside.trace_id == f"{span.trace_id:032x}"  # type: ignore[attr-defined]
    assert inside.span_id == f"{span.span_id:016x}"  # type: ignore[attr-defined]
    assert inside.trace_sampled is True  # type: ignore[attr-defined]
    assert outside.trace_id is None  # type: ignore[attr-defined]


def test_powertools_logger_lines_carry_the_trace_id(spans: InMemoryExporter) -> None:
    """Powertools' Logger writes the record's trace_id and span_id as JSON keys."""
    import io

    from aws_lambda_powertools import Logger

    stream = io.StringIO()
    logger = Logger(service="orders", logger_handler=logging.StreamHandler(stream))
    with tracer.span("handler") as span:
        logger.info("charged")
    line = json.loads(stream.getvalue().splitlines()[-1])
    assert line["trace_id"] == f"{span.trace_id:032x}"
    assert line["span_id"] == f"{span.span_id:016x}"


def test_a_stand_in_from_auto_install_traces_the_first_request(server: str, spans: InMemoryExporter) -> None:
    """urllib3 after auto-install: the first request installs the wrapper and is itself traced."""
    import urllib3
    import urllib3.connectionpool

    from nexs_serverless.runtime import runtime
    from nexs_serverless.testing.state import forget_instrumentation

    forget_instrumentation()  # a fresh process: `uninstrument` would opt out of `auto_install`
    original = urllib3.connectionpool.HTTPConnectionPool.urlopen
    instrumentation.auto_install(runtime.settings)
    assert urllib3.connectionpool.HTTPConnectionPool.urlopen.__wrapped__ is original
    with tracer.span("handler") as handler:
        received = json.loads(urllib3.PoolManager().request("GET", f"{server}/first").data)
    span = client_span(finish(spans))
    assert span.parent_span_id == handler.span_id
    assert getattr(urllib3.connectionpool.HTTPConnectionPool.urlopen, "__nexs_traced__", False)
    headers = {key.lower(): value for key, value in received["headers"].items()}
    assert headers["traceparent"] == f"00-{span.trace_id:032x}-{span.span_id:016x}-01"


def test_an_ipv6_host_is_written_in_brackets(spans: InMemoryExporter) -> None:
    """urllib3 keeps an IPv6 host without brackets; the span's URL must have them (and a server
    address and port), as httpx's spans do."""
    import http.server
    import socket
    import threading

    import requests

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6

    class Answer(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet."""

    try:
        server = Server(("::1", 0), Answer)
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        with tracer.span("handler"):
            assert requests.get(f"http://[::1]:{port}/a?b=1", timeout=5).text == "ok"
    finally:
        server.shutdown()
        server.server_close()
    attributes = client_span(finish(spans)).attributes
    assert attributes["url.full"] == f"http://[::1]:{port}/a?b=1"
    assert (attributes["server.address"], attributes["server.port"]) == ("::1", port)


def test_a_log_call_naming_trace_id_itself_keeps_working_and_its_value(spans: InMemoryExporter) -> None:
    """``extra={"trace_id": ...}`` or a LoggerAdapter's ``span_id``: the call logs with the caller's
    value (Logger.makeRecord raised KeyError into the caller once our factory had set them)."""
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s %(trace_id)s %(span_id)s"))
    log = logging.getLogger("nexs.test.extra")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with tracer.span("handler") as span:
            log.info("a", extra={"trace_id": "from-app"})
            logging.LoggerAdapter(log, {"span_id": "from-adapter"}).info("b")
        log.info("c", extra={"trace_sampled": "no span here"})
    finally:
        log.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"a from-app {span.span_id:016x}"
    assert lines[1] == f"b {span.trace_id:032x} from-adapter"
    assert lines[2] == "c None None"
