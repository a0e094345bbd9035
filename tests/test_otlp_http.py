"""OTLPHttpExporter against a real local receiver: the wire, keep-alive, TLS, SigV4, settings, errors."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import logging
import socket
import threading
import time
from collections.abc import Iterator
from email.utils import format_datetime
from pathlib import Path

import pytest
from support.otlp_receiver import Fault, OTLPReceiver, free_port
from support.spans import make_span, make_spans
from support.tls import self_signed

from nexs_serverless import configure, stats, traced_handler, tracer
from nexs_serverless.config import from_env
from nexs_serverless.exporters import create
from nexs_serverless.exporters._http import Connection
from nexs_serverless.exporters._otlp_response import parse_retry_after
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.otlp_grpc import OTLPGrpcExporter
from nexs_serverless.exporters.otlp_http import OTLPHttpExporter
from nexs_serverless.exporters.resilient import ResilientExporter
from nexs_serverless.runtime import runtime
from nexs_serverless.testing import LambdaContext


@pytest.fixture
def exporter(receiver: OTLPReceiver) -> Iterator[OTLPHttpExporter]:
    otlp = OTLPHttpExporter(endpoint=receiver.url, timeout_s=2.0)
    yield otlp
    otlp.shutdown()


def test_spans_arrive_as_protobuf_on_v1_traces(receiver: OTLPReceiver, exporter: OTLPHttpExporter) -> None:
    """A send posts an ExportTraceServiceRequest to /v1/traces with the OTLP content type."""
    assert exporter.send(make_spans(3), 2.0) == 0
    (request,) = receiver.requests
    assert request.path == "/v1/traces"
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["user-agent"].startswith("nexs-serverless/")
    assert receiver.span_names() == ["span-0", "span-1", "span-2"]


def test_gzip_and_custom_headers(receiver: OTLPReceiver) -> None:
    """compression=gzip sends a gzipped body; configured headers are sent on every request."""
    otlp = OTLPHttpExporter(endpoint=receiver.url, compression="gzip", headers={"x-api-key": "k1"})
    try:
        otlp.send([make_span(attributes={"a": "x" * 1000})], 2.0)
    finally:
        otlp.shutdown()
    (request,) = receiver.requests
    assert request.headers["content-encoding"] == "gzip"
    assert request.headers["x-api-key"] == "k1"
    assert len(request.body) < len(request.data)
    assert receiver.spans()[0].attributes[0].value.string_value == "x" * 1000


def test_connection_is_kept_alive_across_sends(receiver: OTLPReceiver, exporter: OTLPHttpExporter) -> None:
    """Warm invocations reuse one TCP connection."""
    for _ in range(5):
        exporter.send(make_spans(1), 2.0)
    assert exporter._connection.connects == 1
    assert len(receiver.requests) == 5


def test_stale_kept_connection_is_replaced(receiver: OTLPReceiver, exporter: OTLPHttpExporter) -> None:
    """A kept connection the server closed while idle is replaced, and the send succeeds."""
    receiver.misbehave(Fault.accept_then_close())
    exporter.send(make_spans(1, "first"), 2.0)
    time.sleep(0.05)  # let the server's close reach us
    exporter.send(make_spans(1, "second"), 2.0)
    assert receiver.span_names() == ["first-0", "second-0"]
    assert exporter._connection.connects == 2


def test_prepare_opens_the_connection_before_the_first_send(
    receiver: OTLPReceiver, exporter: OTLPHttpExporter
) -> None:
    """prepare() connects; the first send then reuses that connection."""
    exporter.prepare()
    assert exporter._connection.is_open
    exporter.send(make_spans(1), 2.0)
    assert exporter._connection.connects == 1


def test_partial_success_returns_rejected_count(
    receiver: OTLPReceiver, exporter: OTLPHttpExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """partial_success.rejected_spans is returned and its message logged once."""
    receiver.misbehave(Fault.partial(2, "spans too old"))
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        assert exporter.send(make_spans(5), 2.0) == 2
    assert "spans too old" in caplog.text


def test_garbage_success_body_counts_as_delivered(receiver: OTLPReceiver, exporter: OTLPHttpExporter) -> None:
    """A 200 whose body is not a response message is still a delivery, counted as undecodable."""
    receiver.misbehave(Fault.garbage_body())
    assert exporter.send(make_spans(1), 2.0) == 0
    assert stats()["export_response_undecodable"] == 1


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, ErrorClass.BAD_REQUEST),
        (401, ErrorClass.AUTH),
        (403, ErrorClass.AUTH),
        (429, ErrorClass.THROTTLED),
        (500, ErrorClass.REFUSED),
        (503, ErrorClass.SERVER),
        (504, ErrorClass.TIMEOUT),
    ],
)
def test_http_errors_are_classified(
    receiver: OTLPReceiver, exporter: OTLPHttpExporter, status: int, error_class: str
) -> None:
    """Each HTTP error status raises an ExportError of its class, with the status."""
    receiver.misbehave(Fault.status_code(status))
    with pytest.raises(ExportError) as caught:
        exporter.send(make_spans(1), 2.0)
    assert caught.value.error_class == error_class
    assert caught.value.status == status


def test_retry_after_is_read_from_the_response(receiver: OTLPReceiver, exporter: OTLPHttpExporter) -> None:
    """A 429's Retry-After (seconds) is carried on the error."""
    receiver.misbehave(Fault.status_code(429, retry_after="7"))
    with pytest.raises(ExportError) as caught:
        exporter.send(make_spans(1), 2.0)
    assert caught.value.retry_after_s == 7.0


