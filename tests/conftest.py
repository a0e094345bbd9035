"""Fixtures shared by the whole suite: clean global state and an in-memory exporter per test."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import reset
from nexs_serverless.testing.state import forget_instrumentation

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
