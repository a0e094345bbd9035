"""Cost of the redaction stage per attribute, median of many batches (issue 6: <= 1 us with default rules).

Each run redacts a fresh copy of one Lambda invocation's batch: an API Gateway
root span (platform, HTTP and cold-start attributes, an Authorization header),
an HTTP client call, a DynamoDB call, an application span and a failed call
with an exception event (message and stack trace): 5 spans, ~60 attributes.
Values that differ per invocation in real life (request ids, order ids, URLs,
query strings) are made unique per run, so only genuinely repeated values hit
the redactor's clean-value cache.

Wall-clock (``perf_counter``) and this thread's CPU time (``thread_time``) are
both reported: on a shared machine the second leaves out time spent waiting
for a core.

Variants:
  default        credential rules, as shipped (the budget applies here)
  default-unseen every string value unique per run (no clean-value cache hits)
  all-detectors  credentials + email, phone, credit card, IP (opt-in cost)

    python scripts/bench_redaction.py [--runs 3000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import traceback

from nexs_serverless.model import Event
from nexs_serverless.redaction import Redactor
from nexs_serverless.span import Span


def _span(name: str, attributes: dict[str, object], events: list[Event] | None = None) -> Span:
    span = Span()
    span.name = name
    span.trace_id, span.span_id, span.parent_span_id = 1, 2, 0
    span.attributes = attributes  # type: ignore[assignment]
    if events:
        span.events = events
    return span


def _stacktrace() -> str:
    try:
        {}["missing"]
    except KeyError as exc:
        return "".join(traceback.format_exception(exc))
    return ""


STACK = _stacktrace()


def batch(run: int, unseen: bool) -> list[Span]:
    """One invocation's spans; `run` makes per-invocation values unique."""
    u = f"-{run}" if unseen else ""
    request = f"3f2c9a1e-{run:04x}-4b7d-9e2f-1c5a7e9b0d3f"
    root = {
        "cloud.provider": "aws",
        "cloud.platform": "aws_lambda",
        "cloud.region": "eu-west-1",
        "cloud.account.id": "123456789012",
        "cloud.resource_id": "arn:aws:lambda:eu-west-1:123456789012:function:orders-api",
        "faas.name": "orders-api",
        "faas.version": "$LATEST",
        "faas.instance": "2026/11/28/[$LATEST]8f2b0c1d9e7a4f3b8c6d5e4f3a2b1c0d",
        "faas.max_memory": 536870912,
        "faas.invocation_id": request,
        "faas.trigger": "http",
        "faas.coldstart": False,
        "http.request.method": "POST",
        "http.route": "/orders/{id}",
        "url.path": f"/orders/{run}",
        "url.scheme": "https",
        "url.query": f"include=items&page={run % 7}" + u,
        "server.address": "abc123.execute-api.eu-west-1.amazonaws.com" + u,
        "client.address": "203.0.113.9",
        "user_agent.original": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0" + u,
        "network.protocol.version": "1.1",
        "nexs.trigger.source": "api_gateway_v2",
        "http.request.header.authorization": ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig",),
        "http.response.status_code": 201,
    }
    client = {
        "http.request.method": "GET",
        "url.full": f"https://inventory.internal.example.com/v2/items/{run}?fields=stock,price" + u,
        "server.address": "inventory.internal.example.com" + u,
        "server.port": 443,
        "http.response.status_code": 200,
        "network.protocol.name": "http",
    }
    dynamo = {
        "db.system": "dynamodb",
        "db.operation": "PutItem",
        "aws.dynamodb.table_names": ("orders",),
        "rpc.system": "aws-api",
        "rpc.service": "DynamoDB",
        "rpc.method": "PutItem",
        "aws.request_id": f"K2N7B1V3C5X8Z0A2S4D6F8G0H{run:05d}",
        "cloud.region": "eu-west-1",
    }
    app = {
        "order.id": f"ORD-{run:08d}",
        "order.total": 129.95,
        "order.items": 3,
        "customer.tier": "gold",
        "cart.currency": "EUR",
        "feature.flags": ("new-checkout", "fast-ship"),
        "promo.code": "WINTER" + u,
    }
    failure = {"http.request.method": "POST", "url.full": "https://payments.example.com/charge" + u}
    event = Event(
        "exception",
        1,
        {
            "exception.type": "KeyError",
            "exception.message": f"'missing' while charging order ORD-{run:08d}",
            "exception.stacktrace": STACK + u,
        },
    )
    return [
        _span("POST /orders/{id}", root),
        _span("GET inventory", client),
        _span("DynamoDB.PutItem", dynamo),
        _span("price order", app),
        _span("POST payments", failure, [event]),
    ]


def count(spans: list[Span]) -> int:
    return sum(len(s.attributes) + sum(len(e.attributes) for e in s.events) for s in spans)


VARIANTS = {
    "default": (Redactor, False),
    "default-unseen": (Redactor, True),
    "all-detectors": (
        lambda: Redactor(
            detectors={"email": "redact", "phone": "redact", "credit_card": "redact", "ip": "hash"}
        ),
        False,
    ),
}


def run(runs: int) -> dict[str, dict[str, float]]:
    results: dict[str, dict[str, float]] = {}
    for name, (make, unseen) in VARIANTS.items():
        redactor = make()
        for i in range(50):  # warm: caches filled as after a few warm invocations
            redactor(batch(i, unseen))
        per_attr: list[float] = []
        cpu_per_attr: list[float] = []
        per_batch: list[float] = []
        for i in range(runs):
            spans = batch(1000 + i, unseen)
            n = count(spans)
            cpu_started = time.thread_time_ns()
            started = time.perf_counter_ns()
            redactor(spans)
            elapsed = time.perf_counter_ns() - started
            cpu = time.thread_time_ns() - cpu_started
            per_attr.append(elapsed / n)
            cpu_per_attr.append(cpu / n)
            per_batch.append(elapsed / 1000.0)
        results[name] = {
            "attributes": float(count(batch(0, unseen))),
            "ns_per_attribute_median": statistics.median(per_attr),
            "ns_per_attribute_p90": statistics.quantiles(per_attr, n=10)[-1],
            "cpu_ns_per_attribute_median": statistics.median(cpu_per_attr),
            "us_per_invocation_median": statistics.median(per_batch),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args()
    results = run(args.runs)
    print(f"redaction: median of {args.runs} batches (5 spans, one invocation)")
    print(
        f"{'variant':16} {'attrs':>5} {'ns/attr median':>15} {'ns/attr p90':>12}"
        f" {'cpu ns/attr median':>19} {'us/invocation':>14}"
    )
    for name, r in results.items():
        print(
            f"{name:16} {int(r['attributes']):5d} {r['ns_per_attribute_median']:15.0f}"
            f" {r['ns_per_attribute_p90']:12.0f} {r['cpu_ns_per_attribute_median']:19.0f}"
            f" {r['us_per_invocation_median']:14.1f}"
        )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"runs": args.runs, "results": results}, fh, indent=2)


if __name__ == "__main__":
    main()
