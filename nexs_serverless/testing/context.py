"""`LambdaContext`: a stand-in for the object the Lambda runtime passes as ``context``."""

from __future__ import annotations

import time
import uuid

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["LambdaContext"]


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
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.memory_limit_in_mb = str(memory_limit_in_mb)
        self.aws_request_id = aws_request_id or str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{account_id}:function:{function_name}"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "2026/11/28/[$LATEST]0123456789abcdef0123456789abcdef"
        self.identity = None
        self.client_context = None
        self._clock = clock
        self._deadline = clock() + timeout_ms / 1000.0

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds until the deadline (never negative)."""
        return max(0, int((self._deadline - self._clock()) * 1000))
