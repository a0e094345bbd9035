"""Handlers for the runtime tests, each doing one thing the runtime must see unchanged.

They are plain functions, as a zero-code user writes them (the exec wrapper
traces them). With ``FIXTURE_DECORATE=1`` they are decorated with
`@traced_handler` at import, as a user of the decorator would; without it the
module never imports nexs_serverless, so it also runs without the layer.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any


def ok(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Echo the event and the request id."""
    return {"echo": event, "request_id": context.aws_request_id}


def raises(event: dict[str, Any], context: Any) -> None:
    """Fail the way user code fails."""
    order = event.get("order")
    raise ValueError(f"order {order} is not valid")


def hangs(event: dict[str, Any], context: Any) -> None:
    """Never return: Lambda (the test) ends the process after the deadline."""
    threading.Event().wait()


def unserialisable(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Return something the runtime cannot encode as JSON."""
    return {"items": {1, 2, 3}}


def leaves_work(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Leave a thread whose span ends after the invocation's flush, when the test says so."""
    from nexs_serverless import tracer

    release, done = Path(event["release"]), Path(event["done"])

    def work() -> None:
        with tracer.span("late-work"):
            while not release.exists():
                time.sleep(0.01)
        done.write_text("ended")

    threading.Thread(target=work, daemon=True).start()
    return {"left": "work"}


if os.environ.get("FIXTURE_DECORATE") == "1":
    from nexs_serverless import traced_handler

    ok = traced_handler(ok)
    raises = traced_handler(raises)
    hangs = traced_handler(hangs)
    unserialisable = traced_handler(unserialisable)
    leaves_work = traced_handler(leaves_work)
