"""The hello example: an API Gateway handler with two child spans.

Deployed with the layer (see template.yaml), or run locally:
``python examples/hello/run.py`` prints the trace tree on the console.
"""

from __future__ import annotations

import json
from typing import Any

from nexs_serverless import traced_handler, tracer


@tracer.capture
def price(items: int) -> float:
    """One span per call, named after the function."""
    return round(items * 9.99, 2)


@traced_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Say hello to the caller and price their order."""
    name = (event.get("queryStringParameters") or {}).get("name", "world")
    with tracer.span("load-order", attributes={"order.id": "42"}) as span:
        span.set_attribute("order.items", 3)
        total = price(3)
    return {"statusCode": 200, "body": json.dumps({"message": f"hello, {name}", "total": total})}
