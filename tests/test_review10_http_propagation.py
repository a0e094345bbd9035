"""Review: outgoing HTTP client spans (urllib3/requests, httpx) and the propagation formats, on the wire.

Every client test talks to a real HTTP server on 127.0.0.1 that records the
request line and every header line as received (repeated ones included), with
real requests, urllib3 and httpx clients.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from nexs_serverless import SpanKind, StatusCode, baggage, instrumentation, propagation, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.flushing import flush
from nexs_serverless.instrumentation._client import redact_url
from nexs_serverless.model import SpanContext
from nexs_serverless.propagation.b3 import parse_single
from nexs_serverless.propagation.baggage import format_baggage, parse_baggage
from nexs_serverless.propagation.cloud_trace import parse_header as parse_cloud_trace
from nexs_serverless.propagation.tracecontext import parse_traceparent, parse_tracestate
from nexs_serverless.testing import reset

TRACE_HEX = "12345678901234567890123456789012"
TRACEPARENT = f"00-{TRACE_HEX}-1234567890123456-01"
NO_REDACTION = {"NEXS_REDACTION_ENABLED": "false"}


# -- a recording server -----------------------------------------------------------------


class _Recorder(BaseHTTPRequestHandler):
    """Answers by path; records (method, path, header lines) for every request it reads."""

    server: _RecordingServer
    protocol_version = "HTTP/1.1"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                self.rfile.read(size + 2)
                if not size:
                    break
        self.server.seen.append((self.command, self.path, list(self.headers.items())))
        path = self.path
        if path.startswith("/status/"):
            return self._send(int(path.rsplit("/", 1)[1]), b"")
        if path == "/redirect":
            return self._send(302, b"", {"Location": "/final"})
        if path == "/slow":
            time.sleep(1.0)
            return self._send(200, b"late")
        if path.startswith("/flaky/"):
            key = path
            self.server.attempts[key] = self.server.attempts.get(key, 0) + 1
            return self._send(503 if self.server.attempts[key] == 1 else 200, b"")
        if path == "/stream":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for chunk in (b"one", b"two", b"three"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            return None
        body = json.dumps({"path": path, "headers": list(self.headers.items())}).encode()
        return self._send(200, body)

    def _send(self, status: int, body: bytes, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PURGE = _answer  # noqa: N815

    def log_message(self, format: str, *args: object) -> None:
        return


class _RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.seen: list[tuple[str, str, list[tuple[str, str]]]] = []
        self.attempts: dict[str, int] = {}

    def handle_error(self, request: object, client_address: object) -> None:
        """Quiet: clients that time out or abort a body on purpose leave broken pipes behind."""


class Server:
    """The running recorder: its base URL and what it received."""

    def __init__(self, server: _RecordingServer) -> None:
        self._server = server
        self.port = server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def lines(self, index: int = -1) -> list[tuple[str, str]]:
        """Header lines of one request received (the last by default)."""
        return self._server.seen[index][2]

    def values(self, name: str, index: int = -1) -> list[str]:
        """Every line of header `name` (any case) in one request received."""
        return [value for key, value in self.lines(index) if key.lower() == name.lower()]

    def requests_seen(self) -> list[tuple[str, str, list[tuple[str, str]]]]:
        return self._server.seen


@pytest.fixture
def server() -> Iterator[Server]:
    """A recording HTTP server on 127.0.0.1, one per test."""
    running = _RecordingServer()
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield Server(running)
    finally:
        running.shutdown()
        running.server_close()


@pytest.fixture(autouse=True)
def instrumented() -> Iterator[None]:
    """urllib3 and httpx instrumented for the test, restored afterwards."""
    instrumentation.instrument("urllib3", "httpx")
    yield
    instrumentation.uninstrument("urllib3", "httpx")


@pytest.fixture
def raw_spans() -> InMemoryExporter:
    """An exporter for the spans a test flushes, redaction off: the instrumentation's own values."""
    exporter = InMemoryExporter()
    reset(environ=NO_REDACTION, exporters=[exporter])
    return exporter


def clients(exporter: InMemoryExporter) -> list[FinishedSpan]:
    """The CLIENT spans flushed since the last call."""
    flush()
    found = [span for span in exporter.get_finished_spans() if span.kind == SpanKind.CLIENT]
    exporter.clear()
    return found


def traceparent_of(span: FinishedSpan, flags: str = "01") -> str:
    return f"00-{span.trace_id:032x}-{span.span_id:016x}-{flags}"


# -- requests, urllib3, httpx: span and headers ---------------------------------------------


