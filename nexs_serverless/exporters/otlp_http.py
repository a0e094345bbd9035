"""`OTLPHttpExporter`: OTLP/HTTP with protobuf bodies, over one kept-alive connection.

Jaeger, Tempo, Honeycomb, the OpenTelemetry Collector and AWS X-Ray's OTLP
endpoint all accept ``POST /v1/traces`` with an ``ExportTraceServiceRequest``
(OTLP specification, "OTLP/HTTP"). The request is encoded by `otlp_encode`,
optionally gzipped, sent by the small client in `_http`, and the response's
``partial_success`` is read so that spans the back end rejected are counted.

The exporter's seam is `send(spans, timeout_s)`: it either returns how many
spans the back end rejected or raises an `ExportError` with the failure's
class. Retries, the circuit breaker and the carry-over buffer belong to
`resilient.ResilientExporter`, which `adapt` puts around every exporter.
`errors` is imported only on a failure (cold start: a successful export
does not load it).

For X-Ray's endpoint (``https://xray.<region>.amazonaws.com/v1/traces``)
requests are signed with SigV4 by botocore's signer (the Lambda runtime
ships botocore); botocore is imported only then.

Environment (``TRACES_`` variants win over the general ones; OpenTelemetry's
names and defaults): ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``
(``http://localhost:4318``; the general one gets ``/v1/traces`` appended),
``..._HEADERS`` (``k=v,k2=v2``), ``..._TIMEOUT`` (10000 ms),
``..._COMPRESSION`` (``none`` or ``gzip``), ``..._CERTIFICATE`` (CA bundle),
``..._CLIENT_CERTIFICATE`` and ``..._CLIENT_KEY`` (mutual TLS),
``NEXS_OTLP_MAX_REQUEST_BYTES`` (no limit).

Failures follow the OTLP specification ("OTLP/HTTP Response", "Failures"):
429, 502, 503 and 504 are retried (honouring ``Retry-After``), every other
4xx and 5xx is not (`errors.classify_otlp_status`). A batch the collector
refuses as too large (413) is sent again in halves, within the same budget;
a span too large on its own is dropped (``spans_dropped_oversize``) and
reported as dropped (`base.Sent`), not sent.
"""

from __future__ import annotations

import threading
import time

from .. import _guard as guard
from .. import _stats as stats
from ._http import Connection, split_url
from .base import ExportResult, Sent, send_once
from .otlp_encode import decode_partial_success, encode_spans, iter_fields

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..config import Settings
    from ..typing import ReadableSpan

__all__ = ["OTLPHttpExporter", "from_settings", "parse_retry_after"]

DEFAULT_ENDPOINT = "http://localhost:4318/v1/traces"
_USER_AGENT = "nexs-serverless/0.1.0"
_XRAY_HOST_SUFFIX = ".amazonaws.com"


