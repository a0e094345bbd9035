"""The cookbook's Python blocks run as written, against local servers where they need one.

Every ```python block of ``docs/cookbook.md`` is preceded by a marker
``<!-- cookbook-test: NAME -->``; the tests here execute the blocks by name
(in a fresh namespace, or one shared by the blocks of a recipe), supply what
the recipe leaves to the environment (endpoints, a server for the other
cloud) and check the outcome the recipe describes.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.otlp_receiver import Fault, OTLPReceiver

from nexs_serverless import SpanKind
from nexs_serverless.testing import LambdaContext, SpanRecorder, capture_spans, events

ROOT = Path(__file__).resolve().parent.parent
COOKBOOK = (ROOT / "docs" / "cookbook.md").read_text()
_BLOCK = re.compile(r"<!-- cookbook-test: ([\w-]+) -->\n```python\n(.*?)\n```", re.DOTALL)
BLOCKS: dict[str, str] = dict(_BLOCK.findall(COOKBOOK))


def run_block(name: str, namespace: dict[str, Any] | None = None) -> dict[str, Any]:
    """Execute cookbook block `name` (in `namespace` when given) and return the namespace."""
    namespace = {"__name__": "cookbook"} if namespace is None else namespace
    exec(compile(BLOCKS[name], f"docs/cookbook.md:{name}", "exec"), namespace)
    return namespace


def test_every_python_block_is_marked_for_these_tests() -> None:
    """No Python block of the cookbook escapes these tests, and no two share a name."""
    assert COOKBOOK.count("```python") == len(_BLOCK.findall(COOKBOOK)) == len(BLOCKS)


def test_every_setting_named_exists() -> None:
    """Each ``OTEL_*``/``NEXS_*`` variable the cookbook names is one the package reads."""
    source = "\n".join(path.read_text() for path in (ROOT / "nexs_serverless").rglob("*.py"))
    names = set(re.findall(r"\b((?:OTEL|NEXS)_[A-Z0-9_]+[A-Z0-9])\b", COOKBOOK))
    missing = [
        name
        for name in sorted(names)
        if name not in source and name.replace("_TRACES_", "_[TRACES_]") not in source
    ]
    assert names
    assert missing == []


def test_sqs_batch_recipe_links_every_message_and_reports_the_bad_one() -> None:
    """SQS recipe: the handler and its testing-kit check run; the check's assertions hold."""
    namespace = run_block("sqs-handler")
    run_block("sqs-check", namespace)
    assert namespace["result"]["batchItemFailures"]


@pytest.fixture
def two_back_ends(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[OTLPReceiver, OTLPReceiver]]:
    """Two OTLP receivers on 127.0.0.1, named by the variables the fan-out recipe reads."""
    with OTLPReceiver() as collector, OTLPReceiver() as vendor:
        monkeypatch.setenv("COLLECTOR_URL", collector.url)
        monkeypatch.setenv("VENDOR_URL", vendor.url)
        monkeypatch.setenv("VENDOR_API_KEY", "vendor-key")
        yield collector, vendor


def _traced_handler() -> Any:
    from nexs_serverless import traced_handler, tracer

    @traced_handler
    def handler(event: dict[str, Any], context: Any) -> str:
        with tracer.span("work"):
            return "done"

    return handler


def test_fan_out_recipe_sends_every_span_to_both_back_ends(
    two_back_ends: tuple[OTLPReceiver, OTLPReceiver],
) -> None:
    """Fan-out recipe: both endpoints receive the invocation's spans; the vendor's with key and gzip."""
    collector, vendor = two_back_ends
    run_block("fan-out")
    _traced_handler()({}, LambdaContext())
    assert sorted(collector.span_names()) == sorted(vendor.span_names()) == ["test-function", "work"]
    assert {request.headers.get("x-api-key") for request in vendor.requests} == {"vendor-key"}
    assert {request.headers.get("content-encoding") for request in vendor.requests} == {"gzip"}


