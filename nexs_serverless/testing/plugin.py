"""pytest plugin (registered through the ``pytest11`` entry point): the ``nexs_spans`` fixture."""

from __future__ import annotations

import pytest

from .state import capture_spans

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..exporters.memory import InMemoryExporter


@pytest.fixture
def nexs_spans() -> Iterator[InMemoryExporter]:
    """Every span your traced code exports during the test, in an `InMemoryExporter`."""
    with capture_spans() as exporter:
        yield exporter
