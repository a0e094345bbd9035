"""What moto stored through ``PutTraceSegments``, read back with ``BatchGetTraces``."""

from __future__ import annotations

import json
from typing import Any

from nexs_serverless.exporters.xray_segments import xray_trace_id

__all__ = ["stored_traces"]


def stored_traces(moto_url: str, trace_id: int) -> list[list[dict[str, Any]]]:
    """The documents moto keeps for `trace_id`, one list per trace it returns.

    The client is us-east-1's, with whatever credentials the test set (the
    `aws_test_credentials` fixture).
    """
    import boto3

    xray = boto3.client("xray", region_name="us-east-1", endpoint_url=moto_url)
    try:
        response = xray.batch_get_traces(TraceIds=[xray_trace_id(trace_id)])
    finally:
        xray.close()
    return [
        [json.loads(segment["Document"]) for segment in trace["Segments"]] for trace in response["Traces"]
    ]
