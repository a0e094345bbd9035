"""Run the hello handler locally on a sample API Gateway event; the trace prints on stdout."""

from __future__ import annotations

import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))

from handler import handler

from nexs_serverless.testing import LambdaContext

EVENT = json.loads((pathlib.Path(__file__).parent / "event.json").read_text())

if __name__ == "__main__":
    result = handler(EVENT, LambdaContext(function_name="hello"))
    print("handler returned:", json.dumps(result))
