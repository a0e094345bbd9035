"""Stand-ins for the ``context`` objects that Lambda and Azure Functions pass to a handler."""

from __future__ import annotations

import math
import sys
import time
import uuid

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ["AzureContext", "LambdaContext"]


class LambdaContext:
    """The attributes and method of `awslambdaric`'s context, with a deadline you choose.

    Args:
        function_name: ``context.function_name``.
        timeout_ms: the invocation's timeout; the deadline is now plus this.
        memory_limit_in_mb: ``context.memory_limit_in_mb``.
        region: region used in the ARN.
        account_id: account used in the ARN.
        aws_request_id: request id (default: a fresh UUID).
        function_version: ``context.function_version``.
        clock: a ``time.monotonic``-like function (tests pass a fake clock).
        client_context: ``context.client_context`` of a direct ``Invoke``: a
            dict such as ``{"custom": {...}, "env": {...}}`` becomes an object
            with those attributes, as the runtime builds it.
        tenant_id: ``context.tenant_id`` (tenant-isolated functions).
    """

    def __init__(
        self,
        *,
        function_name: str = "test-function",
        timeout_ms: int = 3000,
        memory_limit_in_mb: int = 128,
        region: str = "us-east-1",
        account_id: str = "123456789012",
        aws_request_id: str | None = None,
        function_version: str = "$LATEST",
        clock: Callable[[], float] = time.monotonic,
        client_context: Mapping[str, object] | None = None,
        tenant_id: str | None = None,
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/28/[$LATEST]0123456789abcdef0123456789abcdef"
        self.identity = None
        self.client_context = _ClientContext(client_context) if client_context is not None else None
        self.tenant_id = tenant_id
        self._clock = clock
        self._deadline_ms = self._now_ms() + timeout_ms

    def _now_ms(self) -> int:
        # Whole milliseconds, as the runtime counts them; the 1e-6 keeps a fake clock's 0.9 s at 900 ms
        # (0.9 * 1000 is 900.0000000000001, but 4.35 * 1000 is 4349.999999999999).
        return math.floor(self._clock() * 1000.0 + 1e-6)

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the deadline (never negative), in whole milliseconds as the runtime's."""
        return max(0, self._deadline_ms - self._now_ms())

    def log(self, message: str) -> None:
        """Write `message` to stdout, as ``context.log`` does outside Lambda's log sink."""
        sys.stdout.write(str(message))

    def __repr__(self) -> str:
        return (
            f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r}, "
            f"memory_limit_in_mb={self.memory_limit_in_mb}, "
            f"remaining_ms={self.get_remaining_time_in_millis()})"
        )


class _ClientContext:
    """``context.client_context``: the ``custom``, ``env`` and ``client`` sections of the invoke."""

    def __init__(self, values: Mapping[str, object]) -> None:
        self.custom = values.get("custom")
        self.env = values.get("env")
        self.client = values.get("client")


class _TraceContext:
    """``context.trace_context`` of an Azure invocation: the host's W3C trace context."""

    def __init__(self, trace_parent: str, trace_state: str, attributes: dict[str, str]) -> None:
        self.trace_parent = trace_parent
        self.trace_state = trace_state
        self.attributes = attributes


class AzureContext:
    """The attributes of ``azure.functions.Context`` that a handler and the tracer read.

    Args:
        function_name: ``context.function_name``.
        invocation_id: ``context.invocation_id`` (default: a fresh UUID).
        trace_parent: the W3C ``traceparent`` the host passes in ``context.trace_context``
            ('' when the host did not start a trace).
        trace_state: the W3C ``tracestate``.
        function_directory: ``context.function_directory``.
    """

    def __init__(
        self,
        *,
        function_name: str = "test-function",
        invocation_id: str | None = None,
        trace_parent: str = "",
        trace_state: str = "",
        function_directory: str = "/home/site/wwwroot/test-function",
    ) -> None:
        self.function_name = function_name
        self.invocation_id = invocation_id or str(uuid.uuid4())
        self.function_directory = function_directory
        self.trace_context = _TraceContext(trace_parent, trace_state, {})
        self.retry_context = None
        self.thread_local_storage = None