def test_retry_after_accepts_http_dates(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry-After as an HTTP date gives the seconds until then; junk gives None."""
    now = datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    monkeypatch.setattr(time, "time", now.timestamp)  # a fixed "now": no wall clock in the result
    later = now + datetime.timedelta(seconds=30)
    assert parse_retry_after(format_datetime(later, usegmt=True)) == 30.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_error_message_comes_from_the_status_body(receiver: OTLPReceiver, exporter: OTLPHttpExporter) -> None:
    """The google.rpc.Status message of an error body is in the error text."""
    from google.rpc.status_pb2 import Status

    receiver.misbehave(Fault.status_code(400, body=Status(code=3, message="bad span").SerializeToString()))
    with pytest.raises(ExportError, match="bad span"):
        exporter.send(make_spans(1), 2.0)


# A send still running after this long has hung. Generous on purpose: it catches hangs, not
# slowness (speed is measured by the benchmark scripts, never asserted in tests).
HANG_GUARD_S = 30.0


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        (Fault.hang(), ErrorClass.TIMEOUT),
        (Fault.reset_before_status(), ErrorClass.NETWORK),
        (Fault.garbage(), ErrorClass.NETWORK),
        (Fault.close(), ErrorClass.NETWORK),
        (Fault.slow(10.0), ErrorClass.TIMEOUT),
    ],
)
def test_transport_faults_are_classified_within_the_timeout(
    receiver: OTLPReceiver, exporter: OTLPHttpExporter, fault: Fault, error_class: str
) -> None:
    """Hangs, resets, garbage and closes raise classified errors; the timeout, not the server, ends a wait.

    A send that ignored its 0.3 s timeout would get the slow receiver's answer after 10 s (a
    success: no error, spans accepted) and would wait on the hung one past the hang guard.
    """
    receiver.misbehave(fault)
    outcome: list[object] = []

    def send() -> None:
        try:
            outcome.append(exporter.send(make_spans(1), 0.3))
        except Exception as exc:  # the error under test, checked on the test's thread
            outcome.append(exc)

    worker = threading.Thread(target=send, name="send", daemon=True)
    worker.start()
    worker.join(HANG_GUARD_S)
    if worker.is_alive():
        receiver.close()  # lets the stuck send go, so that the exporter's shutdown does not wait on it
        pytest.fail(f"send() has not returned after {HANG_GUARD_S} s: it hangs")
    (error,) = outcome
    assert isinstance(error, ExportError), error
    assert error.error_class == error_class
    assert receiver.spans() == []


def test_connection_refused_is_a_network_error() -> None:
    """Nothing listening: a NETWORK error at once."""
    otlp = OTLPHttpExporter(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces")
    with pytest.raises(ExportError) as caught:
        otlp.send(make_spans(1), 1.0)
    assert caught.value.error_class == ErrorClass.NETWORK


def test_export_without_wrapper_reports_failure_not_exception() -> None:
    """Used bare, export() returns FAILURE and counts the error class."""
    otlp = OTLPHttpExporter(endpoint=f"http://127.0.0.1:{free_port()}/v1/traces")
    assert otlp.export(make_spans(1)) is ExportResult.FAILURE
    assert stats()["export_errors_network"] == 1


def test_https_with_configured_certificate(tmp_path: Path) -> None:
    """An https endpoint verifies the server with OTEL_EXPORTER_OTLP_CERTIFICATE's bundle."""
    cert, key = self_signed(tmp_path)
    with OTLPReceiver(tls=(cert, key)) as server:
        settings = from_env(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": server.url, "OTEL_EXPORTER_OTLP_CERTIFICATE": cert}
        )
        otlp = create("otlp", settings)
        assert isinstance(otlp, OTLPHttpExporter)
        try:
            otlp.send(make_spans(2), 3.0)
        finally:
            otlp.shutdown()
        assert server.span_names() == ["span-0", "span-1"]


