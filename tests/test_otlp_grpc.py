"""OTLPGrpcExporter against a grpcio server built from opentelemetry-proto's service definition."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from support.grpc_collector import HANG, Collector, Partial
from support.otlp_receiver import free_port
from support.spans import make_spans
from support.tls import self_signed

from nexs_serverless.config import from_env
from nexs_serverless.exporters import create
from nexs_serverless.exporters.base import ExportResult
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.otlp_grpc import OTLPGrpcExporter


@pytest.fixture
def exporter(collector: tuple[Collector, str]) -> Iterator[OTLPGrpcExporter]:
    otlp = OTLPGrpcExporter(endpoint=collector[1], headers={"X-Tenant": "t1"})
    yield otlp
    otlp.shutdown()


def test_spans_round_trip_over_grpc(collector: tuple[Collector, str], exporter: OTLPGrpcExporter) -> None:
    """The encoder's bytes are a valid Export request; metadata is sent lower-cased."""
    servicer, _ = collector
    assert exporter.send(make_spans(3), 5.0) == 0
    assert servicer.names() == ["span-0", "span-1", "span-2"]
    span = servicer.requests[0].resource_spans[0].scope_spans[0].spans[0]
    assert span.trace_id == (0x0AF7651916CD43DD8448EB211C80319C).to_bytes(16, "big")
    assert servicer.metadata[0]["x-tenant"] == "t1"


def test_gzip_compression(collector: tuple[Collector, str]) -> None:
    """compression=gzip is accepted by a stock grpc server."""
    servicer, endpoint = collector
    otlp = OTLPGrpcExporter(endpoint=endpoint, compression="gzip")
    try:
        otlp.send(make_spans(2), 5.0)
    finally:
        otlp.shutdown()
    assert servicer.names() == ["span-0", "span-1"]


def test_channel_is_reused_and_prepared(collector: tuple[Collector, str], exporter: OTLPGrpcExporter) -> None:
    """prepare() creates and connects the channel; later sends reuse it."""
    exporter.prepare()
    channel = exporter._channel
    exporter.send(make_spans(1), 5.0)
    exporter.send(make_spans(1), 5.0)
    assert exporter._channel is channel
    assert len(collector[0].requests) == 2


def test_partial_success_over_grpc(collector: tuple[Collector, str], exporter: OTLPGrpcExporter) -> None:
    """rejected_spans from the gRPC response is returned."""
    collector[0].script.append(Partial(1, "x"))
    assert exporter.send(make_spans(3), 5.0) == 1


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (grpc.StatusCode.UNAVAILABLE, ErrorClass.SERVER),
        (grpc.StatusCode.UNAUTHENTICATED, ErrorClass.AUTH),
        (grpc.StatusCode.PERMISSION_DENIED, ErrorClass.AUTH),
        (grpc.StatusCode.INVALID_ARGUMENT, ErrorClass.BAD_REQUEST),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ErrorClass.BAD_REQUEST),
        (grpc.StatusCode.INTERNAL, ErrorClass.REFUSED),
    ],
)
def test_status_codes_are_classified(
    collector: tuple[Collector, str], exporter: OTLPGrpcExporter, code: grpc.StatusCode, error_class: str
) -> None:
    """gRPC status codes map to the classes the OTLP specification's retry rules imply."""
    collector[0].script.append(code)
    with pytest.raises(ExportError) as caught:
        exporter.send(make_spans(1), 5.0)
    assert caught.value.error_class == error_class


def test_resource_exhausted_with_retry_info_is_throttling(
    collector: tuple[Collector, str], exporter: OTLPGrpcExporter
) -> None:
    """RESOURCE_EXHAUSTED with google.rpc.RetryInfo is THROTTLED with its delay."""
    detail = any_pb2.Any()
    detail.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000)))
    collector[0].script.append(status_pb2.Status(code=8, message="slow down", details=[detail]))
    with pytest.raises(ExportError) as caught:
        exporter.send(make_spans(1), 5.0)
    assert caught.value.error_class == ErrorClass.THROTTLED
    assert caught.value.retry_after_s == 2.5


def test_a_server_that_never_answers_times_out(
    collector: tuple[Collector, str], exporter: OTLPGrpcExporter
) -> None:
    """DEADLINE_EXCEEDED after the timeout given, classified TIMEOUT.

    The server gives the hung call up only after 5 s, as CANCELLED (a SERVER error): a client that
    ignored its 0.3 s timeout would fail with that instead, so the class proves the timeout ended it.
    """
    collector[0].script.append(HANG)
    with pytest.raises(ExportError) as caught:
        exporter.send(make_spans(1), 0.3)
    assert caught.value.error_class == ErrorClass.TIMEOUT
    cause = caught.value.__cause__
    assert isinstance(cause, grpc.Call)
    assert cause.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_nothing_listening_is_a_retryable_failure() -> None:
    """A refused connection is UNAVAILABLE: retryable."""
    otlp = OTLPGrpcExporter(endpoint=f"http://127.0.0.1:{free_port()}")
    try:
        with pytest.raises(ExportError) as caught:
            otlp.send(make_spans(1), 1.0)
        assert caught.value.retryable
        assert otlp.export(make_spans(1)) is ExportResult.FAILURE
    finally:
        otlp.shutdown()


