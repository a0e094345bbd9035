"""Session 12 OTLP/HTTP edges: a 2xx cut short, unusable TLS files, a 413's limit lapsing, chunk sizes."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.export_checks import export_counters, wrap_resilient
from support.otlp_receiver import Fault, OTLPReceiver, free_port
from support.spans import make_span, make_spans
from support.tls import self_signed

from nexs_serverless import stats
from nexs_serverless.config import from_env
from nexs_serverless.exporters import create
from nexs_serverless.exporters._http import Connection, ProtocolError
from nexs_serverless.exporters._otlp_split import LEARNED_LIMIT_BATCHES
from nexs_serverless.exporters.base import ExportResult, outcome
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.otlp_http import OTLPHttpExporter
from nexs_serverless.finished import FinishedSpan

# -- an answer cut short ---------------------------------------------------------------------


def test_a_200_cut_after_its_headers_is_a_delivery(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter
) -> None:
    """A 200 head then a reset mid-body: delivered once, counted truncated; the next send reconnects."""
    receiver.misbehave(Fault.reset_after_status())
    assert otlp_http.send(make_spans(2, "cut"), 5.0) == 0
    assert stats()["export_response_truncated"] == 1
    assert not otlp_http._connection.is_open
    assert otlp_http.send(make_spans(1, "next"), 5.0) == 0
    assert receiver.span_names() == ["cut-0", "cut-1", "next-0"]
    assert len(receiver.requests) == 2
    assert otlp_http._connection.connects == 2


def test_behind_the_wrapper_a_cut_200_is_sent_once_and_counted_sent(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter
) -> None:
    """No retry after a cut 200 (a retry would deliver the spans twice); nothing carried over."""
    receiver.misbehave(Fault.reset_after_status())
    wrapped = wrap_resilient(otlp_http)
    assert wrapped.export(make_spans(3)) is ExportResult.SUCCESS
    assert len(receiver.requests) == 1
    assert receiver.span_names() == ["span-0", "span-1", "span-2"]
    assert len(wrapped.carryover) == 0
    assert export_counters() == {"export_spans_sent": 3}
    assert stats()["export_response_truncated"] == 1


@pytest.mark.parametrize(
    ("status", "error_class"),
    [
        (400, ErrorClass.BAD_REQUEST),
        (401, ErrorClass.AUTH),
        (429, ErrorClass.THROTTLED),
        (503, ErrorClass.SERVER),
    ],
)
def test_a_failure_status_cut_short_keeps_its_class(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter, status: int, error_class: str
) -> None:
    """A non-2xx head then a reset: the status's class, not a NETWORK failure; nothing counted truncated."""
    receiver.misbehave(Fault.reset_after_status(status))
    with pytest.raises(ExportError) as caught:
        otlp_http.send(make_spans(1), 5.0)
    assert caught.value.error_class == error_class
    assert caught.value.status == status
    assert "export_response_truncated" not in stats()


def test_a_413_cut_short_still_splits_the_batch(receiver: OTLPReceiver, otlp_http: OTLPHttpExporter) -> None:
    """A 413 whose body is cut is still a 413: the batch goes again as two halves."""
    receiver.misbehave(Fault.reset_after_status(413))
    assert otlp_http.send(make_spans(4), 5.0) == 0
    assert [len(request.spans()) for request in receiver.requests] == [4, 2, 2]
    assert receiver.span_names() == ["span-0", "span-1", "span-2", "span-3"]


def test_a_reset_before_the_status_line_is_retried(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter
) -> None:
    """Part of a status line then a reset: NETWORK, retried, delivered by the retry; nothing truncated."""
    receiver.misbehave(Fault.reset_before_status())
    assert wrap_resilient(otlp_http).export(make_spans(2)) is ExportResult.SUCCESS
    assert len(receiver.requests) == 2
    assert receiver.span_names() == ["span-0", "span-1"]
    assert export_counters() == {"export_errors_network": 1, "export_retries": 1, "export_spans_sent": 2}


# -- TLS files that cannot be used --------------------------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 that never accepts: a connection attempt would wait in its backlog."""
    server = socket.create_server(("127.0.0.1", 0))
    server.setblocking(False)
    yield server
    server.close()


def _connected(listener: socket.socket) -> bool:
    try:
        connection, _ = listener.accept()
    except BlockingIOError:
        return False
    connection.close()
    return True


