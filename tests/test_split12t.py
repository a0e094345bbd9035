"""`azure_monitor`, split in three modules, still imports the Azure SDK only when it is used."""

from __future__ import annotations

import json

import pytest
from support.fresh_python import run_python

_BUILD_THEN_PREPARE = """
import json, sys
from nexs_serverless.config import from_env
from nexs_serverless.exporters import create

SDK = ("azure.core", "azure.monitor.opentelemetry.exporter", "opentelemetry")
exporter = create("azure_monitor", from_env({"APPLICATIONINSIGHTS_CONNECTION_STRING": sys.argv[1]}))
built = sorted(m for m in sys.modules if m.startswith(SDK))
exporter.prepare()
print(json.dumps({"built": built, "prepared": "azure.monitor.opentelemetry.exporter" in sys.modules}))
"""


@pytest.mark.usefixtures("quiet_azure_sdk")
def test_building_the_azure_exporter_loads_no_sdk_until_it_is_prepared() -> None:
    """Building the exporter (its connection string checked) loads no azure-core, Azure SDK, OpenTelemetry."""
    connection = (
        "InstrumentationKey=00000000-0000-0000-0000-000000000001;IngestionEndpoint=http://127.0.0.1:9/"
    )
    out = run_python(_BUILD_THEN_PREPARE, connection)
    report = json.loads(out.stdout.splitlines()[-1])
    assert report == {"built": [], "prepared": True}
