"""XRayExporter over UDP, against a UDP socket on 127.0.0.1 standing in for the X-Ray daemon."""

from __future__ import annotations

import functools
from collections.abc import Iterator

import pytest
from support.exporter_spans import TRACE_ID, make_span
from support.made_exporters import made_exporters
from support.xray_daemon import HEADER, LAMBDA_HEADER, FakeXRayDaemon, nested, trace_as_lambda, walk

from nexs_serverless import _stats, traced_handler, tracer
from nexs_serverless.config import ConfigError, from_env
from nexs_serverless.exporters import ExportResult, XRayExporter, create
from nexs_serverless.exporters.errors import ErrorClass, ExportError
from nexs_serverless.exporters.xray_segments import xray_trace_id
from nexs_serverless.exporters.xray_udp import MAX_DATAGRAM_BYTES, parse_daemon_address
from nexs_serverless.model import SpanKind
from nexs_serverless.testing import LambdaContext, events, reset


@pytest.fixture
def make_exporter(daemon: FakeXRayDaemon) -> Iterator[type[XRayExporter]]:
    """Builds XRayExporters aimed at the fake daemon; shuts them down after the test."""
    with made_exporters(functools.partial(XRayExporter, daemon_address=daemon.address)) as make:
        yield make  # type: ignore[misc]


def test_an_invocation_tree_is_one_datagram_under_the_function_segment(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In Lambda: one datagram, the root a subsegment of the function segment, its children nested."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", LAMBDA_HEADER)
    spans = [
        make_span(
            span_id=0xA3,
            parent_span_id=0xA2,
            kind=SpanKind.CLIENT,
            attributes={"rpc.system": "aws-api", "rpc.service": "S3", "rpc.method": "GetObject"},
        ),
        make_span(span_id=0xA2, parent_span_id=0xA1, name="load"),
        make_span(span_id=0xA1, kind=SpanKind.SERVER, attributes={"faas.invocation_id": "r1"}),
    ]
    exporter = make_exporter(in_lambda=True, annotation_keys=("faas.invocation_id",))
    assert exporter.export(spans) is ExportResult.SUCCESS
    [datagram] = daemon.receive()
    assert datagram.header == HEADER
    root = datagram.document()
    assert (root["id"], root["type"], root["parent_id"]) == (f"{0xA1:016x}", "subsegment", "0102030405060708")
    assert root["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert root["annotations"] == {"faas_invocation_id": "r1"}
    [load] = nested(root)
    [call] = nested(load)
    assert (load["id"], load["name"], call["id"]) == (f"{0xA2:016x}", "load", f"{0xA3:016x}")
    assert (call["name"], call["namespace"]) == ("S3", "aws")
    for inner in (load, call):  # implied by their place: X-Ray wants them only on separate subsegments
        assert not {"trace_id", "parent_id", "type"} & set(inner)
    assert _stats.snapshot()["xray_datagrams_sent"] == 1


def test_outside_lambda_a_root_segment_carries_its_subsegments(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter]
) -> None:
    """A local root segment and its ten children: one datagram, children in batch order."""
    children = [
        make_span(span_id=i + 2, parent_span_id=1, name="child", attributes={"i": i}) for i in range(10)
    ]
    make_exporter().export([*children, make_span(span_id=1, kind=SpanKind.SERVER)])
    [datagram] = daemon.receive()
    root = datagram.document()
    assert (root["name"], root["id"]) == ("orders", f"{1:016x}")
    assert "type" not in root
    assert "parent_id" not in root
    inner = nested(root)
    assert [doc["id"] for doc in inner] == [f"{i + 2:016x}" for i in range(10)]
    assert [doc["metadata"]["default"]["i"] for doc in inner] == list(range(10))


def test_other_traces_and_spans_whose_parent_is_elsewhere_stay_separate(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nesting needs the same trace and the parent in the batch; others keep trace_id, parent_id and type."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", LAMBDA_HEADER)
    spans = [
        make_span(span_id=2, parent_span_id=1),
        make_span(span_id=1),
        make_span(span_id=3, parent_span_id=1, trace_id=TRACE_ID + 1),  # same parent id, another trace
        make_span(span_id=4, parent_span_id=0x77),  # its parent ends later (or was flushed before)
    ]
    make_exporter(in_lambda=True).export(spans)
    docs = {doc["id"]: doc for doc in (d.document() for d in daemon.receive())}
    assert set(docs) == {f"{1:016x}", f"{3:016x}", f"{4:016x}"}
    assert [doc["id"] for doc in nested(docs[f"{1:016x}"])] == [f"{2:016x}"]
    other = docs[f"{3:016x}"]
    assert (other["type"], other["parent_id"]) == ("subsegment", f"{1:016x}")
    assert other["trace_id"] == xray_trace_id(TRACE_ID + 1)
    orphan = docs[f"{4:016x}"]
    assert (orphan["type"], orphan["parent_id"], orphan["trace_id"]) == (
        "subsegment",
        f"{0x77:016x}",
        xray_trace_id(TRACE_ID),
    )