class OTLPHttpExporter:
    """Sends spans to an OTLP/HTTP endpoint as protobuf.

    Args:
        endpoint: the full URL spans are posted to (``.../v1/traces``).
        headers: extra request headers (API keys, tenant ids).
        timeout_s: the most one request may take; always capped by the flush
            deadline (`nexs_serverless.context.remaining_export_s`).
        compression: ``"gzip"`` or ``"none"``.
        certificate: CA bundle (PEM) that verifies an ``https`` endpoint.
        client_certificate: PEM client certificate, for mutual TLS.
        client_key: the client certificate's key, when in another file.
        sigv4_region: sign requests with AWS SigV4 for this region (default:
            the region of an ``xray.<region>.amazonaws.com`` endpoint, else off).
        sigv4_service: the SigV4 service name (``xray``).
        max_request_bytes: split batches whose encoded request (before gzip) is
            larger (default: no limit until the collector answers 413).

    Raises:
        ValueError: for an endpoint that is not an http(s) URL, another
            compression, or a limit that is not a positive int.
    """

    def __init__(
        self,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        compression: str = "none",
        certificate: str | None = None,
        client_certificate: str | None = None,
        client_key: str | None = None,
        sigv4_region: str | None = None,
        sigv4_service: str = "xray",
        max_request_bytes: int | None = None,
    ) -> None:
        scheme, host, port, path = split_url(endpoint)
        if max_request_bytes is not None and (type(max_request_bytes) is not int or max_request_bytes < 1):
            raise ValueError(f"max_request_bytes must be an int >= 1 or None, got {max_request_bytes!r}")
        if compression not in ("none", "gzip"):
            raise ValueError(f"compression must be 'none' or 'gzip', got {compression!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        self.endpoint = endpoint
        self.timeout_s = float(timeout_s)
        self.compression = compression
        self.path = path
        self.sigv4_region = sigv4_region or _xray_region(host)
        self.sigv4_service = sigv4_service
        self.max_request_bytes = max_request_bytes
        # The configured limit, lowered by each 413 (see `_send_request`).
        self._max_bytes = max_request_bytes
        self._headers: dict[str, str] = {
            "Content-Type": "application/x-protobuf",
            "User-Agent": _USER_AGENT,
        }
        if compression == "gzip":
            self._headers["Content-Encoding"] = "gzip"
        for name, value in (headers or {}).items():
            self._headers[str(name)] = str(value)
        self._connection = Connection(
            scheme, host, port, ca_file=certificate, client_cert=client_certificate, client_key=client_key
        )
        self._lock = threading.Lock()
        self._signer: _SigV4 | None = None

    # -- the resilience seam --------------------------------------------------------

    def send(self, spans: Sequence[ReadableSpan], timeout_s: float) -> int | Sent:
        """Post `spans` (in several requests when too big for the collector); return how many it rejected.

        Returns:
            The spans the collector rejected; a `Sent` when spans too big for any
            request were also dropped here (counted ``spans_dropped_oversize``).

        Raises:
            ExportError: classified failure (network, timeout, HTTP status, ...); after
                earlier requests of the batch got through, its `undelivered` names the
                spans still to send (`errors.send_parts`).
        """
        # The flush's budget, never more than this exporter's own timeout (OTEL_EXPORTER_OTLP_TIMEOUT),
        # for every request of the batch; waiting for the connection (another send, the background
        # `prepare`) comes out of it.
        return self._send_within(spans, time.monotonic() + min(timeout_s, self.timeout_s))

    def _send_within(self, spans: Sequence[ReadableSpan], deadline: float) -> int | Sent:
        try:
            body = encode_spans(spans)
        except Exception as exc:
            from .errors import ErrorClass, ExportError

            raise ExportError(ErrorClass.SERIALIZATION, f"could not encode spans: {exc!r}") from exc
        limit = self._max_bytes
        if limit is None or len(body) <= limit:
            return self._send_request(spans, body, deadline)
        from .errors import send_parts
        from .otlp_encode import split_spans

        parts, too_big = split_spans(spans, limit)
        if too_big:
            self._drop_oversize(too_big, f"over the {limit}-byte request limit")
        return send_parts(
            parts, lambda part, part_body: self._send_request(part, part_body, deadline), dropped=too_big
        )

    def _send_request(self, spans: Sequence[ReadableSpan], body: bytes, deadline: float) -> int | Sent:
        """Post one request; on a 413, send its spans again as two halves (OTLP/HTTP names no limit).

        Later batches are split up front (`split_spans`) into requests of at most
        half the refused size, about what the halves that got through weighed: a
        warm function pays for a 413 only when the collector's limit is lower still.
        """
        try:
            return self._post(body, deadline)
        except Exception as exc:
            if getattr(exc, "status", None) != 413:
                raise
        if len(spans) == 1:
            self._drop_oversize(1, f"refused with HTTP 413 ({len(body)} bytes)")
            return Sent(0, 1)
        limit = self._max_bytes
        if limit is None or len(body) // 2 < limit:
            self._max_bytes = len(body) // 2
        from .errors import send_parts

        middle = len(spans) // 2
        halves = [(half, encode_spans(half)) for half in (spans[:middle], spans[middle:])]
        return send_parts(halves, lambda half, half_body: self._send_request(half, half_body, deadline))

    def _post(self, body: bytes, deadline: float) -> int:
        """One request and its answer: the spans rejected, or a classified `ExportError`."""
        if self.compression == "gzip":
            body = _gzip(body)
        headers = self._headers
        if self.sigv4_region:
            headers = {**headers, **self._sign(body)}
        if not self._lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            from .errors import ErrorClass, ExportError

            raise ExportError(ErrorClass.TIMEOUT, "connection busy past the timeout")
        try:
            left_s = deadline - time.monotonic()
            if left_s <= 0:
                from .errors import ErrorClass, ExportError

                raise ExportError(ErrorClass.TIMEOUT, "connection busy past the timeout")
            response = self._connection.request("POST", self.path, headers, body, left_s)
        except Exception as exc:
            from .errors import ExportError, classify

            if isinstance(exc, ExportError):
                raise
            raise classify(exc) from exc
        finally:
            self._lock.release()
        if 200 <= response.status < 300:
            return self._rejected(response.body)
        from .errors import ExportError, classify_otlp_status

        retry_after = parse_retry_after(response.headers.get("retry-after"))
        raise ExportError(
            classify_otlp_status(response.status),
            f"HTTP {response.status} from {self.endpoint}: {_status_message(response.body)}",
            retry_after_s=retry_after,
            status=response.status,
        )

    def _drop_oversize(self, count: int, why: str) -> None:
        stats.incr("spans_dropped_oversize", count)
        guard.warn_once(
            "otlp_oversize:" + self.endpoint,
            "nexs_serverless: %d span(s) too big for %s on their own, dropped: %s",
            count,
            self.endpoint,
            why,
        )

    def prepare(self) -> None:
        """Open the connection (and load the signer) ahead of the first flush."""
        if self.sigv4_region:
            self._signer_instance()
        with self._lock:
            self._connection.connect(self.timeout_s)

    # -- the exporter contract (when used without the resilience wrapper) -------------

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult:
        """Send once within the flush deadline; failures are counted, never raised."""
        return send_once("OTLP/HTTP", self.send, spans, self.timeout_s)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is held here (carry-over lives in the wrapper)."""
        return True

    def shutdown(self) -> None:
        """Close the connection."""
        with self._lock:
            self._connection.close()

    # -- internals ------------------------------------------------------------------

    def _rejected(self, body: bytes) -> int:
        if not body:
            return 0
        try:
            rejected, message = decode_partial_success(body)
        except ValueError:
            stats.incr("export_response_undecodable")  # delivered; the reply is unreadable
            return 0
        if rejected or message:
            guard.warn_once(
                "otlp_partial_success:" + message[:80],
                "nexs_serverless: %s rejected %d span(s): %s",
                self.endpoint,
                rejected,
                message,
            )
        return max(0, rejected)

    def _sign(self, body: bytes) -> dict[str, str]:
        try:
            return self._signer_instance().headers(self.endpoint, self._headers, body)
        except Exception as exc:
            from .errors import ErrorClass, ExportError

            raise ExportError(ErrorClass.AUTH, f"SigV4 signing failed: {exc!r}") from exc

    def _signer_instance(self) -> _SigV4:
        signer = self._signer
        if signer is None:
            assert self.sigv4_region
            signer = self._signer = _SigV4(self.sigv4_region, self.sigv4_service)
        return signer


class _SigV4:
    """botocore's SigV4 signer, loaded once, with refreshable credentials."""

    def __init__(self, region: str, service: str) -> None:
        import botocore.session

        self.region = region
        self.service = service
        self._credentials = botocore.session.get_session().get_credentials()

    def headers(self, url: str, headers: Mapping[str, str], body: bytes) -> dict[str, str]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        if self._credentials is None:
            from .errors import ErrorClass, ExportError

            raise ExportError(ErrorClass.AUTH, "no AWS credentials found for SigV4 signing")
        credentials = self._credentials.get_frozen_credentials()
        request = AWSRequest(method="POST", url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials, self.service, self.region).add_auth(request)
        names = ("Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Content-SHA256")
        return {name: str(request.headers[name]) for name in names if name in request.headers}


def _xray_region(host: str) -> str | None:
    """``us-west-2`` for ``xray.us-west-2.amazonaws.com``; None for any other host."""
    if not host.startswith("xray.") or not host.endswith(_XRAY_HOST_SUFFIX):
        return None
    region = host[len("xray.") : -len(_XRAY_HOST_SUFFIX)]
    return region if region and "." not in region else None


def _gzip(body: bytes) -> bytes:
    import zlib

    compressor = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: gzip header and trailer
    return compressor.compress(body) + compressor.flush()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        import time
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, when - time.time())


