"""``PutTraceSegments`` through boto3: X-Ray's API, for processes with no daemon nearby.

The client is built once (boto3 is imported then, not before) and reused by
warm invocations. Retries are switched off in botocore (the resilience layer
decides whether to retry, within the flush budget), and each call's read
timeout is set from the time left in the flush through botocore's
per-request ``read_timeout`` (a ``before-call`` event handler), so the call
cannot hold the invocation past its budget by more than the connect timeout.
A batch over `MAX_DOCUMENTS_PER_CALL` takes several calls that share one
deadline, counted from the first call (building the client, once per
process, is not part of it): each call's read timeout is the time left. A
call that fails after earlier ones got through names the spans still to send
(`errors.send_parts`): X-Ray keeps one document per id, so the harm of sending
the delivered ones again is in the counters (counted twice, or counted lost).
"""

from __future__ import annotations

import time

from .base import outcome
from .errors import ErrorClass, ExportError, classify, classify_status, send_parts

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..typing import ReadableSpan

__all__ = ["MAX_DOCUMENTS_PER_CALL", "PutTraceSegmentsClient", "classify_boto_error"]

# The X-Ray daemon sends at most 50 documents per call; we do the same.
MAX_DOCUMENTS_PER_CALL = 50
_AUTH_CODES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "MissingAuthenticationTokenException",
        "SignatureDoesNotMatch",
    }
)
_THROTTLE_CODES = frozenset({"ThrottledException", "ThrottlingException", "TooManyRequestsException"})


class PutTraceSegmentsClient:
    """Uploads segment documents with ``PutTraceSegments``.

    Args:
        region: the AWS region (None: boto3's own resolution).
        endpoint_url: another endpoint (a local emulator, a VPC endpoint).
        connect_timeout_s: the most a connection attempt may take.
        client: a ready boto3 X-Ray client (tests, custom sessions).
    """

    def __init__(
        self,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        connect_timeout_s: float = 1.0,
        client: object | None = None,
    ) -> None:
        self.region = region
        self.endpoint_url = endpoint_url
        self.connect_timeout_s = connect_timeout_s
        self._client = client
        self._read_timeout_s = 1.0
        if client is not None:
            self._hook(client)

    def client(self) -> object:
        """The boto3 X-Ray client, built on first use."""
        client = self._client
        if client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=self.connect_timeout_s,
                read_timeout=max(self.connect_timeout_s, 1.0),
                retries={"total_max_attempts": 1},
                tcp_keepalive=True,
            )
            client = boto3.session.Session().client(
                "xray", region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
            self._hook(client)
            self._client = client
        return client

    def _hook(self, client: object) -> None:
        def set_read_timeout(context: dict[str, object], **_: object) -> None:
            context["read_timeout"] = self._read_timeout_s

        client.meta.events.register("before-call.xray.PutTraceSegments", set_read_timeout)  # type: ignore[attr-defined]

    def send(self, spans: Sequence[ReadableSpan], documents: Sequence[str], timeout_s: float) -> int:
        """Upload `documents` (JSON strings, one per span of `spans`); returns how many X-Ray rejected.

        Raises:
            ExportError: classified (see `classify_boto_error`); BAD_REQUEST when
                X-Ray rejected every document. When a call fails after earlier
                ones got through, its `undelivered` names the spans of that call
                and the later ones (`errors.send_parts`), so that a retry does not
                upload the delivered documents again, nor counts them as lost.
        """
        if timeout_s <= 0:
            raise ExportError(ErrorClass.TIMEOUT, "no time left in the flush budget")
        try:
            client = self.client()  # built once (`prepare` builds it during init): not the calls' budget
        except Exception as exc:
            raise classify_boto_error(exc) from exc
        deadline = time.monotonic() + timeout_s
        if len(documents) <= MAX_DOCUMENTS_PER_CALL:
            rejected = self._put(client, documents, deadline)
        else:
            parts = [
                (
                    spans[start : start + MAX_DOCUMENTS_PER_CALL],
                    documents[start : start + MAX_DOCUMENTS_PER_CALL],
                )
                for start in range(0, len(documents), MAX_DOCUMENTS_PER_CALL)
            ]
            rejected, _ = outcome(send_parts(parts, lambda _, chunk: self._put(client, chunk, deadline)))
        if documents and rejected == len(documents):
            raise ExportError(ErrorClass.BAD_REQUEST, f"X-Ray rejected all {rejected} segment documents")
        return rejected

    def _put(self, client: object, documents: Sequence[str], deadline: float) -> int:
        """One ``PutTraceSegments`` call with the time left until `deadline`; how many X-Ray rejected."""
        left_s = deadline - time.monotonic()
        if left_s <= 0:  # the calls before this one used the budget up
            raise ExportError(ErrorClass.TIMEOUT, "the flush budget ran out between calls")
        self._read_timeout_s = left_s
        try:
            response = client.put_trace_segments(TraceSegmentDocuments=list(documents))  # type: ignore[attr-defined]
        except Exception as exc:
            raise classify_boto_error(exc) from exc
        return len(response.get("UnprocessedTraceSegments") or ())

    def close(self) -> None:
        """Close the client's connections."""
        client, self._client = self._client, None
        close = getattr(client, "close", None)
        if close is not None:
            close()


def classify_boto_error(exc: BaseException) -> ExportError:
    """An `ExportError` for an exception raised by a botocore call."""
    from botocore import exceptions as boto

    if isinstance(exc, boto.ClientError):
        response: dict[str, dict[str, object]] = exc.response
        code = str(response.get("Error", {}).get("Code", ""))
        meta = response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        headers = meta.get("HTTPHeaders")
        retry_after = _retry_after(headers.get("retry-after") if isinstance(headers, dict) else None)
        status_int = status if isinstance(status, int) else None
        if code in _AUTH_CODES:
            error_class = ErrorClass.AUTH
        elif code in _THROTTLE_CODES:
            error_class = ErrorClass.THROTTLED
        elif status_int is not None:
            error_class = classify_status(status_int)
        else:
            error_class = ErrorClass.UNKNOWN
        return ExportError(error_class, f"{code}: {exc}", retry_after_s=retry_after, status=status_int)
    if isinstance(exc, (boto.NoCredentialsError, boto.PartialCredentialsError)):
        return ExportError(ErrorClass.AUTH, repr(exc))
    if isinstance(exc, (boto.ConnectTimeoutError, boto.ReadTimeoutError)):
        return ExportError(ErrorClass.TIMEOUT, repr(exc))
    if isinstance(exc, (boto.EndpointConnectionError, boto.ConnectionClosedError, boto.HTTPClientError)):
        return ExportError(ErrorClass.NETWORK, repr(exc))
    if isinstance(exc, (boto.ParamValidationError, boto.NoRegionError)):
        return ExportError(ErrorClass.BAD_REQUEST, repr(exc))
    return classify(exc)


def _retry_after(value: object) -> float | None:
    try:
        return max(0.0, float(str(value))) if value is not None else None
    except ValueError:
        return None