def test_an_unsampled_invocation_sends_its_root_as_a_segment_with_its_children(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sampled=0: no function segment to hang under, so the root is a segment; its children still nest."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", LAMBDA_HEADER.replace("Sampled=1", "Sampled=0"))
    make_exporter(in_lambda=True).export([make_span(span_id=2, parent_span_id=1), make_span(span_id=1)])
    [datagram] = daemon.receive()
    root = datagram.document()
    assert "type" not in root
    assert "parent_id" not in root
    assert [doc["id"] for doc in nested(root)] == [f"{2:016x}"]


def test_a_tree_too_large_for_one_datagram_is_split_into_subtrees(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter]
) -> None:
    """Children that do not fit leave as separate subsegments (with their own subtree); each span once."""
    spans = [make_span(span_id=0x1000 + i, parent_span_id=0x100 + i, name="leaf") for i in range(40)]
    spans += [
        make_span(span_id=0x100 + i, parent_span_id=1, name="step", attributes={"pad": "p" * 3000})
        for i in range(40)
    ]
    spans.append(make_span(span_id=1, kind=SpanKind.SERVER))
    make_exporter().export(spans)
    datagrams = daemon.receive()
    assert max(len(d.raw) for d in datagrams) <= MAX_DATAGRAM_BYTES
    tops = [d.document() for d in datagrams]
    placed = {str(doc["id"]): parent for top in tops for doc, parent in walk(top)}
    assert sorted(placed) == sorted(f"{span.span_id:016x}" for span in spans)
    assert sum(1 for top in tops for _ in walk(top)) == len(spans)  # exactly once
    root = next(top for top in tops if top["id"] == f"{1:016x}")
    kept = len(nested(root))
    assert 10 < kept < 40
    split = [top for top in tops if top is not root]
    assert len(split) == 40 - kept == _stats.snapshot()["xray_subtrees_split"]
    for top in split:  # a step with its leaf, placed under the root as before nesting
        assert (top["type"], top["parent_id"], top["trace_id"]) == (
            "subsegment",
            f"{1:016x}",
            root["trace_id"],
        )
        assert [leaf["name"] for leaf in nested(top)] == ["leaf"]
    for doc_id, parent in placed.items():
        if doc_id.startswith("00000000000010"):
            assert parent is not None
            assert int(str(parent["id"]), 16) == int(doc_id, 16) - 0x1000 + 0x100


def test_a_huge_batch_stays_under_the_datagram_limit(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter]
) -> None:
    """Hundreds of spans, one of them far over 64 KiB: every datagram fits and every span arrives."""
    spans = [
        make_span(span_id=i + 1, parent_span_id=0xFF, attributes={"pad": "p" * 4000}) for i in range(200)
    ]
    spans.append(make_span(span_id=0xBEEF, parent_span_id=0xFF, attributes={"body": "b" * 300_000}))
    assert make_exporter().export(spans) is ExportResult.SUCCESS
    datagrams = daemon.receive()
    assert len(datagrams) == 201
    assert max(len(d.raw) for d in datagrams) <= MAX_DATAGRAM_BYTES
    docs = {doc["id"]: doc for doc in (d.document() for d in datagrams)}
    assert set(docs) == {f"{i + 1:016x}" for i in range(200)} | {f"{0xBEEF:016x}"}
    big = docs[f"{0xBEEF:016x}"]
    assert big["metadata"]["nexs"] == {"truncated": ["metadata/default/body"]}  # type: ignore[index]
    assert _stats.snapshot()["spans_truncated"] == 1


def test_otlp_mode_sends_adot_framed_protobuf(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter]
) -> None:
    """OTLP mode: header line, T1S, base64 ExportTraceServiceRequest that opentelemetry-proto decodes."""
    spans = [
        make_span(span_id=1, attributes={"order.id": "42", "n": 7}),
        make_span(span_id=2, parent_span_id=1, name="child"),
    ]
    assert make_exporter(mode="otlp").export(spans) is ExportResult.SUCCESS
    [datagram] = daemon.receive()
    assert datagram.header == HEADER
    prefix, request = datagram.otlp()
    assert prefix == "T1S"
    [resource_spans] = request.resource_spans
    service = {kv.key: kv.value.string_value for kv in resource_spans.resource.attributes}["service.name"]
    assert service == "orders"
    decoded = resource_spans.scope_spans[0].spans
    assert [s.name for s in decoded] == ["GET /orders", "child"]
    assert decoded[0].trace_id == TRACE_ID.to_bytes(16, "big")
    assert decoded[1].parent_span_id == (1).to_bytes(8, "big")
    assert {kv.key: kv.value.int_value for kv in decoded[0].attributes if kv.key == "n"} == {"n": 7}


