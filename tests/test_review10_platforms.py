"""Platforms, second look: web framework requests on any platform, argument shapes, odd environments."""

from __future__ import annotations

import sys
import textwrap
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.memory import export, only_root

from nexs_serverless import SpanKind, StatusCode, config, platforms, traced_handler
from nexs_serverless.testing import AzureContext, LambdaContext, events, native

W3C_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{W3C_TRACE}-00f067aa0ba902b7-01"
LAMBDA_ENV = {"AWS_LAMBDA_FUNCTION_NAME": "orders-fn", "AWS_REGION": "eu-west-1"}
GCP_ENV = {"K_SERVICE": "orders-fn", "FUNCTION_TARGET": "handle", "GOOGLE_CLOUD_PROJECT": "my-project"}
AZURE_ENV = {"FUNCTIONS_WORKER_RUNTIME": "python", "WEBSITE_SITE_NAME": "my-func-app"}
API_EVENT = {
    "version": "2.0",
    "routeKey": "GET /orders",
    "rawPath": "/orders",
    "headers": {"traceparent": TRACEPARENT},
    "requestContext": {
        "http": {"method": "GET", "path": "/orders", "sourceIp": "198.51.100.1"},
        "stage": "$default",
        "requestId": "req-1",
    },
}


def starlette_request(headers: dict[str, str], client: tuple[str, int] = ("10.0.0.1", 40000)) -> Any:
    """A real ``starlette.requests.Request`` (FastAPI's ``Request``) for GET /api/orders?id=7."""
    from starlette.requests import Request

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": "/api/orders",
        "query_string": b"id=7",
        "headers": [(b"host", b"my-func-app.azurewebsites.net")]
        + [(key.lower().encode(), value.encode()) for key, value in headers.items()],
        "server": ("my-func-app.azurewebsites.net", 443),
        "client": client,
    }
    return Request(scope)


# -- a web framework's request, on a platform the environment names --------------------------


def test_a_flask_route_inside_lambda_is_an_http_invocation_continuing_its_caller() -> None:
    """Lambda's identity, the request's description: ``http`` trigger, parent from its traceparent."""
    exporter = export(LAMBDA_ENV)

    @traced_handler
    def route(request: object) -> str:
        return "ok"

    request = native.flask_request(events.gcp_http(method="GET", headers={"traceparent": TRACEPARENT}))
    assert route(request) == "ok"
    root = only_root(exporter)
    attrs = root.attributes
    assert (attrs.get("cloud.provider", "aws"), attrs["faas.trigger"]) == ("aws", "http")
    assert (root.name, root.kind) == ("GET", SpanKind.SERVER)
    assert f"{root.trace_id:032x}" == W3C_TRACE
    assert attrs["http.response.status_code"] == 200


def test_a_fastapi_request_on_azure_is_an_http_trigger() -> None:
    """The HTTP streams extension passes a FastAPI (Starlette) request: HTTP attributes and its parent."""
    exporter = export(AZURE_ENV)

    @traced_handler
    async def stream(req: object, context: object) -> str:
        return "ok"

    import asyncio

    request = starlette_request({"traceparent": TRACEPARENT})
    asyncio.run(stream(req=request, context=AzureContext(function_name="orders", invocation_id="inv-1")))
    root = only_root(exporter)
    attrs = root.attributes
    assert (attrs["cloud.provider"], attrs["faas.trigger"], root.name) == ("azure", "http", "GET")
    assert (attrs["url.path"], attrs["url.query"]) == ("/api/orders", "id=7")
    assert (attrs["faas.name"], attrs["faas.invocation_id"]) == ("my-func-app/orders", "inv-1")
    assert attrs["client.address"] == "10.0.0.1"
    assert f"{root.trace_id:032x}" == W3C_TRACE


@pytest.mark.parametrize(
    ("forwarded", "address", "port"),
    [
        ("203.0.113.7:51234", "203.0.113.7", 51234),
        ("203.0.113.7:51234, 10.0.0.4", "203.0.113.7", 51234),
        ("[2001:db8::1]:51234", "2001:db8::1", 51234),
        ("203.0.113.7", "203.0.113.7", None),
        ("2001:db8::1", "2001:db8::1", None),
    ],
)
def test_azure_forwarded_for_gives_the_address_without_its_port(
    forwarded: str, address: str, port: int | None
) -> None:
    """Azure writes ``X-Forwarded-For: ip:port``: ``client.address`` is the ip, ``client.port`` the port."""
    import azure.functions as func

    exporter = export(AZURE_ENV)

    @traced_handler
    def main(req: object, context: object) -> object:
        return func.HttpResponse("ok")

    request = func.HttpRequest(
        method="GET",
        url="https://my-func-app.azurewebsites.net/api/orders",
        headers={"X-Forwarded-For": forwarded},
        body=b"",
    )
    main(req=request, context=AzureContext(function_name="orders"))
    attrs = only_root(exporter).attributes
    assert (attrs["client.address"], attrs.get("client.port")) == (address, port)