@pytest.mark.parametrize("how", ["module", "session"])
def test_requests_functions_and_sessions_send_one_traceparent_and_keep_the_callers_headers(
    server: Server, spans: InMemoryExporter, how: str
) -> None:
    """requests.get and Session.get: the span's traceparent arrives once, next to the caller's own headers."""
    import requests

    call = requests.get if how == "module" else requests.Session().get
    with tracer.span("handler") as handler:
        response = call(f"{server.url}/orders?x=1", headers={"X-Tenant": "acme"}, timeout=5)
    (span,) = clients(spans)
    assert response.status_code == 200
    assert (span.name, span.parent_span_id) == ("GET", handler.span_id)
    assert server.values("traceparent") == [traceparent_of(span)]
    assert server.values("x-tenant") == ["acme"]


def test_a_method_not_known_is_other_with_its_original_and_the_span_is_named_http(
    server: Server, raw_spans: InMemoryExporter
) -> None:
    """PURGE: http.request.method _OTHER, method_original PURGE, span name HTTP (not a free-form name)."""
    import urllib3

    with tracer.span("handler"):
        urllib3.PoolManager().request("PURGE", f"{server.url}/cache")
    (span,) = clients(raw_spans)
    assert span.name == "HTTP"
    assert span.attributes["http.request.method"] == "_OTHER"
    assert span.attributes["http.request.method_original"] == "PURGE"


def test_methods_are_case_sensitive(server: Server, raw_spans: InMemoryExporter) -> None:
    """A lower-case "get" sent as such by a pool is not GET on the wire: _OTHER, original "get"."""
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, retries=False)
    with tracer.span("handler"):
        pool.urlopen("get", "/")
    (span,) = clients(raw_spans)
    assert (span.attributes["http.request.method"], span.attributes["http.request.method_original"]) == (
        "_OTHER",
        "get",
    )


def test_known_methods_can_be_replaced_by_the_environment(server: Server) -> None:
    """OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS is a full override: PURGE known, GET no longer."""
    import urllib3

    exporter = InMemoryExporter()
    reset(environ={"OTEL_INSTRUMENTATION_HTTP_KNOWN_METHODS": "PURGE, POST"}, exporters=[exporter])
    with tracer.span("handler"):
        urllib3.PoolManager().request("PURGE", server.url)
        urllib3.PoolManager().request("GET", server.url)
    purge, get = clients(exporter)
    assert (purge.name, purge.attributes["http.request.method"]) == ("PURGE", "PURGE")
    assert (get.name, get.attributes["http.request.method"]) == ("HTTP", "_OTHER")


def test_credentials_and_signed_url_secrets_are_redacted_in_url_full(
    server: Server, raw_spans: InMemoryExporter
) -> None:
    """url.full: REDACTED:REDACTED user info, REDACTED signature/credential/token query values, keys kept."""
    import httpx

    url = server.url.replace("http://", "http://alice:s3cret@")
    query = "a=1&X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=abc123&X-Amz-Security-Token=tok&sig=azure&b=2"
    with tracer.span("handler"):
        httpx.get(f"{url}/object?{query}")
    (span,) = clients(raw_spans)
    assert span.attributes["url.full"] == (
        f"http://REDACTED:REDACTED@127.0.0.1:{server.port}/object?a=1&X-Amz-Credential=REDACTED"
        "&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&sig=REDACTED&b=2"
    )
    assert span.attributes["server.address"] == "127.0.0.1"


