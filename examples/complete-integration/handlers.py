"""Two Lambda functions joined by an SQS queue, traced end to end.

``api_handler`` sits behind API Gateway: it checks an order and queues one
message per order line. ``consumer_handler`` is fed by the queue (a batch of
messages) and reserves stock for each line at the inventory service over HTTP.

Nothing here knows it runs locally: the queue and the inventory service come
from environment variables, as they would on Lambda, and boto3 follows
``AWS_ENDPOINT_URL``, which ``run.py`` points at moto. The trace needs no
code beyond ``@traced_handler`` and the two ``tracer.span`` blocks: the SQS
calls and the HTTP call are traced, and carry the context, because boto3 and
requests are imported (the layer instruments them at the first invocation).
"""

from __future__ import annotations

# isort: off
# First, before boto3: the layer's folder then answers the misses of every later import itself
# (README, "Quick start").
from nexs_serverless import traced_handler, tracer

# isort: on
import json
import os
from typing import Any

import boto3
import requests

sqs = boto3.client("sqs")  # made at import, as usual: instrumented all the same


@traced_handler
def api_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """POST /orders: validate the order, queue its lines, answer 202."""
    order = json.loads(event["body"])
    with tracer.span("validate-order", attributes={"order.id": order["id"]}) as span:
        lines = [line for line in order["lines"] if line["quantity"] > 0]
        span.set_attribute("order.lines", len(lines))
    for line in lines:  # one message per line: each send is a PRODUCER span
        sqs.send_message(
            QueueUrl=os.environ["QUEUE_URL"],
            MessageBody=json.dumps({"order_id": order["id"], **line}),
        )
    return {"statusCode": 202, "body": json.dumps({"order": order["id"], "queued": len(lines)})}


@traced_handler
def consumer_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batch: reserve stock for every line; report the lines that failed (partial batch response)."""
    failures = []
    for record in event["Records"]:
        line = json.loads(record["body"])
        attributes = {"messaging.message.id": record["messageId"], "product.sku": line["sku"]}
        with tracer.span("reserve-stock", attributes=attributes):
            response = requests.post(os.environ["INVENTORY_URL"] + "/reserve", json=line, timeout=2)
            if response.status_code != 200:
                failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
