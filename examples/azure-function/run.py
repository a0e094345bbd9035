"""Azure Functions, invoked locally: ``python examples/azure-function/run.py``.

Calls the functions of ``function_app.py`` as the Python worker does,
passing bindings by parameter name: ``http_start`` with an
``azure.functions.HttpRequest`` (carrying a ``traceparent``) and an output
binding that keeps what is written; then ``queue_worker`` with the
``QueueMessage`` the queue would deliver. Both traces print on the console;
the script checks the queue worker's span links to the HTTP request's trace.
Exits 1 if not.
"""

from __future__ import annotations

import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

# What the Functions host sets (the layer reads them for the resource attributes), and the
# propagation formats a function off AWS would choose: W3C only, no X-Ray header.
os.environ.update(
    {
        "FUNCTIONS_WORKER_RUNTIME": "python",
        "WEBSITE_SITE_NAME": "orders-app",
        "OTEL_PROPAGATORS": "tracecontext,baggage",
    }
)

import azure.functions as func
from azure.functions.queue import QueueMessage
from function_app import app

from nexs_serverless import configure
from nexs_serverless.exporters import ConsoleExporter, InMemoryExporter
from nexs_serverless.testing import AzureContext

CALLER_TRACE = "a3ce929d0e0e47364bf92f3577b34da6"


class OutputBinding(func.Out[str]):
    """What the worker passes for an output binding: keeps the value set."""

    def __init__(self) -> None:
        self.value: str | None = None

    def set(self, val: str) -> None:
        """Keep `val`."""
        self.value = val

    def get(self) -> str:
        """The value set (empty before)."""
        return self.value or ""


def main() -> int:
    """Invoke both functions; 0 when the queue worker links to the request's trace."""
    memory = InMemoryExporter()
    configure(exporters=[ConsoleExporter(), memory])
    functions = {fn.get_function_name(): fn.get_user_function() for fn in app.get_functions()}

    request = func.HttpRequest(
        method="POST",
        url="https://orders-app.azurewebsites.net/api/orders",
        headers={"Content-Type": "application/json", "traceparent": f"00-{CALLER_TRACE}-5fb1a2a0f2d7c6b1-01"},
        body=json.dumps({"id": "A-1001", "lines": [{"sku": "book-42", "quantity": 1}]}).encode(),
    )
    queued = OutputBinding()
    response = functions["http_start"](
        req=request, msg=queued, context=AzureContext(function_name="http_start")
    )
    print(f"http_start answered {response.status_code}: {response.get_body().decode()}")
    print("queued message:", queued.get())

    message = QueueMessage(  # type: ignore[no-untyped-call]
        id="5b2a7c3e-1f4d", body=queued.get().encode(), dequeue_count=1, pop_receipt="AgAAAA=="
    )
    functions["queue_worker"](msg=message, context=AzureContext(function_name="queue_worker"))

    worker = next(span for span in memory.get_finished_spans() if span.links)
    linked = {f"{link.context.trace_id:032x}" for link in worker.links}
    print(f"queue_worker span '{worker.name}' links to trace(s): {', '.join(sorted(linked))}")
    if response.status_code == 202 and linked == {CALLER_TRACE}:
        print("OK: the queue worker's span links to the HTTP request's trace")
        return 0
    print("FAILED: the queue worker is not linked to the request's trace")
    return 1


if __name__ == "__main__":
    sys.exit(main())