# -- argument shapes --------------------------------------------------------------------------


def test_a_lambda_method_called_with_keyword_event_and_context() -> None:
    """``obj.handler(event=e, context=c)``: ``self`` is not taken for the event."""
    exporter = export(LAMBDA_ENV)

    class Api:
        @traced_handler
        def handler(self, event: object, context: object) -> dict[str, int]:
            return {"statusCode": 200}

    Api().handler(event=dict(API_EVENT), context=LambdaContext())
    root = only_root(exporter)
    assert (root.name, root.attributes["faas.trigger"]) == ("GET /orders", "http")
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_an_extra_positional_argument_after_the_lambda_context() -> None:
    """``handler(event, context, extra)``: the event and context are found by the context's shape."""
    exporter = export(LAMBDA_ENV)

    @traced_handler
    def handler(event: object, context: object, extra: object = None) -> dict[str, int]:
        return {"statusCode": 200}

    handler(dict(API_EVENT), LambdaContext(), "extra")
    root = only_root(exporter)
    assert root.attributes["faas.trigger"] == "http"
    assert "faas.invocation_id" in root.attributes
    assert f"{root.trace_id:032x}" == W3C_TRACE


@pytest.fixture
def flaskapp_module() -> Iterator[types.ModuleType]:
    """A user's module named ``flaskapp`` holding a class with a traced Lambda handler method."""
    module = types.ModuleType("flaskapp")
    source = """
    from nexs_serverless import traced_handler

    class Api:
        @traced_handler
        def handler(self, event, context):
            return {"statusCode": 200}
    """
    exec(compile(textwrap.dedent(source), "flaskapp.py", "exec"), module.__dict__)
    sys.modules["flaskapp"] = module
    yield module
    del sys.modules["flaskapp"]


def test_a_user_module_named_like_a_framework_claims_nothing(flaskapp_module: types.ModuleType) -> None:
    """Off platform, ``self`` of a ``flaskapp`` class is not a Flask object: the call stays Lambda's."""
    exporter = export({})
    flaskapp_module.Api().handler(dict(API_EVENT), LambdaContext())
    root = only_root(exporter)
    assert (root.attributes["cloud.provider"], root.attributes["faas.trigger"]) == ("aws", "http")
    assert f"{root.trace_id:032x}" == W3C_TRACE


def test_a_background_function_method_is_claimed_by_its_context() -> None:
    """Off platform, ``(self, data, context)`` with Google's ``Context`` third is a Google call."""
    from google.cloud.functions.context import Context

    exporter = export({})

    class Consumer:
        @traced_handler
        def on_message(self, data: object, context: object) -> None:
            return None

    context = Context(
        eventId="123", eventType="google.pubsub.topic.publish", resource="projects/p/topics/orders"
    )
    Consumer().on_message({"data": "e30=", "attributes": {"traceparent": TRACEPARENT}}, context)
    root = only_root(exporter)
    assert (root.attributes["cloud.provider"], root.name) == ("gcp", "process orders")
    assert f"{root.trace_id:032x}" == W3C_TRACE


# -- malformed environment values -----------------------------------------------------------


