"""API Gateway -> Lambda -> SQS -> Lambda -> HTTP, all local, in one trace.

Run: ``python examples/complete-integration/run.py``.

Starts SQS (moto) and an inventory service on 127.0.0.1, invokes
``api_handler`` with ``event.json`` (a request carrying a W3C
``traceparent``), receives the queued messages as Lambda's event source
mapping would, invokes ``consumer_handler`` with that batch, then checks and
prints that one trace id ran through everything and that the consumer's
span links to every message of its batch. Exits 1 if a check fails.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys
from collections.abc import Sequence

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

from local_services import InventoryService, lambda_sqs_event, start_moto  # noqa: E402

from nexs_serverless import configure  # noqa: E402
from nexs_serverless.exporters import ConsoleExporter, InMemoryExporter  # noqa: E402
from nexs_serverless.finished import FinishedSpan  # noqa: E402
from nexs_serverless.model import SpanKind  # noqa: E402
from nexs_serverless.testing import LambdaContext  # noqa: E402


def main() -> int:
    """Run the chain; 0 when every check passed."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)  # moto accepts any credentials
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    moto, moto_url = start_moto()
    inventory = InventoryService()
    try:
        os.environ["AWS_ENDPOINT_URL"] = moto_url
        os.environ["INVENTORY_URL"] = inventory.url
        return run(inventory)
    finally:
        inventory.close()
        moto.stop()


def run(inventory: InventoryService) -> int:
    """Invoke both functions and check the trace they made."""
    import boto3

    sqs = boto3.client("sqs")
    queue_url = sqs.create_queue(QueueName="order-lines")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    os.environ["QUEUE_URL"] = queue_url

    from handlers import api_handler, consumer_handler

    memory = InMemoryExporter()  # the console shows the trace; the memory copy lets us check it
    configure(exporters=[ConsoleExporter(), memory])

    print("== 1. API Gateway -> api_handler")
    event = json.loads((HERE / "event.json").read_text())
    result = api_handler(event, LambdaContext(function_name="orders-api"))
    print("api_handler returned:", json.dumps(result))

    print("\n== 2. SQS -> consumer_handler (the batch Lambda would deliver)")
    received = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["AWSTraceHeader"],
    )["Messages"]
    batch = lambda_sqs_event(received, queue_arn)
    result = consumer_handler(batch, LambdaContext(function_name="orders-consumer"))
    print("consumer_handler returned:", json.dumps(result))

    print("\n== 3. What the inventory service received")
    for header in inventory.traceparents:
        print("traceparent:", header)
    return check(memory.get_finished_spans(), inventory.traceparents, len(received))


def check(spans: Sequence[FinishedSpan], traceparents: list[str], messages: int) -> int:
    """Print the joins the trace shows; 1 when one of them is missing."""
    problems = []
    trace_ids = {f"{span.trace_id:032x}" for span in spans}
    producers = {span.span_id for span in spans if span.kind == SpanKind.PRODUCER}
    clients = {
        f"{span.span_id:016x}" for span in spans if span.kind == SpanKind.CLIENT and span.name == "POST"
    }
    consumer = next(span for span in spans if span.kind == SpanKind.CONSUMER)
    linked = {link.context.span_id for link in consumer.links}
    print("\n== 4. Checks")
    print("trace ids seen:", ", ".join(sorted(trace_ids)))
    print(f"consumer span '{consumer.name}' links: {len(consumer.links)} (one per message of the batch)")
    if len(trace_ids) != 1:
        problems.append("more than one trace id")
    if len(consumer.links) != messages or linked != producers:
        problems.append("the consumer span does not link to every message's producer span")
    if consumer.parent_span_id not in producers:
        problems.append("the consumer span does not continue the producer's trace")
    for header in traceparents:
        parts = header.split("-")
        if len(parts) != 4 or parts[1] not in trace_ids or parts[2] not in clients:
            problems.append(f"the inventory service got {header!r}, not the client span's context")
    for problem in problems:
        print("FAILED:", problem)
    if not problems:
        print("OK: one trace from API Gateway through SQS to the inventory service")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
