"""An undecorated handler, traced by the layer alone (template-zero-code.yaml).

Nothing here imports nexs_serverless: the function's environment sets
AWS_LAMBDA_EXEC_WRAPPER=/opt/nexs-handler, which wraps `handler` with
traced_handler when the runtime loads it.
"""

from __future__ import annotations

import json


def handler(event: dict[str, object], context: object) -> dict[str, object]:
    """Greet the caller; the root span, its attributes and the flush come from the wrapper."""
    name = (event.get("queryStringParameters") or {}).get("name", "world")  # type: ignore[attr-defined]
    return {"statusCode": 200, "body": json.dumps({"message": f"hello, {name}"})}