@pytest.mark.parametrize(
    "environ",
    [
        {**LAMBDA_ENV, "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "²"},
        {**GCP_ENV, "FUNCTION_MEMORY_MB": "²"},
        {**AZURE_ENV, "WEBSITE_MEMORY_LIMIT_MB": "²"},
        {**AZURE_ENV, "WEBSITE_MEMORY_LIMIT_MB": "abc", "REGION_NAME": ""},
    ],
)
def test_a_memory_size_that_is_not_an_ascii_number_is_left_out(environ: dict[str, str]) -> None:
    """``"²".isdigit()`` is true but ``int("²")`` raises: no ``faas.max_memory``, the rest kept."""
    attrs = platforms.resource_attributes(config.load(environ)[0])
    assert "faas.max_memory" not in attrs
    assert "cloud.region" not in attrs or attrs["cloud.region"]
    assert attrs["cloud.provider"] in ("aws", "gcp", "azure")


def test_a_non_ascii_digit_memory_on_google_still_traces_the_call() -> None:
    """The invocation is traced (the span was lost to the ValueError before)."""
    exporter = export({**GCP_ENV, "FUNCTION_MEMORY_MB": "²"})

    @traced_handler
    def handle(request: object) -> str:
        return "ok"

    assert handle(native.flask_request(events.load("gcp-http"))) == "ok"
    assert only_root(exporter).attributes["faas.trigger"] == "http"


def test_a_lambda_context_memory_in_other_digits_is_left_out() -> None:
    """A context stand-in whose ``memory_limit_in_mb`` is ``"²"`` loses that attribute, not the trace."""
    exporter = export(LAMBDA_ENV)
    context = LambdaContext()
    context.memory_limit_in_mb = "²"  # type: ignore[assignment]

    @traced_handler
    def handler(event: object, context: object) -> dict[str, int]:
        return {"statusCode": 200}

    handler(dict(API_EVENT), context)
    assert "faas.max_memory" not in only_root(exporter).attributes


# -- what Flask answers with -------------------------------------------------------------------

FLASK_FUNCTIONS = """
import functions_framework
from nexs_serverless import traced_handler


@functions_framework.http
@traced_handler
def returns_none(request):
    return None


@functions_framework.http
@traced_handler
def returns_int(request):
    return 5


@functions_framework.http
@traced_handler
def streams(request):
    def chunks():
        yield "a"
        yield "b"

    return chunks()
"""

AIO_FUNCTIONS = """
import functions_framework.aio
from nexs_serverless import traced_handler


@functions_framework.aio.http
@traced_handler
async def returns_none(request):
    return None
"""


@pytest.fixture
def framework_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """functions-framework writes these into the environment: monkeypatch restores them."""
    for variable in ("FUNCTION_TARGET", "FUNCTION_SIGNATURE_TYPE", "FUNCTION_TRIGGER_TYPE", "FUNCTION_NAME"):
        monkeypatch.setenv(variable, "")


@pytest.mark.usefixtures("framework_env")
@pytest.mark.parametrize(
    ("target", "code", "status"),
    [("returns_none", 500, StatusCode.ERROR), ("returns_int", 500, StatusCode.ERROR), ("streams", 200, 0)],
)
def test_the_status_flask_makes_of_a_return_value_is_recorded(
    tmp_path: Path, target: str, code: int, status: int
) -> None:
    """None (or an int) is Flask's TypeError, a 500 the span said nothing of; a generator is 200."""
    import functions_framework

    path = tmp_path / "main.py"
    path.write_text(textwrap.dedent(FLASK_FUNCTIONS))
    exporter = export(GCP_ENV)
    client = functions_framework.create_app(target, str(path)).test_client()
    response = client.get("/", headers={"traceparent": TRACEPARENT})
    root = only_root(exporter)
    assert response.status_code == code
    assert root.attributes["http.response.status_code"] == code
    assert root.status_code == status


@pytest.mark.usefixtures("framework_env")
def test_an_async_function_returning_none_answered_500_is_an_error(tmp_path: Path) -> None:
    """``functions_framework.aio`` answers None with 500, as Flask does."""
    import asyncio

    import httpx
    from functions_framework.aio import create_asgi_app

    path = tmp_path / "aio_main.py"
    path.write_text(textwrap.dedent(AIO_FUNCTIONS))
    exporter = export(GCP_ENV)
    app = create_asgi_app("returns_none", str(path))

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://function") as client:
            return await client.get("/")

    response = asyncio.run(get())
    root = only_root(exporter)
    assert response.status_code == 500
    assert root.attributes["http.response.status_code"] == 500
    assert root.status_code == StatusCode.ERROR


def test_a_fastapi_route_returning_none_off_functions_framework_is_not_an_error() -> None:
    """On Cloud Run without functions-framework (no FUNCTION_TARGET), FastAPI answers None with 200."""
    exporter = export({"K_SERVICE": "api"})

    @traced_handler
    async def route(request: object) -> None:
        return None

    import asyncio

    asyncio.run(route(starlette_request({})))
    root = only_root(exporter)
    assert root.attributes["cloud.platform"] == "gcp_cloud_run"
    assert root.status_code == StatusCode.UNSET
    assert "http.response.status_code" not in root.attributes