def test_https_with_unknown_certificate_fails(tmp_path: Path) -> None:
    """Without the CA bundle the self-signed server is refused (no silent downgrade)."""
    cert, key = self_signed(tmp_path)
    with OTLPReceiver(tls=(cert, key)) as server:
        otlp = OTLPHttpExporter(endpoint=server.url)
        with pytest.raises(ExportError) as caught:
            otlp.send(make_spans(1), 2.0)
        assert server.requests == []
    # Not a network error to retry: the certificate will be as unknown on the next attempt.
    assert caught.value.error_class == ErrorClass.AUTH
    assert not caught.value.retryable


def _verify_sigv4(method: str, path: str, headers: dict[str, str], body: bytes, secret: str) -> str:
    """Recompute an AWS SigV4 signature from what the server received (independent of botocore)."""
    authorization = headers["authorization"]
    algorithm, _, fields_text = authorization.partition(" ")
    assert algorithm == "AWS4-HMAC-SHA256"
    fields = dict(part.strip().split("=", 1) for part in fields_text.split(","))
    _access_key, date, region, service, terminator = fields["Credential"].split("/")
    assert terminator == "aws4_request"
    signed = fields["SignedHeaders"].split(";")
    canonical_headers = "".join(f"{name}:{headers[name].strip()}\n" for name in signed)
    canonical = "\n".join(
        [method, path, "", canonical_headers, ";".join(signed), hashlib.sha256(body).hexdigest()]
    )
    scope = f"{date}/{region}/{service}/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", headers["x-amz-date"], scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + secret).encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    assert fields["Signature"] == expected
    return f"{region}/{service}"


