"""Tenants: extraction from events, stamping on every span, per-tenant sampling and isolated routing."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import pytest

from nexs_serverless import ConfigError, flush, stats, traced_handler, tracer
from nexs_serverless.exporters import ExportResult, InMemoryExporter
from nexs_serverless.runtime import runtime
from nexs_serverless.tenancy import TenantRouter, TenantSource, TenantStamp, extract
from nexs_serverless.testing import LambdaContext, reset

HTTP = {"requestContext": {"http": {"method": "GET", "path": "/"}}}


def tenant_of(spec: str, event: object) -> str | None:
    return extract(event, [TenantSource(s) for s in spec.split(",")])


@pytest.mark.parametrize(
    ("spec", "event"),
    [
        ("header:x-tenant-id", {"headers": {"X-Tenant-Id": "acme"}}),
        ("header:x-tenant-id", {"headers": {}, "multiValueHeaders": {"x-tenant-id": ["acme", "other"]}}),
        ("claim:tenant", {"requestContext": {"authorizer": {"claims": {"tenant": "acme"}}}}),
        (
            "claim:custom:tenant",
            {"requestContext": {"authorizer": {"jwt": {"claims": {"custom:tenant": "acme"}}}}},
        ),
        ("claim:tenant", {"requestContext": {"authorizer": {"lambda": {"tenant": "acme"}}}}),
        ("claim:tenant", {"requestContext": {"authorizer": {"tenant": "acme", "principalId": "u1"}}}),
        ("path:$.detail.tenantId", {"detail": {"tenantId": "acme"}}),
        (
            "path:Records[0].messageAttributes.tenant.stringValue",
            {"Records": [{"messageAttributes": {"tenant": {"stringValue": "acme"}}}]},
        ),
        ("path:$['detail.v2'].org", {"detail.v2": {"org": "acme"}}),
        ("path:body.tenant", {"body": json.dumps({"tenant": "acme"})}),
        ("header:x-tenant,path:tenant", {"tenant": "acme"}),
    ],
)
def test_each_source_finds_the_tenant(spec: str, event: object) -> None:
    """Headers (any case, multi-value), authorizer claims of every API Gateway flavour, and JSON paths."""
    assert tenant_of(spec, event) == "acme"


def test_request_objects_with_case_insensitive_headers() -> None:
    """A Flask/Azure-style request object's ``headers.get`` is used as is."""

    class Headers(dict[str, str]):
        def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
            return {k.lower(): v for k, v in self.items()}.get(key.lower(), default)

    class Request:
        headers = Headers({"X-Tenant": "acme"})

    assert tenant_of("header:x-tenant", Request()) == "acme"


@pytest.mark.parametrize("value", ["", " ", "x" * 129, "bad\nid", True, {"id": 1}, 3.5])
def test_invalid_tenant_values_are_ignored_and_counted(value: object) -> None:
    """Empty, over-long, control-character and non-scalar values never become a tenant id."""
    assert extract({"t": value}, [TenantSource("path:t")], default="fallback") == "fallback"
    assert stats()["tenant_id_invalid"] == 1


def test_integer_ids_become_strings() -> None:
    """A numeric tenant id (an account number) is accepted as text."""
    assert tenant_of("path:account", {"account": 42}) == "42"


@pytest.mark.parametrize("spec", ["cookie:x", "header:", "path:a..b", "path:a[x]"])
def test_bad_source_specs_raise_config_error(spec: str) -> None:
    """Unknown kinds, empty names and malformed paths are ConfigErrors naming the spec."""
    with pytest.raises(ConfigError, match="tenant"):
        TenantSource(spec)


def test_bad_environment_source_logs_one_line_and_is_skipped(caplog: pytest.LogCaptureFixture) -> None:
    """NEXS_TENANT_ID_FROM with one bad item warns once and still uses the good ones."""
    memory = InMemoryExporter()
    reset(environ={"NEXS_TENANT_ID_FROM": "cookie:t,header:x-tenant"}, exporters=[memory])

    @traced_handler
    def handler(event: object, context: object) -> None:
        return None

    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        handler({**HTTP, "headers": {"x-tenant": "acme"}}, LambdaContext())
        handler({**HTTP, "headers": {"x-tenant": "acme"}}, LambdaContext())
    assert sum("NEXS_TENANT_ID_FROM" in r.getMessage() for r in caplog.records) == 1
    assert {s.attributes["tenant.id"] for s in memory.get_finished_spans()} == {"acme"}


class Span:
    """Minimal span for the stamp stage: ids and attributes."""

    def __init__(self, trace_id: int, span_id: int, parent: int = 0, **attributes: Any) -> None:
        self.trace_id, self.span_id, self.parent_span_id = trace_id, span_id, parent
        self.parent_is_remote = False
        self.attributes = attributes


def test_stamp_copies_the_root_tenant_to_every_span_and_remembers_it() -> None:
    """Children and grandchildren inherit the root's tenant; a late span of the trace does too."""
    stamp = TenantStamp()
    root = Span(1, 10, **{"faas.trigger": "http", "tenant.id": "acme"})
    child, grandchild, own = Span(1, 11, 10), Span(1, 12, 11), Span(1, 13, 10, **{"tenant.id": "sub"})
    stamp([grandchild, child, own, root])  # type: ignore[list-item]
    assert [s.attributes["tenant.id"] for s in (child, grandchild, own)] == ["acme", "acme", "sub"]
    late = Span(1, 14, 11)
    stamp([late])  # type: ignore[list-item]
    assert late.attributes["tenant.id"] == "acme"