def test_no_url_secret_reaches_an_exported_span_with_default_redaction(
    server: Server, spans: InMemoryExporter
) -> None:
    """With the exporter-side redaction on too, neither the password nor a signature is exported."""
    import httpx

    url = server.url.replace("http://", "http://alice:s3cret@")
    with tracer.span("handler"):
        httpx.get(f"{url}/o?X-Goog-Signature=g00gsig&AWSAccessKeyId=AKIAOLD&Signature=v2sig")
    exported = json.dumps([dict(span.attributes) for span in clients(spans)])
    for secret in ("s3cret", "g00gsig", "AKIAOLD", "v2sig"):
        assert secret not in exported


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p@example.com/a?sig=x#frag", "https://REDACTED:REDACTED@example.com/a?sig=REDACTED"),
        ("https://token@example.com/", "https://REDACTED:REDACTED@example.com/"),
        (
            "http://example.com/a@b?next=https://x.example/?sig=1",
            "http://example.com/a@b?next=https://x.example/?sig=1",
        ),
        (
            "http://[::1]:8080/p?Signature=s&Signature=t",
            "http://[::1]:8080/p?Signature=REDACTED&Signature=REDACTED",
        ),
        ("http://example.com/p?signature=kept&sig", "http://example.com/p?signature=kept&sig"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    """Only user info and the listed query keys (exact, case-sensitive) are replaced; nothing re-encoded."""
    assert redact_url(url) == expected


def test_a_pool_without_a_port_and_default_ports_are_not_written_into_url_full(
    raw_spans: InMemoryExporter,
) -> None:
    """HTTPConnectionPool("host") has port None: url.full has no ":None", server.port is the default 80."""
    import urllib3

    pool = urllib3.HTTPConnectionPool("127.0.0.1", retries=False, timeout=1)
    with tracer.span("handler"):
        try:
            pool.request("GET", "/x")
        except urllib3.exceptions.HTTPError:
            pass  # nothing listens on port 80 here, most likely; the span is what is checked
    (span,) = clients(raw_spans)
    assert span.attributes["url.full"] == "http://127.0.0.1/x"
    assert span.attributes["server.port"] == 80


# -- status and errors ----------------------------------------------------------------------


@pytest.mark.parametrize(("code", "error"), [(200, False), (302, False), (404, True), (503, True)])
def test_client_spans_are_errors_for_4xx_and_5xx_only_and_without_a_description(
    server: Server, raw_spans: InMemoryExporter, code: int, error: bool
) -> None:
    """Status ERROR for 4xx/5xx with error.type the code and no description (the code says it)."""
    import urllib3

    with tracer.span("handler"):
        urllib3.PoolManager().request("GET", f"{server.url}/status/{code}", redirect=False)
    (span,) = clients(raw_spans)
    assert span.attributes["http.response.status_code"] == code
    assert span.status_code == (StatusCode.ERROR if error else StatusCode.UNSET)
    assert span.status_description is None
    assert span.attributes.get("error.type") == (str(code) if error else None)


class UnprintableError(Exception):
    """An exception whose str() raises, as some libraries' do when half built."""

    def __str__(self) -> str:
        raise RuntimeError("no text for you")


def _body_that_fails(error: BaseException) -> Iterator[bytes]:
    yield b"start"
    raise error


def test_an_exception_urllib3_raises_reaches_the_caller_unchanged(
    server: Server, spans: InMemoryExporter
) -> None:
    """An error from the request body (str() of it raises): the caller gets that very object, unchained."""
    import urllib3

    error = UnprintableError()
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, retries=False)
    with tracer.span("handler"), pytest.raises(UnprintableError) as raised:
        pool.urlopen("PUT", "/upload", body=_body_that_fails(error), chunked=True)
    assert raised.value is error
    assert raised.value.__context__ is None
    (span,) = clients(spans)
    assert span.status_code == StatusCode.ERROR
    assert span.attributes["error.type"] == "UnprintableError"


def test_an_exception_httpx_raises_reaches_the_caller_unchanged(
    server: Server, spans: InMemoryExporter
) -> None:
    """The same through httpx's transport."""
    import httpx

    error = UnprintableError()
    with tracer.span("handler"), pytest.raises(UnprintableError) as raised:
        httpx.put(f"{server.url}/upload", content=_body_that_fails(error))
    assert raised.value is error
    assert raised.value.__context__ is None
    (span,) = clients(spans)
    assert span.status_code == StatusCode.ERROR


@pytest.mark.parametrize("library", ["requests", "urllib3", "httpx"])
def test_a_timeout_is_recorded_and_raised_as_the_librarys_own_error(
    server: Server, spans: InMemoryExporter, library: str
) -> None:
    """A read timeout: the library's own exception reaches the caller; the span is ERROR with its type."""
    import httpx
    import requests
    import urllib3

    expected: type[BaseException]
    with tracer.span("handler"):
        if library == "requests":
            expected = requests.exceptions.ReadTimeout
            with pytest.raises(expected):
                requests.get(f"{server.url}/slow", timeout=0.2)
        elif library == "urllib3":
            expected = urllib3.exceptions.ReadTimeoutError
            pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, retries=False, timeout=0.2)
            with pytest.raises(expected):
                pool.request("GET", "/slow")
        else:
            expected = httpx.ReadTimeout
            with pytest.raises(expected):
                httpx.get(f"{server.url}/slow", timeout=0.2)
    (span,) = clients(spans)
    assert span.status_code == StatusCode.ERROR
    assert span.events[0].name == "exception"
    assert span.attributes["error.type"] in {"ReadTimeoutError", "ReadTimeout"}


def test_a_refused_connection_through_httpx_is_raised_as_connect_error(spans: InMemoryExporter) -> None:
    """Connection refused: httpx.ConnectError reaches the caller; the span says so."""
    import socket

    import httpx

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tracer.span("handler"), pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")
    (span,) = clients(spans)
    assert span.attributes["error.type"] == "ConnectError"


