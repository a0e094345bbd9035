"""Google and Azure calls the first platform tests missed: status forms, methods, aio, legacy events, ids."""

from __future__ import annotations

import contextlib
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from support.clouds import wsgi_server
from support.functions_source import function_source
from support.memory import export, only_root

from nexs_serverless import SpanKind, StatusCode, config, platforms, traced_handler
from nexs_serverless.testing import AzureContext, events, native

W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{W3C_TRACE}-00f067aa0ba902b7-01"
OTHER_PARENT = "00-11111111111111111111111111111111-2222222222222222-01"
HOST_PARENT = "00-33333333333333333333333333333333-4444444444444444-01"
GCP_ENV = {"K_SERVICE": "orders-fn", "FUNCTION_TARGET": "handle", "GOOGLE_CLOUD_PROJECT": "my-project"}
AZURE_ENV = {
    "FUNCTIONS_WORKER_RUNTIME": "python",
    "WEBSITE_SITE_NAME": "my-func-app",
    "WEBSITE_OWNER_NAME": "0000aaaa-1111-2222-3333-444455556666+orders-rg-WestEuropewebspace",
    "WEBSITE_RESOURCE_GROUP": "orders-rg",
}
APP_ID = (
    "/subscriptions/0000aaaa-1111-2222-3333-444455556666/resourceGroups/orders-rg"
    "/providers/Microsoft.Web/sites/my-func-app"
)

FUNCTIONS = """
from http import HTTPStatus

import functions_framework
from nexs_serverless import traced_handler


@functions_framework.http
@traced_handler
def enum_status(request):
    return "boom", HTTPStatus.INTERNAL_SERVER_ERROR


@functions_framework.http
@traced_handler
def text_status(request):
    return "boom", "503 SERVICE UNAVAILABLE"


@functions_framework.http
@traced_handler
def body_and_headers(request):
    return "fine", {"X-Checked": "1"}


@functions_framework.http
@traced_handler
def body_status_headers(request):
    return "made", HTTPStatus.CREATED, [("X-Checked", "1")]


class Orders:
    @traced_handler
    def __call__(self, request):
        return "created", 201


orders = Orders()


@functions_framework.http
def by_method(request):
    return orders(request)


@traced_handler
def on_event(data, context):
    return None
"""

AIO_FUNCTION = """
import functions_framework.aio
from nexs_serverless import traced_handler


@functions_framework.aio.http
@traced_handler
async def hello(request):
    return "hello " + request.query_params.get("name", "world")
"""


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The functions above in a file for functions-framework; its environment writes undone after."""
    return function_source(tmp_path, monkeypatch, FUNCTIONS)


@contextlib.contextmanager
def asgi_server(app: Any) -> Iterator[str]:
    """Serve an ASGI app (``functions_framework.aio``) with uvicorn on 127.0.0.1; yields its URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped before it started"
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


# -- HTTP status as Flask reads a return value ------------------------------------------


@pytest.mark.parametrize(
    ("target", "code", "status"),
    [
        ("enum_status", 500, StatusCode.ERROR),
        ("text_status", 503, StatusCode.ERROR),
        ("body_and_headers", 200, StatusCode.UNSET),
        ("body_status_headers", 201, StatusCode.UNSET),
    ],
)
def test_the_status_flask_answers_with_is_recorded(source: str, target: str, code: int, status: int) -> None:
    """``HTTPStatus``, ``"503 ..."`` text, ``(body, headers)`` and ``(body, status, headers)`` returns."""
    import functions_framework

    exporter = export(GCP_ENV)
    with wsgi_server(functions_framework.create_app(target, source)) as url:
        response = requests.get(url + "/", timeout=10)
    root = only_root(exporter)
    assert response.status_code == code
    assert root.attributes["http.response.status_code"] == code
    assert root.status_code == status


# -- class-based handlers: `self` comes first ---------------------------------------------


def test_a_decorated_method_serving_http_continues_the_request_trace(source: str) -> None:
    """functions-framework calls a function that calls a traced ``__call__``: still an HTTP trigger."""
    import functions_framework

    exporter = export(GCP_ENV)
    with wsgi_server(functions_framework.create_app("by_method", source)) as url:
        response = requests.get(url + "/?x=1", headers={"traceparent": TRACEPARENT}, timeout=10)
    root = only_root(exporter)
    assert response.status_code == 201
    assert (root.name, root.attributes["faas.trigger"]) == ("GET", "http")
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert root.attributes["http.response.status_code"] == 201


