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
Cold start: what a successful export never runs is in modules imported
only when needed: `errors` and `_otlp_response` (a failure, or a reply with a
body), `_otlp_split` (a batch too big for one request), `_sigv4` (signing).

For X-Ray's endpoint (``https://xray.<region>.amazonaws.com/v1/traces``)
requests are signed with SigV4 by botocore's signer (`_sigv4`; the Lambda
runtime ships botocore); botocore is imported only then.

Environment (``TRACES_`` variants win over the general ones; OpenTelemetry's
names and defaults): ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``
(``http://localhost:4318``; the general one gets ``/v1/traces`` appended),
``..._HEADERS`` (``k=v,k2=v2``), ``..._TIMEOUT`` (10000 ms),
``..._COMPRESSION`` (``none`` or ``gzip``), ``..._CERTIFICATE`` (CA bundle),
``..._CLIENT_CERTIFICATE`` and ``..._CLIENT_KEY`` (mutual TLS),
``NEXS_OTLP_MAX_REQUEST_BYTES`` (no limit).

Failures follow the OTLP specification ("OTLP/HTTP Response", "Failures"):
429, 502, 503 and 504 are retried (honouring ``Retry-After``), every other
4xx and 5xx is not (`errors.classify_otlp_status`). A collector answers
after taking the request: a 2xx whose body is cut short (reset, close) is
a delivery (``export_response_truncated``), not a failure to retry, which
would send the spans twice; a connection lost before a complete status line
is a NETWORK failure (retried). A TLS file that cannot be used is AUTH, as
over gRPC: a setting to fix. A batch the collector refuses as too large
(413) is sent again in halves, within the same budget, and later big batches
are split under what got through for a while (`_otlp_split`); a span too
large on its own (refused alone, or over ``max_request_bytes``) is dropped
(``spans_dropped_oversize``) and reported as dropped (`base.Sent`), not sent.
"""

from __future__ import annotations

import threading
import time

from ._http import Connection, split_url
from .base import ExportResult, send_once
from .otlp_encode import encode_spans

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..config import Settings
    from ..typing import ReadableSpan
    from ._sigv4 import SigV4Signer
    from .base import Sent

__all__ = ["OTLPHttpExporter", "from_settings"]

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
        # The configured limit, lowered by a 413 for a while (`_otlp_split.send_halves`).
        self._max_bytes = max_request_bytes
        self._learned_batches_left = 0
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
        self._signer: SigV4Signer | None = None

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
        from ._otlp_split import send_split

        return send_split(self, spans, body, deadline)

    def _send_request(self, spans: Sequence[ReadableSpan], body: bytes, deadline: float) -> int | Sent:
        """Post one request; on a 413, send its spans again as two halves (`_otlp_split.send_halves`)."""
        try:
            return self._post(body, deadline)
        except Exception as exc:
            if getattr(exc, "status", None) != 413:
                raise
        from ._otlp_split import send_halves

        return send_halves(self, spans, body, deadline)

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
            from .errors import ExportError

            if isinstance(exc, ExportError):
                raise
            from ._otlp_response import request_error

            error = request_error(exc, self.endpoint)
            if error is None:  # a 2xx whose body was cut short: the collector took the request
                return 0
            raise error from exc
        finally:
            self._lock.release()
        if 200 <= response.status < 300:
            if not response.body:  # the usual success: an empty ExportTraceServiceResponse
                return 0
            from ._otlp_response import rejected_spans

            return rejected_spans(response.body, self.endpoint)
        from ._otlp_response import status_error

        raise status_error(response.status, response.headers, response.body, self.endpoint)

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

    def _sign(self, body: bytes) -> dict[str, str]:
        try:
            return self._signer_instance().headers(self.endpoint, self._headers, body)
        except Exception as exc:
            from .errors import ErrorClass, ExportError

            raise ExportError(ErrorClass.AUTH, f"SigV4 signing failed: {exc!r}") from exc

    def _signer_instance(self) -> SigV4Signer:
        signer = self._signer
        if signer is None:
            from ._sigv4 import SigV4Signer

            assert self.sigv4_region
            signer = self._signer = SigV4Signer(self.sigv4_region, self.sigv4_service)
        return signer


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


def from_settings(settings: Settings) -> object:
    """The exporter ``OTEL_TRACES_EXPORTER=otlp`` stands for (gRPC when the protocol says so)."""
    from .otlp_settings import read

    options = read(settings)
    if options.protocol == "grpc":
        from .otlp_grpc import from_settings as grpc_from_settings

        return grpc_from_settings(settings)
    return http_from_options(options)


def http_from_settings(settings: Settings) -> OTLPHttpExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=otlp_proto_http`` stands for."""
    from .otlp_settings import read

    return http_from_options(read(settings, protocol="http/protobuf"))


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
