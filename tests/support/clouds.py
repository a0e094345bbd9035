"""Real local stand-ins for the propagation tests: moto in server mode, an echo HTTP server, hosts.

Everything binds 127.0.0.1 on a free port and runs in daemon threads; each
helper is a context manager that stops its server on exit.
"""

from __future__ import annotations

import contextlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@contextlib.contextmanager
def moto_server() -> Iterator[str]:
    """moto's server on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client(service: str, endpoint: str) -> Any:
    """A boto3 client for `service` talking to the local moto server."""
    import boto3

    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, **CREDENTIALS)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Messages from ``ReceiveMessage`` as the Lambda SQS event source mapping delivers them."""
    records = []
    for message in messages:
        attributes = {
            name: {
                "stringValue": value.get("StringValue"),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": value.get("DataType", "String"),
            }
            for name, value in message.get("MessageAttributes", {}).items()
        }
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes", {})),
                "messageAttributes": attributes,
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
        )
    return {"Records": records}


def receive_all(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message waiting in the queue, with all attributes."""
    response = sqs.receive_message(
        QueueUrl=queue_url,
        MaxNumberOfMessages=10,
        MessageAttributeNames=["All"],
        MessageSystemAttributeNames=["All"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


class _Handler(BaseHTTPRequestHandler):
    """Calls the server's `respond(method, path, headers, body)` and writes its (status, body)."""

    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        status, payload, extra = self.server.respond(
            self.command, self.path, dict(self.headers.items()), body
        )
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = _serve  # noqa: N815 - http.server's naming

    def log_message(self, format: str, *args: object) -> None:
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, respond: Callable[[str, str, dict[str, str], bytes], tuple[int, Any, dict[str, str]]]
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.respond = respond


@contextlib.contextmanager
def http_server(
    respond: Callable[[str, str, dict[str, str], bytes], tuple[int, Any, dict[str, str]]],
) -> Iterator[str]:
    """A threaded HTTP server on 127.0.0.1 answering with `respond`; yields its base URL."""
    server = _Server(respond)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def echo(method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, dict[str, str]]:
    """Answer with the request's headers as JSON; ``/status/<code>`` answers that code, ``/redirect`` 302s."""
    if path.startswith("/status/"):
        return int(path.rsplit("/", 1)[1]), {"headers": headers}, {}
    if path == "/redirect":
        return 302, {}, {"Location": "/final"}
    return 200, {"headers": headers, "path": path}, {}


@contextlib.contextmanager
def wsgi_server(app: Any) -> Iterator[str]:
    """Serve a WSGI app (a functions-framework Flask app) on 127.0.0.1 in a thread; yields its URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


class AzureHostContext:
    """What the Functions host hands the worker: invocation id, function name, W3C trace context."""

    def __init__(self, function_name: str, trace_parent: str, trace_state: str = "") -> None:
        import uuid

        self.invocation_id = str(uuid.uuid4())
        self.function_name = function_name
        self.function_directory = f"/home/site/wwwroot/{function_name}"
        self.trace_context = type(
            "TraceContext", (), {"trace_parent": trace_parent, "trace_state": trace_state, "attributes": {}}
        )()
        self.retry_context = None
        self.thread_local_storage = None


@contextlib.contextmanager
def azure_functions_host(function: Callable[..., Any], function_name: str) -> Iterator[str]:
    """A minimal Azure Functions host: HTTP in, ``func.HttpRequest`` + context to `function`, response out.

    Like the real host, it reads the caller's ``traceparent`` and passes it to
    the worker in ``context.trace_context`` (here without a span of its own).
    """
    import azure.functions as func

    def respond(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        request = func.HttpRequest(method=method, url=f"http://127.0.0.1{path}", headers=headers, body=body)
        traceparent = next((v for k, v in headers.items() if k.lower() == "traceparent"), "")
        context = AzureHostContext(function_name, traceparent)
        response = function(req=request, context=context)
        return response.status_code, response.get_body(), {}

    with http_server(respond) as url:
        yield url