def _status_message(body: bytes) -> str:
    """The ``message`` of a ``google.rpc.Status`` body (OTLP's error reply), else a prefix."""
    try:
        for field, wire, value in iter_fields(body):
            if field == 2 and wire == 2 and isinstance(value, bytes):
                return value.decode("utf-8", "replace")[:200]
    except ValueError:
        pass
    return body[:200].decode("utf-8", "replace")


def from_settings(settings: Settings) -> object:
    """The exporter ``OTEL_TRACES_EXPORTER=otlp`` stands for (gRPC when the protocol says so)."""
    from .otlp_settings import read

    options = read(settings, grpc=False)
    if options.protocol == "grpc":
        from .otlp_grpc import from_settings as grpc_from_settings

        return grpc_from_settings(settings)
    return http_from_options(options)


def http_from_settings(settings: Settings) -> OTLPHttpExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=otlp_proto_http`` stands for."""
    from .otlp_settings import read

    return http_from_options(read(settings, grpc=False))


def http_from_options(options: object) -> OTLPHttpExporter:
    """Build from parsed `otlp_settings.Options`."""
    from .otlp_settings import Options

    assert isinstance(options, Options)
    return OTLPHttpExporter(
        endpoint=options.endpoint,
        headers=options.headers,
        timeout_s=options.timeout_s,
        compression=options.compression,
        certificate=options.certificate,
        client_certificate=options.client_certificate,
        client_key=options.client_key,
        max_request_bytes=options.max_request_bytes,
    )