def _invocation(tenant: str | None) -> None:
    attributes = {"faas.trigger": "other"} | ({"tenant.id": tenant} if tenant else {})
    with tracer.span("root", parent=tracer.ROOT, attributes=attributes), tracer.span("child"):
        pass


def test_two_tenants_exporters_never_see_each_others_spans() -> None:
    """Interleaved invocations of a, b, an unrouted tenant and none: each exporter gets only its own."""
    a, b, shared = InMemoryExporter(), InMemoryExporter(), InMemoryExporter()
    reset(exporters=[TenantRouter({"a": a, "b": b}, [shared])])
    for tenant in ("a", "b", "c", None, "b", "a"):
        _invocation(tenant)
    flush()  # one batch with every tenant in it
    assert {s.attributes["tenant.id"] for s in a.get_finished_spans()} == {"a"}
    assert {s.attributes["tenant.id"] for s in b.get_finished_spans()} == {"b"}
    assert len(a.get_finished_spans()) == len(b.get_finished_spans()) == 4
    assert sorted(s.attributes.get("tenant.id", "-") for s in shared.get_finished_spans()) == [
        "-",
        "-",
        "c",
        "c",
    ]


def test_copy_to_default_also_sends_routed_tenants_to_the_shared_exporters() -> None:
    """With copy_to_default, the operator's exporters see every span; tenants still see only theirs."""
    a, b, shared = InMemoryExporter(), InMemoryExporter(), InMemoryExporter()
    reset(exporters=[TenantRouter({"a": a, "b": b}, [shared], copy_to_default=True)])
    _invocation("a")
    _invocation("b")
    flush()
    assert {s.attributes["tenant.id"] for s in shared.get_finished_spans()} == {"a", "b"}
    assert {s.attributes["tenant.id"] for s in b.get_finished_spans()} == {"b"}


class Broken:
    """An exporter whose back end is down."""

    def export(self, spans: Sequence[object]) -> ExportResult:
        raise ConnectionError("down")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True

    def shutdown(self) -> None:
        return None


def test_a_failing_tenant_exporter_does_not_reroute_or_block_others() -> None:
    """Tenant a's dead back end neither delays b nor sends a's spans anywhere else."""
    b, shared = InMemoryExporter(), InMemoryExporter()
    reset(exporters=[TenantRouter({"a": Broken(), "b": b}, [shared])])
    _invocation("a")
    _invocation("b")
    flush()
    assert {s.attributes["tenant.id"] for s in b.get_finished_spans()} == {"b"}
    assert shared.get_finished_spans() == []


def test_environment_routing_builds_exporters_and_drops_unbuildable_tenants(
    exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """NEXS_TENANT_EXPORTERS builds each tenant's exporter; one that cannot be built drops its spans."""
    table = {"a": "memory", "b": {"exporter": "no-such-exporter"}}
    reset(environ={"NEXS_TENANT_EXPORTERS": json.dumps(table)}, exporters=[exporter])
    with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
        router = runtime.exporters()[0]
    assert isinstance(router, TenantRouter)
    assert any("no-such-exporter" in r.getMessage() for r in caplog.records)
    _invocation("a")
    _invocation("b")
    _invocation(None)
    flush()
    tenant_a = router.routes["a"][0].inner  # type: ignore[attr-defined]
    assert {s.attributes["tenant.id"] for s in tenant_a.get_finished_spans()} == {"a"}
    assert [s.attributes.get("tenant.id") for s in exporter.get_finished_spans()] == [None, None]
    assert stats()["tenant_spans_unroutable"] == 2


def test_a_tenant_exporter_that_cannot_be_built_is_reported_without_its_credentials(
    exporter: InMemoryExporter, caplog: pytest.LogCaptureFixture
) -> None:
    """The warning names the tenant, the exporter and the env's variables, never their values."""
    secret = "authorization=Bearer sk_live_51HxSECRETabcdef"
    table = {"acme": {"exporter": "otlp", "env": {"OTEL_EXPORTER_OTLP_HEADERS": secret}, "region": "eu"}}
    messages = []
    for raw in (json.dumps(table), json.dumps(table)[:-1]):  # one that cannot be built; invalid JSON
        caplog.clear()
        reset(environ={"NEXS_TENANT_EXPORTERS": raw}, exporters=[exporter])
        with caplog.at_level(logging.WARNING, logger="nexs_serverless"):
            runtime.exporters()
        (message,) = [r.getMessage() for r in caplog.records if "NEXS_TENANT_EXPORTERS" in r.getMessage()]
        messages.append(message)
    assert not any("sk_live" in message for message in messages)
    assert "acme: exporter 'otlp', env ['OTEL_EXPORTER_OTLP_HEADERS'] (values not shown)" in messages[0]
    assert "characters, not shown" in messages[1]


def test_traced_handler_tags_every_span_and_applies_tenant_sampling(exporter: InMemoryExporter) -> None:
    """End to end: tenant.id from a header on every span; a per-tenant policy keeps only that tenant."""
    rules = {"ratio": 0.0, "tenants": {"vip": {"ratio": 1.0}}}
    reset(
        environ={"NEXS_TENANT_ID_FROM": "header:x-tenant", "NEXS_TAIL_SAMPLING_RULES": json.dumps(rules)},
        exporters=[exporter],
    )

    @traced_handler
    def handler(event: object, context: object) -> str:
        with tracer.span("db"), tracer.span("query"):
            pass
        return "ok"

    for tenant in ("vip", "free", "vip"):
        handler({**HTTP, "headers": {"X-Tenant": tenant}}, LambdaContext())
    spans = exporter.get_finished_spans()
    assert len(spans) == 6
    assert {s.attributes["tenant.id"] for s in spans} == {"vip"}
    assert stats()["tail_dropped"] == 1
