"""Lambda triggers at their edges: a Host port or status in other digits, a Kinesis record's odd id."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nexs_serverless import stats, traced_handler
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.finished import FinishedSpan
from nexs_serverless.testing import LambdaContext, events, reset
from nexs_serverless.triggers import describe


@pytest.fixture(autouse=True)
def _settings() -> Iterator[None]:
    """Each test starts from an empty configuration."""
    reset(environ={})
    yield
    reset(environ={})


def run(event: object, result: object = None) -> FinishedSpan:
    """Invoke a traced handler returning `result` with `event`; its one exported span."""
    exporter = InMemoryExporter()
    reset(exporters=[exporter], environ={})

    @traced_handler
    def handler(event: object, context: object) -> object:
        return result

    handler(event, LambdaContext())
    (root,) = exporter.get_finished_spans()
    return root


@pytest.mark.parametrize(("host", "port"), [("orders.example:²", None), ("orders.example:99999", None)])
def test_a_host_port_that_is_no_port_number_is_left_out(host: str, port: int | None) -> None:
    """An ALB ``Host`` whose port is in other digits (``int("²")`` raised: no span at all) or past
    65535 gives ``server.address`` and no ``server.port``."""
    event = events.load("alb")
    event["headers"]["host"] = host
    root = run(event)
    assert root.attributes["faas.trigger"] == "http"
    assert root.attributes["server.address"] == "orders.example"
    assert root.attributes.get("server.port") == port


def test_a_status_code_in_other_digits_records_no_status_and_no_error() -> None:
    """``{"statusCode": "²"}`` is no code: nothing recorded, nothing raised inside the tracer."""
    before = stats().get("internal_errors", 0)
    root = run(events.load("api-gateway-v1"), result={"statusCode": "²"})
    assert "http.response.status_code" not in root.attributes
    assert stats().get("internal_errors", 0) == before


def test_a_status_code_as_ascii_text_is_still_recorded() -> None:
    """``{"statusCode": "503"}`` (text, as some frameworks return it) is 503 and an error."""
    root = run(events.load("api-gateway-v1"), result={"statusCode": "503"})
    assert root.attributes["http.response.status_code"] == 503


@pytest.mark.parametrize("event_id", [None, 7, "49590338271490256608559692538361571095921575989136588898"])
def test_a_kinesis_record_id_naming_no_shard_gives_no_partition(event_id: object) -> None:
    """A null ``eventID`` became the partition ``"None"``; an id without ``shard:`` is no shard either."""
    event = events.load("kinesis")
    event["Records"][0]["eventID"] = event_id
    assert "messaging.destination.partition.id" not in describe(event).attributes


def test_a_kinesis_batch_of_one_shard_names_it() -> None:
    """Every record of the shipped sample is of ``shardId-000000000006``: the partition it names."""
    attrs = describe(events.load("kinesis")).attributes
    assert attrs["messaging.destination.partition.id"] == "shardId-000000000006"


def _authorizer(name: str) -> dict[str, object]:
    """A ``REQUEST`` Lambda authorizer's event: the request it decides on, and the ARN it guards."""
    event = events.load(name)
    event["type"] = "REQUEST"
    if name == "api-gateway-v1":
        event["methodArn"] = "arn:aws:execute-api:us-east-1:123456789012:r3pmxmplak/prod/GET/orders/42"
    else:
        event["routeArn"] = "arn:aws:execute-api:us-east-1:123456789012:r3pmxmplak/$default/POST/orders"
        event["identitySource"] = ["Bearer token"]
    return event


@pytest.mark.parametrize(
    ("name", "result"),
    [
        ("api-gateway-v2", {"isAuthorized": False}),
        ("api-gateway-v1", {"principalId": "u", "policyDocument": {}}),
    ],
)
def test_a_request_authorizer_is_other_and_records_no_response(name: str, result: object) -> None:
    """An authorizer decides on the request without answering it: ``other``, named after the function,
    no status (an HTTP API's denial was the 200 of a ``POST /orders`` span), its caller's trace kept."""
    root = run(_authorizer(name), result=result)
    attrs = root.attributes
    assert attrs["faas.trigger"] == "other"
    assert root.name == LambdaContext().function_name
    assert "http.response.status_code" not in attrs
    assert attrs["nexs.trigger.source"] == "api_gateway_authorizer"
    request = run(events.load(name), result={"statusCode": 200})
    assert (root.trace_id, root.parent_span_id) == (request.trace_id, request.parent_span_id)
    assert root.parent_is_remote


def test_an_event_with_a_type_field_but_no_authorizer_arn_is_still_the_request() -> None:
    """A request whose event happens to carry ``type`` (no ``methodArn``/``routeArn``) stays ``http``."""
    event = events.load("api-gateway-v2")
    event["type"] = "REQUEST"
    root = run(event, result={"statusCode": 201})
    assert (root.attributes["faas.trigger"], root.attributes["http.response.status_code"]) == ("http", 201)