def test_urllib3_retries_stay_in_one_span_and_every_attempt_carries_it(
    server: Server, spans: InMemoryExporter
) -> None:
    """Retry on 503: two requests on the wire, one span, one traceparent on both; the final 200 counts."""
    import urllib3

    retry = urllib3.Retry(total=2, status_forcelist=[503], backoff_factor=0)
    with tracer.span("handler"):
        response = urllib3.PoolManager(retries=retry).request("GET", f"{server.url}/flaky/a")
    (span,) = clients(spans)
    assert response.status == 200
    assert len(server.requests_seen()) == 2
    assert server.values("traceparent", 0) == server.values("traceparent", 1) == [traceparent_of(span)]
    assert span.attributes["http.response.status_code"] == 200
    assert span.status_code == StatusCode.UNSET


def test_requests_redirects_are_a_span_per_hop(server: Server, spans: InMemoryExporter) -> None:
    """requests follows a 302 itself: two spans, each hop carries its own span's traceparent (and only it)."""
    import requests

    with tracer.span("handler"):
        assert requests.get(f"{server.url}/redirect", timeout=5).json()["path"] == "/final"
    first, second = clients(spans)
    assert server.values("traceparent", 0) == [traceparent_of(first)]
    assert server.values("traceparent", 1) == [traceparent_of(second)]


# -- streaming and async ---------------------------------------------------------------------


def test_streamed_bodies_are_read_after_the_span_ends(server: Server, spans: InMemoryExporter) -> None:
    """requests stream=True and httpx.stream: the body reads normally; the span covers the headers."""
    import httpx
    import requests

    with tracer.span("handler"):
        with requests.get(f"{server.url}/stream", stream=True, timeout=5) as response:
            streamed = b"".join(response.iter_content(chunk_size=2))
        with httpx.stream("GET", f"{server.url}/stream") as response2:
            streamed2 = b"".join(response2.iter_bytes())
    assert streamed == streamed2 == b"onetwothree"
    assert [span.attributes["http.response.status_code"] for span in clients(spans)] == [200, 200]


def test_httpx_async_client_requests_and_streams(server: Server, spans: InMemoryExporter) -> None:
    """AsyncClient: a span per request, parented and carried; concurrent requests keep their own spans."""
    import httpx

    async def run() -> list[bytes]:
        async with httpx.AsyncClient() as client:
            plain = client.get(f"{server.url}/a")
            other = client.get(f"{server.url}/b")
            first, second = await asyncio.gather(plain, other)
            async with client.stream("GET", f"{server.url}/stream") as streamed:
                body = b"".join([chunk async for chunk in streamed.aiter_bytes()])
            return [first.content, second.content, body]

    with tracer.span("handler") as handler:
        bodies = asyncio.run(run())
    assert bodies[2] == b"onetwothree"
    made = clients(spans)
    assert len(made) == 3
    assert {span.parent_span_id for span in made} == {handler.span_id}
    received = {json.loads(body)["path"]: json.loads(body)["headers"] for body in bodies[:2]}
    by_id = {f"{span.span_id:016x}": span for span in made}
    for headers in received.values():
        (value,) = [v for k, v in headers if k.lower() == "traceparent"]
        assert value.split("-")[2] in by_id


# -- headers the caller set ------------------------------------------------------------------


def test_a_traceparent_given_with_a_bytes_name_is_replaced_not_sent_twice(
    server: Server, spans: InMemoryExporter
) -> None:
    """urllib3 with {b"traceparent": ...}: one traceparent line goes out, ours; other bytes headers stay."""
    import urllib3

    headers = {b"traceparent": TRACEPARENT.encode(), b"X-Note": b"kept"}
    with tracer.span("handler"):
        urllib3.PoolManager().request("GET", server.url, headers=headers)
    (span,) = clients(spans)
    assert server.values("traceparent") == [traceparent_of(span)]
    assert server.values("x-note") == ["kept"]
    assert headers == {b"traceparent": TRACEPARENT.encode(), b"X-Note": b"kept"}


@pytest.mark.parametrize("library", ["requests", "urllib3", "httpx"])
def test_a_tracestate_copied_from_elsewhere_does_not_travel_with_our_traceparent(
    server: Server, spans: InMemoryExporter, library: str
) -> None:
    """A TraceState (any case) the caller copied from another request is not sent next to our traceparent."""
    import httpx
    import requests
    import urllib3

    foreign = {"TraceState": "other=1", "Traceparent": TRACEPARENT, "X-B3-Whatever": "x"}
    with tracer.span("handler"):
        if library == "requests":
            requests.get(server.url, headers=foreign, timeout=5)
        elif library == "urllib3":
            given = urllib3.HTTPHeaderDict(foreign)
            given.add("tracestate", "more=2")
            urllib3.PoolManager().request("GET", server.url, headers=given)
        else:
            httpx.get(server.url, headers=foreign)
    (span,) = clients(spans)
    assert server.values("traceparent") == [traceparent_of(span)]
    assert server.values("tracestate") == []
    assert server.values("x-b3-whatever") == ["x"]


