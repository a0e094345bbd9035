"""`OTLPGrpcExporter`: OTLP over gRPC (``grpcio``, the ``grpc`` extra), same bytes as OTLP/HTTP.

The request body is the one `otlp_encode` builds for OTLP/HTTP, sent with a
raw unary call to ``opentelemetry.proto.collector.trace.v1.TraceService/Export``
(no generated stubs, no `google.protobuf` at run time). The channel is kept
for warm invocations, and replaced after UNAVAILABLE or DEADLINE_EXCEEDED (a
failed channel would wait out gRPC's own reconnect backoff, up to two minutes,
after the back end is back). gRPC status codes are classified as the OTLP
specification says ("OTLP/gRPC Throttling" and "Failures"): UNAVAILABLE,
CANCELLED, ABORTED, OUT_OF_RANGE and DATA_LOSS are retryable (server),
DEADLINE_EXCEEDED is a timeout, RESOURCE_EXHAUSTED is throttling only with a
``google.rpc.RetryInfo`` (its delay is honoured, as for every retryable code),
UNAUTHENTICATED and PERMISSION_DENIED are auth errors (kept for a later flush,
as for every exporter), the rest are not retried and their spans are dropped
(INTERNAL and UNKNOWN as REFUSED). A batch whose request exceeds the
collector's receive limit (``NEXS_OTLP_MAX_REQUEST_BYTES``, default gRPC's
4 MiB) goes as several calls within the same deadline; a span over it on its
own is dropped (``spans_dropped_oversize``) and reported as dropped
(`base.Sent`), not sent.

No keepalive pings: Lambda freezes the process between invocations, so pings
would run only in the short thawed windows, where an overdue timer fires at
once; a ping's timeout long enough to avoid false alarms exceeds the flush
budget, so it cannot find a dead connection before the call's own deadline
does (the channel is then replaced, see `_renew`); and pings more often than
a server's enforcement policy allows (grpc-go and the Collector: one per 5
minutes, none without a call) get the connection closed with GOAWAY
``too_many_pings``.

Environment: the ``OTEL_EXPORTER_OTLP_[TRACES_]*`` variables of `otlp_settings`,
with ``http://localhost:4317`` as the default endpoint and ``..._INSECURE``
for an endpoint given without a scheme.
"""

from __future__ import annotations

import threading
import time

from .. import _stats as stats
from ._http import split_url
from ._otlp_response import iter_fields, rejected_spans
from .base import ExportResult, Sent, send_once
from .errors import ErrorClass, ExportError, send_parts
from .otlp_encode import encode_spans

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from ..config import Settings
    from ..typing import ReadableSpan

__all__ = ["OTLPGrpcExporter", "from_settings"]

