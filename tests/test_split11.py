"""The code split out of `redaction` and `tenancy` loads only for the settings that use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

_COLD_START = """
import json, sys
from nexs_serverless import configure, traced_handler, tracer
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext, events

memory = InMemoryExporter()
configure(exporters=[memory])

@traced_handler
def handler(event, context):
    with tracer.span("child"):
        pass
    return {"statusCode": 200}

handler(events.api_gateway_v1(headers={"x-tenant": "acme"}), LambdaContext())
ours = {name: module for name, module in sys.modules.items() if name.startswith("nexs_serverless")}
print(json.dumps({
    "modules": sorted(ours),
    "router_defined": sorted(name for name, module in ours.items() if "TenantRouter" in vars(module)),
    "tenants": sorted(str(span.attributes.get("tenant.id")) for span in memory.get_finished_spans()),
}))
"""


def _cold_start(**environ: str) -> dict[str, list[str]]:
    """One invocation and its flush in a fresh interpreter with `environ` as the only settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "NEXS_", "AWS_LAMBDA_"))}
    env.update(AWS_LAMBDA_FUNCTION_NAME="split11", **environ)
    out = subprocess.run(
        [sys.executable, "-c", _COLD_START], capture_output=True, text=True, env=env, check=True
    )
    report: dict[str, list[str]] = json.loads(out.stdout.splitlines()[-1])
    return report


def test_a_default_cold_start_loads_redaction_but_neither_split_module() -> None:
    """Default settings redact (credentials) without the rules module and load no tenancy code."""
    modules = _cold_start()["modules"]
    assert "nexs_serverless.redaction" in modules
    assert "nexs_serverless._redaction_rules" not in modules
    assert "nexs_serverless.tenancy" not in modules
    assert "nexs_serverless._tenant_routing" not in modules


def test_stamping_tenants_alone_loads_no_router_code() -> None:
    """NEXS_TENANT_ID_FROM stamps every span while `TenantRouter` stays unloaded."""
    report = _cold_start(NEXS_TENANT_ID_FROM="header:x-tenant")
    assert report["tenants"] == ["acme", "acme"]
    assert "nexs_serverless.tenancy" in report["modules"]
    assert "nexs_serverless._tenant_routing" not in report["modules"]
    assert report["router_defined"] == []


def test_tenant_exporters_load_the_router_through_tenancy() -> None:
    """NEXS_TENANT_EXPORTERS builds a `TenantRouter`, which loads its module on that first use."""
    report = _cold_start(NEXS_TENANT_ID_FROM="header:x-tenant", NEXS_TENANT_EXPORTERS='{"acme": "memory"}')
    assert "nexs_serverless._tenant_routing" in report["modules"]


def test_tenancy_serves_the_router_names_from_their_module() -> None:
    """`tenancy.TenantRouter` and `tenancy.route_exporters` are the split module's own objects."""
    from nexs_serverless import _tenant_routing, tenancy

    assert tenancy.TenantRouter is _tenant_routing.TenantRouter
    assert tenancy.route_exporters is _tenant_routing.route_exporters
    with pytest.raises(AttributeError, match="no_such_name"):
        tenancy.no_such_name  # type: ignore[attr-defined]  # noqa: B018


_REDACTORS = """
import json, sys
from nexs_serverless.redaction import Redactor

attributes = {"password": "hunter2", "user.id": "u-42"}
Redactor().redact_attributes(attributes)
default = "nexs_serverless._redaction_rules" in sys.modules
configured = {"user.id": "u-42"}
Redactor(keys={"user.*": "hash"}, hash_key=b"0123456789abcdef").redact_attributes(configured)
print(json.dumps({
    "default": default,
    "configured": "nexs_serverless._redaction_rules" in sys.modules,
    "attributes": attributes,
    "hashed": configured["user.id"],
}))
"""


def test_only_a_configured_redactor_loads_the_rules_module() -> None:
    """Default rules need no table checks nor HMAC; a key table that hashes loads both."""
    out = subprocess.run([sys.executable, "-c", _REDACTORS], capture_output=True, text=True, check=True)
    report = json.loads(out.stdout)
    assert report["default"] is False
    assert report["attributes"] == {"password": "[REDACTED]", "user.id": "u-42"}
    assert report["configured"] is True
    assert report["hashed"].startswith("hmac:")
    assert len(report["hashed"]) == len("hmac:") + 16