def test_the_continued_trace_state_is_what_goes_out(server: Server, spans: InMemoryExporter) -> None:
    """Under a remote parent with tracestate, that tracestate (in order) is written, not the caller's."""
    import requests

    parent = propagation.extract(
        {"traceparent": TRACEPARENT, "tracestate": "rojo=00f067aa0ba902b7,congo=t61"}
    )
    assert parent is not None
    with tracer.span("handler", parent=parent):
        requests.get(server.url, headers={"tracestate": "stale=1"}, timeout=5)
    assert server.values("tracestate") == ["rojo=00f067aa0ba902b7,congo=t61"]


def test_current_baggage_replaces_a_bytes_named_one_and_the_callers_stays_without_it(
    server: Server, spans: InMemoryExporter
) -> None:
    """With baggage current, one baggage line (ours) goes out; with none, the caller's own is sent."""
    import urllib3

    with tracer.span("handler"):
        urllib3.PoolManager().request("GET", server.url, headers={b"baggage": b"old=1"})
        assert server.values("baggage") == ["old=1"]
        baggage.set("tenant", "acme")
        try:
            urllib3.PoolManager().request("GET", server.url, headers={b"baggage": b"old=1"})
        finally:
            baggage.clear()
    assert server.values("baggage") == ["tenant=acme"]


# -- when nothing is traced ------------------------------------------------------------------


def test_outside_a_trace_nothing_is_added_and_the_callers_own_context_passes(
    server: Server, spans: InMemoryExporter
) -> None:
    """No current span: no span, and a traceparent the caller set is sent as it is."""
    import httpx
    import requests

    requests.get(server.url, headers={"traceparent": TRACEPARENT}, timeout=5)
    assert server.values("traceparent") == [TRACEPARENT]
    httpx.get(server.url)
    assert server.values("traceparent") == []
    assert clients(spans) == []


def test_an_unsampled_trace_still_carries_its_context_with_the_sampled_flag_off(
    server: Server, spans: InMemoryExporter
) -> None:
    """Under an unsampled parent: no span exported, a traceparent with flags 00 and a new parent id."""
    import requests

    parent = propagation.extract({"traceparent": TRACEPARENT[:-2] + "00"})
    with tracer.span("handler", parent=parent):
        requests.get(server.url, timeout=5)
    (sent,) = server.values("traceparent")
    assert sent.startswith(f"00-{TRACE_HEX}-")
    assert sent.endswith("-00")
    assert sent != TRACEPARENT[:-2] + "00"
    assert clients(spans) == []


def test_installing_twice_traces_once_and_uninstalling_stops_tracing(
    server: Server, spans: InMemoryExporter
) -> None:
    """instrument() twice: one span per request; uninstrument(): no span, no header; again: traced."""
    import httpx
    import requests

    instrumentation.instrument("urllib3", "httpx")
    with tracer.span("handler"):
        requests.get(server.url, timeout=5)
        httpx.get(server.url)
    assert len(clients(spans)) == 2
    instrumentation.uninstrument("urllib3", "httpx")
    with tracer.span("handler"):
        requests.get(server.url, timeout=5)
        assert server.values("traceparent") == []
        httpx.get(server.url)
        assert server.values("traceparent") == []
    assert clients(spans) == []
    instrumentation.instrument("urllib3", "httpx")
    with tracer.span("handler"):
        requests.get(server.url, timeout=5)
    assert len(clients(spans)) == 1


async def _async_get(url: str) -> None:
    import httpx

    async with httpx.AsyncClient() as client:
        await client.get(url)