def test_otlp_mode_sends_unsampled_spans_as_t1u(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter]
) -> None:
    """Sampled and unsampled spans travel in separate datagrams, prefixed T1S and T1U."""
    make_exporter(mode="otlp").export([make_span(span_id=1), make_span(span_id=2, trace_flags=0)])
    received = {d.otlp()[0]: d.otlp()[1] for d in daemon.receive()}
    assert set(received) == {"T1S", "T1U"}
    assert received["T1U"].resource_spans[0].scope_spans[0].spans[0].span_id == (2).to_bytes(8, "big")


def test_otlp_mode_splits_a_huge_batch_and_cuts_an_oversized_span(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter]
) -> None:
    """A batch over 64 KiB is split; a span too large alone is cut and says so; each span arrives once."""
    spans = [make_span(span_id=i + 1, attributes={"a": f"value-{i}", "pad": "x" * 300}) for i in range(2000)]
    spans.append(make_span(span_id=0xBEEF, attributes={"body": "b" * 200_000}))
    assert make_exporter(mode="otlp").export(spans) is ExportResult.SUCCESS
    datagrams = daemon.receive()
    assert len(datagrams) > 10
    assert max(len(d.raw) for d in datagrams) <= MAX_DATAGRAM_BYTES
    decoded = [
        s for d in datagrams for rs in d.otlp()[1].resource_spans for ss in rs.scope_spans for s in ss.spans
    ]
    ids = [int.from_bytes(s.span_id, "big") for s in decoded]
    assert sorted(ids) == sorted(span.span_id for span in spans)
    big = next(s for s in decoded if int.from_bytes(s.span_id, "big") == 0xBEEF)
    marks = {kv.key: [v.string_value for v in kv.value.array_value.values] for kv in big.attributes}
    assert marks["nexs.truncated"] == ["body"]
    assert spans[-1].attributes == {"body": "b" * 200_000}  # cut on a copy: the caller's span is intact


def test_the_two_address_form_picks_the_udp_address(
    daemon: FakeXRayDaemon, make_exporter: type[XRayExporter]
) -> None:
    """``tcp:host:port udp:host:port`` (the X-Ray SDKs' form) sends to the udp one."""
    exporter = make_exporter(daemon_address=f"tcp:127.0.0.1:1 udp:{daemon.address}")
    exporter.export([make_span(parent_span_id=1)])
    assert len(daemon.receive()) == 1


@pytest.mark.parametrize(
    "address",
    [
        "localhost",
        "host:port",
        "a:1 b:2",
        "udp:h:0",
        "",
        "tcp:127.0.0.1:2000",
        "127.0.0.1:2000:2000",
        "::1:2000",
    ],
)
def test_parse_daemon_address_rejects_malformed_values(address: str) -> None:
    """Anything but host:port (or the tcp/udp pair) is refused."""
    with pytest.raises(ValueError, match=r"expected|no udp"):
        parse_daemon_address(address)


def test_a_refused_datagram_is_a_network_failure_never_raised(make_exporter: type[XRayExporter]) -> None:
    """A socket error (here: broadcast without permission) is NETWORK; export reports FAILURE."""
    exporter = make_exporter(daemon_address="255.255.255.255:2000")
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.NETWORK
    assert exporter.export([make_span()]) is ExportResult.FAILURE
    assert _stats.snapshot()["export_errors_network"] == 1


def test_bad_arguments_raise_config_error() -> None:
    """Unknown mode or transport, a bad address, OTLP over the API: errors at configuration time."""
    for kwargs in (
        {"mode": "json"},
        {"transport": "tcp"},
        {"daemon_address": "nowhere"},
        {"mode": "otlp", "transport": "api"},
        {"timeout_ms": 0},
        {"max_datagram_bytes": 100_000},
    ):
        with pytest.raises(ConfigError):
            XRayExporter(**kwargs)  # type: ignore[arg-type]


def test_from_settings_inside_lambda_uses_udp_and_the_daemon_address(daemon: FakeXRayDaemon) -> None:
    """OTEL_TRACES_EXPORTER=xray in Lambda: UDP to AWS_XRAY_DAEMON_ADDRESS, settings from NEXS_XRAY_*."""
    exporter = create(
        "xray",
        from_env(
            {
                "AWS_LAMBDA_FUNCTION_NAME": "orders",
                "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
                "NEXS_XRAY_MODE": "otlp",
                "NEXS_XRAY_ANNOTATION_KEYS": "order.id, tenant ,",
            }
        ),
    )
    assert isinstance(exporter, XRayExporter)
    assert (exporter.transport, exporter.mode, exporter.in_lambda) == ("udp", "otlp", True)
    assert exporter.annotation_keys == ("order.id", "tenant")
    exporter.export([make_span()])
    exporter.shutdown()
    assert daemon.receive()[0].otlp()[0] == "T1S"


