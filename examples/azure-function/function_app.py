"""Two Azure Functions (Python v2 programming model), traced with ``@traced_handler``.

``http_start`` (HTTP trigger, ``POST /api/orders``) accepts an order and
writes it to the ``orders`` Storage queue through an output binding.
``queue_worker`` (queue trigger) fulfils it.

``@traced_handler`` goes *under* the ``app.*`` decorators, so the function
the worker calls is the traced one (it keeps the signature, so the bindings
still match parameter names). The layer finds the trigger object and the
``context`` among the arguments the worker passes by name.

Storage queue messages carry no metadata, so the producer's trace context
travels in the message body (``trace``), and the consumer links its span to
it: the OpenTelemetry messaging conventions' way to join a message to the
work it causes. (Service Bus and Event Hubs carry ``traceparent`` /
``Diagnostic-Id`` in application properties; the layer reads those itself.)
"""

from __future__ import annotations

import json

import azure.functions as func

from nexs_serverless import current_span, propagation, traced_handler, tracer

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orders", methods=["POST"])
@app.queue_output(arg_name="msg", queue_name="orders", connection="AzureWebJobsStorage")
@traced_handler
def http_start(req: func.HttpRequest, msg: func.Out[str], context: func.Context) -> func.HttpResponse:
    """Validate the order and queue it, with the trace context in the message."""
    order = req.get_json()
    with tracer.span("validate-order", attributes={"order.id": order["id"]}):
        if not order.get("lines"):
            return func.HttpResponse("an order needs lines", status_code=400)
    carrier: dict[str, str] = {}
    propagation.inject(carrier)
    msg.set(json.dumps({"order": order, "trace": carrier}))
    return func.HttpResponse(
        json.dumps({"accepted": order["id"]}), status_code=202, mimetype="application/json"
    )


@app.queue_trigger(arg_name="msg", queue_name="orders", connection="AzureWebJobsStorage")
@traced_handler
def queue_worker(msg: func.QueueMessage, context: func.Context) -> None:
    """Fulfil the order; link this invocation to the request that queued it."""
    payload = json.loads(msg.get_body())
    producer = propagation.extract(payload["trace"])
    root = current_span()
    if producer is not None and root is not None:
        root.add_link(producer, {"messaging.message.id": msg.id or ""})
    with tracer.span("fulfil-order", attributes={"order.id": payload["order"]["id"]}):
        pass
