"""HTTP errors a web framework answers for the handler (Flask's `abort`): the response's status."""

from __future__ import annotations

import pytest

from nexs_serverless import StatusCode, traced_handler
from nexs_serverless.exporters import InMemoryExporter
from nexs_serverless.testing import LambdaContext, events, native, reset

GCP_ENV = {"K_SERVICE": "orders-fn", "FUNCTION_TARGET": "handle", "GOOGLE_CLOUD_PROJECT": "p"}


@pytest.mark.parametrize(("code", "status"), [(404, StatusCode.UNSET), (503, StatusCode.ERROR)])
def test_an_abort_is_the_status_the_client_got(code: int, status: int) -> None:
    """``abort(404)`` on Cloud Run functions: status code 404 and no ERROR (a client error on a
    server span); ``abort(503)``: 503 and ERROR. Before, both were ERROR without a status code."""
    from flask import abort
    from werkzeug.exceptions import HTTPException

    exporter = InMemoryExporter()
    reset(exporters=[exporter], environ=GCP_ENV)

    @traced_handler
    def handle(request: object) -> str:
        abort(code)

    with pytest.raises(HTTPException) as raised:
        handle(native.flask_request(events.load("gcp-http")))
    assert raised.value.code == code  # the handler's exception passes through unchanged
    (root,) = exporter.get_finished_spans()
    assert root.attributes["http.response.status_code"] == code
    assert root.status_code == status
    assert [event.name for event in root.events] == ["exception"]


def test_on_lambda_an_exceptions_code_says_nothing_about_the_response() -> None:
    """An exception with a ``code`` raised from a Lambda HTTP handler is an error (API Gateway
    answers 502), and its code is not taken for the response's status."""

    class NotFoundError(Exception):
        code = 404

    exporter = InMemoryExporter()
    reset(exporters=[exporter])

    @traced_handler
    def handler(event: object, context: object) -> str:
        raise NotFoundError("no such order")

    with pytest.raises(NotFoundError):
        handler(events.api_gateway_v1(), LambdaContext())
    (root,) = exporter.get_finished_spans()
    assert root.status_code == StatusCode.ERROR
    assert "http.response.status_code" not in root.attributes