def test_from_settings_outside_lambda_uses_the_api_and_refuses_otlp(caplog: pytest.LogCaptureFixture) -> None:
    """No Lambda and no daemon address: PutTraceSegments; NEXS_XRAY_MODE=otlp falls back with one warning."""
    exporter = create("xray", from_env({"NEXS_XRAY_MODE": "otlp", "AWS_REGION": "eu-west-1"}))
    assert isinstance(exporter, XRayExporter)
    assert (exporter.transport, exporter.mode) == ("api", "segments")
    assert any("NEXS_XRAY_MODE" in r.getMessage() for r in caplog.records)


def test_from_settings_bad_daemon_address_falls_back_to_the_default(caplog: pytest.LogCaptureFixture) -> None:
    """A malformed AWS_XRAY_DAEMON_ADDRESS logs one line and uses 127.0.0.1:2000."""
    exporter = create(
        "xray", from_env({"AWS_XRAY_DAEMON_ADDRESS": "nonsense", "AWS_LAMBDA_FUNCTION_NAME": "f"})
    )
    assert isinstance(exporter, XRayExporter)
    assert exporter.transport == "udp"
    assert any("AWS_XRAY_DAEMON_ADDRESS" in r.getMessage() for r in caplog.records)


def _run_traced_lambda(daemon: FakeXRayDaemon, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    trace_as_lambda(daemon, monkeypatch)

    @traced_handler
    def handler(event: dict[str, object], context: object) -> dict[str, object]:
        with tracer.span("load"):
            pass
        return {"ok": True}

    assert handler({}, LambdaContext()) == {"ok": True}
    return [d.document() for d in daemon.receive()]


def test_a_traced_lambda_handler_reaches_the_daemon(
    daemon: FakeXRayDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: OTEL_TRACES_EXPORTER=xray, the handler's result unchanged, one document per invocation."""
    [root] = _run_traced_lambda(daemon, monkeypatch)
    [load] = nested(root)
    assert load["name"] == "load"
    assert "trace_id" not in load


def test_a_traced_lambda_handler_hangs_under_the_function_segment(
    daemon: FakeXRayDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: with xray-lambda propagation the root is a subsegment of _X_AMZN_TRACE_ID's Parent."""
    [root] = _run_traced_lambda(daemon, monkeypatch)
    assert root["trace_id"] == "1-5759e988-bd862e3fe1be46a994272793"
    assert (root["type"], root["parent_id"]) == ("subsegment", "0102030405060708")


def test_a_lambda_root_continuing_a_w3c_caller_is_a_segment_of_the_caller_trace(
    daemon: FakeXRayDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """End to end: a traceparent from another trace makes the root a segment, not the caller's subsegment."""
    monkeypatch.setenv("_X_AMZN_TRACE_ID", LAMBDA_HEADER)
    reset(
        environ={
            "OTEL_TRACES_EXPORTER": "xray",
            "AWS_LAMBDA_FUNCTION_NAME": "orders",
            "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
        }
    )

    @traced_handler
    def handler(event: dict[str, object], context: object) -> dict[str, object]:
        return {"statusCode": 200}

    caller = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    handler(events.api_gateway_v2(headers={"traceparent": caller, "x-amzn-trace-id": None}), LambdaContext())
    [root] = [d.document() for d in daemon.receive()]
    assert root["trace_id"] == "1-0af76519-16cd43dd8448eb211c80319c"
    assert root["parent_id"] == "b7ad6b7169203331"
    assert "type" not in root


def test_one_address_may_name_its_protocol_and_ipv6_is_bracketed() -> None:
    """``udp:host:port`` alone names the daemon (before, the host read as ``udp:127.0.0.1``)."""
    assert parse_daemon_address("udp:127.0.0.1:2000") == ("127.0.0.1", 2000)
    assert parse_daemon_address("[::1]:2000") == ("::1", 2000)


def test_a_host_name_the_codec_refuses_is_a_network_failure(make_exporter: type[XRayExporter]) -> None:
    """``a..b`` makes the name lookup raise UnicodeError: a NETWORK failure, not an escaped error."""
    exporter = make_exporter(daemon_address="a..b:2000")
    with pytest.raises(ExportError) as caught:
        exporter.send([make_span()], 1.0)
    assert caught.value.error_class == ErrorClass.NETWORK
