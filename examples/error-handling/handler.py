"""The function whose back end misbehaves: it must not notice.

A checkout handler with one child span. Whatever the trace back end does
(refuse, hang, throttle), this function returns the same result, and its
invocation is held at most for the flush budget (``NEXS_FLUSH_TIMEOUT_MS``).
"""

from __future__ import annotations

import json
from typing import Any

from nexs_serverless import traced_handler, tracer


@traced_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Charge the order named in the event."""
    with tracer.span("charge-card", attributes={"order.id": event["order"]}):
        amount = 19.99
    return {"statusCode": 200, "body": json.dumps({"order": event["order"], "charged": amount})}
