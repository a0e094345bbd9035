"""OpenTelemetry instrumentation feeding this layer: a handler written against the OpenTelemetry API.

Three kinds of spans end up in one trace, in our buffer, flushed by
``@traced_handler`` at the end of the invocation:

- ``opentelemetry-instrumentation-urllib`` (an OpenTelemetry instrumentation
  library, unchanged) traces the ``urllib.request`` call and writes the
  ``traceparent`` header through OpenTelemetry's propagator;
- plain OpenTelemetry API calls (``trace.get_tracer(...).start_as_current_span``);
- our own ``tracer.span``, nested inside an OpenTelemetry span and the other way round.

``nexs_serverless.otel.install()`` makes our ``TracerProvider`` the global one
and keeps one current span for both APIs. (It also happens by itself at the
first invocation when ``opentelemetry.trace`` is imported; calling it at
import is explicit and covers spans started before the first invocation.)
"""

from __future__ import annotations

import json
import os
import urllib.request
from typing import Any

from opentelemetry import trace
from opentelemetry.instrumentation.urllib import URLLibInstrumentor

import nexs_serverless.otel
from nexs_serverless import traced_handler, tracer

nexs_serverless.otel.install()
URLLibInstrumentor().instrument()
otel_tracer = trace.get_tracer("shop.pricing", "1.4.0")


@traced_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """GET /price/{sku}: ask the price service, apply the discount."""
    sku = event["pathParameters"]["sku"]
    with otel_tracer.start_as_current_span("quote", attributes={"product.sku": sku}) as quote:
        with urllib.request.urlopen(f"{os.environ['PRICE_SERVICE_URL']}/prices/{sku}", timeout=2) as reply:
            price = json.loads(reply.read())["price"]
        with tracer.span("apply-discount", attributes={"discount.percent": 10}):  # ours, inside theirs
            price = round(price * 0.9, 2)
        quote.set_attribute("price.final", price)
    return {"statusCode": 200, "body": json.dumps({"sku": sku, "price": price})}
