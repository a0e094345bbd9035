"""One trace across clouds: Lambda -> SQS (moto) and a Cloud Function -> Lambda -> an Azure Function."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.clouds import azure_functions_host, client, moto_server, receive_all, sqs_event, wsgi_server

from nexs_serverless import SpanKind, instrumentation, traced_handler
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext, events, reset

CLIENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
CLIENT_SPAN = "b7ad6b7169203331"

CLOUD_FUNCTION = """
import functions_framework
from nexs_serverless import traced_handler

@functions_framework.http
@traced_handler
def price(request):
    return {"sku": request.args.get("sku"), "price": 42}
"""


@pytest.fixture
def instrumented() -> Iterator[None]:
    """SDK and HTTP clients instrumented for the test only."""
    instrumentation.instrument("botocore", "urllib3", "httpx")
    yield
    instrumentation.uninstrument("botocore", "urllib3", "httpx")


def test_every_span_of_the_chain_shares_one_trace_with_the_right_parents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, instrumented: None
) -> None:
    """API Gateway -> Lambda A -> (SQS, Cloud Function); its message -> Lambda B -> Azure Function."""
    import azure.functions as func
    import functions_framework
    import httpx
    import requests

    exporter = InMemoryExporter()
    reset(exporters=[exporter])
    for variable in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_TRIGGER_TYPE", "FUNCTION_NAME"):
        monkeypatch.setenv(variable, "")  # functions-framework writes these; monkeypatch restores them
    source = tmp_path / "main.py"
    source.write_text(textwrap.dedent(CLOUD_FUNCTION))

    @traced_handler
    def stock(req: func.HttpRequest, context: object) -> func.HttpResponse:
        return func.HttpResponse('{"in_stock": true}', status_code=200)

    with (
        moto_server() as endpoint,
        wsgi_server(functions_framework.create_app("price", str(source))) as cloud_function,
        azure_functions_host(stock, "stock") as azure_function,
    ):
        sqs = client("sqs", endpoint)
        queue_url = sqs.create_queue(QueueName="orders")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

        @traced_handler
        def checkout(event: dict[str, object], context: object) -> dict[str, object]:
            sqs.send_message(QueueUrl=queue_url, MessageBody='{"orderId": "42"}')
            quote = requests.get(f"{cloud_function}/?sku=book", timeout=10).json()
            return {"statusCode": 200, "body": str(quote["price"])}

        @traced_handler
        def fulfil(event: dict[str, object], context: object) -> None:
            response = httpx.post(f"{azure_function}/api/stock", json={"orderId": "42"}, timeout=10)
            assert response.json() == {"in_stock": True}

        request = events.api_gateway_v1(
            method="POST",
            path="/checkout",
            headers={"traceparent": f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01", "X-Amzn-Trace-Id": None},
        )
        assert checkout(request, LambdaContext(function_name="checkout"))["statusCode"] == 200
        fulfil(sqs_event(receive_all(sqs, queue_url), queue_arn), LambdaContext(function_name="fulfil"))

    spans = exporter.get_finished_spans()
    assert {f"{span.trace_id:032x}" for span in spans} == {CLIENT_TRACE}
    by_role = {
        "lambda_a": next(s for s in spans if s.name == "POST /checkout"),
        "sqs_send": next(s for s in spans if s.name == "send orders"),
        "http_to_gcp": next(s for s in spans if s.kind == SpanKind.CLIENT and s.name == "GET"),
        "cloud_function": next(s for s in spans if s.attributes.get("cloud.provider") == "gcp"),
        "lambda_b": next(s for s in spans if s.name == "process orders"),
        "http_to_azure": next(s for s in spans if s.kind == SpanKind.CLIENT and s.name == "POST"),
        "azure_function": next(s for s in spans if s.attributes.get("cloud.provider") == "azure"),
    }
    assert len(spans) == len(by_role)
    parent_of = {role: span.parent_span_id for role, span in by_role.items()}
    assert f"{parent_of['lambda_a']:016x}" == CLIENT_SPAN
    assert parent_of["sqs_send"] == by_role["lambda_a"].span_id
    assert parent_of["http_to_gcp"] == by_role["lambda_a"].span_id
    assert parent_of["cloud_function"] == by_role["http_to_gcp"].span_id
    assert parent_of["lambda_b"] == by_role["sqs_send"].span_id
    assert parent_of["http_to_azure"] == by_role["lambda_b"].span_id
    assert parent_of["azure_function"] == by_role["http_to_azure"].span_id
    assert [link.context.span_id for link in by_role["lambda_b"].links] == [by_role["sqs_send"].span_id]
    assert by_role["cloud_function"].attributes["faas.trigger"] == "http"
    assert by_role["azure_function"].attributes["faas.name"] == "stock"
    remote_parents = {role for role, span in by_role.items() if span.parent_is_remote}
    assert remote_parents == {"lambda_a", "cloud_function", "lambda_b", "azure_function"}