def test_uninstalling_keeps_a_wrapper_another_library_put_on_top(
    server: Server, spans: InMemoryExporter
) -> None:
    """A wrapt wrapper (OpenTelemetry's instrumentations use wrapt) above ours stays when we uninstall."""
    import httpx
    import urllib3.connectionpool
    import wrapt

    calls: list[str] = []

    def theirs(wrapped: Any, instance: Any, args: Any, kwargs: Any) -> Any:
        calls.append("theirs")
        return wrapped(*args, **kwargs)

    pool_class: Any = urllib3.connectionpool.HTTPConnectionPool
    transport_class: Any = httpx.HTTPTransport
    # The libraries' own methods, under our wrappers: what the test puts back.
    saved = (vars(pool_class)["urlopen"].__wrapped__, vars(transport_class)["handle_request"].__wrapped__)
    wrapt.wrap_function_wrapper(pool_class, "urlopen", theirs)
    wrapt.wrap_function_wrapper(transport_class, "handle_request", theirs)
    try:
        instrumentation.uninstrument("urllib3", "httpx")
        with tracer.span("handler"):
            urllib3.PoolManager().request("GET", server.url)
            httpx.get(server.url)
        assert calls == ["theirs", "theirs"]
        assert server.values("traceparent") == []
        assert clients(spans) == []
        instrumentation.instrument("urllib3", "httpx")  # ours, still under theirs, is on again
        with tracer.span("handler"):
            urllib3.PoolManager().request("GET", server.url)
            asyncio.run(_async_get(server.url))
        assert len(clients(spans)) == 2
    finally:
        pool_class.urlopen, transport_class.handle_request = saved


# -- all formats on one request ---------------------------------------------------------------


def test_every_configured_format_is_written_for_the_client_span(server: Server) -> None:
    """W3C, B3 single and multi, Cloud Trace (decimal span id), Request-Id and X-Ray all name the span."""
    import requests

    exporter = InMemoryExporter()
    environ = {"OTEL_PROPAGATORS": "tracecontext,baggage,b3,b3multi,cloud_trace,request_id,xray"}
    reset(environ=environ, exporters=[exporter])
    parent = SpanContext(0xA3CE929D0E0E4736, 0x1111111111111111, 1, (), True)  # a 64-bit (B3) trace id
    with tracer.span("handler", parent=parent):
        requests.get(server.url, timeout=5)
    (span,) = clients(exporter)
    trace_hex, span_hex = f"{span.trace_id:032x}", f"{span.span_id:016x}"
    assert trace_hex == "0000000000000000a3ce929d0e0e4736"
    assert server.values("traceparent") == [f"00-{trace_hex}-{span_hex}-01"]
    assert server.values("b3") == [f"{trace_hex}-{span_hex}-1"]
    assert (server.values("x-b3-traceid"), server.values("x-b3-spanid")) == ([trace_hex], [span_hex])
    assert server.values("x-b3-sampled") == ["1"]
    assert server.values("x-b3-parentspanid") == []
    assert server.values("x-cloud-trace-context") == [f"{trace_hex}/{span.span_id};o=1"]
    assert server.values("request-id") == [f"|{trace_hex}.{span_hex}."]
    assert server.values("x-amzn-trace-id") == [
        f"Root=1-{trace_hex[:8]}-{trace_hex[8:]};Parent={span_hex};Sampled=1"
    ]


# -- W3C Trace Context: the test suite's cases, end to end ---------------------------------------


