"""Test your traced handlers: a Lambda context stand-in, span capture and state reset.

Not imported by ``import nexs_serverless``: the layer never loads it.

    from nexs_serverless.testing import LambdaContext, capture_spans

    def test_handler():
        with capture_spans() as spans:
            handler({"httpMethod": "GET", ...}, LambdaContext())
        assert spans.get_finished_spans()[0].name == "GET /orders"
"""

from __future__ import annotations

from .context import LambdaContext
from .state import capture_spans, reset

__all__ = ["LambdaContext", "capture_spans", "reset"]
