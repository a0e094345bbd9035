"""Fixtures shared by the whole suite: clean global state, an in-memory exporter per test, and the
local stand-ins (an OTLP receiver and gRPC collector, an X-Ray daemon, moto, Application Insights
ingestion, Cloud Trace, an unpacked layer) several modules use."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from support.azure_ingestion import FakeIngestion
from support.clouds import moto_server

from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import reset
from nexs_serverless.testing.state import forget_instrumentation

if TYPE_CHECKING:
    from pathlib import Path

    from support.cloud_trace_server import FakeCloudTrace
    from support.grpc_collector import Collector
    from support.otlp_receiver import OTLPReceiver
    from support.xray_daemon import FakeXRayDaemon

    from nexs_serverless.exporters import XRayExporter
    from nexs_serverless.exporters.cloud_trace import CloudTraceExporter
    from nexs_serverless.exporters.otlp_http import OTLPHttpExporter

_PREFIXES = ("OTEL_", "NEXS_", "AWS_LAMBDA_", "_X_AMZN_TRACE_ID", "AWS_XRAY_")


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with no tracer configuration from the machine, and cold."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    reset()
    yield
    forget_instrumentation()
    reset()


@pytest.fixture
def exporter() -> InMemoryExporter:
    """A fresh in-memory exporter receiving every flush of the test."""
    memory = InMemoryExporter()
    reset(exporters=[memory])
    return memory


@pytest.fixture
def spans(exporter: InMemoryExporter) -> InMemoryExporter:
    """`exporter`, under the name the instrumentation tests give what their calls flush."""
    return exporter


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    """An OTLP/HTTP receiver on 127.0.0.1 for one test: its requests and queued faults start empty."""
    from support.otlp_receiver import OTLPReceiver  # opentelemetry-proto: loaded only where a test needs it

    with OTLPReceiver() as server:
        yield server


@pytest.fixture
def otlp_http(receiver: OTLPReceiver) -> Iterator[OTLPHttpExporter]:
    """An OTLP/HTTP exporter to `receiver` (5 s timeout), shut down after the test."""
    from nexs_serverless.exporters.otlp_http import OTLPHttpExporter

    otlp = OTLPHttpExporter(endpoint=receiver.url, timeout_s=5.0)
    yield otlp
    otlp.shutdown()


@pytest.fixture
def collector() -> Iterator[tuple[Collector, str]]:
    """An OTLP/gRPC collector on 127.0.0.1 for one test, and its endpoint; a held call ends with it.

    Modules that need another kind (the accounting tests' `ScriptedCollector`, which keeps
    span names only; review 10's, which holds and flaps) define their own `collector`.
    """
    from support.grpc_collector import Collector, serve  # grpc: loaded only where a test needs it

    servicer = Collector()
    with serve(servicer) as endpoint:
        try:
            yield servicer, endpoint
        finally:
            servicer.release.set()


@pytest.fixture
def daemon() -> Iterator[FakeXRayDaemon]:
    """A UDP socket on 127.0.0.1 standing in for the X-Ray daemon, for one test."""
    from support.xray_daemon import FakeXRayDaemon

    with FakeXRayDaemon() as fake:
        yield fake


@pytest.fixture
def udp(daemon: FakeXRayDaemon) -> Iterator[Callable[..., XRayExporter]]:
    """Builds UDP XRayExporters aimed at `daemon`; shuts them down after the test."""
    from support.made_exporters import made_exporters

    from nexs_serverless.exporters import XRayExporter

    build = functools.partial(XRayExporter, transport="udp", daemon_address=daemon.address)
    with made_exporters(build) as make:
        yield make


@pytest.fixture
def xray_api(aws_test_credentials: None) -> Iterator[Callable[..., XRayExporter]]:
    """Builds API-transport XRayExporters in us-east-1 (test credentials); shuts them down after the test."""
    from support.made_exporters import made_exporters

    from nexs_serverless.exporters import XRayExporter

    with made_exporters(functools.partial(XRayExporter, transport="api", region="us-east-1")) as make:
        yield make


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    """moto's server on 127.0.0.1, one per test module (it keeps state, and takes a while to start)."""
    with moto_server() as url:
        yield url


@pytest.fixture
def aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Test credentials only: no profile files, no instance metadata lookups."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def fresh_extension() -> Iterator[None]:
    """No after-response extension from an earlier test; the SIGTERM handler of the test process is restored.

    The extension modules apply it to every test with ``pytest.mark.usefixtures``.
    """
    import signal

    from nexs_serverless import extension

    previous = signal.getsignal(signal.SIGTERM)
    extension._active.clear()
    extension._attempted.clear()
    yield
    signal.signal(signal.SIGTERM, previous)
    extension._active.clear()
    extension._attempted.clear()


@pytest.fixture(scope="module")
def opt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core layer for this interpreter (built once per session), unpacked into a temporary /opt."""
    from support.layer import build, core_layer

    folder = tmp_path_factory.mktemp("opt")
    build.unpack(core_layer(tmp_path_factory), folder)
    return folder


@pytest.fixture
def quiet_azure_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Azure SDK's own background telemetry off (it honours only its variables), no machine's key."""
    for name in (
        "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL",
        "APPLICATIONINSIGHTS_SDKSTATS_DISABLED",
        "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED",
    ):
        monkeypatch.setenv(name, "true")
    monkeypatch.delenv("APPLICATIONINSIGHTS_CONNECTION_STRING", raising=False)


@pytest.fixture(scope="module")
def _ingestion_server() -> Iterator[FakeIngestion]:
    with FakeIngestion() as fake:
        yield fake


@pytest.fixture
def ingestion(_ingestion_server: FakeIngestion, quiet_azure_sdk: None) -> FakeIngestion:
    """The module's local Application Insights ingestion endpoint, emptied for this test."""
    _ingestion_server.clear()
    return _ingestion_server


@pytest.fixture(scope="module")
def _trace_server() -> Iterator[FakeCloudTrace]:
    from support.cloud_trace_server import FakeCloudTrace  # grpc: loaded only where a test needs it

    with FakeCloudTrace() as fake:
        yield fake


@pytest.fixture
def trace_api(_trace_server: FakeCloudTrace) -> FakeCloudTrace:
    """The module's local Cloud Trace TraceService (a gRPC server takes a while to start), emptied."""
    _trace_server.clear()
    return _trace_server


@pytest.fixture
def cloud_trace(trace_api: FakeCloudTrace) -> Iterator[CloudTraceExporter]:
    """A Cloud Trace exporter on a plaintext channel to the module's local TraceService."""
    from google.auth.credentials import AnonymousCredentials

    from nexs_serverless.exporters.cloud_trace import CloudTraceExporter

    exporter = CloudTraceExporter(
        project_id="demo-project",
        endpoint=trace_api.endpoint,
        insecure=True,
        credentials=AnonymousCredentials(),
    )
    yield exporter
    exporter.shutdown()