@pytest.fixture
def service(server: Server) -> Iterator[str]:
    """A service like the W3C harness drives: reads the request's context, calls the harness back.

    It extracts from ``http.server``'s own header object (repeated lines
    included) and makes the callback with requests under a span of that parent.
    """

    class Service(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            parent = propagation.extract(self.headers)
            with tracer.span("serve", kind=SpanKind.SERVER, parent=parent or tracer.ROOT):
                import requests

                requests.get(f"{server.url}/callback", timeout=5)
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    running = ThreadingHTTPServer(("127.0.0.1", 0), Service)
    thread = threading.Thread(target=running.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{running.server_address[1]}"
    finally:
        running.shutdown()
        running.server_close()


def harness_call(service: str, server: Server, headers: list[tuple[str, str]]) -> tuple[str, list[str]]:
    """Send `headers` (repeated names allowed) to the service; the traceparent and tracestates it sent on."""
    host, port = service.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=5)
    connection.putrequest("POST", "/test")
    for name, value in headers:
        connection.putheader(name, value)
    connection.putheader("Content-Length", "0")
    connection.endheaders()
    assert connection.getresponse().status == 200
    connection.close()
    (traceparent,) = server.values("traceparent")
    return traceparent, server.values("tracestate")


HEX_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"  # letters in it, for the upper-case case
W3C_TRACE_SUITE = [
    # (headers sent to the service, whether its callback continues the trace they name)
    ([("traceparent", TRACEPARENT)], True),
    ([("TrAcEpArEnT", TRACEPARENT)], True),
    ([("traceparent", f"cc-{TRACE_HEX}-1234567890123456-01")], True),
    ([("traceparent", f"cc-{TRACE_HEX}-1234567890123456-01-what-the-future-will-be-like")], True),
    ([("traceparent", f"cc-{TRACE_HEX}-1234567890123456-01.what-the-future-will-be-like")], False),
    ([("traceparent", f"00-{TRACE_HEX}-1234567890123456-01-what-the-future-will-be-like")], False),
    ([("traceparent", f"00-{TRACE_HEX}-1234567890123456-01.")], False),
    ([("traceparent", f"ff-{TRACE_HEX}-1234567890123456-01")], False),
    ([("traceparent", f"00-{HEX_TRACE.upper()}-1234567890123456-01")], False),
    ([("traceparent", f"00-{HEX_TRACE}-1234567890ABCDEF-01")], False),
    ([("traceparent", "00-00000000000000000000000000000000-1234567890123456-01")], False),
    ([("traceparent", f"00-{TRACE_HEX}-0000000000000000-01")], False),
    ([("traceparent", f"\t 00-{TRACE_HEX}-1234567890123456-01 \t")], True),
    ([("traceparent", f"00-{HEX_TRACE}-1234567890123456-01"), ("traceparent", TRACEPARENT)], False),
    ([("trace-parent", TRACEPARENT)], False),
]


@pytest.mark.parametrize(("headers", "continued"), W3C_TRACE_SUITE)
def test_w3c_harness_traceparent_cases(
    server: Server, service: str, spans: InMemoryExporter, headers: list[tuple[str, str]], continued: bool
) -> None:
    """The W3C test suite's traceparent cases: versions, case, zero ids, OWS, duplicates, wrong names."""
    traceparent, _ = harness_call(service, server, headers)
    assert parse_traceparent(traceparent) is not None
    sent_ids = {value.strip().split("-")[1].lower() for _, value in headers if len(value.split("-")) > 2}
    assert (traceparent.split("-")[1] in sent_ids) is continued
    assert traceparent.split("-")[2] != "1234567890123456"


W3C_STATE_SUITE = [
    # (tracestate lines sent next to a valid traceparent, what the callback must carry)
    (
        [("tracestate", "foo=1,bar=2"), ("tracestate", "rojo=1,congo=2"), ("tracestate", "baz=3")],
        "foo=1,bar=2,rojo=1,congo=2,baz=3",
    ),
    ([("TRACESTATE", "foo=1")], "foo=1"),
    ([("tracestate", ""), ("tracestate", "foo=1")], "foo=1"),
    ([("tracestate", "foo=1 \t , \t bar=2, \t baz=3")], "foo=1,bar=2,baz=3"),
    ([("tracestate", "foo=1"), ("tracestate", "foo=2")], None),
    ([("tracestate", "foo@=1,bar=2")], None),
    ([("tracestate", "FOO=1")], None),
    ([("tracestate", "foo=1"), ("tracestate", "z" * 256 + "=1")], "foo=1," + "z" * 256 + "=1"),
    ([("tracestate", "foo=1"), ("tracestate", "z" * 257 + "=1")], None),
    ([("tracestate", "t" * 241 + "@" + "v" * 14 + "=1")], "t" * 241 + "@" + "v" * 14 + "=1"),
    ([("tracestate", "t" * 242 + "@v=1")], None),
    ([("tracestate", "t@" + "v" * 15 + "=1")], None),
    (
        [("tracestate", ",".join(f"bar{i:02d}={i:02d}" for i in range(1, 33)))],
        ",".join(f"bar{i:02d}={i:02d}" for i in range(1, 33)),
    ),
    ([("tracestate", ",".join(f"bar{i:02d}={i:02d}" for i in range(1, 34)))], None),
    ([("trace-state", "foo=1")], None),
]


@pytest.mark.parametrize(("lines", "expected"), W3C_STATE_SUITE)
def test_w3c_harness_tracestate_cases(
    server: Server, service: str, spans: InMemoryExporter, lines: list[tuple[str, str]], expected: str | None
) -> None:
    """The W3C suite's tracestate cases: several lines joined in order, OWS, key grammar, 32 members."""
    traceparent, states = harness_call(service, server, [("traceparent", TRACEPARENT), *lines])
    assert traceparent.split("-")[1] == TRACE_HEX
    assert states == ([] if expected is None else [expected])


def test_tracestate_all_allowed_characters_round_trip() -> None:
    """Every character the grammar allows in a key and a value is read as it came."""
    key = "abcdefghijklmnopqrstuvwxyz0123456789_-*/"
    value = (
        "".join(map(chr, range(0x20, 0x2C)))
        + "".join(map(chr, range(0x2D, 0x3D)))
        + "".join(map(chr, range(0x3E, 0x7F)))
    )
    assert parse_tracestate(f"{key}={value}") == ((key, value),)
    assert parse_tracestate(f"{key}@a-z0-9_-*/={value}") == ((f"{key}@a-z0-9_-*/", value),)


# -- W3C Baggage ------------------------------------------------------------------------------


def test_baggage_lines_from_a_real_request_are_combined(server: Server, service: str) -> None:
    """Two baggage lines (http.server's header object) read as one list, values decoded."""
    raw = b"baggage: userId=alice\r\nbaggage: serverNode=DF%2028,isProduction=false\r\n\r\n"
    incoming = propagation.extract_incoming(http.client.parse_headers(io.BytesIO(raw)))
    assert incoming.baggage == {
        "userId": ("alice", ""),
        "serverNode": ("DF 28", ""),
        "isProduction": ("false", ""),
    }


def test_baggage_with_invalid_utf8_keeps_the_member_with_a_replacement_character() -> None:
    """Percent-encoded bytes that are not UTF-8 become U+FFFD; the member and its neighbours stay."""
    assert parse_baggage("a=%FFok%C3,b=2") == {"a": ("\ufffdok\ufffd", ""), "b": ("2", "")}


def test_baggage_percent_encoding_round_trips_the_w3c_example() -> None:
    """The test suite's awkward value decodes from quote() and goes out encoded, readable again."""
    from urllib.parse import quote

    value = "\t \"';=asdf!@#$%^&*()"
    entries = parse_baggage(f"SomeKey \t = \t {quote(value)} \t ;  SomeProp")
    assert entries == {"SomeKey": (value, "SomeProp")}
    header = format_baggage(entries)
    assert header is not None
    assert parse_baggage(header) == entries


def test_baggage_limits_on_the_way_out() -> None:
    """180 members and 8192 bytes exactly are written whole; one more member is left out, never cut."""
    assert format_baggage({f"key{i}": ("value", "") for i in range(180)}).count(",") == 179  # type: ignore[union-attr]
    assert len(format_baggage({f"key{i}": ("value", "") for i in range(181)}).split(",")) == 180  # type: ignore[union-attr]
    exact = format_baggage({"a": ("0123456789" * 819, "")})
    assert exact is not None
    assert len(exact) == 8192
    assert format_baggage({"a": ("0123456789" * 819, ""), "b": ("c", "")}) == exact


# -- B3, Cloud Trace, Request-Id ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "flags"),
    [
        ("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-d", 1),
        ("80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0", 0),
    ],
)
def test_b3_debug_reads_as_sampled_and_deny_as_not(header: str, flags: int) -> None:
    """b3 sampling state d (debug) is an accept; 0 a deny."""
    context = parse_single(header)
    assert context is not None
    assert context.trace_flags == flags