def test_a_decorated_method_taking_a_cloud_event_is_a_pubsub_consumer() -> None:
    """A CloudEvent after ``self``: the Pub/Sub trigger and the message's parent."""
    exporter = export(GCP_ENV)

    class Consumer:
        @traced_handler
        def on_message(self, cloud_event: object) -> None:
            return None

    Consumer().on_message(native.cloud_event(events.load("gcp-pubsub")))
    root = only_root(exporter)
    assert (root.name, root.kind) == ("process orders", SpanKind.CONSUMER)
    assert f"{root.trace_id:032x}" == W3C_TRACE


# -- functions_framework.aio: a Starlette request -----------------------------------------


def test_an_async_http_function_is_traced_from_its_starlette_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Served by uvicorn off Google (no GCP variables): claimed as Google, headers read for the parent."""
    from functions_framework.aio import create_asgi_app

    for variable in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_TRIGGER_TYPE", "FUNCTION_NAME"):
        monkeypatch.setenv(variable, "")
    path = tmp_path / "aio_main.py"
    path.write_text(textwrap.dedent(AIO_FUNCTION))
    exporter = export()
    with asgi_server(create_asgi_app("hello", str(path))) as url:
        response = requests.get(
            url + "/greet?name=nexs",
            headers={"traceparent": TRACEPARENT, "Function-Execution-Id": "exec-1"},
            timeout=10,
        )
    assert response.text == "hello nexs"
    root = only_root(exporter)
    attrs = root.attributes
    assert (attrs["cloud.provider"], attrs["faas.trigger"]) == ("gcp", "http")
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert attrs["faas.invocation_id"] == "exec-1"
    assert (attrs["url.path"], attrs["url.query"]) == ("/greet", "name=nexs")
    assert attrs["client.address"] == "127.0.0.1"
    assert attrs["http.response.status_code"] == 200


# -- legacy background functions ---------------------------------------------------------

# functions-framework's event view still calls cloudevents' deprecated is_binary.
legacy_view = pytest.mark.filterwarnings("ignore:is_binary is deprecated:DeprecationWarning")


def _pubsub_push(topic_path: str = "/projects/p/topics/orders") -> tuple[str, dict[str, object]]:
    """A raw Pub/Sub push to a background function, as functions-framework accepts it."""
    message = {"data": "e30=", "messageId": "123", "attributes": {"traceparent": TRACEPARENT}}
    return topic_path, {"subscription": "projects/p/subscriptions/s", "message": message}


@legacy_view
def test_a_legacy_background_function_called_positionally_is_claimed(source: str) -> None:
    """functions-framework calls ``fn(data, context)``: off Google, the context's type still says Google."""
    import functions_framework

    exporter = export()
    path, body = _pubsub_push()
    with wsgi_server(functions_framework.create_app("on_event", source, "event")) as url:
        assert requests.post(url + path, json=body, timeout=10).status_code == 200
    root = only_root(exporter)
    assert (root.attributes["cloud.provider"], root.attributes["faas.trigger"]) == ("gcp", "pubsub")
    assert f"{root.trace_id:032x}" == W3C_TRACE


@legacy_view
def test_a_legacy_pubsub_message_has_its_topic_and_id(source: str) -> None:
    """As the CloudEvent form: ``process <topic>``, destination and message id."""
    import functions_framework

    exporter = export(GCP_ENV)
    path, body = _pubsub_push()
    with wsgi_server(functions_framework.create_app("on_event", source, "event")) as url:
        requests.post(url + path, json=body, timeout=10)
    root = only_root(exporter)
    assert (root.name, root.kind) == ("process orders", SpanKind.CONSUMER)
    assert root.attributes["messaging.destination.name"] == "orders"
    assert root.attributes["messaging.message.id"] == "123"
    assert root.attributes["messaging.operation.type"] == "process"


@legacy_view
@pytest.mark.parametrize(
    ("event_type", "resource"),
    [
        (
            "providers/cloud.firestore/eventTypes/document.write",
            "projects/p/databases/(default)/documents/o/1",
        ),
        ("providers/google.firebase.database/eventTypes/ref.write", "projects/_/instances/x/refs/a"),
    ],
)
def test_legacy_firestore_and_realtime_database_events_are_datasources(
    source: str, event_type: str, resource: str
) -> None:
    """The legacy names of the sources whose CloudEvents are ``datasource`` triggers."""
    import functions_framework

    exporter = export(GCP_ENV)
    context = {"eventId": "ev-1", "timestamp": "2020-01-01T00:00:00Z", "eventType": event_type}
    body = {"context": {**context, "resource": resource}, "data": {"value": {}}}
    with wsgi_server(functions_framework.create_app("on_event", source, "event")) as url:
        assert requests.post(url + "/", json=body, timeout=10).status_code == 200
    root = only_root(exporter)
    assert (root.name, root.attributes["faas.trigger"]) == (event_type, "datasource")


