"""A typical warm invocation: an API request with five child spans of three attributes each.

``work`` is the function body; ``run.py`` measures it bare (tracing off) and
wrapped by ``traced_handler`` under each setting, so the difference is what
the layer costs per invocation.
"""

from __future__ import annotations

from typing import Any

from nexs_serverless import tracer

STEPS = ("authenticate", "load-cart", "price", "reserve", "render")


def work(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Five traced steps; fails when the event says so (for tail sampling's error rule)."""
    total = 0
    for index, step in enumerate(STEPS):
        with tracer.span(step, attributes={"step.index": index, "cart.id": "c-42", "cart.items": 3}):
            total += index
    if event.get("fail"):
        raise RuntimeError("payment declined")
    return {"statusCode": 200, "body": str(total)}