def test_grpc_settings() -> None:
    """otlp_proto_grpc reads OTEL_EXPORTER_OTLP_* with the gRPC rules (scheme-less + INSECURE)."""
    settings = from_env(
        {
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4317",
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_EXPORTER_OTLP_HEADERS": "Api-Key=abc",
            "OTEL_EXPORTER_OTLP_TIMEOUT": "1500",
            "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
        }
    )
    otlp = create("otlp_proto_grpc", settings)
    assert isinstance(otlp, OTLPGrpcExporter)
    assert otlp.target == "collector:4317"
    assert not otlp.secure
    assert otlp.metadata == (("api-key", "abc"),)
    assert otlp.timeout_s == 1.5
    assert otlp.compression == "gzip"
    secure = create("otlp_proto_grpc", from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4317"}))
    assert isinstance(secure, OTLPGrpcExporter)
    assert secure.secure


def _tls_collector(
    tmp_path: Path, *, require_client_cert: bool
) -> tuple[Collector, grpc.Server, str, str, str, str]:
    """A TLS gRPC collector on 127.0.0.1 with a self-signed server certificate (and client CA)."""
    server_dir, client_dir = tmp_path / "server", tmp_path / "client"
    server_dir.mkdir()
    client_dir.mkdir()
    server_cert, server_key = self_signed(server_dir)
    client_cert, client_key = self_signed(client_dir)
    servicer = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)
    credentials = grpc.ssl_server_credentials(
        [(Path(server_key).read_bytes(), Path(server_cert).read_bytes())],
        root_certificates=Path(client_cert).read_bytes() if require_client_cert else None,
        require_client_auth=require_client_cert,
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return servicer, server, f"https://127.0.0.1:{port}", server_cert, client_cert, client_key


def test_tls_endpoint_with_the_servers_ca(tmp_path: Path) -> None:
    """https:// uses TLS, verified against OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE."""
    servicer, server, endpoint, ca, _, _ = _tls_collector(tmp_path, require_client_cert=False)
    trusted = create(
        "otlp",
        from_env(
            {
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": endpoint,
                "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE": ca,
            }
        ),
    )
    untrusted = OTLPGrpcExporter(endpoint=endpoint)  # the system CAs do not know our certificate
    try:
        assert isinstance(trusted, OTLPGrpcExporter)
        assert trusted.send(make_spans(2), 5.0) == 0
        assert servicer.names() == ["span-0", "span-1"]
        with pytest.raises(ExportError):
            untrusted.send(make_spans(1), 2.0)
        assert servicer.names() == ["span-0", "span-1"]
    finally:
        trusted.shutdown()
        untrusted.shutdown()
        server.stop(None)


def test_mutual_tls_sends_the_client_certificate(tmp_path: Path) -> None:
    """A collector requiring client certificates accepts ours and refuses a client without one."""
    servicer, server, endpoint, ca, client_cert, client_key = _tls_collector(
        tmp_path, require_client_cert=True
    )
    mutual = OTLPGrpcExporter(
        endpoint=endpoint, certificate=ca, client_certificate=client_cert, client_key=client_key
    )
    anonymous = OTLPGrpcExporter(endpoint=endpoint, certificate=ca)
    try:
        assert mutual.send(make_spans(1), 5.0) == 0
        assert servicer.names() == ["span-0"]
        with pytest.raises(ExportError):
            anonymous.send(make_spans(1), 2.0)
        assert servicer.names() == ["span-0"]
    finally:
        mutual.shutdown()
        anonymous.shutdown()
        server.stop(None)


def test_headers_grpc_refuses_are_left_out_and_the_rest_sent(
    collector: tuple[Collector, str], caplog: pytest.LogCaptureFixture
) -> None:
    """A header gRPC would refuse on every call (a '+' in its name, a non-ASCII value) is left out and
    named once; a '-bin' header goes as bytes. Before, every export failed, spans were carried over
    and resent forever, and nothing named the setting."""
    import logging

    servicer, endpoint = collector
    headers = {"api+key": "abc", "x-tok": "café", "x-trace-bin": "abc", "x-tenant": "t1"}
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        otlp = OTLPGrpcExporter(endpoint=endpoint, headers=headers)
    try:
        assert otlp.send(make_spans(1), 5.0) == 0
    finally:
        otlp.shutdown()
    assert servicer.names() == ["span-0"]
    assert servicer.metadata[0]["x-tenant"] == "t1"
    assert "api+key" not in servicer.metadata[0]
    assert "x-tok" not in servicer.metadata[0]
    warnings = " ".join(record.getMessage() for record in caplog.records)
    assert "'api+key'" in warnings
    assert "'x-tok'" in warnings


def test_an_unreadable_certificate_names_the_setting_and_is_not_retried(tmp_path: Path) -> None:
    """A TLS file that cannot be read is a setting to fix (AUTH), not a network failure to retry."""
    otlp = OTLPGrpcExporter(endpoint="https://127.0.0.1:4317", certificate=str(tmp_path / "missing.pem"))
    with pytest.raises(ExportError) as caught:
        otlp.send(make_spans(1), 1.0)
    assert caught.value.error_class == ErrorClass.AUTH
    assert "OTEL_EXPORTER_OTLP_CERTIFICATE" in str(caught.value)