def test_realtime_database_cloud_event_is_a_datasource() -> None:
    """The CloudEvent form of a Realtime Database write, as the legacy one."""
    exporter = export(GCP_ENV)
    event = {
        "specversion": "1.0",
        "id": "ev-2",
        "source": "//firebasedatabase.googleapis.com/projects/_/locations/us-central1/instances/x",
        "type": "google.firebase.database.ref.v1.written",
        "data": {"data": None, "delta": {}},
    }

    @traced_handler
    def handle(cloud_event: object) -> None:
        return None

    handle(native.cloud_event(event))
    assert only_root(exporter).attributes["faas.trigger"] == "datasource"


# -- Pub/Sub attributes -------------------------------------------------------------------


def test_traceparent_wins_over_googclient_traceparent_in_any_order() -> None:
    """Both names in one message: the W3C ``traceparent`` is the parent, whatever the map's order."""
    pairs = [("traceparent", TRACEPARENT), ("googclient_traceparent", OTHER_PARENT)]

    @traced_handler
    def handle(cloud_event: object) -> None:
        return None

    for order in (pairs, pairs[::-1]):
        exporter = export(GCP_ENV)
        event = events.load("gcp-pubsub")
        event["data"]["message"]["attributes"] = dict(order)
        handle(native.cloud_event(event))
        assert f"{only_root(exporter).trace_id:032x}" == W3C_TRACE, order


# -- Azure -----------------------------------------------------------------------------


def test_azure_timer_and_blob_triggers_are_named() -> None:
    """``func.TimerRequest`` is a timer trigger, a blob's ``func.InputStream`` a datasource."""
    from azure.functions.blob import InputStream
    from azure.functions.timer import TimerRequest

    exporter = export(AZURE_ENV)

    @traced_handler
    def tick(timer: object, context: object) -> None:
        return None

    @traced_handler
    def on_blob(blob: object, context: object) -> None:
        return None

    tick(timer=TimerRequest(past_due=False), context=AzureContext(trace_parent=HOST_PARENT))
    uri = "https://account.blob.core.windows.net/orders/o.json"
    blob = InputStream(data=b"{}", name="orders/o.json", uri=uri, length=2)
    on_blob(blob=blob, context=AzureContext(trace_parent=HOST_PARENT))
    timer_root, blob_root = exporter.get_finished_spans()
    assert timer_root.attributes["faas.trigger"] == "timer"
    assert blob_root.attributes["faas.trigger"] == "datasource"
    assert f"{blob_root.trace_id:032x}" == "3" * 32


def test_azure_span_resource_id_is_the_invoked_function() -> None:
    """The span's ``cloud.resource_id`` names the function; the resource's stays the app's."""
    import azure.functions as func

    exporter = export(AZURE_ENV)

    @traced_handler
    def main(req: object, context: object) -> object:
        return func.HttpResponse("ok")

    main(req=native.azure_request(events.load("azure-http")), context=AzureContext(function_name="orders"))
    assert only_root(exporter).attributes["cloud.resource_id"] == f"{APP_ID}/functions/orders"
    assert platforms.resource_attributes(config.load(AZURE_ENV)[0])["cloud.resource_id"] == APP_ID


# -- HTTP host, forced platform --------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "address", "port"),
    [("[::1]:8080", "::1", 8080), ("[2001:db8::1]", "2001:db8::1", None)],
)
def test_ipv6_host_header_gives_address_and_port(host: str, address: str, port: int | None) -> None:
    """A bracketed IPv6 literal leaves its brackets and gives up its port."""
    exporter = export(GCP_ENV)

    @traced_handler
    def handle(request: object) -> str:
        return "ok"

    handle(native.flask_request(events.gcp_http(headers={"Host": host})))
    attrs = only_root(exporter).attributes
    assert (attrs["server.address"], attrs.get("server.port")) == (address, port)


def test_an_invalid_nexs_platform_does_not_stop_claiming(caplog: pytest.LogCaptureFixture) -> None:
    """NEXS_PLATFORM=google names no platform: a Flask request is Google's, as with it unset."""

    @traced_handler
    def handle(request: object) -> str:
        return "ok"

    exporter = export({"NEXS_PLATFORM": "google"})
    with caplog.at_level("WARNING", logger="nexs_serverless"):
        handle(native.flask_request(events.load("gcp-http")))
    root = only_root(exporter)
    assert (root.attributes["cloud.provider"], root.attributes["faas.trigger"]) == ("gcp", "http")
    exporter = export({"NEXS_PLATFORM": "aws"})  # a valid one still wins
    handle(native.flask_request(events.load("gcp-http")))
    assert only_root(exporter).attributes["cloud.provider"] == "aws"