def test_fan_out_recipe_hanging_back_end_delays_the_other_but_loses_nothing(
    two_back_ends: tuple[OTLPReceiver, OTLPReceiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fan-out recipe's claim: while the first hangs, the other's spans wait in carry-over, then arrive."""
    collector, vendor = two_back_ends
    monkeypatch.setenv("NEXS_FLUSH_TIMEOUT_MS", "100")
    run_block("fan-out")
    collector.mode = Fault.hang()
    handler = _traced_handler()
    for _ in range(4):  # three hung flushes open the collector's breaker; the fourth reaches the vendor
        handler({}, LambdaContext())
    assert len(collector.requests) == 3
    assert sorted(vendor.span_names()) == ["test-function"] * 4 + ["work"] * 4
    assert len({span.span_id for span in vendor.spans()}) == 8


def test_tail_sampling_recipe_keeps_only_the_failed_invocation() -> None:
    """Tail-sampling recipe: its assertions (one kept invocation, rule ``error``) hold."""
    namespace = run_block("tail-errors")
    assert len(namespace["spans"].collect()) == 1


def test_pii_recipe_masks_hashes_and_drops() -> None:
    """PII recipe: its assertions (card masked, e-mail hashed, phone dropped) hold."""
    namespace = run_block("pii")
    assert namespace["span"].attributes["user.email"] != "ada@example.com"


@pytest.fixture
def rates_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The recipe's Google Cloud function, served by Flask on 127.0.0.1; its URL is ``RATES_URL``."""
    import flask
    from werkzeug.serving import make_server

    rates = run_block("multicloud-gcp")["rates"]
    app = flask.Flask("rates")
    app.add_url_rule("/", "rates", lambda: rates(flask.request), methods=["POST"])
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_port}/"
    monkeypatch.setenv("RATES_URL", url)
    yield url
    server.shutdown()
    thread.join(timeout=5)


def test_multicloud_recipe_is_one_trace_across_both_functions(rates_url: str) -> None:
    """Multi-cloud recipe: the Google function's span is a child of the Lambda function's HTTP call."""
    from nexs_serverless import instrumentation

    checkout = run_block("multicloud-aws")["checkout"]
    instrumentation.instrument("httpx")  # in a fresh process the first invocation does this itself
    event = events.api_gateway_v2(method="POST", path="/checkout", headers={"X-Amzn-Trace-Id": None})
    with capture_spans() as spans:
        assert checkout(event, LambdaContext()) == {"statusCode": 200, "body": "0.92"}
    client = spans.assert_span("POST", kind="client", parent="POST /checkout")
    (google,) = [span for span in spans.collect() if span.kind == SpanKind.SERVER and span.name == "POST"]
    assert (google.trace_id, google.parent_span_id) == (client.trace_id, client.span_id)
    spans.assert_span("load-rates", parent="POST")


def test_testing_recipe_passes_with_the_fixture(nexs_spans: SpanRecorder) -> None:
    """Testing recipe: its pytest test passes when given the plugin's ``nexs_spans`` fixture."""
    namespace = run_block("testing")
    test = namespace["test_checkout"]
    assert test.__doc__
    test(nexs_spans)


def test_testing_recipe_catches_a_broken_handler(nexs_spans: SpanRecorder) -> None:
    """Testing recipe: the same test fails when the handler stops tracing the charge."""
    from nexs_serverless import traced_handler, tracer

    namespace = run_block("testing")

    @traced_handler
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with tracer.span("load-cart", attributes={"cart.items": 2}):
            pass
        return {"statusCode": 201}

    namespace["handler"] = handler
    with pytest.raises(AssertionError, match="trace shape differs"):
        namespace["test_checkout"](nexs_spans)


def test_tenant_recipe_stamps_every_span_with_its_invocations_tenant() -> None:
    """Tenants recipe: each invocation's spans carry the tenant its request named, and only that one."""
    namespace = run_block("tenants")
    tenants = {(span.name, span.attributes.get("tenant.id")) for span in namespace["spans"].spans}
    assert tenants == {
        ("POST /orders", "acme"),
        ("load-orders", "acme"),
        ("POST /orders", "globex"),
        ("load-orders", "globex"),
    }