@pytest.mark.parametrize("variable", ["CERTIFICATE", "CLIENT_CERTIFICATE", "CLIENT_KEY"])
@pytest.mark.parametrize("form", ["OTEL_EXPORTER_OTLP_TRACES_", "OTEL_EXPORTER_OTLP_"])
def test_a_missing_tls_file_is_an_auth_error_naming_its_variable(
    tmp_path: Path, listener: socket.socket, variable: str, form: str
) -> None:
    """As over gRPC: AUTH (not retried), naming the variable and the path; no connection is even tried."""
    cert, key = self_signed(tmp_path)
    missing = str(tmp_path / "missing.pem")
    environ = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"https://127.0.0.1:{listener.getsockname()[1]}/v1/traces",
        "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE": cert,
        "OTEL_EXPORTER_OTLP_CLIENT_KEY": key,
    }
    environ[form + variable] = missing
    otlp = create("otlp_proto_http", from_env(environ))
    assert isinstance(otlp, OTLPHttpExporter)
    with pytest.raises(ExportError) as caught:
        otlp.send(make_spans(1), 5.0)
    assert caught.value.error_class == ErrorClass.AUTH
    assert not caught.value.retryable
    assert f"OTEL_EXPORTER_OTLP_[TRACES_]{variable} " in str(caught.value)
    assert repr(missing) in str(caught.value)
    assert "No such file or directory" in str(caught.value)
    assert not _connected(listener)


def test_a_key_that_does_not_go_with_its_certificate_names_both(
    tmp_path: Path, listener: socket.socket
) -> None:
    """Both files readable, their content refused: AUTH naming the certificate's and the key's variables."""
    cert, _ = self_signed(tmp_path)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key\n")
    otlp = OTLPHttpExporter(
        endpoint=f"https://127.0.0.1:{listener.getsockname()[1]}/v1/traces",
        client_certificate=cert,
        client_key=str(junk),
    )
    with pytest.raises(ExportError) as caught:
        otlp.send(make_spans(1), 5.0)
    assert caught.value.error_class == ErrorClass.AUTH
    message = str(caught.value)
    assert f"OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE (client_certificate) = {cert!r}" in message
    assert f"OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_KEY (client_key) = {str(junk)!r}" in message
    assert not _connected(listener)


