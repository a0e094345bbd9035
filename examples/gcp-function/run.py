"""Google Cloud functions, run locally: ``python examples/gcp-function/run.py``.

Serves ``main.py`` with functions-framework's own app (``create_app``, what
``functions-framework --target ...`` runs) and calls it through Flask's test
client: first ``create_order`` with an HTTP request carrying a
``traceparent``, then ``on_order_created`` with the Pub/Sub push CloudEvent
built from the message the first function published. Both traces print on
the console; the script checks they are one trace. Exits 1 if not.
"""

from __future__ import annotations

import base64
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).parent
sys.path.insert(0, str(HERE))

# What Cloud Run functions sets (the layer reads them for the resource attributes), and the
# propagation formats a function off AWS would choose: W3C only, no X-Ray header.
os.environ.update(
    {
        "K_SERVICE": "orders",
        "GOOGLE_CLOUD_PROJECT": "demo-project",
        "OTEL_PROPAGATORS": "tracecontext,baggage",
    }
)

from functions_framework import create_app  # noqa: E402

from nexs_serverless import SpanKind, configure  # noqa: E402
from nexs_serverless.exporters import ConsoleExporter, InMemoryExporter  # noqa: E402

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{CALLER_TRACE}-b7ad6b7169203331-01"


def main() -> int:
    """Call both functions; 0 when the consumer continued the caller's trace."""
    memory = InMemoryExporter()  # the console shows the traces; the memory copy lets us check them
    configure(exporters=[ConsoleExporter(), memory])
    source = str(HERE / "main.py")
    http_app = create_app(target="create_order", source=source, signature_type="http")  # type: ignore[no-untyped-call]
    response = http_app.test_client().post(
        "/orders", json={"id": "A-1001", "total": 42.5}, headers={"traceparent": TRACEPARENT}
    )
    print(f"create_order answered {response.status_code}: {response.get_data(as_text=True).strip()}")

    import main as functions  # the module functions-framework loaded from `source`

    message = functions.OUTBOX[0]
    print("published message attributes:", message["attributes"])
    push = {  # a Pub/Sub push through Eventarc, in CloudEvents' structured JSON mode
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/demo-project/topics/order-created",
        "id": "8365912345",
        "datacontenttype": "application/json",
        "data": {
            "message": {
                "data": base64.b64encode(message["data"]).decode(),
                "attributes": message["attributes"],
                "messageId": "8365912345",
            },
            "subscription": "projects/demo-project/subscriptions/order-created-mailer",
        },
    }
    event_app = create_app(target="on_order_created", source=source, signature_type="cloudevent")  # type: ignore[no-untyped-call]
    response = event_app.test_client().post(
        "/", json=push, headers={"Content-Type": "application/cloudevents+json"}
    )
    print(f"on_order_created answered {response.status_code}")

    spans = memory.get_finished_spans()
    producer = next(span for span in spans if span.kind == SpanKind.PRODUCER)
    consumer = next(span for span in spans if span.kind == SpanKind.CONSUMER)
    parent = f"{consumer.parent_span_id:016x}"
    print(f"consumer span '{consumer.name}': trace {consumer.trace_id:032x}, parent {parent}")
    joined = consumer.trace_id == producer.trace_id == int(CALLER_TRACE, 16)
    if response.status_code == 200 and joined and consumer.parent_span_id == producer.span_id:
        print(f"OK: HTTP function -> Pub/Sub -> CloudEvent function, one trace {CALLER_TRACE}")
        return 0
    print("FAILED: the CloudEvent function did not continue the caller's trace")
    return 1


if __name__ == "__main__":
    sys.exit(main())