# gRPC's default receive limit (``grpc.max_receive_message_length``), the OpenTelemetry
# Collector's too (``max_recv_msg_size_mib``): a larger request is refused whole.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024
EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
_RETRY_INFO_TYPE = "type.googleapis.com/google.rpc.RetryInfo"
_SERVER_CODES = frozenset({"UNAVAILABLE", "CANCELLED", "ABORTED", "OUT_OF_RANGE", "DATA_LOSS"})
_AUTH_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})
# Failures after which the channel is replaced (see `OTLPGrpcExporter._renew`), and the channel's
# own subchannel pool: from gRPC's global one, a new channel would get the old channel's
# connection, still waiting out its reconnect backoff.
_RENEW_CODES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})
_CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1),)
_BAD_REQUEST_CODES = frozenset(
    {"INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "UNIMPLEMENTED"}
)


class OTLPGrpcExporter:
    """Sends spans to an OTLP/gRPC endpoint.

    Args:
        endpoint: ``http://host:port`` (plaintext) or ``https://host:port`` (TLS).
        headers: request metadata (keys are lower-cased, as gRPC requires).
        timeout_s: the most one call may take; capped by the flush deadline.
        compression: ``"gzip"`` or ``"none"``.
        certificate: CA bundle (PEM) for a TLS endpoint.
        client_certificate: PEM client certificate, for mutual TLS.
        client_key: the client certificate's private key.
        max_request_bytes: the largest request (before gzip) sent as one call;
            a bigger batch goes as several. gRPC servers refuse messages over
            their receive limit, 4 MiB by default.

    Raises:
        ValueError: for a malformed endpoint, another compression, or a limit
            that is not a positive int.
    """

    def __init__(
        self,
        *,
        endpoint: str = "http://localhost:4317",
        headers: Mapping[str, str] | None = None,
        timeout_s: float = 10.0,
        compression: str = "none",
        certificate: str | None = None,
        client_certificate: str | None = None,
        client_key: str | None = None,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        scheme, host, port, _ = split_url(endpoint)
        if type(max_request_bytes) is not int or max_request_bytes < 1:
            raise ValueError(f"max_request_bytes must be an int >= 1, got {max_request_bytes!r}")
        if compression not in ("none", "gzip"):
            raise ValueError(f"compression must be 'none' or 'gzip', got {compression!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s!r}")
        self.endpoint = endpoint
        self.target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        self.secure = scheme == "https"
        self.timeout_s = float(timeout_s)
        self.compression = compression
        self.max_request_bytes = max_request_bytes
        self.metadata = _metadata(headers or {})
        self._tls_files = (certificate, client_certificate, client_key)
        self._lock = threading.Lock()
        self._channel: object = None
        self._call: object = None

    def send(self, spans: Sequence[ReadableSpan], timeout_s: float) -> int | Sent:
        """Export `spans` with one unary call (several when too big); return how many were rejected.

        Returns:
            The spans the collector rejected; a `Sent` when spans over the request
            limit on their own were also dropped here (``spans_dropped_oversize``).

        Raises:
            ExportError: classified failure; after earlier calls of the batch got
                through, its `undelivered` names the spans still to send (`errors.send_parts`).
        """
        deadline = time.monotonic() + min(timeout_s, self.timeout_s)  # the flush's budget, at most our own
        try:
            body = encode_spans(spans)
        except Exception as exc:
            raise ExportError(ErrorClass.SERIALIZATION, f"could not encode spans: {exc!r}") from exc
        limit = self.max_request_bytes
        if len(body) <= limit:
            return self._export_one(body, deadline)
        # Over the collector's receive limit it would refuse the whole batch (RESOURCE_EXHAUSTED):
        # the same spans as several calls under it, within the same deadline.
        from ._otlp_split import split_spans

        parts, too_big = split_spans(spans, limit)
        if too_big:
            stats.incr("spans_dropped_oversize", too_big)
            from .. import _guard as guard

            guard.warn_once(
                "otlp_oversize:" + self.endpoint,
                "nexs_serverless: %d span(s) over the %d-byte request limit of %s on their own, dropped",
                too_big,
                limit,
                self.endpoint,
            )
        return send_parts(parts, lambda _, part_body: self._export_one(part_body, deadline), dropped=too_big)

    def _export_one(self, body: bytes, deadline: float) -> int:
        """One unary call with `body`: the spans rejected, or a classified `ExportError`."""
        if deadline <= time.monotonic():
            # No call with no time left (an earlier call of the batch used it up): one that timed out
            # at once would drop a healthy channel (`_renew`), and the collector may still take it,
            # so that the retry sends its spans a second time.
            raise ExportError(ErrorClass.TIMEOUT, "no time left in the export budget for the call")
        import grpc

        call = self._callable()
        compression = grpc.Compression.Gzip if self.compression == "gzip" else None
        timeout = max(0.001, deadline - time.monotonic())
        try:
            reply = call(body, timeout=timeout, metadata=self.metadata, compression=compression)  # type: ignore[operator]
        except grpc.RpcError as exc:
            if _code_name(exc) in _RENEW_CODES:
                self._renew(call)
            raise _classify_rpc(exc) from exc
        except ValueError as exc:  # "Cannot invoke RPC on closed channel!": renewed or shut down meanwhile
            self._renew(call)
            raise ExportError(ErrorClass.NETWORK, repr(exc)) from exc
        except Exception as exc:
            raise ExportError(ErrorClass.UNKNOWN, repr(exc)) from exc
        # As over HTTP: rejected spans are logged (once per message), an unreadable reply counted.
        return rejected_spans(bytes(reply), self.endpoint)

    def prepare(self) -> None:
        """Create the channel and wait (at most the timeout) for it to connect."""
        import grpc

        self._callable()
        channel = self._channel
        if channel is None:  # renewed or shut down meanwhile: the next send connects
            return
        try:
            grpc.channel_ready_future(channel).result(timeout=self.timeout_s)
        except grpc.FutureTimeoutError:
            pass  # the first export will report the failure, classified

    def export(self, spans: Sequence[ReadableSpan]) -> ExportResult:
        """Send once within the flush deadline; failures are counted, never raised."""
        return send_once("OTLP/gRPC", self.send, spans, self.timeout_s)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is held here."""
        return True

    def shutdown(self) -> None:
        """Close the channel."""
        with self._lock:
            channel = self._channel
            self._channel = self._call = None
        if channel is not None:
            channel.close()  # type: ignore[attr-defined]

    def _callable(self) -> object:
        call = self._call
        if call is not None:
            return call
        with self._lock:
            if self._call is None:
                import grpc

                if self.secure:
                    certificate, client_certificate, client_key = self._tls_files
                    credentials = grpc.ssl_channel_credentials(
                        root_certificates=_read(certificate),
                        private_key=_read(client_key),
                        certificate_chain=_read(client_certificate),
                    )
                    channel = grpc.secure_channel(self.target, credentials, _CHANNEL_OPTIONS)
                else:
                    channel = grpc.insecure_channel(self.target, _CHANNEL_OPTIONS)
                self._channel = channel
                self._call = channel.unary_unary(EXPORT_METHOD)
            return self._call

    def _renew(self, call: object) -> None:
        """Drop the channel `call` belongs to, so that the next send opens a fresh one.

        A channel that failed to connect waits out gRPC's reconnect backoff (1 s,
        growing to 120 s) and fails every call meanwhile, however long ago the
        back end came back: after an outage, exports would keep failing for up
        to two minutes. A connection that stopped answering (a NAT that forgot
        it while Lambda froze us) would likewise time out every call. The
        circuit breaker already spaces out attempts; a fresh channel connects
        at once.
        """
        with self._lock:
            if self._call is call:  # else another send renewed it already
                self._channel = self._call = None
        # Not closed here: that would cancel the calls other threads still have on it, and a
        # call the collector took but we cancelled would be sent again (the same spans twice).
        # gRPC closes a channel once nothing refers to it (`_ChannelCallState.__del__`).


def _read(path: str | None) -> bytes | None:
    """A TLS file's bytes; a file that cannot be read is a setting to fix, not a network failure."""
    if not path:
        return None
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        raise ExportError(
            ErrorClass.AUTH,
            f"cannot read the TLS file {path!r} (OTEL_EXPORTER_OTLP_CERTIFICATE, _CLIENT_CERTIFICATE or "
            f"_CLIENT_KEY): {exc.strerror or exc}",
        ) from None


# gRPC metadata keys: lower-case letters, digits and "-_."; values printable ASCII (binary values
# under a "-bin" key). gRPC refuses any other pair on every call, so such a header would fail
# every export; it is left out and named once instead.
_KEY_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")


def _metadata(headers: Mapping[str, str]) -> tuple[tuple[str, str | bytes], ...]:
    pairs: list[tuple[str, str | bytes]] = []
    for raw_key, raw_value in headers.items():
        key, value = str(raw_key).lower(), str(raw_value)
        if not key or not _KEY_CHARACTERS.issuperset(key) or key.startswith("grpc-"):
            _refuse(key, "its name is not a gRPC metadata key")
        elif key.endswith("-bin"):
            pairs.append((key, value.encode("utf-8")))
        elif not (value.isascii() and value.isprintable()):
            _refuse(key, "its value is not printable ASCII (gRPC takes such values under a '-bin' key)")
        else:
            pairs.append((key, value))
    return tuple(pairs)


def _refuse(key: str, why: str) -> None:
    from .. import _guard as guard

    guard.warn_once(
        "grpc_header:" + key,
        "nexs_serverless: OTEL_EXPORTER_OTLP_HEADERS: header %r left out of gRPC calls: %s",
        key,
        why,
    )


def _classify_rpc(exc: Exception) -> ExportError:
    """An `ExportError` for a failed call, with RetryInfo's delay when the server sent one."""
    name = _code_name(exc)
    details = getattr(exc, "details", None)
    message = f"gRPC {name}: {details() if callable(details) else exc}"
    retry_after = _retry_delay(exc)
    if name == "DEADLINE_EXCEEDED":  # ours, or the server's (which may name its pause too)
        return ExportError(ErrorClass.TIMEOUT, message, retry_after_s=retry_after)
    if name in _SERVER_CODES:
        return ExportError(ErrorClass.SERVER, message, retry_after_s=retry_after)
    if name == "RESOURCE_EXHAUSTED":
        if retry_after is not None:
            return ExportError(ErrorClass.THROTTLED, message, retry_after_s=retry_after)
        return ExportError(ErrorClass.BAD_REQUEST, message)
    if name in _AUTH_CODES:
        return ExportError(ErrorClass.AUTH, message)
    if name in _BAD_REQUEST_CODES:
        return ExportError(ErrorClass.BAD_REQUEST, message)
    return ExportError(ErrorClass.REFUSED, message)  # INTERNAL, UNKNOWN: not retryable, dropped


def _code_name(exc: Exception) -> str:
    """The gRPC status code's name (``"UNAVAILABLE"``) of a failed call."""
    code = getattr(exc, "code", None)
    return str(getattr(code(), "name", "UNKNOWN")) if callable(code) else "UNKNOWN"


def _retry_delay(exc: Exception) -> float | None:
    """``RetryInfo.retry_delay`` from the ``grpc-status-details-bin`` trailer (a ``google.rpc.Status``)."""
    trailing = getattr(exc, "trailing_metadata", None)
    try:
        metadata = trailing() if callable(trailing) else None
        for key, value in metadata or ():
            if key != "grpc-status-details-bin" or not isinstance(value, bytes):
                continue
            for field, _, detail in iter_fields(value):
                if field != 3 or not isinstance(detail, bytes):  # Status.details: repeated Any
                    continue
                parts = {number: data for number, _, data in iter_fields(detail)}
                if parts.get(1) != _RETRY_INFO_TYPE.encode():
                    continue
                info = parts.get(2)
                for number, _, duration in iter_fields(info if isinstance(info, bytes) else b""):
                    if number == 1 and isinstance(duration, bytes):  # RetryInfo.retry_delay
                        values = {n: v for n, _, v in iter_fields(duration)}
                        seconds = values.get(1, 0)
                        nanos = values.get(2, 0)
                        if isinstance(seconds, int) and isinstance(nanos, int):
                            return seconds + nanos / 1e9
    except (ValueError, TypeError):
        return None
    return None


def from_settings(settings: Settings) -> OTLPGrpcExporter:
    """The exporter ``OTEL_TRACES_EXPORTER=otlp_proto_grpc`` stands for."""
    from .otlp_settings import read

    options = read(settings, protocol="grpc")
    return OTLPGrpcExporter(
        endpoint=options.endpoint,
        headers=options.headers,
        timeout_s=options.timeout_s,
        compression=options.compression,
        certificate=options.certificate,
        client_certificate=options.client_certificate,
        client_key=options.client_key,
        max_request_bytes=options.max_request_bytes or DEFAULT_MAX_REQUEST_BYTES,
    )