def test_a_missing_ca_bundle_is_logged_once_and_its_spans_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Three flushes with a missing CA bundle: one log line naming it, no retry, the spans carried over."""
    missing = str(tmp_path / "ca.pem")
    otlp = OTLPHttpExporter(endpoint=f"https://127.0.0.1:{free_port()}/v1/traces", certificate=missing)
    wrapped = wrap_resilient(otlp)
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        for n in range(3):
            assert wrapped.export(make_spans(1, f"flush{n}")) is ExportResult.FAILURE
    lines = [record.getMessage() for record in caplog.records if repr(missing) in record.getMessage()]
    assert len(lines) == 1
    assert "OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE" in lines[0]
    counters = stats()
    assert counters["export_errors_auth"] == 3
    assert counters.get("export_retries", 0) == 0
    assert counters.get("export_errors_network", 0) == 0
    assert len(wrapped.carryover) == 3


# -- a limit learned from a 413 -------------------------------------------------------------------


BLOB = {"blob": "b" * 5000}


def _batch(prefix: str) -> list[FinishedSpan]:
    """Four spans of about 5 KB: about 20 KB in one request."""
    return make_spans(4, prefix, attributes=BLOB)


def _learn_a_limit(receiver: OTLPReceiver, otlp: OTLPHttpExporter) -> None:
    """One 413 on a four-span batch (its halves accepted): the exporter learns about 10 KB."""
    receiver.misbehave(Fault.status_code(413))
    assert otlp.send(_batch("learn"), 5.0) == 0
    assert [len(request.spans()) for request in receiver.requests] == [4, 2, 2]


def test_a_span_over_a_learned_limit_goes_alone_not_dropped(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter
) -> None:
    """After a 413 taught ~10 KB, a 15 KB span the collector takes is sent in a request of its own."""
    _learn_a_limit(receiver, otlp_http)
    spans = [
        make_span(name="small-0", span_id=1),
        make_span(name="big", span_id=2, attributes={"blob": "c" * 15_000}),
        make_span(name="small-1", span_id=3),
    ]
    assert otlp_http.send(spans, 5.0) == 0
    assert [[span.name for span in request.spans()] for request in receiver.requests[3:]] == [
        ["small-0"],
        ["big"],
        ["small-1"],
    ]
    assert "spans_dropped_oversize" not in stats()


def test_under_a_configured_limit_a_learned_one_drops_only_what_is_over_the_configured(
    receiver: OTLPReceiver,
) -> None:
    """max_request_bytes=32 KiB, ~10 KB learned: a 20 KB span goes alone, a 40 KB one is dropped."""
    otlp = OTLPHttpExporter(endpoint=receiver.url, timeout_s=5.0, max_request_bytes=32 * 1024)
    try:
        _learn_a_limit(receiver, otlp)
        spans = [
            make_span(name="fits", span_id=1, attributes={"blob": "d" * 20_000}),
            make_span(name="too-big", span_id=2, attributes={"blob": "e" * 40_000}),
        ]
        sent = outcome(otlp.send(spans, 5.0))
    finally:
        otlp.shutdown()
    assert sent == (0, 1)  # none rejected, one dropped
    assert [[span.name for span in request.spans()] for request in receiver.requests[3:]] == [["fits"]]
    assert stats()["spans_dropped_oversize"] == 1


def test_a_learned_limit_lapses_after_its_batches(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter
) -> None:
    """A 413 sent once by mistake splits the next LEARNED_LIMIT_BATCHES big batches, not every later one."""
    _learn_a_limit(receiver, otlp_http)
    requests = []
    for n in range(LEARNED_LIMIT_BATCHES + 2):
        before = len(receiver.requests)
        assert otlp_http.send(_batch(f"b{n}"), 5.0) == 0
        requests.append(len(receiver.requests) - before)
    # The accepted halves weighed a little more than half the refused request (each its own framing),
    # so under the learned limit each 5 KB span goes alone: four requests a batch, then one.
    assert requests == [4] * LEARNED_LIMIT_BATCHES + [1, 1]
    assert all(request.accepted for request in receiver.requests[3:])
    assert len(receiver.spans()) == 4 * (LEARNED_LIMIT_BATCHES + 3)


def test_a_real_limit_is_learned_again_after_it_lapses(
    receiver: OTLPReceiver, otlp_http: OTLPHttpExporter
) -> None:
    """Lapsed, the next big batch goes whole; a collector still refusing it teaches the limit again."""
    _learn_a_limit(receiver, otlp_http)
    for n in range(LEARNED_LIMIT_BATCHES):
        otlp_http.send(_batch(f"b{n}"), 5.0)
    receiver.misbehave(Fault.status_code(413))
    otlp_http.send(_batch("whole"), 5.0)
    otlp_http.send(_batch("after"), 5.0)
    tail = receiver.requests[3 + 4 * LEARNED_LIMIT_BATCHES :]
    assert [([span.name for span in request.spans()], request.accepted) for request in tail] == [
        (["whole-0", "whole-1", "whole-2", "whole-3"], False),  # tried whole: refused
        (["whole-0", "whole-1"], True),
        (["whole-2", "whole-3"], True),
        (["after-0"], True),  # learned again: split up front, no second 413
        (["after-1"], True),
        (["after-2"], True),
        (["after-3"], True),
    ]


# -- chunked bodies ------------------------------------------------------------------------------


def _serve_once(answer: bytes) -> tuple[int, threading.Thread, socket.socket]:
    """A server on 127.0.0.1 that reads one request head, sends `answer` in one write and closes."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            head = b""
            while b"\r\n\r\n" not in head:
                head += connection.recv(65536)
            connection.sendall(answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], thread, listener


# Each used to be read without an error: "-7" as the 5 bytes before the last 7 of the buffer
# ("hello"), "-0" as the end of the body, "+5" and "0x5" as 5.
@pytest.mark.parametrize("size", [b"-7", b"-0", b"+5", b"0x5"])
def test_a_chunk_size_that_is_not_hex_digits_is_a_protocol_error(size: bytes) -> None:
    """RFC 9112's chunk-size is hex digits only: a sign or a prefix is refused, not parsed by `int`."""
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\nhello\r\n0\r\n\r\n"
    port, thread, listener = _serve_once(answer)
    connection = Connection("http", "127.0.0.1", port)
    try:
        with pytest.raises(ProtocolError, match="bad chunk size"):
            connection.request("POST", "/v1/traces", {}, b"x", 5.0)
    finally:
        thread.join(5)
        listener.close()
        connection.close()


def test_a_chunked_body_is_still_read() -> None:
    """Hex sizes in either case, with an extension: the body is their chunks, joined."""
    answer = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n"
    )
    port, thread, listener = _serve_once(answer)
    connection = Connection("http", "127.0.0.1", port)
    try:
        response = connection.request("POST", "/v1/traces", {}, b"x", 5.0)
    finally:
        thread.join(5)
        listener.close()
        connection.close()
    assert (response.status, response.body) == (200, b"hello0123456789")