def test_b3_multi_sampled_true_and_64_bit_ids_are_read(server: Server) -> None:
    """X-B3-Sampled: true (legacy) is sampled; a 16-hex trace id is the low half of the 128-bit id."""
    composite = propagation.CompositePropagator(("b3multi",))
    context = composite.extract_context(
        {"X-B3-TraceId": "a3ce929d0e0e4736", "X-B3-SpanId": "e457b5a2e4d86bd1", "X-B3-Sampled": "true"}
    )
    assert context == SpanContext(0xA3CE929D0E0E4736, 0xE457B5A2E4D86BD1, 1, (), True)


@pytest.mark.parametrize(
    ("options", "flags"),
    [(";o=1", 1), (";o=0", 0), ("", 0), (";o=3", 1), (";o=2", 0), (";o=" + "9" * 5000, 1)],
)
def test_cloud_trace_options_are_a_bit_mask(options: str, flags: int) -> None:
    """o= is a bit mask whose low bit means traced; a huge number neither raises nor loses the id."""
    context = parse_cloud_trace(f"105445aa7843bc8bf206b12000100000/12345{options}")
    assert context == SpanContext(0x105445AA7843BC8BF206B12000100000, 12345, flags, (), True)


def test_request_id_is_read_only_without_traceparent() -> None:
    """Azure's Request-Id gives the context alone; next to any traceparent it is ignored."""
    composite = propagation.CompositePropagator(("tracecontext", "request_id"))
    legacy = "|4bf92f3577b34da6a3ce929d0e0e4736.00f067aa0ba902b7."
    alone = composite.extract_context({"Request-Id": legacy})
    assert alone == SpanContext(0x4BF92F3577B34DA6A3CE929D0E0E4736, 0x00F067AA0BA902B7, 1, (), True)
    assert composite.extract_context({"Request-Id": legacy, "traceparent": TRACEPARENT}) == parse_traceparent(
        TRACEPARENT
    )