def test_sigv4_signature_is_valid(receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch) -> None:
    """With sigv4_region set, requests carry a SigV4 signature that verifies over host, date and body."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    otlp = OTLPHttpExporter(endpoint=receiver.url, sigv4_region="eu-west-1", compression="gzip")
    try:
        otlp.send(make_spans(2), 5.0)
    finally:
        otlp.shutdown()
    (request,) = receiver.requests
    assert request.headers["x-amz-security-token"] == "session-token"
    assert "host" in request.headers["authorization"]
    scope = _verify_sigv4(
        "POST", "/v1/traces", request.headers, request.body, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
    )
    assert scope == "eu-west-1/xray"
    assert receiver.span_names() == ["span-0", "span-1"]


def test_xray_endpoint_turns_signing_on() -> None:
    """The region of an xray.<region>.amazonaws.com endpoint is the signing region; others sign nothing."""
    assert OTLPHttpExporter(endpoint="https://xray.us-west-2.amazonaws.com/v1/traces").sigv4_region == (
        "us-west-2"
    )
    assert OTLPHttpExporter(endpoint="https://collector.example.com/v1/traces").sigv4_region is None


def test_settings_endpoint_headers_timeout_compression() -> None:
    """OTEL_EXPORTER_OTLP_* set endpoint (+/v1/traces), headers, timeout and compression."""
    settings = from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/",
            "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc%20def,tenant=t1",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "2500",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        }
    )
    otlp = create("otlp_proto_http", settings)
    assert isinstance(otlp, OTLPHttpExporter)
    assert otlp.endpoint == "http://collector:4318/v1/traces"
    assert otlp._headers["api-key"] == "abc def"
    assert otlp._headers["tenant"] == "t1"
    assert otlp.timeout_s == 2.5
    assert otlp.compression == "gzip"


def test_traces_endpoint_is_used_as_is_and_wins() -> None:
    """The signal-specific endpoint is not appended to and beats the general one."""
    settings = from_env(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": "http://general:4318",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://traces.example.com/custom/path",
        }
    )
    otlp = create("otlp", settings)
    assert isinstance(otlp, OTLPHttpExporter)
    assert otlp.endpoint == "https://traces.example.com/custom/path"


def test_protocol_grpc_makes_otlp_a_grpc_exporter() -> None:
    """OTEL_TRACES_EXPORTER=otlp with OTEL_EXPORTER_OTLP_PROTOCOL=grpc builds the gRPC exporter."""
    settings = from_env({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"})
    otlp = create("otlp", settings)
    assert isinstance(otlp, OTLPGrpcExporter)
    assert otlp.target == "localhost:4317"


def test_bad_settings_log_one_line_and_fall_back(caplog: pytest.LogCaptureFixture) -> None:
    """A malformed endpoint or compression is reported and the default used."""
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        settings = from_env(
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "ftp://nope", "OTEL_EXPORTER_OTLP_COMPRESSION": "brotli"}
        )
        otlp = create("otlp", settings)
    assert isinstance(otlp, OTLPHttpExporter)
    assert otlp.endpoint == "http://localhost:4318/v1/traces"
    assert otlp.compression == "none"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in caplog.text
    assert "OTEL_EXPORTER_OTLP_COMPRESSION" in caplog.text


def test_bad_arguments_raise() -> None:
    """Invalid constructor arguments fail at once."""
    with pytest.raises(ValueError):
        OTLPHttpExporter(endpoint="collector:4318")
    with pytest.raises(ValueError):
        OTLPHttpExporter(compression="zstd")


def test_env_configured_otlp_is_wrapped_and_flushes(receiver: OTLPReceiver) -> None:
    """OTEL_TRACES_EXPORTER=otlp: the runtime builds the exporter behind the resilience wrapper."""
    configure(
        exporters=None,
        environ={"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url},
    )
    (wrapped,) = runtime.exporters()
    assert isinstance(wrapped, ResilientExporter)
    assert isinstance(wrapped.inner, OTLPHttpExporter)
    with tracer.span("work"):
        pass
    from nexs_serverless import flush

    flush()
    assert receiver.span_names() == ["work"]
    wrapped.shutdown()


def _prepare_thread() -> threading.Thread | None:
    return next((t for t in threading.enumerate() if t.name == "nexs-prepare-exporters"), None)


def test_decorating_opens_the_connection_in_the_background(
    receiver: OTLPReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """@traced_handler with an OTLP exporter connects during init, off the calling thread."""
    configure(
        exporters=None,
        environ={"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url},
    )

    prepared_on: list[str] = []
    done = threading.Event()
    original = OTLPHttpExporter.prepare

    def recording_prepare(self: OTLPHttpExporter) -> None:
        original(self)
        prepared_on.append(threading.current_thread().name)
        done.set()

    monkeypatch.setattr(OTLPHttpExporter, "prepare", recording_prepare)

    @traced_handler
    def handler(event: object, context: object) -> str:
        return "ok"

    # The thread may already have finished, so wait on what it did rather than look it up.
    assert done.wait(5)
    assert prepared_on == ["nexs-prepare-exporters"]
    (wrapped,) = runtime.exporters()
    assert isinstance(wrapped, ResilientExporter)
    inner = wrapped.inner
    assert isinstance(inner, OTLPHttpExporter)
    assert inner._connection.is_open
    assert handler({}, LambdaContext()) == "ok"
    assert inner._connection.connects == 1
    assert receiver.span_names() == ["test-function"]
    wrapped.shutdown()


def test_console_exporter_starts_no_thread() -> None:
    """The default console exporter needs no connection: decorating starts no thread."""
    configure(exporters=None, environ={})

    @traced_handler
    def handler(event: object, context: object) -> None:
        return None

    assert _prepare_thread() is None


def test_a_send_never_outlasts_the_exporters_timeout(receiver: OTLPReceiver) -> None:
    """``OTEL_EXPORTER_OTLP_TIMEOUT`` caps each request even when the flush has longer.

    Behind `ResilientExporter` a send is offered the whole flush budget (5 s here); the
    exporter's own 0.3 s must still bound the wait. The receiver answers after 2 s: a send
    that waited on the 5 s offered would get that answer (a success), not a timeout.
    """
    receiver.misbehave(Fault.slow(2.0))
    otlp = OTLPHttpExporter(endpoint=receiver.url, timeout_s=0.3)
    with pytest.raises(ExportError) as caught:
        otlp.send(make_spans(1), 5.0)
    assert caught.value.error_class == ErrorClass.TIMEOUT
    otlp.shutdown()


def test_waiting_for_the_connection_comes_out_of_the_send_budget(receiver: OTLPReceiver) -> None:
    """A send queued behind another (or behind the background `prepare`) has its budget, not two.

    The first send holds the connection for its whole 1 s timeout against a hung
    receiver; the second, started 0.1 s later, used to wait ~0.9 s for it and then take
    a fresh second, in which the receiver's answer after 0.6 s arrived: a success. With
    the wait taken out of its second, about 0.1 s is left, and it times out.
    """
    receiver.misbehave(Fault.hang(), Fault.slow(0.6))
    otlp = OTLPHttpExporter(endpoint=receiver.url, timeout_s=1.0)
    first_outcome: list[object] = []

    def send_first() -> None:
        try:
            first_outcome.append(otlp.send(make_spans(1), 1.0))
        except ExportError as exc:
            first_outcome.append(exc)

    first = threading.Thread(target=send_first, daemon=True)
    first.start()
    time.sleep(0.1)
    with pytest.raises(ExportError) as caught:
        otlp.send(make_spans(1), 1.0)
    first.join(HANG_GUARD_S)
    assert caught.value.error_class == ErrorClass.TIMEOUT
    assert [type(outcome) for outcome in first_outcome] == [ExportError]
    otlp.shutdown()


def test_configured_headers_cannot_forge_the_request_head(
    receiver: OTLPReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """A percent-decoded CR/LF in OTEL_EXPORTER_OTLP_HEADERS is refused by name; the other headers go out.

    Before, ``api-key=abc%0D%0AX-Injected:%20yes`` put a second header of the
    setting's choosing on the wire, and a value beyond Latin-1 made every send
    fail as a serialization error (every batch dropped); now such a value goes
    out as its UTF-8 bytes.
    """
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        settings = from_env(
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
                "OTEL_EXPORTER_OTLP_HEADERS": "api-key=abc%0D%0AX-Injected:%20yes,x-tenant=%E2%9C%93,ok=1",
            }
        )
        otlp = create("otlp_proto_http", settings)
    assert isinstance(otlp, OTLPHttpExporter)
    assert otlp.send(make_spans(1), 2.0) == 0
    (received,) = receiver.requests
    assert "x-injected" not in received.headers
    assert "api-key" not in received.headers
    assert received.headers["ok"] == "1"
    assert received.headers["x-tenant"].encode("latin-1").decode("utf-8") == "✓"
    (warning,) = [r.getMessage() for r in caplog.records if "OTEL_EXPORTER_OTLP_HEADERS" in r.getMessage()]
    assert "api-key=" in warning
    otlp.shutdown()


def test_a_malformed_traces_endpoint_falls_back_to_the_general_one(caplog: pytest.LogCaptureFixture) -> None:
    """An unusable signal endpoint is reported and skipped, as if unset: the general endpoint applies."""
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        settings = from_env(
            {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://general:4318",
            }
        )
        otlp = create("otlp_proto_http", settings)
    assert isinstance(otlp, OTLPHttpExporter)
    assert otlp.endpoint == "http://general:4318/v1/traces"
    (warning,) = [r.getMessage() for r in caplog.records if "TRACES_ENDPOINT" in r.getMessage()]
    assert "using 'http://general:4318/v1/traces'" in warning


def test_over_tls_the_prepared_connection_is_kept_and_a_closed_one_replaced(tmp_path: Path) -> None:
    """TLS 1.3 session tickets make a live idle connection readable: it is still reused.

    Before, `prepare()`'s connection was judged closed at the first send and a second
    handshake paid for; a connection the server really closed must still be replaced.
    """
    cert, key = self_signed(tmp_path)
    with OTLPReceiver(tls=(cert, key)) as server:
        otlp = OTLPHttpExporter(endpoint=server.url, certificate=cert)
        otlp.prepare()
        time.sleep(0.2)  # the tickets arrive after the handshake
        otlp.send(make_spans(1, "first"), 2.0)
        otlp.send(make_spans(1, "second"), 2.0)
        assert otlp._connection.connects == 1
        server.misbehave(Fault.accept_then_close())
        otlp.send(make_spans(1, "third"), 2.0)
        time.sleep(0.05)  # let the server's close reach us
        otlp.send(make_spans(1, "fourth"), 2.0)
        assert server.span_names() == ["first-0", "second-0", "third-0", "fourth-0"]
        assert otlp._connection.connects == 2
        otlp.shutdown()


def test_an_answer_sent_before_the_body_was_read_is_the_error_reported() -> None:
    """A server that answers 413 after the head and closes: a 413 is read, not a network error.

    The client's write then fails with a reset; the answer is already waiting in its
    receive buffer. Read as "connection closed", the batch was retried, charged to
    the breaker and carried over, where it blocked newer spans (a 413 now splits the
    batch: tests/test_otlp11.py).
    """
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_early() -> None:
        connection, _ = listener.accept()
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                head += connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 413 Payload Too Large\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
            )
            time.sleep(0.05)

    server = threading.Thread(target=answer_early, daemon=True)
    server.start()
    connection = Connection("http", "127.0.0.1", listener.getsockname()[1])
    body = b"x" * 8_000_000  # far more than the socket buffers
    try:
        response = connection.request("POST", "/v1/traces", {}, body, 5.0)
    finally:
        server.join(5)
        listener.close()
        connection.close()
    assert response.status == 413
