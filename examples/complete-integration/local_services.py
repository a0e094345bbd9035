"""Stand-ins for the cloud, on 127.0.0.1 only: SQS (moto in server mode) and an inventory service.

Kept apart from ``handlers.py`` so the handlers stay exactly what would be
deployed; ``run.py`` starts these, then points the handlers at them through
the same environment variables Lambda would set.
"""

from __future__ import annotations

import http.server
import json
import logging
import threading
from typing import Any

from moto.server import ThreadedMotoServer


def start_moto() -> tuple[ThreadedMotoServer, str]:
    """moto's server on a free port; returns it and its URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log lines in the output
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


class InventoryService:
    """A tiny HTTP service: ``POST /reserve`` answers 200 and remembers the trace header it got."""

    def __init__(self) -> None:
        self.traceparents: list[str] = []
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                line = json.loads(self.rfile.read(length) or b"{}")
                service.traceparents.append(self.headers.get("traceparent", ""))
                body = json.dumps({"reserved": line.get("quantity", 0)}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: run.py prints what matters."""

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def lambda_sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping builds from received messages."""
    records = []
    for message in messages:
        attributes = {
            name: {"stringValue": value["StringValue"], "dataType": value["DataType"]}
            for name, value in message.get("MessageAttributes", {}).items()
            if "StringValue" in value
        }
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": attributes,
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": queue_arn.split(":")[3],
            }
        )
    return {"Records": records}
